//! Bundles of synthetic sessions, signed as the agent signs them, built, damaged and
//! checked.

use proptest::prelude::*;
use schemas::chunk::ChunkEncoder;
use schemas::{Chunk, Event, EventKind, RowKind, SessionEnd, SessionStart};

use super::*;
use crate::bundle::{BundleRow, build, tar};
use integrity::{NodeKey, SessionChain};

const SEED: [u8; 32] = [1; 32];

/// One session id for the whole test binary (a v7 id has random bits).
fn id() -> SessionId {
    static ID: std::sync::OnceLock<SessionId> = std::sync::OnceLock::new();
    *ID.get_or_init(|| SessionId::new_v7_at(1_700_000_000_123_000_000))
}

fn data_key() -> DataKey {
    DataKey::from_slice(&[9; 32]).unwrap()
}

/// Rows of a session as the agent writes them: start, a few dozen events (sealed in
/// chunks of 4 with `sealed`), a checkpoint every 8 rows, end and a final checkpoint;
/// without `ended`, it stops before its end.
fn session(sealed: bool, ended: bool) -> Vec<BundleRow> {
    let id = id();
    let mut chain = SessionChain::new(id, NodeKey::from_seed(SEED));
    let mut rows: Vec<BundleRow> = Vec::new();
    let mut seq = 0u64;
    let mut enc = ChunkEncoder::new(true).sealed_with(sealed.then(data_key));
    let clear = |chain: &mut SessionChain,
                 rows: &mut Vec<BundleRow>,
                 seq: &mut u64,
                 kind,
                 data: Vec<u8>| {
        let e = Event {
            seq: *seq,
            elapsed_ns: *seq * 150_000_000,
            kind,
            data,
        };
        chain.add_event(&e);
        rows.push(BundleRow {
            seq: e.seq,
            seq_last: e.seq,
            elapsed_ns: e.elapsed_ns,
            kind: RowKind::Event(kind),
            data: e.data,
        });
        *seq += 1;
    };
    let start = SessionStart {
        version: 1,
        start_time_ns: id.start_time_ns().unwrap(),
        user: "alice".into(),
        host: "web-1".into(),
        command: vec!["bash".into(), "-l".into()],
        term: Some("xterm".into()),
        cols: 40,
        rows: 10,
        ..Default::default()
    };
    clear(
        &mut chain,
        &mut rows,
        &mut seq,
        EventKind::Start,
        start.to_bytes(),
    );
    let body = body();
    for group in body.chunks(4) {
        if sealed {
            let row = sealed_row(&mut enc, seq, group);
            chain.add_sealed_chunk(&row.data);
            seq = row.seq_last + 1;
            rows.push(row);
        } else {
            for (kind, data) in group {
                clear(&mut chain, &mut rows, &mut seq, *kind, data.clone());
            }
        }
        if rows.len().is_multiple_of(3) {
            let cp = chain.checkpoint(seq);
            clear(&mut chain, &mut rows, &mut seq, EventKind::Checkpoint, cp);
        }
    }
    if ended {
        let end = SessionEnd {
            version: 1,
            exit_status: Some(3),
            event_count: seq + 1,
            ..Default::default()
        };
        clear(
            &mut chain,
            &mut rows,
            &mut seq,
            EventKind::End,
            end.to_bytes(),
        );
    }
    let cp = chain.checkpoint(seq);
    clear(&mut chain, &mut rows, &mut seq, EventKind::Checkpoint, cp);
    rows
}

/// The events between start and end: keystrokes, output (UTF-8 and escapes), resizes,
/// hidden input and markers.
fn body() -> Vec<(EventKind, Vec<u8>)> {
    (0..24)
        .map(|i| match i % 6 {
            0 => (EventKind::Input, b"l".to_vec()),
            1 => (EventKind::Output, format!("line {i} żółw\r\n").into_bytes()),
            2 => (EventKind::Output, b"\x1b[1mbold\x1b[0m $ ".to_vec()),
            3 => (EventKind::Resize, b"50x12".to_vec()),
            4 => (EventKind::Redacted, b"7".to_vec()),
            _ => (EventKind::Marker, b"mark".to_vec()),
        })
        .collect()
}

/// The stored row of `group` sealed as one chunk from `seq` on.
fn sealed_row(enc: &mut ChunkEncoder, seq: u64, group: &[(EventKind, Vec<u8>)]) -> BundleRow {
    let events: Vec<Event> = group
        .iter()
        .enumerate()
        .map(|(i, (kind, data))| Event {
            seq: seq + i as u64,
            elapsed_ns: (seq + i as u64) * 150_000_000,
            kind: *kind,
            data: data.clone(),
        })
        .collect();
    let bytes = enc
        .encode(&Chunk {
            session_id: id(),
            events,
        })
        .unwrap();
    BundleRow {
        seq,
        seq_last: seq + group.len() as u64 - 1,
        elapsed_ns: seq * 150_000_000,
        kind: RowKind::Sealed,
        data: bytes,
    }
}

fn trust() -> TrustSet {
    let mut t = TrustSet::default();
    t.insert(NodeKey::from_seed(SEED).public(), "web-1 (ops)");
    t
}

fn plain_bundle() -> Vec<u8> {
    build(id(), &session(false, true), None).unwrap()
}

fn names_in(bytes: &[u8]) -> Vec<String> {
    tar::read(bytes)
        .unwrap()
        .iter()
        .map(|e| short(&e.name).to_string())
        .collect()
}

#[test]
fn a_fresh_bundle_is_intact_and_trusted_by_the_trust_file_only() {
    let bytes = plain_bundle();
    assert_eq!(
        names_in(&bytes),
        [
            "README.txt",
            "MANIFEST.sha256",
            "session.json",
            "session.cast",
            "transcript.txt",
            "rows.jsonl",
            "proof/checkpoints.jsonl",
            "proof/keys.txt",
            "proof/chain.json"
        ]
    );
    let v = check(&bytes, Some(&trust()));
    assert_eq!(v.findings, vec![]);
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.session, Some(id()));
    assert_eq!(v.keys[0].trust, Trust::Trusted("web-1 (ops)".into()));
    assert!(v.report.as_ref().unwrap().is_complete());

    // Intact, but not trusted: no trust file, or one without the key.
    let v = check(&bytes, None);
    assert!(v.intact() && !v.trusted() && !v.ok());
    assert_eq!(v.keys[0].trust, Trust::NoTrustFile);
    let mut other = TrustSet::default();
    other.insert(NodeKey::from_seed([2; 32]).public(), "elsewhere");
    let v = check(&bytes, Some(&other));
    assert!(v.intact() && !v.ok());
    assert_eq!(v.keys[0].trust, Trust::Untrusted);

    // The same rows give the same bytes.
    assert_eq!(bytes, plain_bundle());
}

#[test]
fn the_derived_members_say_what_the_rows_say() {
    let bytes = plain_bundle();
    let entries = tar::read(&bytes).unwrap();
    let get = |name: &str| {
        let e = entries.iter().find(|e| short(&e.name) == name).unwrap();
        String::from_utf8(e.data.to_vec()).unwrap()
    };
    let session: serde_json::Value = serde_json::from_str(&get(names::SESSION)).unwrap();
    assert_eq!(session["user"], "alice");
    assert_eq!(session["exit_status"], 3);
    assert_eq!(session["sealed"], false);
    assert_eq!(session["integrity"]["state"], "complete");
    assert_eq!(session["start_time"], "2023-11-14T22:13:20.123Z");
    let (h, events) = schemas::asciicast::parse_v2(&get(names::CAST)).unwrap();
    assert_eq!((h.width, h.height), (40, 10));
    assert!(events.iter().any(|e| e.data.contains("line 1 żółw")));
    assert!(get(names::TRANSCRIPT).contains("line 19 żółw"));
    let keys = get(names::KEYS);
    let key_line = keys.lines().find(|l| !l.starts_with('#')).unwrap();
    assert_eq!(
        key_line,
        format!("{} web-1", NodeKey::from_seed(SEED).public())
    );
    // The manifest is what sha256sum checks.
    let manifest = get(names::MANIFEST);
    assert_eq!(manifest.lines().count(), 8, "{manifest}");
    let readme = get(names::README);
    assert!(readme.contains("replay verify --bundle"), "{readme}");
    assert!(readme.contains("sha256sum -c MANIFEST.sha256"), "{readme}");
    let checkpoints = get(names::CHECKPOINTS);
    for line in checkpoints.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["checkpoint"]["through"], v["seq"]);
    }
}

/// What a change at byte `at` of `bytes` must be blamed on: the member whose header,
/// data or padding holds it.
fn owner(bytes: &[u8], at: usize) -> tar::Region {
    let entries = tar::read(bytes).unwrap();
    let members: Vec<(String, &[u8])> = entries.iter().map(|e| (e.name.clone(), e.data)).collect();
    let (again, layout) = tar::write(&members, super::super::mtime(id()));
    assert_eq!(again, bytes);
    layout.place(at)
}

/// Flips `mask` into byte `at` and asserts that the check fails, blaming the member that
/// holds the byte first (or, for a header whose name was hit, the damaged header).
fn assert_blamed(bytes: &[u8], at: usize, mask: u8) {
    let mut bad = bytes.to_vec();
    bad[at] ^= mask;
    let v = check(&bad, Some(&trust()));
    assert!(!v.ok(), "byte {at} ^ {mask:#x} went unnoticed");
    let first = v.findings.first().expect("a finding");
    let region = owner(bytes, at);
    let said = format!("{}: {}", first.member, first.problem);
    match &region {
        tar::Region::Header(m) => {
            let header_start = at - at % tar::BLOCK;
            assert!(
                first.member == short(m) || said.contains(&format!("at byte {header_start}")),
                "byte {at} ({region}): {said}"
            );
        }
        tar::Region::Data(m) | tar::Region::Padding(m) => {
            assert_eq!(first.member, short(m), "byte {at} ({region}): {said}");
            if matches!(region, tar::Region::Data(_)) {
                assert_eq!(v.blamed(), [short(m)], "byte {at} ({region}): {v:?}");
            }
        }
        tar::Region::End | tar::Region::Trailing => assert!(
            said.contains("end-of-archive") || said.contains("the member after"),
            "byte {at} ({region}): {said}"
        ),
    }
}

#[test]
fn a_changed_byte_in_each_member_and_in_the_framing_is_named() {
    let bytes = plain_bundle();
    let entries = tar::read(&bytes).unwrap();
    let mut at = 0;
    for e in &entries {
        let data_at = at + tar::BLOCK;
        // A header field (the mode), the middle of the data, the last data byte, padding.
        assert_blamed(&bytes, at + 101, 0x01);
        assert_blamed(&bytes, at + 20, 0x01);
        if !e.data.is_empty() {
            assert_blamed(&bytes, data_at + e.data.len() / 2, 0x01);
            assert_blamed(&bytes, data_at + e.data.len() - 1, 0x04);
        }
        let end = data_at + e.data.len();
        if !end.is_multiple_of(tar::BLOCK) {
            assert_blamed(&bytes, end, 0x80);
        }
        at = end.next_multiple_of(tar::BLOCK);
    }
    assert_blamed(&bytes, bytes.len() - 1, 0x01);
    assert_blamed(&bytes, bytes.len() - tar::BLOCK - 1, 0x01);
    // A header changed so that its checksum still adds up (two digits of the mode
    // swapped) is still not what replay writes.
    let mut bad = bytes.clone();
    bad.swap(104, 105);
    assert_ne!(bad, bytes);
    let v = check(&bad, Some(&trust()));
    assert_eq!(v.blamed(), ["README.txt"], "{v:?}");
    assert!(v.findings[0].problem.contains("the tar header of"), "{v:?}");
}

#[test]
fn sealed_sessions_carry_their_key_or_no_contents() {
    let rows = session(true, true);
    let with_key = build(id(), &rows, Some(&data_key())).unwrap();
    assert!(names_in(&with_key).contains(&"data-key.txt".to_string()));
    let v = check(&with_key, Some(&trust()));
    assert_eq!(v.findings, vec![]);
    assert!(v.ok() && v.sealed && v.contents);
    let entries = tar::read(&with_key).unwrap();
    let cast = entries
        .iter()
        .find(|e| e.name.ends_with("session.cast"))
        .unwrap();
    assert!(String::from_utf8_lossy(cast.data).contains("line 7 żółw"));

    // A wrong key opens nothing: that member is to blame.
    let mut members: Vec<(String, Vec<u8>)> = entries
        .iter()
        .map(|e| (e.name.clone(), e.data.to_vec()))
        .collect();
    for (name, data) in &mut members {
        if name.ends_with(names::DATA_KEY) {
            *data = format!("{}\n", B64.encode([8u8; 32])).into_bytes();
        }
    }
    let v = check(&rewrite(&members), Some(&trust()));
    assert_eq!(v.blamed(), ["data-key.txt"], "{v:?}");

    let without = build(id(), &rows, None).unwrap();
    let names = names_in(&without);
    assert!(
        !names
            .iter()
            .any(|n| n == "session.cast" || n == "transcript.txt" || n == "data-key.txt"),
        "{names:?}"
    );
    let v = check(&without, Some(&trust()));
    assert_eq!(v.findings, vec![]);
    assert!(v.ok() && v.sealed && !v.contents);
    let readme = &tar::read(&without).unwrap()[0];
    assert!(String::from_utf8_lossy(readme.data).contains("It was SEALED"));
}

fn rewrite(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let m: Vec<(String, &[u8])> = members
        .iter()
        .map(|(n, d)| (n.clone(), d.as_slice()))
        .collect();
    tar::write(&m, super::super::mtime(id())).0
}

#[test]
fn unknown_missing_repeated_and_moved_members_are_refused() {
    let bytes = plain_bundle();
    let members: Vec<(String, Vec<u8>)> = tar::read(&bytes)
        .unwrap()
        .iter()
        .map(|e| (e.name.clone(), e.data.to_vec()))
        .collect();
    let dir = directory(id());

    let mut extra = members.clone();
    extra.push((format!("{dir}notes.txt"), b"hi".to_vec()));
    let v = check(&rewrite(&extra), Some(&trust()));
    assert_eq!(v.blamed(), ["notes.txt"], "{v:?}");
    assert!(v.findings[0].problem.contains("unknown member"));

    let missing: Vec<_> = members
        .iter()
        .filter(|(n, _)| !n.ends_with(names::TRANSCRIPT))
        .cloned()
        .collect();
    let v = check(&rewrite(&missing), Some(&trust()));
    assert_eq!(v.blamed(), ["transcript.txt"], "{v:?}");
    assert_eq!(v.findings[0].problem, "missing");

    let mut twice = members.clone();
    twice.push(members[0].clone());
    let v = check(&rewrite(&twice), Some(&trust()));
    assert_eq!(v.blamed(), ["README.txt"], "{v:?}");

    let mut outside = members.clone();
    outside[3].0 = "elsewhere/session.cast".into();
    let v = check(&rewrite(&outside), Some(&trust()));
    assert!(v.blamed().contains(&"elsewhere/session.cast"), "{v:?}");

    let mut swapped = members.clone();
    swapped.swap(3, 4);
    let v = check(&rewrite(&swapped), Some(&trust()));
    assert_eq!(v.blamed(), ["the archive"], "{v:?}");
}

#[test]
fn a_session_bundled_unfinished_says_so() {
    let bytes = build(id(), &session(false, false), None).unwrap();
    let v = check(&bytes, Some(&trust()));
    assert_eq!(v.blamed(), ["rows.jsonl"], "{v:?}");
    assert!(v.findings[0].problem.contains("never ended"), "{v:?}");
    assert!(
        v.findings[0].problem.contains("agree with these rows"),
        "{v:?}"
    );
}

#[test]
fn rows_altered_consistently_everywhere_still_fail_their_signature() {
    // Someone rewrites a row and derives every other member again from the new rows.
    let mut rows = session(false, true);
    let i = rows
        .iter()
        .position(|r| r.kind == RowKind::Event(EventKind::Output))
        .unwrap();
    rows[i].data = b"rm -rf / # nothing to see\r\n".to_vec();
    let forged = build(id(), &rows, None).unwrap();
    let v = check(&forged, Some(&trust()));
    assert_eq!(v.blamed(), ["rows.jsonl"], "{v:?}");
    assert!(v.findings[0].problem.contains("altered"), "{v:?}");
    assert!(
        v.findings[0].problem.contains("agree with these rows"),
        "{v:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4000)) {
        let v = check(&bytes, Some(&trust()));
        prop_assert!(!v.ok());
    }

    #[test]
    fn any_changed_byte_is_caught_and_placed(at in any::<prop::sample::Index>(), mask in 1u8..=255) {
        let bytes = plain_bundle();
        assert_blamed(&bytes, at.index(bytes.len()), mask);
    }

    #[test]
    fn mutated_bundles_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        sealed in any::<bool>(),
    ) {
        let rows = session(sealed, true);
        let mut bytes = build(id(), &rows, sealed.then(data_key).as_ref()).unwrap();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let keep = bytes.len() - cut.index(bytes.len() / 4 + 1);
        bytes.truncate(keep);
        let _ = check(&bytes, Some(&trust()));
    }
}
