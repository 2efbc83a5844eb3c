//! Legal holds: `holds/<session id>.json`.
//!
//! A hold is not signed: a forged hold can only keep a session from being deleted, which
//! is the safe direction; and who placed or released it is in the access log as well.

use std::collections::BTreeMap;

use schemas::SessionId;
use serde::{Deserialize, Serialize};
use store::ObjectStore;

use crate::{Error, FORMAT_VERSION, Problem, hold_key, id_of_key};

/// One legal hold on one session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// Format version ([`FORMAT_VERSION`]).
    pub v: u32,
    /// The session (stored hyphenated).
    #[serde(with = "crate::json::id_text")]
    pub session_id: SessionId,
    /// Who placed it (the name given, else the login name).
    pub who: String,
    /// The OS user that ran the command.
    pub os_user: String,
    /// The host it was placed from.
    pub host: String,
    /// When, UTC nanoseconds.
    pub time_ns: i64,
    /// Why (a case number, a request).
    pub reason: String,
}

impl Hold {
    /// A hold on `session` placed now.
    pub fn new(session: SessionId, who: &str, os_user: &str, host: &str, reason: &str) -> Hold {
        Hold {
            v: FORMAT_VERSION,
            session_id: session,
            who: who.to_string(),
            os_user: os_user.to_string(),
            host: host.to_string(),
            time_ns: schemas::time::now_ns(),
            reason: reason.to_string(),
        }
    }
}

/// Writes `hold` to `holds/<id>.json`, replacing an earlier hold on the same session (the
/// newest reason and holder are the ones in force). Refuses an empty reason: a hold
/// nobody can explain later cannot be released with confidence.
pub fn place_hold(store: &dyn ObjectStore, hold: &Hold) -> Result<String, Error> {
    if hold.reason.trim().is_empty() {
        return Err(Error::Invalid(
            "a hold needs a reason (--reason TEXT: a case number, a request)".into(),
        ));
    }
    let key = hold_key(hold.session_id);
    let mut bytes = serde_json::to_vec(hold)
        .map_err(|e| Error::Invalid(format!("the hold does not encode as JSON: {e}")))?;
    bytes.push(b'\n');
    // A changed hold replaces the old one (put alone would refuse a different object on
    // S3, which guards the ingester's names).
    store
        .replace(&key, &bytes)
        .map_err(|e| Error::store("write", &key, store, e))?;
    Ok(key)
}

/// Removes the hold on `session`; returns the hold that was released, `None` if there was
/// none.
pub fn release_hold(store: &dyn ObjectStore, session: SessionId) -> Result<Option<Hold>, Error> {
    let key = hold_key(session);
    let existing = match store.get(&key) {
        Ok(bytes) => decode(&bytes).ok(),
        Err(store::StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(Error::store("read", &key, store, e)),
    };
    store
        .delete(&key)
        .map_err(|e| Error::store("delete", &key, store, e))?;
    Ok(existing.or_else(|| {
        // Unreadable, but it was there: report it as released all the same.
        Some(Hold::new(session, "(unreadable hold)", "", "", ""))
    }))
}

fn decode(bytes: &[u8]) -> Result<Hold, String> {
    crate::json::check_version(bytes)?;
    serde_json::from_slice(bytes).map_err(|e| format!("not a valid hold: {e}"))
}

/// Every hold in the store, by session. An object that cannot be read or decoded is a
/// [`Problem`]; its session still counts as held (by its key), because a hold that cannot
/// be read must not let retention delete the session.
pub fn read_holds(
    store: &dyn ObjectStore,
) -> Result<(BTreeMap<SessionId, Hold>, Vec<Problem>), Error> {
    let folder = format!("{}/", store::layout::HOLDS);
    let keys = store
        .list(&folder)
        .map_err(|e| Error::store("list", &folder, store, e))?;
    let mut holds = BTreeMap::new();
    let mut problems = Vec::new();
    for key in keys {
        let Some(id) = id_of_key(&key) else {
            problems.push(Problem {
                reason: "not a hold (names are holds/<session id>.json); left out".into(),
                key,
            });
            continue;
        };
        let decoded = store
            .get(&key)
            .map_err(|e| format!("cannot be read: {e}"))
            .and_then(|b| decode(&b))
            .and_then(|h| {
                if h.session_id == id {
                    Ok(h)
                } else {
                    Err(format!(
                        "it holds session {}, not the one its name says",
                        h.session_id
                    ))
                }
            });
        match decoded {
            Ok(h) => {
                holds.insert(id, h);
            }
            Err(reason) => {
                holds.insert(
                    id,
                    Hold::new(
                        id,
                        "(unreadable hold)",
                        "",
                        "",
                        &format!("unreadable: {reason}"),
                    ),
                );
                problems.push(Problem { key, reason });
            }
        }
    }
    Ok((holds, problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_are_placed_listed_and_released() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::LocalStore::new(dir.path()).unwrap();
        let id = SessionId::new_v7();
        let hold = Hold::new(id, "alice", "root", "h1", "case 42");
        assert_eq!(
            place_hold(&store, &hold).unwrap(),
            format!("holds/{id}.json")
        );
        let changed = Hold::new(id, "bob", "root", "h1", "case 43");
        place_hold(&store, &changed).unwrap();
        let (holds, problems) = read_holds(&store).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(holds[&id].reason, "case 43");
        assert!(place_hold(&store, &Hold::new(id, "a", "", "", " ")).is_err());
        assert_eq!(release_hold(&store, id).unwrap().unwrap().who, "bob");
        assert_eq!(release_hold(&store, id).unwrap(), None);
        assert!(read_holds(&store).unwrap().0.is_empty());
    }

    #[test]
    fn an_unreadable_hold_still_holds() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::LocalStore::new(dir.path()).unwrap();
        let id = SessionId::new_v7();
        store.put(&crate::hold_key(id), b"{garbage").unwrap();
        let (holds, problems) = read_holds(&store).unwrap();
        assert!(holds.contains_key(&id));
        assert_eq!(problems.len(), 1);
    }
}
