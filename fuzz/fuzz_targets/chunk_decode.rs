//! `schemas::Chunk::decode` and `ChunkHeader::parse` on any bytes: never a panic, and what
//! decodes re-encodes (plain and zstd) to the same chunk.
//!
//! Each input is decoded twice: as it is, and with the header's payload length and CRC
//! set to match the bytes after the header, so that mutations of the payload reach the
//! event decoder instead of stopping at the checksum.
#![no_main]

use libfuzzer_sys::fuzz_target;
use schemas::Chunk;
use schemas::chunk::{ChunkHeader, HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() >= HEADER_LEN {
        let mut fixed = data.to_vec();
        let payload_len = (data.len() - HEADER_LEN) as u32;
        let crc = crc32fast::hash(&data[HEADER_LEN..]);
        fixed[36..40].copy_from_slice(&payload_len.to_le_bytes());
        fixed[40..44].copy_from_slice(&crc.to_le_bytes());
        check(&fixed);
    }
});

fn check(data: &[u8]) {
    if let Ok(header) = ChunkHeader::parse(data) {
        // The header is exactly its 44 bytes: nothing is lost or invented in parsing.
        assert_eq!(&header.to_bytes()[..], &data[..HEADER_LEN]);
        assert_eq!(ChunkHeader::parse(&header.to_bytes()), Ok(header));
        let _ = header.last_seq();
    }
    let Ok(chunk) = Chunk::decode(data) else {
        return;
    };
    let header = ChunkHeader::parse(data).expect("a decoded chunk has a header");
    assert_eq!(chunk.events.len() as u64, u64::from(header.event_count));
    for (i, e) in chunk.events.iter().enumerate() {
        assert_eq!(Some(e.seq), header.first_seq.checked_add(i as u64));
    }
    for compress in [false, true] {
        let bytes = chunk.encode(compress);
        let again = Chunk::decode(&bytes)
            .unwrap_or_else(|e| panic!("re-encoded chunk (compress {compress}) fails: {e}"));
        assert_eq!(again, chunk, "round trip (compress {compress})");
    }
}
