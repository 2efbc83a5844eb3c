//! `schemas::chunk::seal::SealedChunk::parse` and `open` on any bytes: never a panic.
//!
//! A fuzzer cannot forge a Poly1305 tag, so opening mutated chunks only ever tests the
//! refusal. To reach the decoder behind the tag, each input is also read as a plain chunk
//! (44-byte header, then the inner payload) and sealed here, by `schemas/chunk-format.md`
//! ("Sealed payload"), under a fixed key: opening that must give exactly what decoding the
//! plain chunk gives. This also checks the format document against the code.
#![no_main]

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use libfuzzer_sys::fuzz_target;
use schemas::chunk::seal::{DataKey, PREFIX_LEN, SealedChunk};
use schemas::chunk::{ChunkHeader, FLAG_COMPRESSED, FLAG_SEALED, HEADER_LEN};
use schemas::{Chunk, DecodeErrorKind};

/// The key every sealed input is opened with.
const KEY: [u8; 32] = [7; 32];
/// The key of the golden vector `schemas/tests/data/chunk-v1.1-sealed.bin`, so the seed
/// itself opens.
const GOLDEN_KEY: [u8; 32] = [0x42; 32];

fuzz_target!(|data: &[u8]| {
    let key = DataKey::from_slice(&KEY).expect("32 bytes");
    let golden = DataKey::from_slice(&GOLDEN_KEY).expect("32 bytes");
    if let Ok(sealed) = SealedChunk::parse(data) {
        let _ = sealed.last_seq();
        for k in [&key, &golden] {
            if let Ok(chunk) = sealed.open(k) {
                assert_eq!(chunk.session_id, sealed.header.session_id);
                assert_eq!(
                    chunk.events.len() as u64,
                    u64::from(sealed.header.event_count)
                );
            }
        }
    }
    resealed(data, &key);
});

/// Seals `data`'s payload as the format says and checks that opening it equals decoding
/// the same payload unsealed.
fn resealed(data: &[u8], key: &DataKey) {
    let Ok(header) = ChunkHeader::parse(data) else {
        return;
    };
    let inner = &data[HEADER_LEN..];
    // Elapsed times in clear: any values, taken from the session id bytes.
    let first = u64::from_le_bytes(data[8..16].try_into().expect("8 bytes"));
    let last = u64::from_le_bytes(data[16..24].try_into().expect("8 bytes"));
    let flags = header.flags & FLAG_COMPRESSED;

    let plain = frame(&header, flags, inner);
    let mut sealed_header = header;
    sealed_header.flags = flags | FLAG_SEALED;
    // Associated data: the header's first 36 bytes, then the two elapsed times.
    let mut ad = sealed_header.to_bytes()[..36].to_vec();
    ad.extend_from_slice(&first.to_le_bytes());
    ad.extend_from_slice(&last.to_le_bytes());
    let nonce = [0x5a; 24];
    let ct = XChaCha20Poly1305::new((&KEY).into())
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: inner,
                aad: &ad,
            },
        )
        .expect("sealing a small payload");
    let mut payload = Vec::with_capacity(PREFIX_LEN + ct.len());
    payload.extend_from_slice(&nonce);
    payload.extend_from_slice(&first.to_le_bytes());
    payload.extend_from_slice(&last.to_le_bytes());
    payload.extend_from_slice(&ct);
    let sealed_bytes = frame(&sealed_header, sealed_header.flags, &payload);

    let sealed = SealedChunk::parse(&sealed_bytes).expect("a chunk sealed by the format parses");
    assert_eq!(sealed.first_elapsed_ns, first);
    assert_eq!(sealed.last_elapsed_ns, last);
    let opened = sealed.open(key);
    if let Err(e) = &opened {
        assert_ne!(
            e.kind,
            DecodeErrorKind::SealBroken,
            "a chunk sealed as chunk-format.md says does not open"
        );
    }
    let decoded = Chunk::decode(&plain);
    assert_eq!(
        opened, decoded,
        "opening differs from decoding the plain chunk"
    );
}

/// The header (with `flags`, and length and CRC of `payload`) followed by `payload`.
fn frame(header: &ChunkHeader, flags: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = *header;
    h.flags = flags;
    h.payload_len = payload.len() as u32;
    h.payload_crc = crc32fast::hash(payload);
    let mut out = h.to_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}
