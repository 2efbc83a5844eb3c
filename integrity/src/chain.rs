//! The hash chain over a session's units (DESIGN.md §6, `FORMAT.md`).
//!
//! A unit is what one `events` row holds: one plaintext event, or one sealed chunk. The
//! chain runs over units, not over plaintext events, so that a verifier needs no key: a
//! sealed chunk is hashed as stored (header, clear prefix and ciphertext).

use schemas::{Event, EventKind, SessionId};

/// A BLAKE3 digest.
pub type Hash = [u8; 32];

/// Bytes of a tag in a checkpoint. A tag covers a group of `g` consecutive units (the
/// checkpoint's `g`; see [`group_tag`]), or one unit in version 1 checkpoints. Tags only
/// point at the altered rows; detection rests on the signed full chain hash. Two bytes
/// name an altered group with probability 1 − 2⁻¹⁶ (otherwise the verifier names the
/// checkpoint's range instead). Eight bytes per event tripled the store of an interactive
/// session, where most events are single keystrokes and their echoes; even two bytes per
/// event were a third of it, hence groups of up to 64 events there.
pub const TAG_LEN: usize = 2;

/// The hash of a plaintext event, as a unit.
pub fn event_unit_hash(seq: u64, elapsed_ns: u64, kind: EventKind, data: &[u8]) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(b"auditty-event-v1");
    h.update(&seq.to_le_bytes());
    h.update(&elapsed_ns.to_le_bytes());
    h.update(&[kind.to_byte()]);
    h.update(&(data.len() as u64).to_le_bytes());
    h.update(data);
    *h.finalize().as_bytes()
}

/// [`event_unit_hash`] of an [`Event`].
pub fn hash_event(e: &Event) -> Hash {
    event_unit_hash(e.seq, e.elapsed_ns, e.kind, &e.data)
}

/// The hash of a sealed chunk (all its bytes, as stored), as a unit.
pub fn sealed_unit_hash(chunk_bytes: &[u8]) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(b"auditty-sealed-v1");
    h.update(&(chunk_bytes.len() as u64).to_le_bytes());
    h.update(chunk_bytes);
    *h.finalize().as_bytes()
}

/// The first [`TAG_LEN`] bytes of a unit hash.
pub fn tag(unit: &Hash) -> [u8; TAG_LEN] {
    let mut t = [0u8; TAG_LEN];
    t.copy_from_slice(&unit[..TAG_LEN]);
    t
}

/// The tag of a group of consecutive units in a version 2 checkpoint: the first
/// [`TAG_LEN`] bytes of `H("auditty-tag-group-v1" | unit hashes, in order)`.
pub fn group_tag(units: &[Hash]) -> [u8; TAG_LEN] {
    let mut h = blake3::Hasher::new();
    h.update(b"auditty-tag-group-v1");
    for u in units {
        h.update(u);
    }
    tag(h.finalize().as_bytes())
}

/// The [`group_tag`]s of `units` in groups of `g` (the last group may be shorter; `g` 0 is
/// taken as 1).
pub fn group_tags(units: &[Hash], g: u32) -> Vec<[u8; TAG_LEN]> {
    units
        .chunks(usize::try_from(g.max(1)).unwrap_or(usize::MAX))
        .map(group_tag)
        .collect()
}

/// The running chain hash of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chain {
    hash: Hash,
}

impl Chain {
    /// The chain before any unit: bound to the session, so units cannot be spliced in from
    /// another session.
    pub fn new(session: SessionId) -> Chain {
        let mut h = blake3::Hasher::new();
        h.update(b"auditty-chain-v1");
        h.update(session.as_bytes());
        Chain {
            hash: *h.finalize().as_bytes(),
        }
    }

    /// A chain that continues from `hash` (a checkpoint's), for resynchronising.
    pub fn from_hash(hash: Hash) -> Chain {
        Chain { hash }
    }

    /// Extends the chain by one unit.
    pub fn push(&mut self, unit: &Hash) {
        let mut h = blake3::Hasher::new();
        h.update(&self.hash);
        h.update(unit);
        self.hash = *h.finalize().as_bytes();
    }

    /// The current hash.
    pub fn hash(&self) -> Hash {
        self.hash
    }
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Parses lower- or upper-case hex into exactly `N` bytes.
pub fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_depends_on_session_order_and_content() {
        let a = SessionId::from_bytes([1; 16]);
        let b = SessionId::from_bytes([2; 16]);
        let u1 = event_unit_hash(1, 5, EventKind::Output, b"x");
        let u2 = event_unit_hash(2, 6, EventKind::Output, b"y");
        let run = |s, units: &[Hash]| {
            let mut c = Chain::new(s);
            units.iter().for_each(|u| c.push(u));
            c.hash()
        };
        assert_ne!(run(a, &[u1, u2]), run(b, &[u1, u2]));
        assert_ne!(run(a, &[u1, u2]), run(a, &[u2, u1]));
        assert_ne!(u1, event_unit_hash(1, 5, EventKind::Input, b"x"));
        assert_ne!(u1, event_unit_hash(1, 6, EventKind::Output, b"x"));
        assert_ne!(group_tag(&[u1, u2]), group_tag(&[u2, u1]));
        assert_ne!(group_tag(&[u1, u2]), group_tag(&[u1]));
        assert_eq!(
            group_tags(&[u1, u2, u1], 2),
            vec![group_tag(&[u1, u2]), group_tag(&[u1])]
        );
        assert_eq!(group_tags(&[u1], 0), vec![group_tag(&[u1])]);
        assert!(group_tags(&[], 4).is_empty());
        assert_eq!(unhex::<32>(&hex(&u1)), Some(u1));
        assert_eq!(unhex::<2>("zz00"), None);
        assert_eq!(unhex::<2>("é0"), None);
    }
}
