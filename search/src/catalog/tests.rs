use super::*;
use schemas::{EndReason, RowKind};
use store::layout::{events_key, object_stem, sessions_key};
use store::parquet_io::{encode_events, encode_sessions};
use store::testsuite::{T0, meta, row, sid, srow};
use store::{LocalStore, ObjectStore};

fn put_events(store: &LocalStore, offset: u64, mut rows: Vec<EventRow>) {
    let bytes = encode_events(&mut rows, &meta()).unwrap();
    let key = events_key("2026-11-27", &object_stem("kafka", "t-0", offset));
    store.put(&key, &bytes).unwrap();
}

fn put_sessions(store: &LocalStore, offset: u64, mut rows: Vec<SessionRow>) {
    let bytes = encode_sessions(&mut rows, &meta()).unwrap();
    let key = sessions_key("2026-11-27", &object_stem("kafka", "t-0", offset));
    store.put(&key, &bytes).unwrap();
}

fn start(user: &str, time_ns: i64) -> Vec<u8> {
    SessionStart {
        user: user.into(),
        start_time_ns: time_ns,
        ..Default::default()
    }
    .to_bytes()
}

fn end(input_bytes: u64, output_bytes: u64) -> Vec<u8> {
    SessionEnd {
        exit_status: Some(0),
        reason: EndReason::Exit,
        event_count: 5,
        input_bytes,
        output_bytes,
        ..Default::default()
    }
    .to_bytes()
}

#[test]
fn seq_sets_count_each_seq_once() {
    let mut s = SeqSet::default();
    assert_eq!(s.insert(5, 5), 1);
    assert_eq!(s.insert(5, 5), 0);
    assert_eq!(s.insert(7, 9), 3);
    assert_eq!(s.insert(6, 6), 1);
    assert_eq!(s.ranges.len(), 1);
    assert_eq!(s.insert(0, 20), 21 - 5);
    assert_eq!(s.len, 21);
    assert_eq!(s.insert(u64::MAX, u64::MAX), 1);
    assert_eq!(s.insert(u64::MAX - 1, u64::MAX), 1);
    assert_eq!(s.len, 23);
    assert_eq!(s.ranges.len(), 2);
}

#[test]
fn list_sessions_merges_rows_and_measures_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    let (a, b, c, d) = (sid(1), sid(2), sid(3), sid(4));

    // a: started and ended; its events are split over two objects that overlap (a
    // re-processed batch with a different cut).
    let mut a_start = srow(a, EventKind::Start, 0, 0, start("alice", T0));
    a_start.time_ns = T0;
    put_sessions(
        &store,
        0,
        vec![a_start, srow(b, EventKind::Start, 0, 0, start("bob", T0))],
    );
    put_sessions(
        &store,
        10,
        vec![srow(a, EventKind::End, 4, 7_777, end(0, 0))],
    );
    put_events(
        &store,
        0,
        vec![
            row(a, 0, EventKind::Start, b"{}"),
            row(a, 1, EventKind::Input, b"ls\r"),
            row(a, 2, EventKind::Output, b"file\r\n"),
        ],
    );
    put_events(
        &store,
        2,
        vec![
            row(a, 2, EventKind::Output, b"file\r\n"),
            row(a, 3, EventKind::Resize, b"80x24"),
            row(a, 4, EventKind::End, b"{}"),
            // b is still running: no end row; its duration is its latest event.
            row(b, 0, EventKind::Start, b"{}"),
            row(b, 1, EventKind::Output, b"12345"),
            row(b, 9, EventKind::Marker, b"later"),
        ],
    );
    // c has events but no sessions rows (its start row is in a lost object).
    let mut c_row = row(c, 3, EventKind::Output, b"xy");
    c_row.time_ns = T0 - 1_000_000;
    c_row.elapsed_ns = 500;
    put_events(&store, 20, vec![c_row]);
    // d is sealed: two chunks, one duplicated; its bytes come from its end row.
    let sealed = |seq: u64, last: u64| EventRow {
        kind: RowKind::Sealed,
        seq_last: last,
        ..row(d, seq, RowKind::Sealed, &[0xEE; 40])
    };
    put_events(&store, 30, vec![sealed(0, 9), sealed(10, 14)]);
    put_events(&store, 31, vec![sealed(10, 14)]);
    put_sessions(
        &store,
        30,
        vec![
            srow(d, EventKind::Start, 0, 0, b"{broken".to_vec()),
            srow(d, EventKind::End, 14, 3_000, end(100, 2_000)),
        ],
    );
    // Damage and strangers.
    store
        .put("events/date=2026-11-27/broken.parquet", b"PAR1 not really")
        .unwrap();
    store
        .put("events/date=2026-11-27/README.txt", b"not an object")
        .unwrap();

    let (sessions, warnings) = list_sessions(&store).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].to_string().contains("broken.parquet"));

    let by_id = |id| sessions.iter().find(|s| s.id == id).unwrap();
    let sa = by_id(a);
    assert_eq!(sa.start.as_ref().unwrap().user, "alice");
    assert_eq!(sa.end.as_ref().unwrap().exit_status, Some(0));
    assert_eq!(sa.start_time_ns, T0);
    assert_eq!(sa.duration_ns, 7_777);
    assert_eq!(sa.event_count, 5);
    assert_eq!(sa.bytes, 3 + 6);

    let sb = by_id(b);
    assert!(sb.end.is_none());
    assert_eq!(sb.duration_ns, 9_000);
    assert_eq!(sb.event_count, 3);
    assert_eq!(sb.bytes, 5);

    let sc = by_id(c);
    assert!(sc.start.is_none() && sc.end.is_none());
    assert_eq!(sc.start_time_ns, T0 - 1_000_500);
    assert_eq!(sc.duration_ns, 500);
    assert_eq!((sc.event_count, sc.bytes), (1, 2));

    let sd = by_id(d);
    assert!(sd.start.is_none(), "unparseable start metadata");
    assert_eq!(sd.duration_ns, 3_000);
    assert_eq!(sd.event_count, 15);
    assert_eq!(sd.bytes, 2_100);

    let order: Vec<_> = sessions.iter().map(|s| s.id).collect();
    assert_eq!(order, vec![c, a, b, d]);
}

#[test]
fn an_empty_store_has_no_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    let (sessions, warnings) = list_sessions(&store).unwrap();
    assert!(sessions.is_empty() && warnings.is_empty());
}

fn info(id: SessionId) -> SessionInfo {
    SessionInfo {
        id,
        start: None,
        end: None,
        start_time_ns: 0,
        duration_ns: 0,
        event_count: 0,
        bytes: 0,
        sealed: false,
    }
}

#[test]
fn sessions_resolve_by_unique_prefix() {
    let ids: Vec<SessionId> = [
        "0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b",
        "0193a1b2-ffff-7e5f-8a6b-7c8d9e0f1a2b",
        "0290aaaa-0000-7000-8000-000000000000",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    let sessions: Vec<_> = ids.iter().copied().map(info).collect();

    assert_eq!(resolve_session(&sessions, "02").unwrap(), ids[2]);
    assert_eq!(resolve_session(&sessions, "0193a1b2-c").unwrap(), ids[0]);
    assert_eq!(resolve_session(&sessions, "0193A1B2C3").unwrap(), ids[0]);
    assert_eq!(
        resolve_session(&sessions, &ids[1].to_string()).unwrap(),
        ids[1]
    );
    assert_eq!(resolve_session(&sessions, " 0290 ").unwrap(), ids[2]);

    match resolve_session(&sessions, "0193") {
        Err(CatalogError::AmbiguousSession { query, candidates }) => {
            assert_eq!(query, "0193");
            assert_eq!(candidates, vec![ids[0].to_string(), ids[1].to_string()]);
        }
        other => panic!("{other:?}"),
    }
    for q in ["ff", "", "0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2c", "zz"] {
        let err = resolve_session(&sessions, q).unwrap_err();
        assert!(
            matches!(err, CatalogError::SessionNotFound { .. }),
            "{q}: {err:?}"
        );
        assert!(err.to_string().contains("replay ls"), "{err}");
    }
}

#[test]
fn session_events_are_sorted_and_deduplicated() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    let (a, b) = (sid(1), sid(2));
    put_events(
        &store,
        0,
        vec![
            row(a, 2, EventKind::Output, b"two"),
            row(b, 0, EventKind::Start, b"{}"),
            row(a, 0, EventKind::Start, b"{}"),
        ],
    );
    put_events(
        &store,
        5,
        vec![
            row(a, 1, EventKind::Input, b"one"),
            row(a, 2, EventKind::Output, b"two"),
        ],
    );
    store
        .put("events/date=2026-11-28/broken.parquet", &[1, 2, 3])
        .unwrap();

    let rows = session_events(&store, a).unwrap();
    let seqs: Vec<_> = rows.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![0, 1, 2]);
    assert!(rows.iter().all(|r| r.session_id == a));
    assert_eq!(rows[2].data, b"two");

    let (rows, warnings) = session_events_with_warnings(&store, b).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(warnings.len(), 1);
    assert!(session_events(&store, sid(9)).unwrap().is_empty());
}

#[test]
fn observers_see_every_events_row_read_duplicates_included() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    let (a, b) = (sid(1), sid(2));
    put_events(
        &store,
        0,
        vec![
            row(a, 0, EventKind::Start, b"{}"),
            row(b, 0, EventKind::Start, b"{}"),
        ],
    );
    put_events(
        &store,
        5,
        vec![
            row(a, 0, EventKind::Start, b"{}"),
            row(a, 1, EventKind::Output, b"x"),
        ],
    );

    let mut seen = Vec::new();
    let (sessions, _) =
        list_sessions_observing(&store, |r| seen.push((r.session_id, r.seq))).unwrap();
    seen.sort();
    assert_eq!(seen, vec![(a, 0), (a, 0), (a, 1), (b, 0)]);
    assert_eq!(sessions.len(), 2);

    let mut seen = Vec::new();
    let opened =
        find_and_open_session_observing(&store, &a.to_string(), |r| seen.push(r.seq)).unwrap();
    seen.sort();
    assert_eq!(seen, vec![0, 0, 1]);
    assert_eq!(opened.rows.len(), 2);
}
