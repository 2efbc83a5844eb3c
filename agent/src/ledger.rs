//! The node's session ledger (DESIGN.md §6).
//!
//! Every session a node key signs takes the next number of that key's sequence, and its
//! `start` names the session before it. Since the start row is chained and signed,
//! `replay verify --all` can then tell that a session is missing from the store even when
//! every object that held it was deleted: its successor still names it.
//!
//! The ledger lives beside the node key (`node.key` → `node.ledger`), with the key's
//! protection: who can rewrite one can rewrite the other. It is one fixed-length record,
//! rewritten in place under an exclusive `flock`, so that sessions starting at once on one
//! node get distinct numbers and a crash never leaves a half-written file that a shorter
//! record would have to truncate.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use schemas::SessionId;

const MAGIC: &str = "auditty-ledger-v1";
/// Record length: magic, a 20-digit number and a hyphenated UUID fit, with room to spare.
const RECORD_LEN: usize = 96;

/// The newest entry of a ledger: its number and session.
pub type Newest = (u64, SessionId);

/// Where a new session stands in its node's sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    /// Its number, from 1.
    pub node_seq: u64,
    /// The session numbered `node_seq - 1`; `None` for the first.
    pub prev_session: Option<SessionId>,
}

/// Why the ledger could not give a number.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// It could not be opened, locked, read or written.
    #[error("cannot update the session ledger {path}: {source}")]
    Io {
        /// The ledger file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// It holds something that is not a ledger record.
    #[error(
        "the session ledger {path} is damaged ({what}); move it aside to start a new sequence \
         (replay verify --all will then report the restart)"
    )]
    Damaged {
        /// The ledger file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

/// The ledger that goes with the node key at `key_path`.
pub fn path_for_key(key_path: &Path) -> PathBuf {
    key_path.with_extension("ledger")
}

/// Takes the next number of the ledger at `path` for `session` (creating the ledger,
/// mode 0600, if there is none).
pub fn take_next(path: &Path, session: SessionId) -> Result<Place, LedgerError> {
    let io = |source| LedgerError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    let (file, last) = lock_and_read(path, file, FlockArg::LockExclusive)?;
    let place = Place {
        node_seq: last.map_or(1, |(n, _)| n.saturating_add(1)),
        prev_session: last.map(|(_, id)| id),
    };
    file.write_all_at(&record(place.node_seq, session), 0)
        .map_err(io)?;
    file.sync_data().map_err(io)?;
    Ok(place)
}

/// The newest number and session of the ledger at `path` (read under a shared lock);
/// `None` if there is no ledger or it is empty.
pub fn read(path: &Path) -> Result<Option<Newest>, LedgerError> {
    let io = |source| LedgerError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    Ok(lock_and_read(path, file, FlockArg::LockShared)?.1)
}

/// Locks the ledger `file` (at `path`) as `how` says and reads its newest entry; the lock
/// holds until the returned file is dropped.
fn lock_and_read(
    path: &Path,
    file: File,
    how: FlockArg,
) -> Result<(Flock<File>, Option<Newest>), LedgerError> {
    let io = |source| LedgerError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = Flock::lock(file, how).map_err(|(_, errno)| io(std::io::Error::from(errno)))?;
    let mut text = String::new();
    (&mut *file as &mut File)
        .take(RECORD_LEN as u64 * 2)
        .read_to_string(&mut text)
        .map_err(io)?;
    let last = parse(&text).map_err(|what| LedgerError::Damaged {
        path: path.to_path_buf(),
        what,
    })?;
    Ok((file, last))
}

/// The last number and session of a ledger's text; `None` for a new (empty) ledger.
fn parse(text: &str) -> Result<Option<Newest>, String> {
    let line = text.trim_end_matches(['\n', ' ', '\0']);
    if line.is_empty() {
        return Ok(None);
    }
    let mut parts = line.split_ascii_whitespace();
    if parts.next() != Some(MAGIC) {
        return Err(format!("it does not start with {MAGIC}"));
    }
    let n = parts
        .next()
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or("no session number")?;
    let id = parts
        .next()
        .and_then(|s| s.parse::<SessionId>().ok())
        .ok_or("no session id")?;
    if parts.next().is_some() {
        return Err("more than one record".into());
    }
    Ok(Some((n, id)))
}

fn record(node_seq: u64, session: SessionId) -> Vec<u8> {
    let mut r = format!("{MAGIC} {node_seq:020} {session}");
    r.extend(std::iter::repeat_n(' ', RECORD_LEN - 1 - r.len()));
    r.push('\n');
    r.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_numbered_in_order_each_naming_the_one_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for_key(&dir.path().join("node.key"));
        assert_eq!(path, dir.path().join("node.ledger"));
        let ids: Vec<SessionId> = (0..3).map(|_| SessionId::new_v7()).collect();
        let places: Vec<Place> = ids
            .iter()
            .map(|&id| take_next(&path, id).unwrap())
            .collect();
        assert_eq!(
            places,
            [
                Place {
                    node_seq: 1,
                    prev_session: None
                },
                Place {
                    node_seq: 2,
                    prev_session: Some(ids[0])
                },
                Place {
                    node_seq: 3,
                    prev_session: Some(ids[1])
                },
            ]
        );
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), RECORD_LEN as u64);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn concurrent_sessions_get_distinct_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.ledger");
        let mut numbers: Vec<u64> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        (0..25)
                            .map(|_| take_next(&path, SessionId::new_v7()).unwrap().node_seq)
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        numbers.sort_unstable();
        assert_eq!(numbers, (1..=200).collect::<Vec<_>>());
    }

    #[test]
    fn a_damaged_ledger_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.ledger");
        for bad in ["garbage", "auditty-ledger-v1 x y", "auditty-ledger-v1 3"] {
            std::fs::write(&path, bad).unwrap();
            let err = take_next(&path, SessionId::new_v7()).unwrap_err();
            assert!(matches!(err, LedgerError::Damaged { .. }), "{err}");
            assert!(err.to_string().contains("move it aside"), "{err}");
        }
    }
}
