//! Signed checkpoints: the data of a `checkpoint` event (`FORMAT.md`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, Verifier, VerifyingKey};
use schemas::SessionId;
use serde::{Deserialize, Serialize};

use crate::chain::{Hash, TAG_LEN, hex, unhex};
use crate::keys::{NodeKey, PublicKey};

/// Version of the checkpoint layout written by this build.
pub const CHECKPOINT_VERSION: u32 = 1;

/// A checkpoint as carried in a `checkpoint` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Layout version.
    pub v: u32,
    /// First seq covered by `tags` (the seq after the previous checkpoint's own event).
    pub from: u64,
    /// Covers every unit with seq below this; the checkpoint event's own seq.
    pub through: u64,
    /// The chain hash after the last unit below `through`, hex.
    pub chain: String,
    /// The signing key, `ed25519:BASE64`.
    pub key: String,
    /// Ed25519 signature over [`Checkpoint::message`], base64.
    pub sig: String,
    /// The first [`TAG_LEN`] bytes of each unit hash in `from..through`, concatenated,
    /// base64.
    pub tags: String,
}

/// Why a checkpoint does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The event data is not a checkpoint this build reads.
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    /// The signature does not match the key and contents.
    #[error("bad signature")]
    BadSignature,
}

/// The bytes an ed25519 signature covers.
fn message(session: SessionId, from: u64, through: u64, chain: &Hash, tags: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(22 + 16 + 16 + 32 + 32);
    m.extend_from_slice(b"auditty-checkpoint-v1\0");
    m.extend_from_slice(session.as_bytes());
    m.extend_from_slice(&from.to_le_bytes());
    m.extend_from_slice(&through.to_le_bytes());
    m.extend_from_slice(chain);
    m.extend_from_slice(blake3::hash(tags).as_bytes());
    m
}

/// A checkpoint whose fields parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedCheckpoint {
    /// First seq covered by the tags.
    pub from: u64,
    /// Covers seqs below this.
    pub through: u64,
    /// Claimed chain hash.
    pub chain: Hash,
    /// Claimed signer.
    pub key: PublicKey,
    signature: Signature,
    /// Unit tags, in order.
    pub tags: Vec<[u8; TAG_LEN]>,
    tag_bytes: Vec<u8>,
}

impl Checkpoint {
    /// Signs a checkpoint over `from..through` whose chain hash is `chain`.
    pub fn sign(
        key: &NodeKey,
        session: SessionId,
        from: u64,
        through: u64,
        chain: &Hash,
        tags: &[u8],
    ) -> Checkpoint {
        let sig = key
            .signing_key()
            .sign(&message(session, from, through, chain, tags));
        Checkpoint {
            v: CHECKPOINT_VERSION,
            from,
            through,
            chain: hex(chain),
            key: key.public().to_string(),
            sig: B64.encode(sig.to_bytes()),
            tags: B64.encode(tags),
        }
    }

    /// The checkpoint as the data of a `checkpoint` event.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses the data of a `checkpoint` event; never panics.
    pub fn parse(data: &[u8]) -> Result<ParsedCheckpoint, CheckpointError> {
        let bad = |s: &str| CheckpointError::Malformed(s.to_string());
        let c: Checkpoint =
            serde_json::from_slice(data).map_err(|e| CheckpointError::Malformed(e.to_string()))?;
        if c.v != CHECKPOINT_VERSION {
            return Err(bad(&format!("unknown checkpoint version {}", c.v)));
        }
        let chain = unhex::<32>(&c.chain).ok_or_else(|| bad("chain is not 32 bytes of hex"))?;
        let key: PublicKey = c
            .key
            .parse()
            .map_err(|e: crate::keys::KeyError| bad(&e.to_string()))?;
        let sig_bytes: [u8; 64] = B64
            .decode(&c.sig)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("signature is not 64 bytes of base64"))?;
        let tag_bytes = B64
            .decode(&c.tags)
            .map_err(|_| bad("tags are not base64"))?;
        if tag_bytes.len() % TAG_LEN != 0 {
            return Err(bad("tags are not a whole number of 2-byte tags"));
        }
        let tags = tag_bytes
            .chunks_exact(TAG_LEN)
            .map(|c| {
                let mut t = [0u8; TAG_LEN];
                t.copy_from_slice(c);
                t
            })
            .collect();
        Ok(ParsedCheckpoint {
            from: c.from,
            through: c.through,
            chain,
            key,
            signature: Signature::from_bytes(&sig_bytes),
            tags,
            tag_bytes,
        })
    }
}

impl ParsedCheckpoint {
    /// Checks the signature against the key the checkpoint names. Whether that key is
    /// trusted is the caller's question.
    pub fn check_signature(&self, session: SessionId) -> Result<(), CheckpointError> {
        let vk = VerifyingKey::from_bytes(self.key.as_bytes())
            .map_err(|_| CheckpointError::BadSignature)?;
        let m = message(
            session,
            self.from,
            self.through,
            &self.chain,
            &self.tag_bytes,
        );
        vk.verify(&m, &self.signature)
            .map_err(|_| CheckpointError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn signed_checkpoints_verify_and_altered_ones_do_not() {
        let key = NodeKey::from_seed([5; 32]);
        let sid = SessionId::from_bytes([1; 16]);
        let cp = Checkpoint::sign(&key, sid, 0, 3, &[9; 32], &[1; 3 * TAG_LEN]);
        let parsed = Checkpoint::parse(&cp.to_bytes()).unwrap();
        assert_eq!(parsed.tags.len(), 3);
        parsed.check_signature(sid).unwrap();
        assert_eq!(
            parsed.check_signature(SessionId::from_bytes([2; 16])),
            Err(CheckpointError::BadSignature)
        );
        let mut other = cp.clone();
        other.through = 4;
        let p = Checkpoint::parse(&other.to_bytes()).unwrap();
        assert_eq!(p.check_signature(sid), Err(CheckpointError::BadSignature));
        let mut other = cp.clone();
        other.tags = B64.encode([2u8; 3 * TAG_LEN]);
        let p = Checkpoint::parse(&other.to_bytes()).unwrap();
        assert_eq!(p.check_signature(sid), Err(CheckpointError::BadSignature));
    }

    proptest! {
        #[test]
        fn parsing_any_bytes_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Checkpoint::parse(&data);
        }

        #[test]
        fn parsing_mutated_checkpoints_never_panics(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
            let key = NodeKey::from_seed([5; 32]);
            let mut data = Checkpoint::sign(&key, SessionId::from_bytes([1; 16]), 0, 2, &[9; 32], &[1; 16]).to_bytes();
            for (i, b) in flips {
                let n = data.len();
                data[i % n] = b;
            }
            if let Ok(p) = Checkpoint::parse(&data) {
                let _ = p.check_signature(SessionId::from_bytes([1; 16]));
            }
        }
    }
}
