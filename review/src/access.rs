//! The access log: one object per `replay` run that showed recordings.

use serde::{Deserialize, Serialize};
use store::ObjectStore;

use crate::object;
use crate::{DecodeError, Error, FORMAT_VERSION, Problem};

/// One access to recordings: who ran which action on which sessions, when, from where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// The login name of whoever ran it ([`crate::login_user`]); for `replay serve`, the
    /// web caller (a user of its auth file, or `token:NAME`).
    pub user: String,
    /// What was done: `play`, `export`, `search`, `commands`, `report`, `review`, …
    pub action: String,
    /// The sessions shown (full ids), in the order shown; for `search`, the sessions of
    /// the hits; may be empty.
    pub sessions: Vec<String>,
    /// What else says what was seen: the query of a search, the format (and file) of an
    /// export, the filters of a report, the decision of a review; may be empty.
    pub detail: String,
    /// When, UTC nanoseconds since the epoch.
    pub time_ns: i64,
    /// The host it ran on.
    pub host: String,
    /// The object's key in the store (set by [`read_access`]; ignored by
    /// [`record_access`]).
    pub key: String,
}

/// The stored JSON (version 1). Unknown fields are ignored.
#[derive(Serialize, Deserialize)]
struct StoredAccess {
    v: u32,
    user: String,
    action: String,
    #[serde(default)]
    sessions: Vec<String>,
    #[serde(default)]
    detail: String,
    time_ns: i64,
    host: String,
    #[serde(default)]
    version: String,
}

/// Writes `access` to `access/` and returns its key. `access.key` is ignored. The action
/// must not be empty; the time must not be before 1970. The object also records the
/// auditty version that wrote it.
pub fn record_access(store: &dyn ObjectStore, access: &Access) -> Result<String, Error> {
    let invalid = |reason: String| Error::Invalid {
        what: "access event",
        reason,
    };
    if access.action.trim().is_empty() {
        return Err(invalid("its action is empty".into()));
    }
    let stored = StoredAccess {
        v: FORMAT_VERSION,
        user: access.user.clone(),
        action: access.action.clone(),
        sessions: access.sessions.clone(),
        detail: access.detail.clone(),
        time_ns: access.time_ns,
        host: access.host.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let mut bytes = serde_json::to_vec(&stored)
        .map_err(|e| invalid(format!("it does not encode as JSON: {e}")))?;
    bytes.push(b'\n');
    object::put(
        store,
        store::layout::ACCESS,
        "access event",
        access.time_ns,
        &bytes,
    )
}

/// Decodes one stored access event; `key` is kept in [`Access::key`]. Never panics,
/// whatever the bytes.
pub fn decode_access(key: &str, bytes: &[u8]) -> Result<Access, DecodeError> {
    crate::check_version(bytes)?;
    let s: StoredAccess =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(e.to_string()))?;
    if s.action.is_empty() {
        return Err(DecodeError::Field {
            field: "action",
            reason: "empty".into(),
        });
    }
    Ok(Access {
        user: s.user,
        action: s.action,
        sessions: s.sessions,
        detail: s.detail,
        time_ns: s.time_ns,
        host: s.host,
        key: key.to_string(),
    })
}

/// The access events of `since_ns..=until_ns` (either end open), oldest first. Only the
/// objects whose names fall in the period are read. Objects that cannot be read or
/// decoded, or that do not match their names, are problems (a mismatching event is still
/// returned). Only a store that cannot be listed is an error.
pub fn read_access(
    store: &dyn ObjectStore,
    since_ns: Option<i64>,
    until_ns: Option<i64>,
) -> Result<(Vec<Access>, Vec<Problem>), Error> {
    let within = |t: i64| since_ns.is_none_or(|s| t >= s) && until_ns.is_none_or(|u| t <= u);
    let (objects, mut problems) = object::read_all(store, store::layout::ACCESS, within)?;
    let mut events = Vec::new();
    for o in objects {
        match decode_access(&o.key, &o.bytes) {
            Ok(a) => {
                problems.extend(o.mismatch(a.time_ns));
                // The name put it in the period; what it says decides.
                if within(a.time_ns) {
                    events.push(a);
                }
            }
            Err(e) => problems.push(Problem {
                key: o.key.clone(),
                reason: format!("not a readable access event: {e}"),
            }),
        }
    }
    events.sort_by(|a, b| (a.time_ns, &a.key).cmp(&(b.time_ns, &b.key)));
    Ok((events, problems))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use store::LocalStore;

    const T0: i64 = 1_795_823_188_000_000_000;

    fn access(action: &str, time_ns: i64) -> Access {
        Access {
            user: "alice".into(),
            action: action.into(),
            sessions: vec!["0191c2e4-7b1d-7c3e-9a55-1f0e2d3c4b5a".into()],
            detail: "asciicast".into(),
            time_ns,
            host: "bastion-1".into(),
            key: String::new(),
        }
    }

    #[test]
    fn access_events_round_trip_and_filter_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        let day = 86_400 * 1_000_000_000;
        let keys: Vec<String> = [("play", T0), ("export", T0 + 1), ("search", T0 + day)]
            .iter()
            .map(|(a, t)| record_access(&store, &access(a, *t)).unwrap())
            .collect();
        // Two events at the same nanosecond with different contents do not collide.
        let twin = record_access(
            &store,
            &Access {
                detail: "text".into(),
                ..access("export", T0 + 1)
            },
        )
        .unwrap();
        assert_ne!(twin, keys[1]);
        assert!(
            keys[2].starts_with("access/date=2026-11-28/"),
            "{}",
            keys[2]
        );

        let (all, problems) = read_access(&store, None, None).unwrap();
        assert_eq!(problems, vec![]);
        assert_eq!(all.len(), 4);
        assert_eq!(
            all[0],
            Access {
                key: keys[0].clone(),
                ..access("play", T0)
            }
        );
        let actions = |v: &[Access]| v.iter().map(|a| a.action.clone()).collect::<Vec<_>>();
        let (first_day, _) = read_access(&store, Some(T0), Some(T0 + 1)).unwrap();
        assert_eq!(actions(&first_day), ["play", "export", "export"]);
        let (later, _) = read_access(&store, Some(T0 + 2), None).unwrap();
        assert_eq!(actions(&later), ["search"]);
        let stored: serde_json::Value =
            serde_json::from_slice(&store.get(&keys[0]).unwrap()).unwrap();
        assert_eq!(stored["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(stored["v"], 1);
    }

    #[test]
    fn changed_and_unreadable_access_events_are_problems() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        let key = record_access(&store, &access("export", T0)).unwrap();
        let text = String::from_utf8(store.get(&key).unwrap()).unwrap();
        store
            .put(&key, text.replace("alice", "bob").as_bytes())
            .unwrap();
        let junk = b"\xff\xfe";
        store
            .put(&object::key_for("access", T0, junk), junk)
            .unwrap();
        let (events, problems) = read_access(&store, None, None).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].user, "bob");
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(
            problems
                .iter()
                .any(|p| p.key == key && p.reason.contains("changed"))
        );
        let e = record_access(&store, &access(" ", T0)).unwrap_err();
        assert!(matches!(e, Error::Invalid { .. }), "{e}");
    }

    proptest! {
        #[test]
        fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode_access("k", &bytes);
        }

        #[test]
        fn decoding_any_json_text_never_panics(text in r#"\{("[a-z_]{1,10}":("[a-z]{0,5}"|-?[0-9]{1,25}|null|\[\]|\{\}),?){0,8}\}"#) {
            let _ = decode_access("k", text.as_bytes());
            let _ = crate::decode_review("k", text.as_bytes(), &integrity::TrustSet::default());
        }
    }
}
