//! Sealed chunks: a chunk payload encrypted under the session's data key (DESIGN.md §5).
//!
//! The payload of a sealed chunk is
//! `nonce (24) | first elapsed_ns (u64 LE) | last elapsed_ns (u64 LE) | ciphertext + tag (16)`,
//! XChaCha20-Poly1305 over what would otherwise be the stored payload (zstd-compressed when
//! the header says so). The associated data is the header's first 36 bytes (magic, version,
//! flags, session id, first seq, event count) followed by the two elapsed times, so a
//! sealed chunk cannot be moved to another session or position, nor re-timed, without the
//! tag failing. The elapsed times stay readable on purpose: the ingester dates a sealed
//! row by them and never holds a key. Nonces are random (24 bytes, so collisions are not a
//! concern even for a long session under one key).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::chunk::{
    Chunk, ChunkHeader, DecodeError, DecodeErrorKind, FLAG_SEALED, HEADER_LEN, stored_payload,
};

/// Bytes of a data key.
pub const KEY_LEN: usize = 32;
/// Bytes of the nonce at the front of a sealed payload.
pub const NONCE_LEN: usize = 24;
/// Bytes before the ciphertext: nonce and the two elapsed times.
pub const PREFIX_LEN: usize = NONCE_LEN + 16;
/// Bytes of the authentication tag after the ciphertext.
pub const TAG_LEN: usize = 16;
/// Bytes of the header that are authenticated (everything but payload length and CRC,
/// which depend on the ciphertext).
const HEADER_AD_LEN: usize = 36;

/// A session's 256-bit data key. Wiped from memory when dropped; never printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; KEY_LEN]);

impl DataKey {
    /// A fresh random key from the operating system.
    pub fn generate() -> Result<DataKey, getrandom::Error> {
        let mut k = [0u8; KEY_LEN];
        getrandom::fill(&mut k)?;
        Ok(DataKey(k))
    }

    /// A key from its bytes (e.g. unwrapped from an envelope); `None` unless 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<DataKey> {
        Some(DataKey(bytes.try_into().ok()?))
    }

    /// The key's bytes, for wrapping.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// Version of the [`Envelope`] layout written by this build.
pub const ENVELOPE_VERSION: u32 = 1;
/// The AEAD named in envelopes written by this build.
pub const AEAD_NAME: &str = "xchacha20poly1305";

/// The session's data key, wrapped for each recipient; carried in the `start` event's
/// `envelope` field. The `envelope` crate builds and opens it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Envelope {
    /// Layout version ([`ENVELOPE_VERSION`]).
    pub version: u32,
    /// The AEAD sealing the chunks ([`AEAD_NAME`]).
    pub aead: String,
    /// Who can open the session, for messages: `age1…`, `ssh-ed25519 AAAA… comment`,
    /// `kms:KEY-ID`.
    pub recipients: Vec<String>,
    /// The data key as one binary age file for all age and SSH recipients, base64.
    pub age: Option<String>,
    /// The data key wrapped by AWS KMS, once per KMS key.
    pub kms: Vec<KmsWrappedKey>,
}

/// A data key wrapped by AWS KMS (`GenerateDataKey` / `Encrypt`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct KmsWrappedKey {
    /// The key id or ARN given to the agent.
    pub key_id: String,
    /// `CiphertextBlob`, base64.
    pub ciphertext: String,
    /// The KMS encryption context the key was generated under (`auditty:session` = the
    /// session id): KMS refuses to decrypt without it, and CloudTrail logs it with every
    /// `Decrypt`, so the audit log says which session each read was for.
    pub context: std::collections::BTreeMap<String, String>,
}

/// A sealed chunk as stored, parsed without the key.
#[derive(Clone, Copy, Debug)]
pub struct SealedChunk<'a> {
    /// The chunk header (flags include [`FLAG_SEALED`]).
    pub header: ChunkHeader,
    /// `elapsed_ns` of the first event.
    pub first_elapsed_ns: u64,
    /// `elapsed_ns` of the last event.
    pub last_elapsed_ns: u64,
    header_bytes: &'a [u8],
    payload: &'a [u8],
}

fn err(offset: usize, kind: DecodeErrorKind) -> DecodeError {
    DecodeError { offset, kind }
}

fn associated_data(header_bytes: &[u8], first: u64, last: u64) -> Vec<u8> {
    let mut ad = Vec::with_capacity(HEADER_AD_LEN + 16);
    ad.extend_from_slice(&header_bytes[..HEADER_AD_LEN]);
    ad.extend_from_slice(&first.to_le_bytes());
    ad.extend_from_slice(&last.to_le_bytes());
    ad
}

impl<'a> SealedChunk<'a> {
    /// Parses a sealed chunk: header, CRC and the clear prefix. Never panics.
    pub fn parse(bytes: &'a [u8]) -> Result<SealedChunk<'a>, DecodeError> {
        let header = ChunkHeader::parse(bytes)?;
        if header.flags & FLAG_SEALED == 0 {
            return Err(err(6, DecodeErrorKind::NotSealed));
        }
        let payload = stored_payload(&header, bytes)?;
        if payload.len() < PREFIX_LEN + TAG_LEN {
            return Err(err(
                HEADER_LEN + payload.len(),
                DecodeErrorKind::Truncated {
                    needed: PREFIX_LEN + TAG_LEN - payload.len(),
                    available: payload.len(),
                },
            ));
        }
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&payload[i..i + 8]);
            u64::from_le_bytes(b)
        };
        Ok(SealedChunk {
            header,
            first_elapsed_ns: u64_at(NONCE_LEN),
            last_elapsed_ns: u64_at(NONCE_LEN + 8),
            header_bytes: &bytes[..HEADER_LEN],
            payload,
        })
    }

    /// Sequence number of the last event covered.
    pub fn last_seq(&self) -> u64 {
        self.header.last_seq().unwrap_or(self.header.first_seq)
    }

    /// Decrypts and decodes the events. A wrong key and an altered chunk fail alike, with
    /// [`DecodeErrorKind::SealBroken`].
    pub fn open(&self, key: &DataKey) -> Result<Chunk, DecodeError> {
        let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
        let nonce = XNonce::from_slice(&self.payload[..NONCE_LEN]);
        let ad = associated_data(
            self.header_bytes,
            self.first_elapsed_ns,
            self.last_elapsed_ns,
        );
        let inner = cipher
            .decrypt(
                nonce,
                Payload {
                    msg: &self.payload[PREFIX_LEN..],
                    aad: &ad,
                },
            )
            .map_err(|_| err(HEADER_LEN, DecodeErrorKind::SealBroken))?;
        let mut header = self.header;
        header.flags &= !FLAG_SEALED;
        Chunk::decode_inner(&header, &inner)
    }
}

/// Seals `inner` (the payload as it would be stored unsealed) for a chunk whose header,
/// without length and CRC, is `header`. Returns the sealed payload.
pub(crate) fn seal_payload(
    key: &DataKey,
    header: &ChunkHeader,
    first_elapsed_ns: u64,
    last_elapsed_ns: u64,
    inner: &[u8],
) -> Result<Vec<u8>, SealError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|e| SealError(e.to_string()))?;
    let ad = associated_data(&header.to_bytes(), first_elapsed_ns, last_elapsed_ns);
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: inner,
                aad: &ad,
            },
        )
        .map_err(|e| SealError(e.to_string()))?;
    let mut out = Vec::with_capacity(PREFIX_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&first_elapsed_ns.to_le_bytes());
    out.extend_from_slice(&last_elapsed_ns.to_le_bytes());
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Sealing failed: the operating system gave no randomness, or the payload is too large.
#[derive(Debug, thiserror::Error)]
#[error("cannot seal a chunk: {0}")]
pub struct SealError(String);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::ChunkEncoder;
    use crate::{Event, EventKind, SessionId};
    use proptest::prelude::*;

    fn chunk() -> Chunk {
        Chunk {
            session_id: SessionId::from_bytes([7; 16]),
            events: (0..5)
                .map(|i| Event {
                    seq: 10 + i,
                    elapsed_ns: 1000 * i,
                    kind: EventKind::Output,
                    data: format!("secret line {i}\n").repeat(20).into_bytes(),
                })
                .collect(),
        }
    }

    #[test]
    fn sealed_chunks_round_trip_and_hide_their_bytes() {
        let key = DataKey::generate().unwrap();
        for compress in [false, true] {
            let mut enc = ChunkEncoder::new(compress).sealed_with(Some(key.clone()));
            let bytes = enc.encode(&chunk()).unwrap();
            assert!(!bytes.windows(6).any(|w| w == b"secret"));
            assert_eq!(
                Chunk::decode(&bytes).unwrap_err().kind,
                DecodeErrorKind::Sealed
            );
            let sealed = SealedChunk::parse(&bytes).unwrap();
            assert_eq!(sealed.header.first_seq, 10);
            assert_eq!(sealed.last_seq(), 14);
            assert_eq!(sealed.last_elapsed_ns, 4000);
            assert_eq!(sealed.open(&key).unwrap(), chunk());
        }
    }

    #[test]
    fn a_wrong_key_or_a_moved_chunk_does_not_open() {
        let key = DataKey::generate().unwrap();
        let mut enc = ChunkEncoder::new(true).sealed_with(Some(key.clone()));
        let bytes = enc.encode(&chunk()).unwrap();
        let other = DataKey::generate().unwrap();
        let e = SealedChunk::parse(&bytes)
            .unwrap()
            .open(&other)
            .unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::SealBroken);
        // Re-numbered (first seq changed, CRC still fine): the tag fails.
        let mut moved = bytes.clone();
        moved[24] ^= 1;
        let e = SealedChunk::parse(&moved).unwrap().open(&key).unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::SealBroken);
        // Re-timed: same.
        let mut retimed = bytes.clone();
        retimed[HEADER_LEN + NONCE_LEN] ^= 1;
        let h = ChunkHeader::parse(&retimed).unwrap();
        let crc = crc32fast::hash(&retimed[HEADER_LEN..]);
        let mut hb = h.to_bytes();
        hb[40..44].copy_from_slice(&crc.to_le_bytes());
        retimed[..HEADER_LEN].copy_from_slice(&hb);
        let e = SealedChunk::parse(&retimed)
            .unwrap()
            .open(&key)
            .unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::SealBroken);
    }

    #[test]
    fn plain_chunks_are_not_sealed_chunks() {
        let bytes = chunk().encode(true);
        assert_eq!(
            SealedChunk::parse(&bytes).unwrap_err().kind,
            DecodeErrorKind::NotSealed
        );
    }

    proptest! {
        #[test]
        fn parsing_and_opening_mutated_sealed_chunks_never_panics(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8), cut in any::<usize>()) {
            let key = DataKey::from_slice(&[3; 32]).unwrap();
            let mut bytes = ChunkEncoder::new(true).sealed_with(Some(key.clone())).encode(&chunk()).unwrap();
            for (i, b) in flips {
                let n = bytes.len();
                bytes[i % n] = b;
            }
            bytes.truncate(cut % (bytes.len() + 1));
            if let Ok(s) = SealedChunk::parse(&bytes) {
                let _ = s.open(&key);
            }
        }
    }
}
