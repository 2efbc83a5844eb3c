//! Hostile chunks (issue 16, "Hostile input"): a zstd payload that decompresses far past
//! [`MAX_PAYLOAD_BYTES`], and headers that claim huge lengths, are refused with an error
//! and without allocating more than that bound, whatever they claim.
//!
//! The memory check reads the process's peak resident size (`VmHWM`), reset just before
//! the decode through `/proc/self/clear_refs`; without procfs the test fails.

use std::io::Write;
use std::sync::Mutex;

use schemas::chunk::{
    ChunkHeader, FLAG_COMPRESSED, HEADER_LEN, MAGIC, MAJOR_VERSION, MAX_EVENTS, MAX_PAYLOAD_BYTES,
    MINOR_VERSION,
};
use schemas::{Chunk, DecodeErrorKind, SessionId};

/// Most a refused bomb may add to the peak resident size: the 16 MiB bound and zstd's
/// context, with room to spare, and far below what the bombs claim.
const GROWTH_LIMIT: u64 = 64 << 20;

/// Held by every test that measures memory, so that no other test of this binary
/// allocates while the peak is measured.
static MEASURING: Mutex<()> = Mutex::new(());

/// A chunk whose header is valid for `payload` (length and CRC match) and says it holds
/// `event_count` events and is compressed as `flags` says.
fn chunk_bytes(flags: u16, event_count: u32, payload: &[u8]) -> Vec<u8> {
    let header = ChunkHeader {
        minor_version: MINOR_VERSION,
        flags,
        session_id: SessionId::from_bytes([0x11; 16]),
        first_seq: 0,
        event_count,
        payload_len: payload.len() as u32,
        payload_crc: crc32fast::hash(payload),
    };
    let mut out = header.to_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// `len` zero bytes, zstd-compressed by the streaming encoder, which records no content
/// size in the frame: the decoder learns the size only by decompressing. The zeros are
/// fed 1 MiB at a time, so this never holds them all.
fn zstd_zeros(len: u64) -> Vec<u8> {
    let block = vec![0u8; 1 << 20];
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        enc.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    enc.finish().unwrap()
}

/// A zstd frame whose header claims `content_size` bytes and that holds none (one empty
/// last raw block): refused on the claim alone, or it would ask for that much memory.
fn zstd_frame_claiming(content_size: u64) -> Vec<u8> {
    let mut f = vec![0x28, 0xb5, 0x2f, 0xfd];
    // Frame header descriptor: 8-byte content size, single segment (no window descriptor).
    f.push(0b1110_0000);
    f.extend_from_slice(&content_size.to_le_bytes());
    // Block header: last block, raw, size 0.
    f.extend_from_slice(&[0x01, 0x00, 0x00]);
    f
}

/// The value of a `kB` line of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Runs `f` and returns its result and how far it raised the peak resident size above the
/// resident size before it (`None` without procfs). Resetting the peak needs Linux 4.0; where
/// that fails the old peak is the baseline, which can only understate the growth of a
/// process that peaked before (this one peaks while building its bombs, far below 64 MiB).
fn peak_growth<T>(f: impl FnOnce() -> T) -> (T, Option<u64>) {
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = if reset {
        status_bytes("VmRSS:")
    } else {
        status_bytes("VmHWM:")
    };
    let out = f();
    let after = status_bytes("VmHWM:");
    let growth = before.zip(after).map(|(b, a)| a.saturating_sub(b));
    (out, growth)
}

fn assert_bounded(what: &str, growth: Option<u64>) {
    match growth {
        Some(g) => {
            eprintln!("{what}: peak resident size grew {} KiB", g >> 10);
            assert!(
                g < GROWTH_LIMIT,
                "{what}: decoding raised the peak resident size by {} MiB",
                g >> 20
            );
        }
        // Our machines are Linux: a bound that cannot be measured is a failure, not a skip.
        None => panic!("{what}: no /proc/self/status, so the memory bound cannot be checked"),
    }
}

fn assert_decompress_error(what: &str, bytes: &[u8]) {
    let (result, growth) = peak_growth(|| Chunk::decode(bytes));
    let err = result.expect_err(what);
    assert!(
        matches!(err.kind, DecodeErrorKind::Decompress(_)),
        "{what}: {err}"
    );
    assert_bounded(what, growth);
}

#[test]
fn zstd_bombs_are_refused_within_the_payload_bound() {
    let _measuring = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    // 1 GiB of zeros in about 32 KiB: 64 times the payload bound.
    let bomb = zstd_zeros(1 << 30);
    assert!(bomb.len() < 64 << 10, "bomb is {} bytes", bomb.len());
    let bytes = chunk_bytes(FLAG_COMPRESSED, 1, &bomb);
    assert_decompress_error("1 GiB of zeros without a content size", &bytes);

    // Just past the bound: refused too, so the bound is the one that holds.
    let just_over = zstd_zeros(MAX_PAYLOAD_BYTES as u64 + 1);
    let bytes = chunk_bytes(FLAG_COMPRESSED, 1, &just_over);
    assert_decompress_error("16 MiB + 1 of zeros", &bytes);

    // A frame header claiming 1 TiB, or the size zstd reads as "error", with nothing
    // behind it.
    for claim in [1u64 << 40, u64::MAX - 1] {
        let bytes = chunk_bytes(FLAG_COMPRESSED, 1, &zstd_frame_claiming(claim));
        assert_decompress_error(&format!("a frame claiming {claim} bytes"), &bytes);
    }
    // u64::MAX is zstd's "unknown size": the empty frame decompresses to nothing.
    let bytes = chunk_bytes(FLAG_COMPRESSED, 1, &zstd_frame_claiming(u64::MAX));
    let (result, growth) = peak_growth(|| Chunk::decode(&bytes));
    assert_eq!(
        result.unwrap_err().kind,
        DecodeErrorKind::CountMismatch {
            expected: 1,
            found: 0
        }
    );
    assert_bounded("a frame of unknown size", growth);

    // Frames that each claim less than the bound but together more.
    let mut frames = Vec::new();
    for _ in 0..4 {
        frames.extend_from_slice(&zstd_frame_claiming(MAX_PAYLOAD_BYTES as u64 / 2));
    }
    let bytes = chunk_bytes(FLAG_COMPRESSED, 1, &frames);
    assert_decompress_error("four frames of 8 MiB each", &bytes);
}

#[test]
fn headers_claiming_huge_lengths_are_refused() {
    let _measuring = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let small = chunk_bytes(0, 0, &[]);
    // Payload length far past the bound, and just past it: refused on the claim alone.
    for len in [u32::MAX, MAX_PAYLOAD_BYTES as u32 + 1] {
        let mut bytes = small.clone();
        bytes[36..40].copy_from_slice(&len.to_le_bytes());
        let err = Chunk::decode(&bytes).unwrap_err();
        assert!(
            matches!(
                err.kind,
                DecodeErrorKind::TooLarge {
                    what: "payload length",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.offset, 36);
    }
    // Payload length at the bound but the bytes are not there: truncated, nothing read.
    let mut bytes = small.clone();
    bytes[36..40].copy_from_slice(&(MAX_PAYLOAD_BYTES as u32).to_le_bytes());
    assert!(matches!(
        Chunk::decode(&bytes).unwrap_err().kind,
        DecodeErrorKind::Truncated { .. }
    ));

    // One real event; the header claims billions, or the limit.
    let one_event = [2u8, 0, 1, b'x'];
    let err = Chunk::decode(&chunk_bytes(0, u32::MAX, &one_event)).unwrap_err();
    assert!(
        matches!(
            err.kind,
            DecodeErrorKind::TooLarge {
                what: "event count",
                ..
            }
        ),
        "{err}"
    );
    let (result, growth) = peak_growth(|| Chunk::decode(&chunk_bytes(0, MAX_EVENTS, &one_event)));
    assert_eq!(
        result.unwrap_err().kind,
        DecodeErrorKind::CountMismatch {
            expected: MAX_EVENTS,
            found: 1
        }
    );
    assert_bounded("a header claiming 2^20 events", growth);

    // Sanity: the bytes built here are real chunks.
    assert_eq!(&small[..4], &MAGIC);
    assert_eq!(small[4], MAJOR_VERSION);
    assert_eq!(small.len(), HEADER_LEN);
    assert_eq!(Chunk::decode(&small).unwrap().events, vec![]);
}
