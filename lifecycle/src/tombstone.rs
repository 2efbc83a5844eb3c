//! Tombstones: `tombstones/<session id>.json`, the signed record of a purged session.
//!
//! The signature covers [`TOMBSTONE_DOMAIN`] followed by the JSON of every field but `sig`
//! (the operator's public key included), as this crate writes it: fields in declaration
//! order, no spaces. A reader parses the object and writes that JSON again from the
//! parsed values, so the bytes signed are canonical whatever whitespace or field order
//! the stored object has; a changed field changes them.
//!
//! Operator keys have the node-key format (`replay review-key` or `replay purge --key`
//! makes one) and are trusted through their own trust file (`trusted-operators`), never
//! the node trust file: an operator's key must not vouch for recordings, nor a node's
//! key for the erasure of one.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use integrity::ledger::LedgerEntry;
use integrity::{NodeKey, PublicKey, TrustSet};
use schemas::SessionId;
use serde::{Deserialize, Serialize};
use store::ObjectStore;

use crate::{Error, FORMAT_VERSION, Problem, id_of_key, tombstone_key};

/// Domain string at the start of every signed tombstone message, so that no signature
/// made for another purpose (checkpoints, ledger heads, reviews) is valid for a tombstone.
pub const TOMBSTONE_DOMAIN: &[u8] = b"auditty-tombstone-v1\0";

/// A purged session's place in its node's ledger, read from its `start` row while that row
/// was still there and verified under a trusted node key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerPlace {
    /// The node key that signed the session's `start`, `ed25519:BASE64`.
    pub node_key: String,
    /// The node's name in the purger's node trust file (for messages; the verifier names
    /// the node from its own trust file).
    pub node: String,
    /// Its number in the node's ledger.
    pub node_seq: u64,
    /// The session numbered `node_seq - 1`, as its `start` names it.
    #[serde(with = "crate::json::opt_id_text")]
    pub prev_session: Option<SessionId>,
}

/// What a tombstone says (every field is signed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// Format version ([`FORMAT_VERSION`]).
    pub v: u32,
    /// The purged session.
    #[serde(with = "crate::json::id_text")]
    pub session_id: SessionId,
    /// Its place in its node's ledger; `None` when its `start` was not numbered or not
    /// verified under a trusted node key (imported, unsigned, already damaged).
    pub ledger: Option<LedgerPlace>,
    /// Wall-clock start, UTC ns (its `start` row, else its id).
    pub start_time_ns: i64,
    /// Wall-clock time of its last row, UTC ns.
    pub end_time_ns: i64,
    /// Who purged it: the operator's name (given, else the login name).
    pub purged_by: String,
    /// The OS user that ran the purge.
    pub os_user: String,
    /// The host it ran on.
    pub host: String,
    /// When the purge was requested, UTC ns.
    pub time_ns: i64,
    /// Why ("retention: older than 365 days", a court order, a GDPR request number).
    pub reason: String,
    /// The objects that held its rows when the purge began.
    pub objects: Vec<String>,
    /// The operator key that signs this, `ed25519:BASE64`.
    pub key: String,
}

/// The stored form: the signed fields and the signature.
#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    body: Tombstone,
    sig: String,
}

impl Tombstone {
    /// The bytes the signature covers.
    pub fn message(&self) -> Result<Vec<u8>, Error> {
        let mut m = TOMBSTONE_DOMAIN.to_vec();
        serde_json::to_writer(&mut m, self)
            .map_err(|e| Error::Invalid(format!("the tombstone does not encode as JSON: {e}")))?;
        Ok(m)
    }

    /// Signs the tombstone with `signer` (setting [`Tombstone::key`]) and returns the
    /// object's bytes.
    pub fn sign(mut self, signer: &NodeKey) -> Result<Vec<u8>, Error> {
        self.key = signer.public().to_string();
        let sig = B64.encode(signer.sign(&self.message()?));
        let mut bytes = serde_json::to_vec(&Stored { body: self, sig })
            .map_err(|e| Error::Invalid(format!("the tombstone does not encode as JSON: {e}")))?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// The entry this tombstone stands for in its node's ledger, with the node named as
    /// the verifier's node trust file names it; `None` unless it carries a ledger place
    /// whose node key `node_trust` holds (the same condition as a session's own `start`).
    pub fn ledger_entry(&self, node_trust: &TrustSet) -> Option<LedgerEntry> {
        let place = self.ledger.as_ref().filter(|p| p.node_seq > 0)?;
        let key: PublicKey = place.node_key.parse().ok()?;
        let name = node_trust.get(&key)?;
        Some(LedgerEntry {
            session: self.session_id,
            node: if name.is_empty() {
                key.to_string()
            } else {
                name.to_string()
            },
            node_seq: place.node_seq,
            prev_session: place.prev_session,
        })
    }
}

/// What a tombstone's signature proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TombstoneState {
    /// Signed by a key in the operators' trust file, named there `operator` (its comment,
    /// else the key).
    Trusted {
        /// The trust file's name for the key.
        operator: String,
    },
    /// Signed by a key the operators' trust file does not hold: proves nothing; the
    /// session counts as missing.
    Untrusted {
        /// The key.
        key: String,
    },
    /// The signature does not match (changed after signing, or malformed).
    Bad,
}

impl TombstoneState {
    /// Whether the tombstone may turn a missing session into a purged one.
    pub fn is_trusted(&self) -> bool {
        matches!(self, TombstoneState::Trusted { .. })
    }

    /// A short phrase for messages.
    pub fn describe(&self) -> String {
        match self {
            TombstoneState::Trusted { operator } => format!("signed by operator {operator}"),
            TombstoneState::Untrusted { key } => {
                format!("signed by {key}, which is not in the operators' trust file")
            }
            TombstoneState::Bad => "its signature does not match (changed or forged)".into(),
        }
    }
}

/// A tombstone as read, with its key and what its signature proves.
#[derive(Clone, Debug)]
pub struct CheckedTombstone {
    /// What it says.
    pub tombstone: Tombstone,
    /// What its signature proves under the operators' trust file.
    pub state: TombstoneState,
    /// The object's key.
    pub key: String,
}

/// Decodes a stored tombstone and checks its signature against `operators`. `key` is the
/// object's key; a tombstone for another session than its name says is refused. Never
/// panics, whatever the bytes.
pub fn check_tombstone(
    key: &str,
    bytes: &[u8],
    operators: &TrustSet,
) -> Result<CheckedTombstone, String> {
    crate::json::check_version(bytes)?;
    let stored: Stored =
        serde_json::from_slice(bytes).map_err(|e| format!("not a valid tombstone: {e}"))?;
    if id_of_key(key).is_some_and(|id| id != stored.body.session_id) {
        return Err(format!(
            "it is the tombstone of session {}, not of the one its name says",
            stored.body.session_id
        ));
    }
    let state = match (
        stored.body.key.parse::<PublicKey>(),
        B64.decode(&stored.sig),
        stored.body.message(),
    ) {
        (Ok(public), Ok(sig), Ok(message)) if public.verifies(&message, &sig) => {
            match operators.get(&public) {
                Some(name) if !name.is_empty() => TombstoneState::Trusted {
                    operator: name.to_string(),
                },
                Some(_) => TombstoneState::Trusted {
                    operator: public.to_string(),
                },
                None => TombstoneState::Untrusted {
                    key: public.to_string(),
                },
            }
        }
        _ => TombstoneState::Bad,
    };
    Ok(CheckedTombstone {
        tombstone: stored.body,
        state,
        key: key.to_string(),
    })
}

/// The tombstone of `session`, if there is one.
pub fn read_tombstone(
    store: &dyn ObjectStore,
    session: SessionId,
    operators: &TrustSet,
) -> Result<Option<Result<CheckedTombstone, Problem>>, Error> {
    let key = tombstone_key(session);
    match store.get(&key) {
        Ok(bytes) => Ok(Some(
            check_tombstone(&key, &bytes, operators).map_err(|reason| Problem { key, reason }),
        )),
        Err(store::StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(Error::store("read", &key, store, e)),
    }
}

/// Every tombstone in the store, each checked against `operators`; objects that cannot be
/// read or decoded are [`Problem`]s. Only a store that cannot be listed is an error.
pub fn read_tombstones(
    store: &dyn ObjectStore,
    operators: &TrustSet,
) -> Result<(Vec<CheckedTombstone>, Vec<Problem>), Error> {
    let folder = format!("{}/", store::layout::TOMBSTONES);
    let keys = store
        .list(&folder)
        .map_err(|e| Error::store("list", &folder, store, e))?;
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for key in keys {
        let checked = store
            .get(&key)
            .map_err(|e| format!("cannot be read: {e}"))
            .and_then(|bytes| check_tombstone(&key, &bytes, operators));
        match checked {
            Ok(t) => out.push(t),
            Err(reason) => problems.push(Problem { key, reason }),
        }
    }
    Ok((out, problems))
}

/// The tombstone of a session about to be purged, unsigned (`key` empty).
pub(crate) fn unsigned(
    session: SessionId,
    ledger: Option<LedgerPlace>,
    (start_time_ns, end_time_ns): (i64, i64),
    operator: &crate::Operator<'_>,
    reason: &str,
    objects: Vec<String>,
) -> Tombstone {
    Tombstone {
        v: FORMAT_VERSION,
        session_id: session,
        ledger,
        start_time_ns,
        end_time_ns,
        purged_by: operator.name.clone(),
        os_user: operator.os_user.clone(),
        host: operator.host.clone(),
        time_ns: schemas::time::now_ns(),
        reason: reason.to_string(),
        objects,
        key: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: SessionId) -> Tombstone {
        Tombstone {
            v: FORMAT_VERSION,
            session_id: id,
            ledger: Some(LedgerPlace {
                node_key: NodeKey::from_seed([1; 32]).public().to_string(),
                node: "web-1".into(),
                node_seq: 7,
                prev_session: Some(SessionId::new_v7()),
            }),
            start_time_ns: 1,
            end_time_ns: 2,
            purged_by: "alice".into(),
            os_user: "root".into(),
            host: "h".into(),
            time_ns: 3,
            reason: "GDPR request 12".into(),
            objects: vec!["events/date=2026-11-30/x.parquet".into()],
            key: String::new(),
        }
    }

    #[test]
    fn a_signed_tombstone_checks_only_under_a_trusted_key_and_unchanged() {
        let id = SessionId::new_v7();
        let op = NodeKey::from_seed([9; 32]);
        let bytes = sample(id).sign(&op).unwrap();
        let key = tombstone_key(id);
        let mut trust = TrustSet::default();
        let t = check_tombstone(&key, &bytes, &trust).unwrap();
        assert!(matches!(t.state, TombstoneState::Untrusted { .. }));
        trust.insert(op.public(), "dpo");
        let t = check_tombstone(&key, &bytes, &trust).unwrap();
        assert_eq!(
            t.state,
            TombstoneState::Trusted {
                operator: "dpo".into()
            }
        );
        assert_eq!(t.tombstone.reason, "GDPR request 12");

        // Reordered and re-spaced: still the same signed content.
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let pretty = serde_json::to_vec_pretty(&value).unwrap();
        assert!(
            check_tombstone(&key, &pretty, &trust)
                .unwrap()
                .state
                .is_trusted()
        );

        // A changed reason no longer checks.
        let text = String::from_utf8(bytes.clone()).unwrap();
        let changed = text.replace("GDPR request 12", "GDPR request 13");
        let t = check_tombstone(&key, changed.as_bytes(), &trust).unwrap();
        assert_eq!(t.state, TombstoneState::Bad);

        // Another session's name: refused.
        assert!(check_tombstone(&tombstone_key(SessionId::new_v7()), &bytes, &trust).is_err());
    }

    #[test]
    fn the_ledger_entry_needs_a_trusted_node_key() {
        let t = sample(SessionId::new_v7());
        assert_eq!(t.ledger_entry(&TrustSet::default()), None);
        let mut nodes = TrustSet::default();
        nodes.insert(NodeKey::from_seed([1; 32]).public(), "web-one");
        let e = t.ledger_entry(&nodes).unwrap();
        assert_eq!((e.node.as_str(), e.node_seq), ("web-one", 7));
    }

    proptest::proptest! {
        #[test]
        fn checking_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = check_tombstone("tombstones/x.json", &bytes, &TrustSet::default());
        }
    }
}
