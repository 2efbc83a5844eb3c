use schemas::EventKind;
use store::testsuite::{T0, meta, row, sid, srow};
use store::{LocalStore, ObjectMeta};

use super::*;
use crate::{Hold, place_hold, read_tombstone};

const E1: &str = "events/date=2026-11-27/spool-p-00000000000000000000.parquet";
const E2: &str = "events/date=2026-11-28/spool-p-00000000000000000100.parquet";
const S1: &str = "sessions/date=2026-11-27/spool-p-00000000000000000000.parquet";

fn put_events(store: &LocalStore, key: &str, mut rows: Vec<store::EventRow>, meta: &ObjectMeta) {
    store
        .put(key, &parquet_io::encode_events(&mut rows, meta).unwrap())
        .unwrap();
}

/// Sessions 1 and 2 interleaved over two events objects and one sessions object.
fn store_with_two_sessions() -> (tempfile::TempDir, LocalStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    let (a, b) = (sid(1), sid(2));
    put_events(
        &store,
        E1,
        vec![
            row(a, 0, EventKind::Start, b"{}"),
            row(a, 1, EventKind::Output, b"secret"),
            row(b, 0, EventKind::Start, b"{}"),
        ],
        &meta(),
    );
    let mut m2 = meta();
    m2.first_offset = 250;
    m2.end_offset = 300;
    put_events(
        &store,
        E2,
        vec![row(a, 2, EventKind::Output, b"more secret")],
        &m2,
    );
    let mut srows = vec![
        srow(a, EventKind::Start, 0, 0, b"{}".to_vec()),
        srow(b, EventKind::Start, 0, 0, b"{}".to_vec()),
    ];
    store
        .put(
            S1,
            &parquet_io::encode_sessions(&mut srows, &meta()).unwrap(),
        )
        .unwrap();
    (dir, store)
}

fn ids_in(store: &LocalStore, key: &str) -> Vec<SessionId> {
    let bytes = store.get(key).unwrap();
    if key.starts_with("sessions/") {
        parquet_io::decode_sessions(key, &bytes)
            .unwrap()
            .iter()
            .map(|r| r.session_id)
            .collect()
    } else {
        parquet_io::decode_events(key, &bytes, None)
            .unwrap()
            .iter()
            .map(|r| r.session_id)
            .collect()
    }
}

/// Purges session `sid(n)` as the operator of `key`, with no node trust file.
fn purge_one(store: &LocalStore, n: u8, reason: &str, key: &NodeKey) -> Result<PurgeReport, Error> {
    purge(
        store,
        &[sid(n)],
        reason,
        &operator(key),
        &TrustSet::default(),
    )
}

fn operator(key: &NodeKey) -> Operator<'_> {
    Operator {
        key,
        name: "dpo".into(),
        os_user: "root".into(),
        host: "h".into(),
    }
}

#[test]
fn purge_removes_every_row_keeps_the_rest_and_the_footers() {
    let (_dir, store) = store_with_two_sessions();
    let key = NodeKey::from_seed([5; 32]);
    let report = purge_one(&store, 1, "GDPR 7", &key).unwrap();
    assert_eq!(report.rewritten, [E1, E2, S1]);
    assert_eq!(report.purged[0].rows, 4);
    assert!(!report.purged[0].resumed);
    assert_eq!(ids_in(&store, E1), [sid(2)]);
    assert!(
        ids_in(&store, E2).is_empty(),
        "an emptied object stays, empty"
    );
    assert_eq!(ids_in(&store, S1), [sid(2)]);
    let m = parquet_io::read_object_meta(E2, &store.get(E2).unwrap()).unwrap();
    assert_eq!((m.first_offset, m.end_offset), (250, 300));

    let mut ops = TrustSet::default();
    ops.insert(key.public(), "dpo-key");
    let t = read_tombstone(&store, sid(1), &ops)
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(t.state.is_trusted());
    assert_eq!(t.tombstone.reason, "GDPR 7");
    assert_eq!(t.tombstone.objects, [E1, E2, S1]);
    assert_eq!(
        t.tombstone.ledger, None,
        "unsigned rows give no ledger place"
    );

    // Nothing left and a tombstone: a second run changes nothing and says it resumed.
    let again = purge_one(&store, 1, "GDPR 7", &key).unwrap();
    assert!(again.purged[0].resumed);
    assert!(again.rewritten.is_empty());
    // A session that was never there is refused.
    let e = purge_one(&store, 9, "x", &key).unwrap_err();
    assert!(e.to_string().contains("nothing to purge"), "{e}");
}

#[test]
fn a_hold_blocks_purge_and_retention() {
    let (_dir, store) = store_with_two_sessions();
    place_hold(&store, &Hold::new(sid(1), "legal", "root", "h", "case 42")).unwrap();
    let key = NodeKey::from_seed([5; 32]);
    let e = purge_one(&store, 1, "x", &key).unwrap_err();
    assert!(matches!(e, Error::Held { .. }), "{e}");
    assert!(e.to_string().contains("case 42"));
    assert_eq!(ids_in(&store, E2), [sid(1)], "nothing was touched");
    assert!(
        read_tombstone(&store, sid(1), &TrustSet::default())
            .unwrap()
            .is_none()
    );

    // sid(1) started in 2004 and sid(2) in 2039: with T0 (2026) as the cutoff only sid(1)
    // is old enough, and it is held.
    let (holds, _) = read_holds(&store).unwrap();
    assert!(sid(1).start_time_ns().unwrap() < T0 && sid(2).start_time_ns().unwrap() > T0);
    assert_eq!(
        expired(&store, T0, &holds).unwrap().0,
        Vec::<SessionId>::new()
    );
    assert_eq!(expired(&store, T0, &BTreeMap::new()).unwrap().0, [sid(1)]);
}

#[test]
fn an_interrupted_purge_is_finished_by_running_it_again() {
    let (_dir, store) = store_with_two_sessions();
    let key = NodeKey::from_seed([5; 32]);
    // As if the first run stopped after its tombstone and first object.
    let t = tombstone::unsigned(sid(1), None, (0, 0), &operator(&key), "first", vec![]);
    store
        .put(&tombstone_key(sid(1)), &t.sign(&key).unwrap())
        .unwrap();
    rewrite(&store, E1, &BTreeSet::from([sid(1)])).unwrap();
    let report = purge_one(&store, 1, "second", &key).unwrap();
    assert!(report.purged[0].resumed);
    assert_eq!(report.rewritten, [E2, S1]);
    let t = read_tombstone(&store, sid(1), &TrustSet::default())
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(t.tombstone.reason, "first", "the first tombstone is kept");

    // A tombstone that was changed after signing is refused, not overwritten.
    let text = String::from_utf8(store.get(&tombstone_key(sid(1))).unwrap()).unwrap();
    store
        .put(
            &tombstone_key(sid(1)),
            text.replace("first", "forged").as_bytes(),
        )
        .unwrap();
    let e = purge_one(&store, 1, "x", &key).unwrap_err();
    assert!(e.to_string().contains("signature does not match"), "{e}");
}
