//! Writes the generated seed corpora: `seeds OUT_DIR` fills `OUT_DIR/<target>/` with valid
//! inputs made by the project's own writers, so each fuzz target starts from the shapes it
//! really reads instead of discovering Parquet or a signed checkpoint from nothing.
//! (`scripts/fuzz` adds the golden vectors of `schemas/tests/data/` beside them.)
//!
//! Not a fuzz target; nothing here is checked in as a blob.

use std::path::{Path, PathBuf};

use integrity::checkpoint::Checkpoint;
use integrity::keys::NodeKey;
use integrity::ledger::sign_head;
use schemas::chunk::ChunkEncoder;
use schemas::chunk::seal::DataKey;
use schemas::{Chunk, EndReason, Event, EventKind, RowKind, SessionEnd, SessionStart};
use spool::{SpoolOptions, SpoolWriter};
use store::parquet_io::{encode_events, encode_sessions};
use store::testsuite::{T0, meta, row, sid, srow};

/// The key `sealed_chunk` opens with.
const FUZZ_DATA_KEY: [u8; 32] = [7; 32];

fn main() {
    let out = PathBuf::from(std::env::args_os().nth(1).expect("usage: seeds OUT_DIR"));
    let mut written = 0usize;
    let mut put = |target: &str, name: &str, bytes: &[u8]| {
        let dir = out.join(target);
        std::fs::create_dir_all(&dir).expect("create the seed directory");
        std::fs::write(dir.join(name), bytes).expect("write a seed");
        written += 1;
    };

    for (name, bytes) in chunks() {
        put("chunk_decode", &name, &bytes);
        put("sealed_chunk", &name, &bytes);
    }
    for (name, bytes) in signed() {
        put("checkpoint_and_ledger", &name, &bytes);
    }
    for (name, bytes) in segments(&chunks()) {
        put("spool_scan", &name, &bytes);
    }
    for (name, bytes) in parquet() {
        put("parquet_read", &name, &bytes);
    }
    println!("{written} seeds written to {}", out.display());
}

fn start_json() -> Vec<u8> {
    SessionStart {
        version: 1,
        start_time_ns: T0,
        user: "alice".into(),
        host: "web-1".into(),
        command: vec!["bash".into(), "-l".into()],
        ..Default::default()
    }
    .to_bytes()
}

fn end_json() -> Vec<u8> {
    SessionEnd {
        version: 1,
        exit_status: Some(3),
        reason: EndReason::Exit,
        event_count: 42,
        ..Default::default()
    }
    .to_bytes()
}

/// A chunk of every event kind, and one of bulk output that compresses.
fn sample_chunks() -> Vec<Chunk> {
    let data = |k: EventKind| -> Vec<u8> {
        match k {
            EventKind::Start => start_json(),
            EventKind::End => end_json(),
            EventKind::Resize => b"120x40".to_vec(),
            EventKind::Redacted => b"12".to_vec(),
            EventKind::Marker => b"deploy".to_vec(),
            _ => "$ ls -l żółć 🦀\r\n".as_bytes().to_vec(),
        }
    };
    let all = Chunk {
        session_id: sid(1),
        events: EventKind::ALL
            .iter()
            .enumerate()
            .map(|(i, &k)| Event {
                seq: i as u64,
                elapsed_ns: i as u64 * 1_250_000,
                kind: k,
                data: data(k),
            })
            .collect(),
    };
    let bulk = Chunk {
        session_id: sid(2),
        events: (0..40)
            .map(|i| Event {
                seq: 1000 + i,
                elapsed_ns: 5_000_000_000 + i * 1000,
                kind: EventKind::Output,
                data: format!("line {i}: drwxr-xr-x 2 root root 4096 .\r\n").into_bytes(),
            })
            .collect(),
    };
    let empty = Chunk {
        session_id: sid(3),
        events: Vec::new(),
    };
    vec![all, bulk, empty]
}

/// The sample chunks plain, compressed and sealed under [`FUZZ_DATA_KEY`].
fn chunks() -> Vec<(String, Vec<u8>)> {
    let key = DataKey::from_slice(&FUZZ_DATA_KEY).expect("32 bytes");
    let mut sealing = ChunkEncoder::new(true).sealed_with(Some(key));
    let mut out = Vec::new();
    for (i, c) in sample_chunks().iter().enumerate() {
        out.push((format!("gen-{i}-plain.bin"), c.encode(false)));
        out.push((format!("gen-{i}-zstd.bin"), c.encode(true)));
        let sealed = sealing.encode(c).expect("seal a chunk");
        out.push((format!("gen-{i}-sealed.bin"), sealed));
    }
    out
}

/// A signed checkpoint (versions 1 and 2 differ only in `g`) and a ledger head, as record
/// and as the JSON the store keeps.
fn signed() -> Vec<(String, Vec<u8>)> {
    let key = NodeKey::from_seed([5; 32]);
    let session = sid(1);
    let tags: Vec<u8> = (1..=12).collect();
    let cp = Checkpoint::sign(&key, session, 4, 10, 2, &[9; 32], &tags);
    let mut v1 = cp.clone();
    v1.v = 1;
    v1.g = None;
    let head = sign_head(&key, 42, session, T0);
    vec![
        ("checkpoint-v2.json".into(), cp.to_bytes()),
        ("checkpoint-v1.json".into(), v1.to_bytes()),
        ("ledger-head.record".into(), head.to_record()),
        ("ledger-head.json".into(), head.to_json()),
    ]
}

/// Spool segments written by `SpoolWriter`: every sample chunk as an entry, and the same
/// with damage in the middle and a torn tail.
fn segments(chunks: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    let dir = std::env::temp_dir().join(format!("auditty-fuzz-seeds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut writer =
        SpoolWriter::create(&dir, "seed", SpoolOptions::default()).expect("create a spool writer");
    for (_, bytes) in chunks.iter().take(6) {
        writer.append(bytes).expect("append an entry");
    }
    let path = writer.current_segment().to_path_buf();
    writer.finish().expect("finish the segment");
    let whole = read(&path);
    let _ = std::fs::remove_dir_all(&dir);

    let mut damaged = whole.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0xff;
    let mut torn = whole.clone();
    torn.truncate(whole.len() - 7);
    vec![
        ("segment.seg".into(), whole),
        ("segment-damaged.seg".into(), damaged),
        ("segment-torn.seg".into(), torn),
    ]
}

/// `events` objects (elapsed in µs and in ns, sealed and unknown rows, two sessions) and a
/// `sessions` object.
fn parquet() -> Vec<(String, Vec<u8>)> {
    let (a, b) = (sid(1), sid(2));
    let mut events_us = vec![
        row(a, 0, EventKind::Start, &start_json()),
        row(a, 1, EventKind::Output, b"$ "),
        row(a, 2, EventKind::Input, b"ls\r"),
        row(a, 3, EventKind::Resize, b"100x30"),
        row(b, 0, EventKind::Start, &start_json()),
        row(b, 1, RowKind::Sealed, &[0xab; 90]),
        row(b, 7, RowKind::Unknown("future".into()), b"?"),
        row(a, 4, EventKind::End, &end_json()),
    ];
    let mut events_ns = events_us.clone();
    for (i, r) in events_ns.iter_mut().enumerate() {
        r.elapsed_ns += i as u64 + 1;
    }
    let mut sessions = vec![
        srow(a, EventKind::Start, 0, 0, start_json()),
        srow(a, EventKind::End, 4, 4_000, end_json()),
        srow(b, EventKind::Start, 0, 0, b"not json".to_vec()),
    ];
    vec![
        (
            "events-us.parquet".into(),
            encode_events(&mut events_us, &meta()).expect("encode events"),
        ),
        (
            "events-ns.parquet".into(),
            encode_events(&mut events_ns, &meta()).expect("encode events"),
        ),
        (
            "sessions.parquet".into(),
            encode_sessions(&mut sessions, &meta()).expect("encode sessions"),
        ),
    ]
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}
