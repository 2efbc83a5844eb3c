//! Where auditty keeps its recordings: the object store and the Parquet tables in it
//! (DESIGN.md §4).
//!
//! - [`StoreUrl`] parses `--store` (`file:///PATH`, a plain path, or `s3://BUCKET/PREFIX`)
//!   and [`StoreUrl::open`] gives an [`ObjectStore`]: [`LocalStore`] for a directory,
//!   [`S3Store`] for a bucket ([`S3Options`]: endpoint, region, path style, SSE).
//! - [`layout`]: the object names (`events/date=YYYY-MM-DD/<source>-<partition>-<offset>.parquet`).
//! - [`parquet_io`]: [`EventRow`] and [`SessionRow`], encoded to and decoded from Parquet with
//!   the schemas of [`schemas::arrow`], and the footer metadata [`ObjectMeta`] that lets a
//!   restarted ingester reuse its cut points.
//! - [`ranged`]: the rows of one session (or the ids matching a prefix) read from an
//!   object piecewise: its footer and only the row groups and pages that can hold them.
//! - [`compact`]: a day's small objects merged into large ones, crash-safe by the order
//!   of its puts and deletes (`auditty-ingest compact`).
//!
//! Callers: `ingest` writes objects (encode + [`ObjectStore::put`]); the session catalog in
//! `search` reads them (whole-object scans with [`parquet_io::scan_events`] and
//! [`parquet_io::decode_sessions`], lookups with [`ranged`]). Every failure is a
//! [`StoreError`].
#![warn(missing_docs)]

pub mod compact;
mod error;
pub mod layout;
pub mod local;
pub mod parquet_io;
pub mod ranged;
pub mod s3;
#[cfg(feature = "clap")]
mod s3_args;
#[cfg(any(test, feature = "testsuite"))]
pub mod testsuite;

pub use error::StoreError;
pub use local::LocalStore;
pub use parquet_io::{EventRow, ObjectMeta, SessionRow};
pub use s3::{S3Options, S3Store, Sse};
#[cfg(feature = "clap")]
pub use s3_args::{S3Args, SseMode};

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Where the store lives. Parsed once from `--store`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    /// A directory on this machine (absolute path).
    Local(PathBuf),
    /// A bucket and key prefix (without slashes at either end; may be empty).
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix under which the tables live.
        prefix: String,
        /// How to reach it; [`S3Options::default`] from [`StoreUrl::parse`], set by the
        /// binaries from their `--s3-*` flags.
        options: S3Options,
    },
}

impl StoreUrl {
    /// Parses `file:///abs/path`, `file://localhost/abs/path` or a plain filesystem path
    /// (relative paths are made absolute against the current directory).
    ///
    /// `file://relative` is rejected because the URL grammar reads `relative` as a host
    /// name, which would silently point somewhere else than the user meant.
    /// `s3://BUCKET[/PREFIX]` gives default [`S3Options`].
    pub fn parse(s: &str) -> Result<StoreUrl, StoreError> {
        let bad = |reason: &str| StoreError::BadUrl {
            url: s.to_string(),
            reason: reason.to_string(),
        };
        if s.is_empty() {
            return Err(bad("it is empty; give a directory path or file:///PATH"));
        }
        if let Some((scheme, rest)) = s.split_once("://") {
            if scheme.eq_ignore_ascii_case("s3") {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                let prefix = prefix.trim_matches('/');
                if bucket.is_empty() {
                    return Err(bad(
                        "it names no bucket; write s3://BUCKET or s3://BUCKET/PREFIX",
                    ));
                }
                let prefix_ok = prefix.is_empty()
                    || prefix
                        .split('/')
                        .all(|part| !part.is_empty() && !part.starts_with('.'));
                if rest.contains(['?', '#']) || !prefix_ok {
                    return Err(bad(
                        "the prefix must be '/'-separated names, none empty or starting with '.', \
                         and the URL takes no query or fragment",
                    ));
                }
                return Ok(StoreUrl::S3 {
                    bucket: bucket.to_string(),
                    prefix: prefix.to_string(),
                    options: S3Options::default(),
                });
            }
            if scheme.eq_ignore_ascii_case("file") {
                let path = rest.strip_prefix("localhost").unwrap_or(rest);
                if !path.starts_with('/') {
                    return Err(bad(
                        "a file URL needs an absolute path after the two slashes, as in \
                         file:///var/lib/auditty/store (three slashes); for a relative \
                         directory give the plain path",
                    ));
                }
                if path.contains(['?', '#']) {
                    return Err(bad(
                        "file URLs take no query or fragment; percent-encode '?' and '#' in \
                         the path as %3F and %23",
                    ));
                }
                let decoded = percent_decode(path).map_err(|reason| bad(&reason))?;
                return Ok(StoreUrl::Local(PathBuf::from(decoded)));
            }
            if is_scheme(scheme) {
                return Err(bad(&format!(
                    "unknown scheme '{scheme}'; use file:///PATH, a plain directory path, or \
                     s3://BUCKET/PREFIX"
                )));
            }
        }
        if s.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("file:")) {
            return Err(bad(
                "write file URLs as file:///ABSOLUTE/PATH (three slashes), or give the plain path",
            ));
        }
        let path = std::path::absolute(Path::new(s)).map_err(|e| {
            bad(&format!(
                "cannot make the path absolute ({e}); give an absolute path"
            ))
        })?;
        Ok(StoreUrl::Local(path))
    }

    /// Opens the store. A local store's root directory is created if missing, so a fresh
    /// install works without preparing anything.
    pub fn open(&self) -> Result<Box<dyn ObjectStore>, StoreError> {
        match self {
            StoreUrl::Local(path) => Ok(Box::new(LocalStore::new(path)?)),
            StoreUrl::S3 {
                bucket,
                prefix,
                options,
            } => Ok(Box::new(S3Store::open(bucket, prefix, options.clone())?)),
        }
    }

    /// The same URL with `options` for an S3 store; a local store ignores them.
    pub fn with_s3_options(self, options: S3Options) -> StoreUrl {
        match self {
            StoreUrl::S3 { bucket, prefix, .. } => StoreUrl::S3 {
                bucket,
                prefix,
                options,
            },
            local => local,
        }
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Local(path) => write!(f, "{}", file_url(path)),
            StoreUrl::S3 { bucket, prefix, .. } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            StoreUrl::S3 { bucket, prefix, .. } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// `file://` URL of an absolute path, escaped so that [`StoreUrl::parse`] reads it back.
pub(crate) fn file_url(path: &Path) -> String {
    let text = path.to_string_lossy();
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str("file://");
    for c in text.chars() {
        match c {
            '%' | ' ' | '?' | '#' => out.push_str(&format!("%{:02X}", c as u32)),
            c if c.is_ascii_control() => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    "a '%' must be followed by two hex digits (write a literal '%' as %25)"
                        .to_string()
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the decoded path is not valid UTF-8".to_string())
}

/// An object that could not be read, decoded, or that does not match its name (a review,
/// an access event, a hold, a tombstone), reported beside what could be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The object's key.
    pub key: String,
    /// What is wrong, as a sentence fragment.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

/// Object storage behind one small trait: [`LocalStore`] and [`S3Store`].
///
/// Keys are '/'-separated relative paths like `events/date=2026-11-27/x.parquet`; see
/// [`layout`]. Parts starting with '.' are reserved for in-flight temporary files.
pub trait ObjectStore: Send + Sync {
    /// Creates or replaces an object atomically: a reader sees the old object, the new one,
    /// or none, never a partial one; durable when this returns (local: write a temp file in
    /// the same directory, fsync, rename, fsync the directory).
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError>;
    /// Replaces an object whatever it holds, as atomically as [`ObjectStore::put`]. Only
    /// for rewriting an object on purpose (`replay purge` removes one session's rows
    /// from objects under their names): [`ObjectStore::put`] on S3 refuses to clobber a
    /// different object (`If-None-Match: *`), which guards the ingester's deterministic
    /// names. The local store's put already replaces.
    fn replace(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.put(key, bytes)
    }
    /// The whole object; a missing one is [`StoreError::NotFound`].
    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError>;
    /// Bytes `range` of the object; a range past its end is an error, as with S3.
    fn get_range(&self, key: &str, range: std::ops::Range<u64>) -> Result<Vec<u8>, StoreError>;
    /// The last `n` bytes of the object (all of it if shorter) and its size. Readers of
    /// Parquet footers use it: on S3 it is one request (`Range: bytes=-n`) instead of a
    /// size lookup followed by a read.
    fn get_suffix(&self, key: &str, n: u64) -> Result<(Vec<u8>, u64), StoreError> {
        let size = self.size(key)?;
        Ok((self.get_range(key, size.saturating_sub(n)..size)?, size))
    }
    /// Size of the object in bytes.
    fn size(&self, key: &str) -> Result<u64, StoreError>;
    /// Whether the object exists.
    fn exists(&self, key: &str) -> Result<bool, StoreError>;
    /// All keys starting with `prefix` (recursive), sorted; temp files of in-flight puts
    /// are never listed. A missing prefix gives an empty list.
    ///
    /// `prefix` is a string prefix as in S3: pass `"events/"` for the events table
    /// (`"events"` would also match a sibling `events-old/`).
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    /// Removes the object. Removing a missing object succeeds, as in S3, so a retried
    /// cleanup does not fail.
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// When the object was last written, if the store can tell (compaction leaves young
    /// objects alone; see [`compact`]). The default knows nothing.
    fn modified(&self, key: &str) -> Result<Option<SystemTime>, StoreError> {
        self.size(key)?;
        Ok(None)
    }
    /// [`ObjectStore::list`] with each object's size and modification time. The default
    /// asks per key (objects deleted meanwhile are left out); S3 has them in the listing.
    fn list_info(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        let mut out = Vec::new();
        for key in self.list(prefix)? {
            let info = self
                .size(&key)
                .and_then(|size| Ok((size, self.modified(&key)?)));
            match info {
                Ok((size, modified)) => out.push(Listed {
                    key,
                    size,
                    modified,
                }),
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
    /// The store as a URL for messages, e.g. `file:///var/lib/auditty/store`.
    fn describe(&self) -> String;
}

/// One object as [`ObjectStore::list_info`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// Its key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written, if the store says.
    pub modified: Option<SystemTime>,
}

/// Checks an object key: relative, '/'-separated, no empty, `.` or `..` parts, no part
/// starting with '.' (reserved for temp files, which must never be listed), no NUL.
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    let ok = !key.is_empty()
        && !key.contains('\0')
        && !key.contains('\\')
        && key
            .split('/')
            .all(|part| !part.is_empty() && !part.starts_with('.'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidKey(key.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_and_plain_paths_parse() {
        assert_eq!(
            StoreUrl::parse("file:///var/lib/auditty/store").unwrap(),
            StoreUrl::Local(PathBuf::from("/var/lib/auditty/store"))
        );
        assert_eq!(
            StoreUrl::parse("file://localhost/srv/a%20b").unwrap(),
            StoreUrl::Local(PathBuf::from("/srv/a b"))
        );
        assert_eq!(
            StoreUrl::parse("/srv/store").unwrap(),
            StoreUrl::Local(PathBuf::from("/srv/store"))
        );
        let Ok(StoreUrl::Local(rel)) = StoreUrl::parse("some/dir") else {
            panic!("not local")
        };
        let Ok(StoreUrl::Local(odd)) = StoreUrl::parse("filé/x") else {
            panic!("not local")
        };
        assert!(odd.ends_with("filé/x"));
        assert!(rel.is_absolute());
        assert!(rel.ends_with("some/dir"));
    }

    #[test]
    fn display_round_trips() {
        for p in ["/var/lib/auditty/store", "/tmp/100% sure/#x?"] {
            let url = StoreUrl::Local(PathBuf::from(p));
            let text = url.to_string();
            assert!(text.starts_with("file:///"), "{text}");
            assert_eq!(StoreUrl::parse(&text).unwrap(), url);
        }
    }

    #[test]
    fn s3_urls_parse_and_display() {
        for (text, bucket, prefix, shown) in [
            ("s3://b/p/q", "b", "p/q", "s3://b/p/q"),
            ("s3://b/p/", "b", "p", "s3://b/p"),
            ("s3://b", "b", "", "s3://b"),
            ("S3://b/", "b", "", "s3://b"),
        ] {
            let url = StoreUrl::parse(text).unwrap();
            let StoreUrl::S3 {
                bucket: b,
                prefix: p,
                ..
            } = &url
            else {
                panic!("{text} parsed as {url:?}");
            };
            assert_eq!((b.as_str(), p.as_str()), (bucket, prefix), "{text}");
            assert_eq!(url.to_string(), shown);
        }
        for bad in [
            "s3://",
            "s3:///p",
            "s3://b/a//c",
            "s3://b/.x",
            "s3://b/p?x=1",
        ] {
            assert!(
                matches!(StoreUrl::parse(bad), Err(StoreError::BadUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_urls_are_rejected_with_a_hint() {
        for s in [
            "",
            "file://relative/dir",
            "file:relative",
            "http://example.com/x",
            "file:///bad%zz",
            "file:///a?b",
            "file:///a%+1",
            "file:///a%",
        ] {
            let err = StoreUrl::parse(s).unwrap_err();
            assert!(matches!(err, StoreError::BadUrl { .. }), "{s}: {err:?}");
            assert!(err.to_string().contains("bad store URL"), "{err}");
        }
    }

    #[test]
    fn open_creates_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a/b/store");
        let url = StoreUrl::parse(&format!("file://{}", root.display())).unwrap();
        let store = url.open().unwrap();
        assert!(root.is_dir());
        assert_eq!(store.describe(), url.to_string());
    }

    #[test]
    fn keys_are_checked() {
        for good in [
            "a",
            "events/date=2026-11-27/x-0-00000000000000000001.parquet",
        ] {
            validate_key(good).unwrap();
        }
        for bad in [
            "", "/abs", "a//b", "a/", "../x", "a/../b", "a/./b", ".hidden", "a/.tmp", "a\\b",
            "a\0b",
        ] {
            assert!(
                matches!(validate_key(bad), Err(StoreError::InvalidKey(_))),
                "{bad:?}"
            );
        }
    }
}
