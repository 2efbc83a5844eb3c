//! [`LocalStore`]: the store as a directory on this machine (the embedded default).

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{ObjectStore, StoreError, file_url, validate_key};

/// Names of in-flight temp files start with this. Keys may not have parts starting with
/// '.', so a temp file can never be mistaken for an object.
const TEMP_PREFIX: &str = ".tmp.";

/// Distinguishes temp files of concurrent puts from one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// An [`ObjectStore`] in a local directory: key `a/b/c` is the file `<root>/a/b/c`.
#[derive(Clone, Debug)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// Opens the store at `root`, creating the directory if it is missing.
    pub fn new(root: impl Into<PathBuf>) -> Result<LocalStore, StoreError> {
        let root = std::path::absolute(root.into())
            .map_err(|e| StoreError::io("the store directory", "resolve", e))?;
        fs::create_dir_all(&root)
            .map_err(|e| StoreError::io(root.display().to_string(), "create directory", e))?;
        Ok(LocalStore { root })
    }

    /// The directory holding the objects.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file behind a key, after checking the key cannot escape the root.
    pub fn path_of(&self, key: &str) -> Result<PathBuf, StoreError> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    /// Creates the parent directories of `path` and makes every new directory entry
    /// durable, since a renamed file in a directory whose own entry is lost is lost too.
    fn create_parents(&self, path: &Path) -> Result<(), StoreError> {
        let Some(parent) = path.parent() else {
            return Ok(());
        };
        let mut missing = Vec::new();
        let mut dir = parent;
        while dir != self.root && !dir.is_dir() {
            missing.push(dir);
            match dir.parent() {
                Some(p) => dir = p,
                None => break,
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        fs::create_dir_all(parent)
            .map_err(|e| StoreError::io(parent.display().to_string(), "create directory", e))?;
        for created in missing.iter().rev() {
            if let Some(up) = created.parent() {
                sync_dir(up)?;
            }
        }
        Ok(())
    }

    fn not_found_or_io(key: &str, op: &'static str, e: io::Error) -> StoreError {
        // A directory, or a file where a directory is expected, is no object either.
        if matches!(
            e.kind(),
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory
        ) {
            StoreError::NotFound {
                key: key.to_string(),
            }
        } else {
            StoreError::io(key, op, e)
        }
    }

    fn walk(
        &self,
        dir: &Path,
        rel: &str,
        prefix: &str,
        out: &mut Vec<String>,
    ) -> Result<(), StoreError> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            // Gone between listing its parent and reading it: a concurrent delete, so empty.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StoreError::io(dir.display().to_string(), "list", e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io(dir.display().to_string(), "list", e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                tracing::warn!(dir = %dir.display(), name = ?name, "skipping a file whose name is not UTF-8; it cannot be an auditty object");
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let key = if rel.is_empty() {
                name.to_string()
            } else {
                format!("{rel}/{name}")
            };
            // Only descend where a key under the prefix can be; keeps listing one date cheap.
            if !(key.starts_with(prefix) || prefix.starts_with(&key)) {
                continue;
            }
            // Follows symlinks, so an operator may link a directory of objects in.
            let meta = match fs::metadata(entry.path()) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(StoreError::io(
                        entry.path().display().to_string(),
                        "stat",
                        e,
                    ));
                }
            };
            if meta.is_dir() {
                self.walk(&entry.path(), &key, prefix, out)?;
            } else if meta.is_file() && key.starts_with(prefix) {
                out.push(key);
            }
        }
        Ok(())
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir.display().to_string(), "sync directory", e))
}

impl ObjectStore for LocalStore {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path_of(key)?;
        self.create_parents(&path)?;
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(StoreError::InvalidKey(key.to_string()));
        };
        let temp = dir.join(format!(
            "{TEMP_PREFIX}{}.{}.{}",
            name.to_string_lossy(),
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let write = || -> io::Result<()> {
            let mut f = File::options().write(true).create_new(true).open(&temp)?;
            f.write_all(bytes)?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&temp);
            return Err(StoreError::io(key, "write", e));
        }
        if let Err(e) = fs::rename(&temp, &path) {
            let _ = fs::remove_file(&temp);
            return Err(StoreError::io(key, "rename into place", e));
        }
        sync_dir(dir)
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.path_of(key)?;
        fs::read(&path).map_err(|e| Self::not_found_or_io(key, "read", e))
    }

    fn get_range(&self, key: &str, range: std::ops::Range<u64>) -> Result<Vec<u8>, StoreError> {
        let path = self.path_of(key)?;
        if range.start > range.end {
            return Err(StoreError::io(
                key,
                "read range",
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("range {}..{} is backwards", range.start, range.end),
                ),
            ));
        }
        let mut f = File::open(&path).map_err(|e| Self::not_found_or_io(key, "open", e))?;
        let size = f
            .metadata()
            .map_err(|e| StoreError::io(key, "stat", e))?
            .len();
        if range.end > size {
            return Err(StoreError::io(
                key,
                "read range",
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "range {}..{} is past the end of the object ({size} bytes)",
                        range.start, range.end
                    ),
                ),
            ));
        }
        let len = usize::try_from(range.end - range.start).map_err(|_| {
            StoreError::io(
                key,
                "read range",
                io::Error::new(io::ErrorKind::InvalidInput, "range too large for memory"),
            )
        })?;
        f.seek(SeekFrom::Start(range.start))
            .map_err(|e| StoreError::io(key, "seek", e))?;
        let mut buf = vec![0; len];
        f.read_exact(&mut buf)
            .map_err(|e| StoreError::io(key, "read range", e))?;
        Ok(buf)
    }

    fn size(&self, key: &str) -> Result<u64, StoreError> {
        let path = self.path_of(key)?;
        let meta = fs::metadata(&path).map_err(|e| Self::not_found_or_io(key, "stat", e))?;
        if meta.is_file() {
            Ok(meta.len())
        } else {
            Err(StoreError::NotFound {
                key: key.to_string(),
            })
        }
    }

    fn modified(&self, key: &str) -> Result<Option<std::time::SystemTime>, StoreError> {
        let path = self.path_of(key)?;
        let meta = fs::metadata(&path).map_err(|e| Self::not_found_or_io(key, "stat", e))?;
        Ok(meta.modified().ok())
    }

    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        let path = self.path_of(key)?;
        match fs::metadata(&path) {
            Ok(meta) => Ok(meta.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            // A file where a directory is expected ("a" exists, asked for "a/b").
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => Ok(false),
            Err(e) => Err(StoreError::io(key, "stat", e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        // Start the walk at the deepest directory the prefix names in full.
        let (dir_part, _) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        let start = if dir_part.is_empty() {
            self.root.clone()
        } else {
            self.path_of(dir_part)?
        };
        let mut out = Vec::new();
        self.walk(&start, dir_part, prefix, &mut out)?;
        out.sort();
        Ok(out)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path_of(key)?;
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StoreError::io(key, "delete", e)),
        }
        match path.parent() {
            Some(dir) => sync_dir(dir),
            None => Ok(()),
        }
    }

    fn describe(&self) -> String {
        file_url(&self.root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, LocalStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("store")).unwrap();
        (dir, store)
    }

    #[test]
    fn put_get_list_exists_delete() {
        let (_dir, s) = store();
        let k1 = "events/date=2026-11-27/a.parquet";
        let k2 = "events/date=2026-11-28/b.parquet";
        let k3 = "sessions/date=2026-11-27/a.parquet";
        assert!(!s.exists(k1).unwrap());
        assert!(matches!(s.get(k1), Err(StoreError::NotFound { .. })));
        assert!(matches!(s.size(k1), Err(StoreError::NotFound { .. })));
        s.put(k2, b"two").unwrap();
        s.put(k1, b"one").unwrap();
        s.put(k3, b"three").unwrap();
        assert!(s.exists(k1).unwrap());
        assert_eq!(s.get(k1).unwrap(), b"one");
        assert_eq!(s.size(k3).unwrap(), 5);
        s.put(k1, b"replaced").unwrap();
        assert_eq!(s.get(k1).unwrap(), b"replaced");

        assert_eq!(s.list("").unwrap(), vec![k1, k2, k3]);
        assert_eq!(s.list("events/").unwrap(), vec![k1, k2]);
        assert_eq!(s.list("events").unwrap(), vec![k1, k2]);
        assert_eq!(s.list("events/date=2026-11-2").unwrap(), vec![k1, k2]);
        assert_eq!(s.list("events/date=2026-11-28/").unwrap(), vec![k2]);
        assert_eq!(s.list("dead-letter/").unwrap(), Vec::<String>::new());
        assert_eq!(s.list("nothing/here/").unwrap(), Vec::<String>::new());

        s.delete(k1).unwrap();
        s.delete(k1).unwrap();
        assert!(!s.exists(k1).unwrap());
        assert_eq!(s.list("events/").unwrap(), vec![k2]);
        // A directory is not an object.
        assert!(!s.exists("events").unwrap());
        assert!(matches!(s.get("events"), Err(StoreError::NotFound { .. })));
        assert!(!s.exists("events/date=2026-11-28/b.parquet/x").unwrap());
    }

    #[test]
    fn get_range_reads_slices_and_rejects_overruns() {
        let (_dir, s) = store();
        s.put("x/y", b"0123456789").unwrap();
        assert_eq!(s.get_range("x/y", 2..5).unwrap(), b"234");
        assert_eq!(s.get_range("x/y", 10..10).unwrap(), b"");
        assert_eq!(s.get_range("x/y", 0..10).unwrap(), b"0123456789");
        assert!(matches!(
            s.get_range("x/y", 5..11),
            Err(StoreError::Io { .. })
        ));
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = 5..2;
        assert!(matches!(
            s.get_range("x/y", backwards),
            Err(StoreError::Io { .. })
        ));
        assert!(matches!(
            s.get_range("x/z", 0..1),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[test]
    fn temp_files_are_never_listed() {
        let (_dir, s) = store();
        s.put("events/date=2026-11-27/a.parquet", b"a").unwrap();
        // What a put interrupted by a crash leaves behind.
        let stray = s.root().join("events/date=2026-11-27/.tmp.b.parquet.1.0");
        fs::write(&stray, b"partial").unwrap();
        assert_eq!(
            s.list("").unwrap(),
            vec!["events/date=2026-11-27/a.parquet".to_string()]
        );
        // Puts clean up after themselves.
        fs::remove_file(&stray).unwrap();
        for i in 0..5 {
            s.put("events/date=2026-11-27/a.parquet", &[i; 100])
                .unwrap();
        }
        let names: Vec<_> = fs::read_dir(s.root().join("events/date=2026-11-27"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["a.parquet"]);
    }

    #[test]
    fn concurrent_puts_of_one_key_leave_a_whole_object() {
        let (_dir, s) = store();
        let s = std::sync::Arc::new(s);
        let threads: Vec<_> = (0..4u8)
            .map(|i| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        s.put("k/v", &vec![i; 4096]).unwrap();
                        let got = s.get("k/v").unwrap();
                        assert_eq!(got.len(), 4096);
                        assert!(got.iter().all(|b| *b == got[0]));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(s.list("").unwrap(), vec!["k/v".to_string()]);
    }

    #[test]
    fn invalid_keys_are_rejected_everywhere() {
        let (dir, s) = store();
        for key in [
            "",
            "/etc/passwd",
            "../escape",
            "a/../../b",
            "a//b",
            ".tmp.x",
            "a/",
        ] {
            assert!(
                matches!(s.put(key, b"x"), Err(StoreError::InvalidKey(_))),
                "{key:?}"
            );
            assert!(
                matches!(s.get(key), Err(StoreError::InvalidKey(_))),
                "{key:?}"
            );
            assert!(matches!(
                s.get_range(key, 0..1),
                Err(StoreError::InvalidKey(_))
            ));
            assert!(matches!(s.size(key), Err(StoreError::InvalidKey(_))));
            assert!(matches!(s.exists(key), Err(StoreError::InvalidKey(_))));
            assert!(matches!(s.delete(key), Err(StoreError::InvalidKey(_))));
        }
        assert!(matches!(s.list("../"), Err(StoreError::InvalidKey(_))));
        assert!(!dir.path().join("escape").exists());
    }

    #[test]
    fn describe_is_a_file_url() {
        let (_dir, s) = store();
        assert_eq!(s.describe(), format!("file://{}", s.root().display()));
    }
}
