//! [`ChunkEncoder`]: the writer's side of the codec, compressing and then sealing.

use super::seal::{self, DataKey, SealError};
use super::{Chunk, new_compressor};

/// Encodes chunk after chunk with one zstd context, because creating a context per chunk
/// is a noticeable part of the recorder's CPU under bulk output. With a data key
/// ([`ChunkEncoder::sealed_with`]) every chunk is compressed, then sealed ([`seal`]).
pub struct ChunkEncoder {
    compressor: Option<zstd::bulk::Compressor<'static>>,
    key: Option<DataKey>,
}

impl ChunkEncoder {
    /// An encoder that compresses payloads (zstd level 1, kept only when smaller) if
    /// `compress` is set. If zstd cannot allocate its context, payloads are stored plain.
    pub fn new(compress: bool) -> ChunkEncoder {
        ChunkEncoder {
            compressor: new_compressor(compress),
            key: None,
        }
    }

    /// Seals every chunk under `key` (plaintext chunks when `None`).
    pub fn sealed_with(mut self, key: Option<DataKey>) -> ChunkEncoder {
        self.key = key;
        self
    }

    /// Whether chunks are sealed.
    pub fn is_sealing(&self) -> bool {
        self.key.is_some()
    }

    /// Encodes one chunk. Fails only when sealing cannot get randomness from the system.
    ///
    /// The events must have consecutive sequence numbers; that is the caller's invariant.
    pub fn encode(&mut self, chunk: &Chunk) -> Result<Vec<u8>, SealError> {
        let (flags, payload) = chunk.unsealed_payload(self.compressor.as_mut());
        match &self.key {
            Some(key) => seal::seal_chunk(key, chunk, flags, &payload),
            None => Ok(chunk.frame(flags, &payload)),
        }
    }

    /// Encodes one chunk in the clear even if this encoder seals: for the events a
    /// verifier or the ingester must read without the key (`start`, checkpoints, `end`).
    pub fn encode_clear(&mut self, chunk: &Chunk) -> Vec<u8> {
        let (flags, payload) = chunk.unsealed_payload(self.compressor.as_mut());
        chunk.frame(flags, &payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::seal::tests::chunk;
    use crate::chunk::seal::{NONCE_LEN, SealedChunk};
    use crate::chunk::{ChunkHeader, DecodeErrorKind, HEADER_LEN};
    use crate::{Event, EventKind, SessionId};
    use proptest::prelude::*;

    #[test]
    fn one_encoder_gives_the_same_bytes_as_encoding_each_chunk_alone() {
        let mut enc = ChunkEncoder::new(true);
        for n in [1usize, 50, 300] {
            let c = Chunk {
                session_id: SessionId::from_bytes([3; 16]),
                events: (0..n as u64)
                    .map(|i| Event {
                        seq: i,
                        elapsed_ns: i,
                        kind: EventKind::Output,
                        data: format!("row {i}\r\n").into_bytes(),
                    })
                    .collect(),
            };
            let bytes = enc.encode(&c).unwrap();
            assert_eq!(bytes, c.encode(true));
            assert_eq!(Chunk::decode(&bytes).unwrap(), c);
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
