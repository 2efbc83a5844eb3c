//! Chunks: consecutive events of one session, the unit of transport.
//!
//! One chunk is one spool entry and one Kafka record. The byte layout is documented in
//! `schemas/chunk-format.md`; golden vectors in `schemas/tests/data/` pin it down so that
//! a change to it is always deliberate.
//!
//! [`Chunk::decode`] accepts any byte sequence and returns either a chunk or a
//! [`DecodeError`] naming the offset and what was wrong; it never panics and never
//! allocates more than [`MAX_PAYLOAD_BYTES`] for a payload, whatever a header claims.
//!
//! The codec has three parts, and the dependencies between them run one way:
//! - this module: the header, the plain (optionally compressed) payload, decoding;
//! - [`seal`]: the sealed payload of DESIGN.md §5, built on this module;
//! - [`ChunkEncoder`]: the writer's side, which compresses and then, with a data key,
//!   seals, using both.

mod encoder;
pub mod seal;

pub use encoder::ChunkEncoder;

use crate::event::{Event, EventKind, SessionId};

/// First four bytes of every chunk.
pub const MAGIC: [u8; 4] = *b"ATYC";
/// Major format version written and read by this build.
pub const MAJOR_VERSION: u8 = 1;
/// Minor format version written by this build (readers accept any minor).
pub const MINOR_VERSION: u8 = 1;
/// Size of the fixed header in bytes.
pub const HEADER_LEN: usize = 44;
/// Upper bound on a payload, stored or decompressed. Agents cut chunks at ~64 KiB, so
/// anything near this is damage or an attack, not a session.
pub const MAX_PAYLOAD_BYTES: usize = 16 << 20;
/// Upper bound on the events in one chunk.
pub const MAX_EVENTS: u32 = 1 << 20;

/// Header flag: the payload is zstd-compressed.
pub const FLAG_COMPRESSED: u16 = 1;
/// Header flag: the payload is sealed (encrypted) with the session's data key.
pub const FLAG_SEALED: u16 = 2;
const KNOWN_FLAGS: u16 = FLAG_COMPRESSED | FLAG_SEALED;

/// The fixed-size header that precedes every chunk payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkHeader {
    /// Minor version of the writer.
    pub minor_version: u8,
    /// [`FLAG_COMPRESSED`], [`FLAG_SEALED`].
    pub flags: u16,
    /// The session the events belong to.
    pub session_id: SessionId,
    /// Sequence number of the first event.
    pub first_seq: u64,
    /// Number of events in the chunk.
    pub event_count: u32,
    /// Length of the payload as stored.
    pub payload_len: u32,
    /// CRC-32 (IEEE) of the stored payload.
    pub payload_crc: u32,
}

/// Consecutive events of one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// The session the events belong to.
    pub session_id: SessionId,
    /// The events, with consecutive `seq` values.
    pub events: Vec<Event>,
}

/// Where decoding stopped and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chunk byte {offset}: {kind}")]
pub struct DecodeError {
    /// Byte offset into the chunk (or into its decompressed payload, when the kind says so).
    pub offset: usize,
    /// What was wrong.
    pub kind: DecodeErrorKind,
}

/// The ways a chunk can fail to decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    /// The bytes end before the structure does.
    #[error("truncated: needs {needed} more bytes, {available} available")]
    Truncated {
        /// Bytes still needed.
        needed: usize,
        /// Bytes that were there.
        available: usize,
    },
    /// The first bytes are not [`MAGIC`]: this is not an auditty chunk.
    #[error("not an auditty chunk (magic {found:02x?}, expected {MAGIC:02x?})")]
    BadMagic {
        /// The four bytes found.
        found: [u8; 4],
    },
    /// Written by a newer, incompatible format.
    #[error(
        "unsupported chunk format version {found}.x (this build reads {supported}.x); upgrade auditty"
    )]
    UnsupportedVersion {
        /// The major version found.
        found: u8,
        /// The major version this build reads.
        supported: u8,
    },
    /// Flags this build does not understand.
    #[error("unknown header flags {0:#06x}")]
    UnknownFlags(u16),
    /// The payload was altered or damaged.
    #[error("payload checksum mismatch (header says {expected:#010x}, payload has {actual:#010x})")]
    ChecksumMismatch {
        /// CRC from the header.
        expected: u32,
        /// CRC of the bytes found.
        actual: u32,
    },
    /// The payload or event count is beyond the limits of the format.
    #[error("{what} of {found} exceeds the limit of {limit}")]
    TooLarge {
        /// Which quantity.
        what: &'static str,
        /// Its value.
        found: u64,
        /// The limit.
        limit: u64,
    },
    /// The compressed payload does not decompress.
    #[error("payload does not decompress: {0}")]
    Decompress(String),
    /// The payload is sealed; it needs the session's data key (see `envelope`).
    #[error("payload is sealed; a key is needed to read it")]
    Sealed,
    /// A sealed chunk was expected and this one is not.
    #[error("chunk is not sealed")]
    NotSealed,
    /// The data key does not open the chunk: a wrong key, or the chunk was altered.
    #[error("the data key does not open this chunk: wrong key, or the chunk was altered")]
    SealBroken,
    /// An event kind this build does not know.
    #[error("unknown event kind {0} in payload")]
    UnknownEventKind(u8),
    /// A variable-length integer is longer than 64 bits.
    #[error("malformed varint in payload")]
    BadVarint,
    /// Timestamps would overflow.
    #[error("elapsed time overflows in payload")]
    TimeOverflow,
    /// Sequence numbers would overflow.
    #[error("sequence numbers overflow")]
    SeqOverflow,
    /// The payload holds more or fewer events than the header says.
    #[error("payload holds {found} events, header says {expected}")]
    CountMismatch {
        /// From the header.
        expected: u32,
        /// Found in the payload.
        found: u32,
    },
    /// Bytes left over after the events.
    #[error("{0} unexpected bytes after the last event")]
    TrailingBytes(usize),
}

fn err(offset: usize, kind: DecodeErrorKind) -> DecodeError {
    DecodeError { offset, kind }
}

impl ChunkHeader {
    /// Parses the fixed header, checking magic, version and flags.
    pub fn parse(bytes: &[u8]) -> Result<ChunkHeader, DecodeError> {
        if bytes.len() < 4 {
            return Err(err(
                0,
                DecodeErrorKind::Truncated {
                    needed: HEADER_LEN - bytes.len(),
                    available: bytes.len(),
                },
            ));
        }
        let found: [u8; 4] = [bytes[0], bytes[1], bytes[2], bytes[3]];
        if found != MAGIC {
            return Err(err(0, DecodeErrorKind::BadMagic { found }));
        }
        if bytes.len() < HEADER_LEN {
            return Err(err(
                bytes.len(),
                DecodeErrorKind::Truncated {
                    needed: HEADER_LEN - bytes.len(),
                    available: bytes.len(),
                },
            ));
        }
        if bytes[4] != MAJOR_VERSION {
            return Err(err(
                4,
                DecodeErrorKind::UnsupportedVersion {
                    found: bytes[4],
                    supported: MAJOR_VERSION,
                },
            ));
        }
        let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let flags = u16_at(6);
        if flags & !KNOWN_FLAGS != 0 {
            return Err(err(6, DecodeErrorKind::UnknownFlags(flags)));
        }
        let mut sid = [0u8; 16];
        sid.copy_from_slice(&bytes[8..24]);
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&bytes[24..32]);
        Ok(ChunkHeader {
            minor_version: bytes[5],
            flags,
            session_id: SessionId::from_bytes(sid),
            first_seq: u64::from_le_bytes(seq),
            event_count: u32_at(32),
            payload_len: u32_at(36),
            payload_crc: u32_at(40),
        })
    }

    /// The header as its 44 bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&MAGIC);
        out[4] = MAJOR_VERSION;
        out[5] = self.minor_version;
        out[6..8].copy_from_slice(&self.flags.to_le_bytes());
        out[8..24].copy_from_slice(self.session_id.as_bytes());
        out[24..32].copy_from_slice(&self.first_seq.to_le_bytes());
        out[32..36].copy_from_slice(&self.event_count.to_le_bytes());
        out[36..40].copy_from_slice(&self.payload_len.to_le_bytes());
        out[40..44].copy_from_slice(&self.payload_crc.to_le_bytes());
        out
    }

    /// The sequence number of the last event, if the header is consistent.
    pub fn last_seq(&self) -> Option<u64> {
        self.first_seq
            .checked_add(u64::from(self.event_count))?
            .checked_sub(1)
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a LEB128 varint at `*pos`, advancing it.
fn get_varint(buf: &[u8], pos: &mut usize) -> Result<u64, DecodeErrorKind> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let Some(&b) = buf.get(*pos) else {
            return Err(DecodeErrorKind::Truncated {
                needed: 1,
                available: 0,
            });
        };
        *pos += 1;
        let part = u64::from(b & 0x7f);
        if shift == 63 && part > 1 {
            return Err(DecodeErrorKind::BadVarint);
        }
        v |= part << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(DecodeErrorKind::BadVarint)
}

impl Chunk {
    /// Sequence number of the first event (0 for an empty chunk).
    pub fn first_seq(&self) -> u64 {
        self.events.first().map_or(0, |e| e.seq)
    }

    /// The uncompressed, unsealed payload: per event its kind byte, the varint
    /// nanoseconds since the previous event of the chunk (since 0 for the first), the
    /// varint data length and the data.
    pub fn encode_payload(&self) -> Vec<u8> {
        let size: usize = self.events.iter().map(|e| e.data.len() + 12).sum();
        let mut out = Vec::with_capacity(size);
        let mut prev = 0u64;
        for e in &self.events {
            out.push(e.kind.to_byte());
            // Time is monotonic within a session; a clock that steps back encodes as 0.
            put_varint(&mut out, e.elapsed_ns.saturating_sub(prev));
            prev = prev.max(e.elapsed_ns);
            put_varint(&mut out, e.data.len() as u64);
            out.extend_from_slice(&e.data);
        }
        out
    }

    /// Encodes the chunk; `compress` selects zstd for the payload. Writers that encode
    /// many chunks keep a [`ChunkEncoder`] instead, which reuses its compression context.
    ///
    /// The events must have consecutive sequence numbers; that is the caller's invariant.
    pub fn encode(&self, compress: bool) -> Vec<u8> {
        let (flags, payload) = self.unsealed_payload(new_compressor(compress).as_mut());
        self.frame(flags, &payload)
    }

    /// The payload as an unsealed chunk stores it, and its flags: zstd-compressed with
    /// `compressor` when that makes it smaller.
    fn unsealed_payload(
        &self,
        compressor: Option<&mut zstd::bulk::Compressor<'static>>,
    ) -> (u16, Vec<u8>) {
        debug_assert!(
            self.events
                .windows(2)
                .all(|w| w[0].seq.checked_add(1) == Some(w[1].seq)),
            "chunk events must have consecutive seq"
        );
        let plain = self.encode_payload();
        if let Some(c) = compressor
            && let Ok(z) = c.compress(&plain)
            && z.len() < plain.len()
        {
            return (FLAG_COMPRESSED, z);
        }
        (0, plain)
    }

    fn header(&self, flags: u16, payload_len: u32, payload_crc: u32) -> ChunkHeader {
        ChunkHeader {
            minor_version: MINOR_VERSION,
            flags,
            session_id: self.session_id,
            first_seq: self.first_seq(),
            event_count: self.events.len() as u32,
            payload_len,
            payload_crc,
        }
    }

    /// Puts the header in front of an already prepared payload.
    pub fn frame(&self, flags: u16, payload: &[u8]) -> Vec<u8> {
        let header = self.header(flags, payload.len() as u32, crc32fast::hash(payload));
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
        out.extend_from_slice(&header.to_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// Decodes a chunk from any byte sequence.
    pub fn decode(bytes: &[u8]) -> Result<Chunk, DecodeError> {
        let header = ChunkHeader::parse(bytes)?;
        let payload = stored_payload(&header, bytes)?;
        if header.flags & FLAG_SEALED != 0 {
            return Err(err(HEADER_LEN, DecodeErrorKind::Sealed));
        }
        Chunk::decode_inner(&header, payload)
    }

    /// Decodes the (possibly compressed) payload of an unsealed chunk whose header was
    /// checked.
    fn decode_inner(header: &ChunkHeader, payload: &[u8]) -> Result<Chunk, DecodeError> {
        if header.event_count > MAX_EVENTS {
            return Err(err(
                32,
                DecodeErrorKind::TooLarge {
                    what: "event count",
                    found: u64::from(header.event_count),
                    limit: u64::from(MAX_EVENTS),
                },
            ));
        }
        let plain;
        let payload = if header.flags & FLAG_COMPRESSED != 0 {
            plain = zstd::bulk::decompress(payload, MAX_PAYLOAD_BYTES)
                .map_err(|e| err(HEADER_LEN, DecodeErrorKind::Decompress(e.to_string())))?;
            &plain[..]
        } else {
            payload
        };
        let events = decode_payload(header, payload)?;
        Ok(Chunk {
            session_id: header.session_id,
            events,
        })
    }
}

/// A zstd context at level 1 if `compress` is set. If zstd cannot allocate one, payloads
/// are stored plain.
fn new_compressor(compress: bool) -> Option<zstd::bulk::Compressor<'static>> {
    if compress {
        zstd::bulk::Compressor::new(1).ok()
    } else {
        None
    }
}

/// Checks the stored payload's length and checksum and returns it.
pub fn stored_payload<'a>(header: &ChunkHeader, bytes: &'a [u8]) -> Result<&'a [u8], DecodeError> {
    let len = header.payload_len as usize;
    if len > MAX_PAYLOAD_BYTES {
        return Err(err(
            36,
            DecodeErrorKind::TooLarge {
                what: "payload length",
                found: len as u64,
                limit: MAX_PAYLOAD_BYTES as u64,
            },
        ));
    }
    let body = &bytes[HEADER_LEN..];
    if body.len() < len {
        return Err(err(
            bytes.len(),
            DecodeErrorKind::Truncated {
                needed: len - body.len(),
                available: body.len(),
            },
        ));
    }
    if body.len() > len {
        return Err(err(
            HEADER_LEN + len,
            DecodeErrorKind::TrailingBytes(body.len() - len),
        ));
    }
    let actual = crc32fast::hash(body);
    if actual != header.payload_crc {
        return Err(err(
            HEADER_LEN,
            DecodeErrorKind::ChecksumMismatch {
                expected: header.payload_crc,
                actual,
            },
        ));
    }
    Ok(body)
}

/// Decodes the events of a plain payload. Offsets in errors are into the payload.
fn decode_payload(header: &ChunkHeader, payload: &[u8]) -> Result<Vec<Event>, DecodeError> {
    // Every event takes at least 3 bytes, which bounds the allocation by the input.
    let mut events = Vec::with_capacity((header.event_count as usize).min(payload.len() / 3));
    let mut pos = 0usize;
    let mut elapsed = 0u64;
    let mut seq = header.first_seq;
    while pos < payload.len() {
        let start = pos;
        let kind_byte = payload[pos];
        pos += 1;
        let kind = EventKind::from_byte(kind_byte)
            .ok_or_else(|| err(start, DecodeErrorKind::UnknownEventKind(kind_byte)))?;
        let delta = get_varint(payload, &mut pos).map_err(|k| err(pos, k))?;
        elapsed = elapsed
            .checked_add(delta)
            .ok_or_else(|| err(pos, DecodeErrorKind::TimeOverflow))?;
        let len = get_varint(payload, &mut pos).map_err(|k| err(pos, k))?;
        let available = payload.len() - pos;
        if len > available as u64 {
            return Err(err(
                pos,
                DecodeErrorKind::Truncated {
                    needed: usize::try_from(len).unwrap_or(usize::MAX) - available,
                    available,
                },
            ));
        }
        let len = len as usize;
        if events.len() as u64 >= u64::from(header.event_count) {
            return Err(err(
                start,
                DecodeErrorKind::CountMismatch {
                    expected: header.event_count,
                    found: header.event_count.saturating_add(1),
                },
            ));
        }
        events.push(Event {
            seq,
            elapsed_ns: elapsed,
            kind,
            data: payload[pos..pos + len].to_vec(),
        });
        pos += len;
        seq = seq
            .checked_add(1)
            .ok_or_else(|| err(start, DecodeErrorKind::SeqOverflow))?;
    }
    if events.len() as u64 != u64::from(header.event_count) {
        return Err(err(
            pos,
            DecodeErrorKind::CountMismatch {
                expected: header.event_count,
                found: events.len() as u32,
            },
        ));
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Chunk {
        Chunk {
            session_id: SessionId::from_bytes([7; 16]),
            events: vec![
                Event {
                    seq: 5,
                    elapsed_ns: 1_000,
                    kind: EventKind::Input,
                    data: b"ls\r".to_vec(),
                },
                Event {
                    seq: 6,
                    elapsed_ns: 2_500_000,
                    kind: EventKind::Output,
                    data: "héllo 🦀\r\n".as_bytes().to_vec(),
                },
                Event {
                    seq: 7,
                    elapsed_ns: 2_500_000,
                    kind: EventKind::Resize,
                    data: b"100x30".to_vec(),
                },
            ],
        }
    }

    #[test]
    fn round_trips_plain_and_compressed() {
        let c = sample();
        assert_eq!(Chunk::decode(&c.encode(false)).unwrap(), c);
        let big = Chunk {
            session_id: c.session_id,
            events: (0..200)
                .map(|i| Event {
                    seq: i,
                    elapsed_ns: i * 10,
                    kind: EventKind::Output,
                    data: vec![b'a'; 100],
                })
                .collect(),
        };
        let bytes = big.encode(true);
        let header = ChunkHeader::parse(&bytes).unwrap();
        assert_eq!(header.flags, FLAG_COMPRESSED);
        assert_eq!(header.last_seq(), Some(199));
        assert_eq!(Chunk::decode(&bytes).unwrap(), big);
    }

    #[test]
    fn rejects_a_newer_major_version_clearly() {
        let mut bytes = sample().encode(false);
        bytes[4] = 2;
        let e = Chunk::decode(&bytes).unwrap_err();
        assert_eq!(
            e.kind,
            DecodeErrorKind::UnsupportedVersion {
                found: 2,
                supported: 1
            }
        );
        assert!(e.to_string().contains("upgrade auditty"));
    }

    #[test]
    fn detects_a_flipped_payload_bit_and_truncation() {
        let mut bytes = sample().encode(false);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(matches!(
            Chunk::decode(&bytes).unwrap_err().kind,
            DecodeErrorKind::ChecksumMismatch { .. }
        ));
        let bytes = sample().encode(false);
        assert!(matches!(
            Chunk::decode(&bytes[..bytes.len() - 2]).unwrap_err().kind,
            DecodeErrorKind::Truncated { .. }
        ));
        assert!(matches!(
            Chunk::decode(b"garbage!").unwrap_err().kind,
            DecodeErrorKind::BadMagic { .. }
        ));
    }

    #[test]
    fn sealed_chunks_say_so() {
        let c = sample();
        let bytes = c.frame(FLAG_SEALED, b"opaque");
        assert_eq!(
            Chunk::decode(&bytes).unwrap_err().kind,
            DecodeErrorKind::Sealed
        );
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Chunk::decode(&bytes);
        }

        #[test]
        fn decoding_mutated_chunks_never_panics(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), compress in any::<bool>()) {
            let mut bytes = sample().encode(compress);
            for (i, b) in flips {
                let n = bytes.len();
                bytes[i % n] = b;
            }
            let _ = Chunk::decode(&bytes);
        }

        #[test]
        fn decoding_headers_with_valid_crc_never_panics(payload in proptest::collection::vec(any::<u8>(), 0..256), count in 0u32..64, flags in 0u16..2) {
            let c = Chunk { session_id: SessionId::from_bytes([1; 16]), events: vec![] };
            let mut bytes = c.frame(flags, &payload);
            bytes[32..36].copy_from_slice(&count.to_le_bytes());
            let _ = Chunk::decode(&bytes);
        }

        #[test]
        fn encode_decode_round_trips(events in proptest::collection::vec((0u8..8, 0u64..1_000_000, proptest::collection::vec(any::<u8>(), 0..64)), 0..20), first in 0u64..1_000_000, compress in any::<bool>()) {
            let mut t = 0;
            let events: Vec<Event> = events.into_iter().enumerate().map(|(i, (k, dt, data))| {
                t += dt;
                Event { seq: first + i as u64, elapsed_ns: t, kind: EventKind::from_byte(k).unwrap(), data }
            }).collect();
            let c = Chunk { session_id: SessionId::from_bytes([9; 16]), events };
            prop_assert_eq!(Chunk::decode(&c.encode(compress)).unwrap(), c);
        }
    }
}
