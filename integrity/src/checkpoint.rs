//! Signed checkpoints: the data of a `checkpoint` event (`FORMAT.md`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, Verifier, VerifyingKey};
use schemas::SessionId;
use serde::{Deserialize, Serialize};

use crate::chain::{Hash, TAG_LEN, group_tags, hex, tag, unhex};
use crate::keys::{NodeKey, PublicKey};

/// Version of the checkpoint layout written by this build. Version 1 (one tag per unit,
/// no `g`) is still read and verified.
pub const CHECKPOINT_VERSION: u32 = 2;

/// The largest `g` (units per tag) a checkpoint may declare; more is malformed.
pub const MAX_GROUP: u32 = 64;

/// The group sizes the agent chooses from, smallest first (see [`choose_group`]).
pub const GROUP_SIZES: [u32; 7] = [1, 2, 4, 8, 16, 32, 64];

/// Tags may take one byte per this many bytes of the interval's data (about 3%).
pub const TAG_BUDGET_DIVISOR: u64 = 32;

/// Units per tag for an interval of `units` units holding `interval_bytes` bytes of data:
/// the smallest of [`GROUP_SIZES`] whose tags fit in `interval_bytes / TAG_BUDGET_DIVISOR`
/// bytes, else the largest.
///
/// Tags only localize damage; detection rests on the signed chain hash, whatever `g`. So
/// the rule bounds what tags cost next to what they cover, whatever the length of the
/// interval: rows of bulk output hold kilobytes each and are named exactly, while an
/// interactive session's single keystrokes and their echoes are named in groups of up to
/// 64 events (about a command line), where a tag per event cost more than the events
/// themselves (a third of the stored session).
pub fn choose_group(units: usize, interval_bytes: u64) -> u32 {
    let budget = interval_bytes / TAG_BUDGET_DIVISOR;
    let units = u64::try_from(units).unwrap_or(u64::MAX);
    let fits = |g: u32| units.div_ceil(u64::from(g)).saturating_mul(TAG_LEN as u64) <= budget;
    GROUP_SIZES
        .into_iter()
        .find(|&g| fits(g))
        .unwrap_or(GROUP_SIZES[GROUP_SIZES.len() - 1])
}

/// A checkpoint as carried in a `checkpoint` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Layout version: 2 (written), or 1 (read).
    pub v: u32,
    /// First seq covered by `tags` (the seq after the previous checkpoint's own event).
    pub from: u64,
    /// Covers every unit with seq below this; the checkpoint event's own seq.
    pub through: u64,
    /// Units per tag, 1..=[`MAX_GROUP`]; version 2 only (version 1: one unit per tag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub g: Option<u64>,
    /// The chain hash after the last unit below `through`, hex.
    pub chain: String,
    /// The signing key, `ed25519:BASE64`.
    pub key: String,
    /// Ed25519 signature over the checkpoint's message (`FORMAT.md`), base64.
    pub sig: String,
    /// One [`TAG_LEN`]-byte tag per group of `g` consecutive units in `from..through`
    /// ([`crate::chain::group_tag`]; version 1: the first bytes of each unit hash),
    /// concatenated, base64.
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

/// The bytes a signature covers: version 1 (`g` = `None`), or version 2, which adds `g`
/// after `through`.
fn message(
    session: SessionId,
    from: u64,
    through: u64,
    g: Option<u32>,
    chain: &Hash,
    tags: &[u8],
) -> Vec<u8> {
    let mut m = Vec::with_capacity(22 + 16 + 16 + 8 + 32 + 32);
    m.extend_from_slice(match g {
        None => b"auditty-checkpoint-v1\0",
        Some(_) => b"auditty-checkpoint-v2\0",
    });
    m.extend_from_slice(session.as_bytes());
    m.extend_from_slice(&from.to_le_bytes());
    m.extend_from_slice(&through.to_le_bytes());
    if let Some(g) = g {
        m.extend_from_slice(&u64::from(g).to_le_bytes());
    }
    m.extend_from_slice(chain);
    m.extend_from_slice(blake3::hash(tags).as_bytes());
    m
}

/// A checkpoint whose fields parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedCheckpoint {
    /// Layout version, 1 or 2.
    pub v: u32,
    /// First seq covered by the tags.
    pub from: u64,
    /// Covers seqs below this.
    pub through: u64,
    /// Units per tag, 1..=[`MAX_GROUP`] (1 for version 1).
    pub g: u32,
    /// Claimed chain hash.
    pub chain: Hash,
    /// Claimed signer.
    pub key: PublicKey,
    signature: Signature,
    /// Tags, one per group of `g` units, in order.
    pub tags: Vec<[u8; TAG_LEN]>,
    tag_bytes: Vec<u8>,
}

impl Checkpoint {
    /// Signs a (version 2) checkpoint over `from..through` whose chain hash is `chain`,
    /// with `tags` ([`TAG_LEN`] bytes per group of `g` units, concatenated).
    pub fn sign(
        key: &NodeKey,
        session: SessionId,
        from: u64,
        through: u64,
        g: u32,
        chain: &Hash,
        tags: &[u8],
    ) -> Checkpoint {
        let sig = key
            .signing_key()
            .sign(&message(session, from, through, Some(g), chain, tags));
        Checkpoint {
            v: CHECKPOINT_VERSION,
            from,
            through,
            g: Some(u64::from(g)),
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

    /// Parses the data of a `checkpoint` event (version 1 or 2); never panics.
    pub fn parse(data: &[u8]) -> Result<ParsedCheckpoint, CheckpointError> {
        let bad = |s: &str| CheckpointError::Malformed(s.to_string());
        let c: Checkpoint =
            serde_json::from_slice(data).map_err(|e| CheckpointError::Malformed(e.to_string()))?;
        let g = match (c.v, c.g) {
            // Version 1 has no `g` (nor does its signature cover one): one unit per tag.
            (1, _) => 1,
            (2, None) => return Err(bad("version 2 checkpoint without g")),
            (2, Some(g)) => u32::try_from(g)
                .ok()
                .filter(|g| (1..=MAX_GROUP).contains(g))
                .ok_or_else(|| bad(&format!("g is {g}, not 1 to {MAX_GROUP}")))?,
            (v, _) => return Err(bad(&format!("unknown checkpoint version {v}"))),
        };
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
            v: c.v,
            from: c.from,
            through: c.through,
            g,
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
            (self.v != 1).then_some(self.g),
            &self.chain,
            &self.tag_bytes,
        );
        vk.verify(&m, &self.signature)
            .map_err(|_| CheckpointError::BadSignature)
    }

    /// The tags this checkpoint should hold for `units` (the unit hashes of
    /// `from..through`, in order), to hold against [`ParsedCheckpoint::tags`]: one per
    /// group of [`ParsedCheckpoint::g`] units.
    pub fn expected_tags(&self, units: &[Hash]) -> Vec<[u8; TAG_LEN]> {
        if self.v == 1 {
            units.iter().map(tag).collect()
        } else {
            group_tags(units, self.g)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::chain::group_tag;
    use proptest::prelude::*;

    /// A version 1 checkpoint as the previous build wrote it (key seed `[5; 32]`, session
    /// `[1; 16]`, `from` 4, `through` 9, chain `[9; 32]`, tags `1..=10`).
    const V1_GOLDEN: &str = r#"{"v":1,"from":4,"through":9,"chain":"0909090909090909090909090909090909090909090909090909090909090909","key":"ed25519:bnoc3Smwt4/ROvTFWY/v9O8qlxZuPKby5Pv8zYBQW/E=","sig":"KmCQxHb96z476RqelLp0amqt5quidMRhEpHTry7u7IBf/6TXSD781nasHI/yyq7hUkzFEHkN20KgTEz1nkxyAA==","tags":"AQIDBAUGBwgJCg=="}"#;

    /// Signs a version 1 checkpoint by hand, with the version 1 message spelt out.
    pub(crate) fn sign_v1(
        key: &NodeKey,
        session: SessionId,
        from: u64,
        through: u64,
        chain: &Hash,
        tags: &[u8],
    ) -> Checkpoint {
        let mut m = b"auditty-checkpoint-v1\0".to_vec();
        m.extend_from_slice(session.as_bytes());
        m.extend_from_slice(&from.to_le_bytes());
        m.extend_from_slice(&through.to_le_bytes());
        m.extend_from_slice(chain);
        m.extend_from_slice(blake3::hash(tags).as_bytes());
        Checkpoint {
            v: 1,
            from,
            through,
            g: None,
            chain: hex(chain),
            key: key.public().to_string(),
            sig: B64.encode(key.signing_key().sign(&m).to_bytes()),
            tags: B64.encode(tags),
        }
    }

    #[test]
    fn signed_checkpoints_verify_and_altered_ones_do_not() {
        let key = NodeKey::from_seed([5; 32]);
        let sid = SessionId::from_bytes([1; 16]);
        let cp = Checkpoint::sign(&key, sid, 0, 3, 1, &[9; 32], &[1; 3 * TAG_LEN]);
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

    #[test]
    fn a_v2_checkpoint_round_trips_and_its_signature_covers_g() {
        let key = NodeKey::from_seed([5; 32]);
        let sid = SessionId::from_bytes([1; 16]);
        let cp = Checkpoint::sign(&key, sid, 17, 80, 16, &[9; 32], &[1, 2, 3, 4, 5, 6, 7, 8]);
        let json: serde_json::Value = serde_json::from_slice(&cp.to_bytes()).unwrap();
        assert_eq!(json["v"], 2);
        assert_eq!(json["g"], 16);
        let p = Checkpoint::parse(&cp.to_bytes()).unwrap();
        assert_eq!(
            (p.v, p.from, p.through, p.g, p.chain),
            (2, 17, 80, 16, [9; 32])
        );
        assert_eq!(p.key, key.public());
        assert_eq!(p.tags, vec![[1, 2], [3, 4], [5, 6], [7, 8]]);
        p.check_signature(sid).unwrap();
        // A different g, or the same checkpoint passed off as version 1, breaks the
        // signature.
        for g in [1, 8, 32] {
            let mut other = cp.clone();
            other.g = Some(g);
            let p = Checkpoint::parse(&other.to_bytes()).unwrap();
            assert_eq!(p.check_signature(sid), Err(CheckpointError::BadSignature));
        }
        let mut other = cp.clone();
        other.v = 1;
        let p = Checkpoint::parse(&other.to_bytes()).unwrap();
        assert_eq!(p.g, 1);
        assert_eq!(p.check_signature(sid), Err(CheckpointError::BadSignature));
        // Group tags hash the group's unit hashes.
        let units = [[1; 32], [2; 32], [3; 32]];
        let p = Checkpoint::parse(
            &Checkpoint::sign(&key, sid, 0, 3, 2, &[9; 32], &[0; 2 * TAG_LEN]).to_bytes(),
        )
        .unwrap();
        assert_eq!(
            p.expected_tags(&units),
            vec![group_tag(&units[..2]), group_tag(&units[2..])]
        );
        assert_ne!(group_tag(&units[..1]), tag(&units[0]));
    }

    #[test]
    fn a_v1_checkpoint_still_parses_and_verifies() {
        let key = NodeKey::from_seed([5; 32]);
        let sid = SessionId::from_bytes([1; 16]);
        let tags: Vec<u8> = (1..=10).collect();
        let by_hand = sign_v1(&key, sid, 4, 9, &[9; 32], &tags);
        assert_eq!(String::from_utf8(by_hand.to_bytes()).unwrap(), V1_GOLDEN);
        let p = Checkpoint::parse(V1_GOLDEN.as_bytes()).unwrap();
        assert_eq!((p.v, p.from, p.through, p.g), (1, 4, 9, 1));
        assert_eq!(p.tags.len(), 5);
        p.check_signature(sid).unwrap();
        assert_eq!(
            p.check_signature(SessionId::from_bytes([2; 16])),
            Err(CheckpointError::BadSignature)
        );
        // Version 1 tags are unit hash prefixes, one per unit.
        let units = [[1; 32], [2; 32]];
        assert_eq!(
            p.expected_tags(&units),
            vec![tag(&units[0]), tag(&units[1])]
        );
        // A `g` added to a version 1 checkpoint means nothing (its signature never
        // covered one), as before.
        let mut with_g: serde_json::Value = serde_json::from_str(V1_GOLDEN).unwrap();
        with_g["g"] = 16.into();
        let p = Checkpoint::parse(&serde_json::to_vec(&with_g).unwrap()).unwrap();
        assert_eq!(p.g, 1);
        p.check_signature(sid).unwrap();
    }

    #[test]
    fn checkpoints_with_a_bad_g_or_version_are_malformed() {
        let key = NodeKey::from_seed([5; 32]);
        let sid = SessionId::from_bytes([1; 16]);
        let good: serde_json::Value = serde_json::from_slice(
            &Checkpoint::sign(&key, sid, 0, 3, 4, &[9; 32], &[1; 2]).to_bytes(),
        )
        .unwrap();
        let with = |field: &str, value: serde_json::Value| {
            let mut c = good.clone();
            if value.is_null() {
                c.as_object_mut().unwrap().remove(field);
            } else {
                c[field] = value;
            }
            Checkpoint::parse(&serde_json::to_vec(&c).unwrap())
        };
        for g in [0u64, 65, 1 << 40, u64::MAX] {
            assert!(
                matches!(with("g", g.into()), Err(CheckpointError::Malformed(_))),
                "g = {g}"
            );
        }
        for g in [
            serde_json::json!(-1),
            serde_json::json!(1.5),
            serde_json::json!("4"),
            serde_json::Value::Null,
        ] {
            assert!(
                matches!(with("g", g.clone()), Err(CheckpointError::Malformed(_))),
                "g = {g}"
            );
        }
        assert_eq!(with("g", 64.into()).unwrap().g, 64);
        assert_eq!(
            with("v", 3.into()),
            Err(CheckpointError::Malformed(
                "unknown checkpoint version 3".into()
            ))
        );
        assert!(matches!(
            with("tags", "AQID".into()),
            Err(CheckpointError::Malformed(_))
        ));
    }

    #[test]
    fn g_is_the_smallest_group_whose_tags_fit_the_budget() {
        assert_eq!(choose_group(0, 0), 1);
        // Rows of 64 bytes and more: every row tagged.
        assert_eq!(choose_group(10, 640), 1);
        assert_eq!(choose_group(10, 639), 2);
        // 10,000 keystrokes: even groups of 64 exceed the budget (312 bytes of tags).
        assert_eq!(choose_group(10_000, 10_000), 64);
        // A short interval of keystrokes costs one tag.
        assert_eq!(choose_group(40, 60), 64);
        // 300 rows of bulk output, 4 KiB each: 600 bytes of tags against 38,400.
        assert_eq!(choose_group(300, 300 * 4096), 1);
        // In between: 2,000 events of 20 bytes = 40,000 bytes, a budget of 1,250 bytes,
        // 625 tags: groups of 4 (500 tags) do, of 2 (1,000 tags) do not.
        assert_eq!(choose_group(2_000, 40_000), 4);
        assert_eq!(choose_group(usize::MAX, u64::MAX), 64);
    }

    proptest! {
        #[test]
        fn parsing_any_bytes_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Checkpoint::parse(&data);
        }

        #[test]
        fn parsing_mutated_checkpoints_never_panics(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6), v1 in any::<bool>()) {
            let key = NodeKey::from_seed([5; 32]);
            let sid = SessionId::from_bytes([1; 16]);
            let cp = if v1 {
                sign_v1(&key, sid, 0, 2, &[9; 32], &[1; 16])
            } else {
                Checkpoint::sign(&key, sid, 0, 2, 8, &[9; 32], &[1; 16])
            };
            let mut data = cp.to_bytes();
            for (i, b) in flips {
                let n = data.len();
                data[i % n] = b;
            }
            if let Ok(p) = Checkpoint::parse(&data) {
                prop_assert!((1..=MAX_GROUP).contains(&p.g));
                let _ = p.check_signature(sid);
                let _ = p.expected_tags(&[[0; 32]; 20]);
            }
        }

        #[test]
        fn the_chosen_g_fits_the_budget_or_is_the_largest(units in 0usize..100_000, bytes in 0u64..10_000_000) {
            let g = choose_group(units, bytes);
            prop_assert!(GROUP_SIZES.contains(&g));
            let cost = |g: u32| (units as u64).div_ceil(u64::from(g)) * TAG_LEN as u64;
            let budget = bytes / TAG_BUDGET_DIVISOR;
            prop_assert!(cost(g) <= budget || g == 64);
            if g > 1 {
                prop_assert!(cost(g / 2) > budget);
            }
        }
    }
}
