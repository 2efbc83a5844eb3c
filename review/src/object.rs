//! Object names of `reviews/` and `access/` and the put/list/get around them.

use store::ObjectStore;

use crate::{Error, Problem};

/// Digits of the time in a name: i64::MAX has 19, u64::MAX 20, as in `store::layout`.
const TIME_DIGITS: usize = 20;
/// Hex digits of the BLAKE3 digest in a name (64 bits).
const DIGEST_HEX: usize = 16;

/// The first [`DIGEST_HEX`] hex digits of BLAKE3 of `bytes`.
fn digest(bytes: &[u8]) -> String {
    let hash = blake3::hash(bytes);
    hash.to_hex()[..DIGEST_HEX].to_string()
}

/// `<folder>/date=YYYY-MM-DD/<time ns, 20 digits>-<digest>.json`.
pub(crate) fn key_for(folder: &str, time_ns: i64, bytes: &[u8]) -> String {
    format!(
        "{folder}/date={}/{time_ns:0width$}-{}.json",
        schemas::time::date(time_ns),
        digest(bytes),
        width = TIME_DIGITS
    )
}

/// The time and digest a key made by [`key_for`] holds.
pub(crate) fn parse_key(key: &str) -> Option<(i64, &str)> {
    let name = key.rsplit('/').next()?.strip_suffix(".json")?;
    let (time, digest) = name.split_once('-')?;
    if time.len() != TIME_DIGITS
        || !time.bytes().all(|b| b.is_ascii_digit())
        || digest.len() != DIGEST_HEX
        || !digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    Some((time.parse().ok()?, digest))
}

/// Writes `bytes` (a record made at `time_ns`) under its name; returns the key.
pub(crate) fn put(
    store: &dyn ObjectStore,
    folder: &str,
    what: &'static str,
    time_ns: i64,
    bytes: &[u8],
) -> Result<String, Error> {
    if time_ns < 0 {
        return Err(Error::Invalid {
            what,
            reason: format!("its time ({time_ns} ns) is before 1970"),
        });
    }
    let key = key_for(folder, time_ns, bytes);
    store.put(&key, bytes).map_err(|source| Error::Put {
        key: key.clone(),
        store: store.describe(),
        source: Box::new(source),
    })?;
    Ok(key)
}

/// Every object of `folder` whose name passes `wanted` (given the name's time), read; the
/// keys that could not be read, or whose names are not ours, as problems.
pub(crate) fn read_all(
    store: &dyn ObjectStore,
    folder: &'static str,
    wanted: impl Fn(i64) -> bool,
) -> Result<(Vec<Stored>, Vec<Problem>), Error> {
    let keys = store
        .list(&format!("{folder}/"))
        .map_err(|source| Error::List {
            folder,
            store: store.describe(),
            source: Box::new(source),
        })?;
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for key in keys {
        let Some((time_ns, name_digest)) = parse_key(&key) else {
            problems.push(Problem {
                reason: format!(
                    "not a {folder} object (names are {folder}/date=YYYY-MM-DD/<20-digit time>-<16 hex>.json); left out"
                ),
                key,
            });
            continue;
        };
        if !wanted(time_ns) {
            continue;
        }
        let name_digest = name_digest.to_string();
        match store.get(&key) {
            Ok(bytes) => out.push(Stored {
                changed: digest(&bytes) != name_digest,
                time_ns,
                key,
                bytes,
            }),
            Err(e) => problems.push(Problem {
                reason: format!("cannot be read: {e}"),
                key,
            }),
        }
    }
    Ok((out, problems))
}

/// One object as read.
pub(crate) struct Stored {
    pub key: String,
    /// The time in its name.
    pub time_ns: i64,
    pub bytes: Vec<u8>,
    /// Its bytes do not have the digest in its name: changed after it was written.
    pub changed: bool,
}

impl Stored {
    /// The problem to report when the object does not match its name (`content_time_ns`:
    /// the time it says inside).
    pub fn mismatch(&self, content_time_ns: i64) -> Option<Problem> {
        let reason = if self.changed {
            "its content does not have the digest in its name: changed after it was written"
                .to_string()
        } else if content_time_ns != self.time_ns {
            format!(
                "it says time_ns {content_time_ns} but its name says {}: renamed or changed after it was written",
                self.time_ns
            )
        } else {
            return None;
        };
        Some(Problem {
            key: self.key.clone(),
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_time_and_parse_back() {
        let a = key_for("access", 1_795_823_188_000_000_001, b"x");
        let b = key_for("access", 1_795_823_188_000_000_010, b"y");
        assert!(a < b);
        assert!(
            a.starts_with("access/date=2026-11-27/01795823188000000001-"),
            "{a}"
        );
        store::validate_key(&a).unwrap();
        assert_eq!(parse_key(&a).unwrap().0, 1_795_823_188_000_000_001);
        assert_eq!(parse_key(&key_for("reviews", 0, b"")).unwrap().0, 0);
        for bad in [
            "access/x.json",
            "access/date=2026-11-28/1-0123456789abcdef.json",
            "access/date=2026-11-27/01795823188000000001-0123456789ABCDEF.json",
            "access/date=2026-11-27/01795823188000000001-0123456789abcdef.txt",
            "access/date=2026-11-28/99999999999999999999-0123456789abcdef.json",
        ] {
            assert_eq!(parse_key(bad), None, "{bad}");
        }
    }
}
