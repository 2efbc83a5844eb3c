//! Golden vectors: the chunk format's bytes are checked in, so a change to the encoding
//! fails here and has to be made deliberately (new version, new vectors).
//!
//! To regenerate after a deliberate change: `AUDITTY_BLESS=1 cargo test -p schemas --test golden`.

use std::path::PathBuf;

use schemas::{Chunk, Event, EventKind, SessionId};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn sample() -> Chunk {
    let id: SessionId = "01a21f3b-221a-7488-9e75-52a1f7102ba1".parse().unwrap();
    let start = br#"{"version":1,"start_time_ns":1795820298778000000,"user":"alice","uid":1000,"host":"web-1","machine_id":null,"remote_addr":"192.0.2.7","command":["bash"],"term":"xterm-256color","cols":80,"rows":24,"agent_version":"0.1.0","envelope":null}"#;
    let mut events = vec![
        Event {
            seq: 0,
            elapsed_ns: 0,
            kind: EventKind::Start,
            data: start.to_vec(),
        },
        Event {
            seq: 1,
            elapsed_ns: 1_204_000,
            kind: EventKind::Output,
            data: b"$ ".to_vec(),
        },
        Event {
            seq: 2,
            elapsed_ns: 905_000_000,
            kind: EventKind::Input,
            data: b"l".to_vec(),
        },
        Event {
            seq: 3,
            elapsed_ns: 905_100_000,
            kind: EventKind::Output,
            data: b"l".to_vec(),
        },
        Event {
            seq: 4,
            elapsed_ns: 1_500_000_000,
            kind: EventKind::Resize,
            data: b"120x40".to_vec(),
        },
        Event {
            seq: 5,
            elapsed_ns: 1_600_000_000,
            kind: EventKind::Marker,
            data: b"deploy".to_vec(),
        },
        Event {
            seq: 6,
            elapsed_ns: 1_700_000_000,
            kind: EventKind::Output,
            data: "żółć 🦀\r\n".as_bytes().to_vec(),
        },
    ];
    // Repetitive output so that compression kicks in.
    events.push(Event {
        seq: 7,
        elapsed_ns: 1_800_000_000,
        kind: EventKind::Output,
        data: b"0123456789".repeat(40),
    });
    events.push(Event {
        seq: 8,
        elapsed_ns: 2_000_000_000,
        kind: EventKind::End,
        data: br#"{"version":1,"exit_status":0,"signal":null,"reason":"exit","event_count":9,"input_bytes":1,"output_bytes":417,"chain_hash":null,"detail":null}"#.to_vec(),
    });
    Chunk {
        session_id: id,
        events,
    }
}

fn check(name: &str, bytes: &[u8], compare_bytes: bool) {
    let path = data(name);
    if std::env::var_os("AUDITTY_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
    }
    let golden = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if compare_bytes {
        assert_eq!(
            bytes,
            &golden[..],
            "the encoding of {name} changed; bump the format version if that is deliberate"
        );
    }
    assert_eq!(
        Chunk::decode(&golden).unwrap(),
        sample(),
        "{name} no longer decodes to the same events"
    );
}

#[test]
fn plain_chunk_v1_bytes_are_stable() {
    check("chunk-v1.1-plain.bin", &sample().encode(false), true);
}

#[test]
fn chunks_written_by_format_1_0_still_decode() {
    for name in ["chunk-v1-plain.bin", "chunk-v1-zstd.bin"] {
        let golden = std::fs::read(data(name)).unwrap();
        assert_eq!(golden[5], 0, "{name} is a 1.0 chunk");
        assert_eq!(Chunk::decode(&golden).unwrap(), sample(), "{name}");
    }
}

#[test]
fn sealed_chunk_v1_opens_with_its_key() {
    // The nonce is random, so only decoding is pinned: key = 32 bytes of 0x42.
    let key = schemas::chunk::seal::DataKey::from_slice(&[0x42; 32]).unwrap();
    let path = data("chunk-v1.1-sealed.bin");
    if std::env::var_os("AUDITTY_BLESS").is_some() {
        let bytes = schemas::chunk::ChunkEncoder::new(true)
            .sealed_with(Some(key.clone()))
            .encode(&sample())
            .unwrap();
        std::fs::write(&path, bytes).unwrap();
    }
    let golden = std::fs::read(&path).unwrap();
    let sealed = schemas::chunk::seal::SealedChunk::parse(&golden).unwrap();
    assert_eq!(sealed.open(&key).unwrap(), sample());
    assert_eq!(sealed.first_elapsed_ns, sample().events[0].elapsed_ns);
}

#[test]
fn compressed_chunk_v1_still_decodes() {
    // zstd's output may change between library versions; what must not change is that
    // the checked-in bytes decode to the same events.
    let bytes = sample().encode(true);
    assert_eq!(bytes[6], 1, "the sample is meant to compress");
    check("chunk-v1.1-zstd.bin", &bytes, false);
}
