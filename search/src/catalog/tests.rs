use super::*;
use schemas::{EndReason, RowKind};
use std::collections::BTreeMap;
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
        vec![srow(a, EventKind::End, 4, 4_000, end(0, 0))],
    );
    put_events(
        &store,
        0,
        vec![
            row(a, 0, EventKind::Start, &start("alice", T0)),
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
            row(a, 4, EventKind::End, &end(0, 0)),
            // b is still running: no end row; its duration is its latest event.
            row(b, 0, EventKind::Start, &start("bob", T0)),
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
    assert_eq!(sa.duration_ns, 4_000);
    assert_eq!(sa.provenance, Provenance::Chained);
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
    assert_eq!(
        sd.provenance,
        Provenance::Unchained,
        "no clear start/end row"
    );

    let order: Vec<_> = sessions.iter().map(|s| s.id).collect();
    assert_eq!(order, vec![c, a, b, d]);
}

#[test]
fn what_is_shown_is_the_chained_start_and_end_not_the_sessions_table() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    let (a, b) = (sid(1), sid(2));
    put_events(
        &store,
        0,
        vec![
            row(a, 0, EventKind::Start, &start("erin", T0)),
            row(a, 1, EventKind::End, &end(1, 2)),
            row(b, 0, EventKind::Start, &start("bob", T0)),
        ],
    );
    // a's copy in sessions/ was rewritten; b's start copy agrees, and b has no end yet.
    put_sessions(
        &store,
        0,
        vec![
            srow(a, EventKind::Start, 0, 0, start("mallory", T0)),
            srow(a, EventKind::End, 1, 1_000, end(1, 2)),
            srow(b, EventKind::Start, 0, 0, start("bob", T0)),
        ],
    );
    let (sessions, _) = list_sessions(&store).unwrap();
    let shown: Vec<_> = sessions
        .iter()
        .map(|s| (s.start.as_ref().unwrap().user.as_str(), s.provenance))
        .collect();
    assert_eq!(
        shown,
        [
            ("erin", Provenance::SessionsTableDiffers),
            ("bob", Provenance::Chained)
        ]
    );
    let opened = open_session(&store, a).unwrap();
    assert_eq!(opened.info.start.unwrap().user, "erin");
    assert_eq!(opened.info.provenance, Provenance::SessionsTableDiffers);

    // An end row's time is part of what is shown (the duration): a changed one differs.
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    put_events(
        &store,
        0,
        vec![row(a, 0, EventKind::Start, &start("erin", T0))],
    );
    put_events(&store, 5, vec![row(a, 1, EventKind::End, &end(1, 2))]);
    put_sessions(
        &store,
        0,
        vec![
            srow(a, EventKind::Start, 0, 0, start("erin", T0)),
            srow(a, EventKind::End, 1, 999_000, end(1, 2)),
        ],
    );
    let info = open_session(&store, a).unwrap().info;
    assert_eq!(info.duration_ns, 1_000);
    assert_eq!(info.provenance, Provenance::SessionsTableDiffers);
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
        provenance: Provenance::Chained,
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

/// A store shaped like the ingester's: each row under the date of its own time.
struct DatedStore {
    store: LocalStore,
    offset: u64,
}

impl DatedStore {
    fn put_events(&mut self, rows: Vec<EventRow>) {
        let mut by_date: BTreeMap<String, Vec<EventRow>> = BTreeMap::new();
        for r in rows {
            by_date
                .entry(schemas::time::date(r.time_ns))
                .or_default()
                .push(r);
        }
        for (date, mut rows) in by_date {
            self.offset += 10;
            let bytes = encode_events(&mut rows, &meta()).unwrap();
            let key = events_key(&date, &object_stem("kafka", "t-0", self.offset));
            self.store.put(&key, &bytes).unwrap();
        }
    }

    fn put_sessions(&mut self, mut rows: Vec<SessionRow>) {
        self.offset += 10;
        let date = schemas::time::date(rows[0].time_ns);
        let bytes = encode_sessions(&mut rows, &meta()).unwrap();
        let key = sessions_key(&date, &object_stem("kafka", "t-0", self.offset));
        self.store.put(&key, &bytes).unwrap();
    }
}

/// `n` rows of session `id` started at `start_ns`, one every `step_ns`.
fn timed_rows(id: SessionId, start_ns: i64, n: u64, step_ns: u64) -> Vec<EventRow> {
    (0..n)
        .map(|seq| EventRow {
            session_id: id,
            seq,
            seq_last: seq,
            elapsed_ns: seq * step_ns,
            time_ns: start_ns + (seq * step_ns) as i64,
            kind: if seq % 2 == 0 {
                EventKind::Output
            } else {
                EventKind::Input
            }
            .into(),
            data: format!("{id} {seq}").into_bytes(),
        })
        .collect()
}

fn start_end(id: SessionId, start_ns: i64, elapsed_ns: u64, ends: bool) -> Vec<SessionRow> {
    let row = |kind, elapsed: u64, metadata| SessionRow {
        session_id: id,
        kind,
        seq: 0,
        time_ns: start_ns + elapsed as i64,
        elapsed_ns: elapsed,
        metadata,
    };
    let mut rows = vec![row(EventKind::Start, 0, start("u", start_ns))];
    if ends {
        rows.push(row(EventKind::End, elapsed_ns, end(10, 20)));
    }
    rows
}

#[test]
fn opening_sessions_together_gives_what_opening_each_gives() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = DatedStore {
        store: LocalStore::new(dir.path()).unwrap(),
        offset: 0,
    };
    let sec = 1_000_000_000u64;
    // 2026-11-27 23:59:00 UTC: sessions that cross midnight have rows in two dates.
    let t = 1_795_823_940_000_000_000i64;
    let ids: Vec<SessionId> = (0..6)
        .map(|i| SessionId::new_v7_at(t + i * 1_000_000))
        .collect();
    let mut starts = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        let start_ns = id.start_time_ns().unwrap();
        let rows = timed_rows(id, start_ns, 40, 3 * sec);
        // ids[4] never ended; ids[5]'s start row is filed under another date.
        starts.extend(start_end(id, start_ns, 39 * 3 * sec, i != 4));
        // Re-ingested duplicates of a few rows, in an object of their own.
        s.put_events(rows[..5].to_vec());
        s.put_events(rows);
    }
    let (misplaced, rest): (Vec<_>, Vec<_>) =
        starts.into_iter().partition(|r| r.session_id == ids[5]);
    s.put_sessions(rest);
    let mut misplaced = misplaced;
    misplaced[0].time_ns += 3 * 86_400 * sec as i64;
    s.put_sessions(misplaced);
    // An id without a timestamp, and one the store has nothing of.
    let odd = sid(7);
    s.put_events(vec![row(odd, 0, EventKind::Output, b"x")]);
    let mut all = ids.clone();
    all.extend([odd, SessionId::new_v7_at(t)]);

    let mut seen_each = Vec::new();
    let each: Vec<String> = all
        .iter()
        .map(|&id| {
            let o = open_session_observing(&s.store, id, &mut |r| {
                seen_each.push((r.session_id, r.seq))
            })
            .unwrap();
            format!("{:?} {:?} {}", o.info, o.rows, o.warnings.len())
        })
        .collect();
    let mut seen_together = Vec::new();
    let mut together = Vec::new();
    open_sessions_observing(
        &s.store,
        &all,
        &mut |r| seen_together.push((r.session_id, r.seq)),
        &mut |o: OpenedSession| {
            together.push(format!("{:?} {:?} {}", o.info, o.rows, o.warnings.len()));
            Ok::<(), StoreError>(())
        },
    )
    .unwrap();
    assert_eq!(together, each);
    seen_each.sort();
    seen_together.sort();
    assert_eq!(seen_together, seen_each);
    assert_eq!(seen_each.len(), 6 * 45 + 1);

    // A damaged object of the second date: the sessions it may hold are opened one by
    // one, with the warning.
    let date = schemas::time::date(t + 86_400 * sec as i64);
    s.store
        .put(&format!("events/date={date}/broken.parquet"), &[1, 2, 3])
        .unwrap();
    let mut warned = Vec::new();
    open_sessions_observing(&s.store, &ids, &mut |_| {}, &mut |o: OpenedSession| {
        warned.push(o.warnings.len());
        Ok::<(), StoreError>(())
    })
    .unwrap();
    assert_eq!(warned, vec![1; 6]);
}

/// A store that, right after it answers the first listing of `events/`, compacts itself:
/// every object in that listing is gone by the time the reader gets to it, and its rows
/// are in a merged object the listing did not show.
struct CompactsAfterListing {
    inner: LocalStore,
    fired: std::sync::atomic::AtomicBool,
}

impl ObjectStore for CompactsAfterListing {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.inner.put(key, bytes)
    }
    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        self.inner.get(key)
    }
    fn get_range(&self, key: &str, range: std::ops::Range<u64>) -> Result<Vec<u8>, StoreError> {
        self.inner.get_range(key, range)
    }
    fn size(&self, key: &str) -> Result<u64, StoreError> {
        self.inner.size(key)
    }
    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.inner.exists(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let listed = self.inner.list(prefix)?;
        if prefix.starts_with("events/")
            && !self.fired.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            let options = store::compact::Options {
                min_age: std::time::Duration::ZERO,
                ..Default::default()
            };
            let dates = store::compact::dates(&self.inner)?;
            let s = store::compact::compact(&self.inner, &dates, &options, &mut |_| {})?;
            assert!(s.merged >= 1, "{s:?}");
        }
        Ok(listed)
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key)
    }
    fn describe(&self) -> String {
        format!("{} (compacting)", self.inner.describe())
    }
}

fn compacting_store(dir: &std::path::Path) -> CompactsAfterListing {
    let inner = LocalStore::new(dir).unwrap();
    for i in 0..4u64 {
        let rows = (i * 5..i * 5 + 5)
            .map(|s| row(sid(1), s, EventKind::Output, format!("o{s}").as_bytes()))
            .collect();
        put_events(&inner, i * 100, rows);
    }
    put_sessions(
        &inner,
        0,
        vec![srow(sid(1), EventKind::Start, 0, 0, start("ann", T0))],
    );
    put_sessions(
        &inner,
        100,
        vec![srow(sid(1), EventKind::End, 19, 19_000, end(0, 10))],
    );
    CompactsAfterListing {
        inner,
        fired: Default::default(),
    }
}

#[test]
fn readers_miss_no_row_when_a_compaction_deletes_what_they_listed() {
    let dir = tempfile::tempdir().unwrap();
    let store = compacting_store(dir.path());
    let opened = open_session(&store, sid(1)).unwrap();
    assert!(opened.warnings.is_empty(), "{:?}", opened.warnings);
    let seqs: Vec<u64> = opened.rows.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (0..20).collect::<Vec<_>>());

    let dir = tempfile::tempdir().unwrap();
    let store = compacting_store(dir.path());
    let (sessions, warnings) = list_sessions(&store).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].event_count, 20);
}
