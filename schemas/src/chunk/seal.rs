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

use super::{
    Chunk, ChunkHeader, DecodeError, DecodeErrorKind, FLAG_SEALED, HEADER_LEN, err, stored_payload,
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

/// The AEAD that seals chunks, as named in a session's
/// [`Envelope`](crate::session::Envelope).
pub const AEAD_NAME: &str = "xchacha20poly1305";

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

/// Seals `inner` (`chunk`'s payload as it would be stored unsealed, with `flags`) under
/// `key` and frames it: the whole chunk as stored.
pub(super) fn seal_chunk(
    key: &DataKey,
    chunk: &Chunk,
    flags: u16,
    inner: &[u8],
) -> Result<Vec<u8>, SealError> {
    let flags = flags | FLAG_SEALED;
    // Length and CRC depend on the ciphertext and are not authenticated.
    let header = chunk.header(flags, 0, 0);
    let first = chunk.events.first().map_or(0, |e| e.elapsed_ns);
    let last = chunk.events.last().map_or(0, |e| e.elapsed_ns);
    let payload = seal_payload(key, &header, first, last, inner)?;
    Ok(chunk.frame(flags, &payload))
}

/// The sealed payload: nonce, the two elapsed times, ciphertext and tag.
fn seal_payload(
    key: &DataKey,
    header: &ChunkHeader,
    first_elapsed_ns: u64,
    last_elapsed_ns: u64,
    inner: &[u8],
) -> Result<Vec<u8>, SealError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(SealError::NoRandomness)?;
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
        .map_err(SealError::Encrypt)?;
    let mut out = Vec::with_capacity(PREFIX_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&first_elapsed_ns.to_le_bytes());
    out.extend_from_slice(&last_elapsed_ns.to_le_bytes());
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Why a chunk could not be sealed. Opening fails with a [`DecodeError`] instead
/// ([`DecodeErrorKind::SealBroken`] for a wrong key or an altered chunk), like any other
/// chunk that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The operating system gave no randomness for the nonce.
    #[error("cannot seal a chunk: {0}")]
    NoRandomness(getrandom::Error),
    /// The AEAD refused the payload (only possible beyond its size limit).
    #[error("cannot seal a chunk: {0}")]
    Encrypt(chacha20poly1305::aead::Error),
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{Event, EventKind, SessionId};

    /// A chunk whose payload is worth sealing (also used by the encoder's tests).
    pub(crate) fn chunk() -> Chunk {
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
    fn plain_chunks_are_not_sealed_chunks() {
        let bytes = chunk().encode(true);
        assert_eq!(
            SealedChunk::parse(&bytes).unwrap_err().kind,
            DecodeErrorKind::NotSealed
        );
    }
}
