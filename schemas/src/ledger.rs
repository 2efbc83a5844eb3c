//! Ledger heads (DESIGN.md §6): what a node's shipper says, now and then, about the
//! newest session its node numbered.
//!
//! A session deleted from the store is named by the `start` of the session after it
//! (`node_seq`, `prev_session`); the newest session has no successor, so the shipper
//! sends a signed head naming it, once that session's chunks are all shipped. A head
//! travels on the events topic like a chunk, as [`MAGIC`] followed by one JSON object; the
//! ingester keeps its JSON in the store's `ledger/` objects, one line per head, and
//! `replay verify --all` checks its signature (`integrity::ledger`).

use serde::{Deserialize, Serialize};

/// First bytes of a ledger head record; no chunk starts with them (chunks start `ATYC`).
pub const MAGIC: &[u8] = b"ATYL";

/// Layout version written by this build.
pub const HEAD_VERSION: u32 = 1;

/// A signed statement by a node: "my newest session is `session`, number `node_seq`".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerHead {
    /// Layout version ([`HEAD_VERSION`]).
    pub v: u32,
    /// The node's key, `ed25519:BASE64`: the node is whoever holds it.
    pub key: String,
    /// The newest session's number in the node's ledger.
    pub node_seq: u64,
    /// The newest session's id, hyphenated.
    pub session: String,
    /// When the head was made, UTC ns.
    pub time_ns: i64,
    /// Signature over the fields above (`integrity::ledger`), base64.
    pub sig: String,
}

/// Why bytes are not a ledger head.
#[derive(Debug, thiserror::Error)]
pub enum LedgerHeadError {
    /// The record does not start with [`MAGIC`].
    #[error("not a ledger head (no ATYL magic)")]
    NotAHead,
    /// The JSON after the magic is not a head.
    #[error("ledger head does not parse: {0}")]
    Json(#[from] serde_json::Error),
    /// A version this build does not read.
    #[error("ledger head of version {0}, this build reads {HEAD_VERSION}")]
    Version(u32),
}

impl LedgerHead {
    /// Whether a record is a ledger head rather than a chunk.
    pub fn is_head(record: &[u8]) -> bool {
        record.starts_with(MAGIC)
    }

    /// The record: [`MAGIC`] and the JSON.
    pub fn to_record(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&self.to_json());
        out
    }

    /// The JSON alone, as the store keeps it.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A record as the shipper sent it. Never panics.
    pub fn from_record(record: &[u8]) -> Result<LedgerHead, LedgerHeadError> {
        let json = record
            .strip_prefix(MAGIC)
            .ok_or(LedgerHeadError::NotAHead)?;
        Self::from_json(json)
    }

    /// A head as the store keeps it. Never panics.
    pub fn from_json(json: &[u8]) -> Result<LedgerHead, LedgerHeadError> {
        let head: LedgerHead = serde_json::from_slice(json)?;
        if head.v != HEAD_VERSION {
            return Err(LedgerHeadError::Version(head.v));
        }
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> LedgerHead {
        LedgerHead {
            v: HEAD_VERSION,
            key: "ed25519:AAAA".into(),
            node_seq: 42,
            session: "01a22ae3-ef66-7eba-92b0-660dc6b124c1".into(),
            time_ns: 1_795_823_188_000_000_000,
            sig: "c2ln".into(),
        }
    }

    #[test]
    fn a_head_round_trips_and_is_told_from_a_chunk() {
        let h = head();
        let record = h.to_record();
        assert!(LedgerHead::is_head(&record));
        assert!(!LedgerHead::is_head(b"ATYC\x01..."));
        assert_eq!(LedgerHead::from_record(&record).unwrap(), h);
        assert_eq!(LedgerHead::from_json(&h.to_json()).unwrap(), h);
    }

    #[test]
    fn bad_records_are_errors() {
        assert!(matches!(
            LedgerHead::from_record(b"ATYC"),
            Err(LedgerHeadError::NotAHead)
        ));
        assert!(matches!(
            LedgerHead::from_record(b"ATYL{not json"),
            Err(LedgerHeadError::Json(_))
        ));
        let mut h = head();
        h.v = 9;
        assert!(matches!(
            LedgerHead::from_record(&h.to_record()),
            Err(LedgerHeadError::Version(9))
        ));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes: Vec<u8>) {
            let mut record = MAGIC.to_vec();
            record.extend_from_slice(&bytes);
            let _ = LedgerHead::from_record(&record);
            let _ = LedgerHead::from_json(&bytes);
        }
    }
}
