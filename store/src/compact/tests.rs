use std::panic::{AssertUnwindSafe, catch_unwind};

use schemas::EventKind;

use super::*;
use crate::LocalStore;
use crate::parquet_io::{decode_events, encode_events, encode_sessions};
use crate::testsuite::{meta, row, sid, srow};

const DATE: &str = "2026-11-27";

/// A store with `n` ingester-named events objects (session `i % 3`, seqs `i*10..i*10+10`),
/// one sessions object each, and one row of object 0 written again into object 1.
fn store_with_small_objects(n: u64) -> (tempfile::TempDir, LocalStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStore::new(dir.path()).expect("store");
    for i in 0..n {
        let id = sid((i % 3) as u8 + 1);
        let mut rows: Vec<EventRow> = (i * 10..i * 10 + 10)
            .map(|s| row(id, s, EventKind::Output, format!("line {s}").as_bytes()))
            .collect();
        if i == 1 {
            rows.push(row(sid(1), 0, EventKind::Output, b"line 0"));
        }
        let stem = layout::object_stem("kafka", "t-0", i * 100);
        let m = ObjectMeta {
            first_offset: i * 100,
            end_offset: i * 100 + 100,
            ..meta()
        };
        store
            .put(
                &layout::events_key(DATE, &stem),
                &encode_events(&mut rows, &m).expect("encode"),
            )
            .expect("put");
        let mut srows = vec![srow(id, EventKind::Start, i * 10, 0, b"{}".to_vec())];
        store
            .put(
                &layout::sessions_key(DATE, &stem),
                &encode_sessions(&mut srows, &m).expect("encode"),
            )
            .expect("put");
    }
    (dir, store)
}

fn now_options() -> Options {
    Options {
        min_age: Duration::ZERO,
        ..Options::default()
    }
}

/// Every (session, seq) of `events/`, with duplicates.
fn all_rows(store: &dyn ObjectStore) -> Vec<(SessionId, u64)> {
    let mut out = Vec::new();
    for key in store.list("events/").expect("list") {
        let bytes = store.get(&key).expect("get");
        for r in decode_events(&key, &bytes, None).expect("decode") {
            out.push((r.session_id, r.seq));
        }
    }
    out.sort();
    out
}

#[test]
fn small_objects_merge_into_one_per_table_with_every_row_once() {
    let (_dir, store) = store_with_small_objects(6);
    let before = all_rows(&store);
    let s = compact(&store, &[DATE.to_string()], &now_options(), &mut |_| {}).expect("compact");
    assert_eq!((s.objects_before, s.objects_after), (12, 2), "{s:?}");
    assert_eq!(s.merged, 2);
    assert_eq!(s.duplicates, 1, "the row written twice is kept once");
    let mut expected = before.clone();
    expected.dedup();
    assert_eq!(all_rows(&store), expected);
    let keys = store.list("").expect("list");
    assert!(keys.iter().all(|k| is_merged(k)), "{keys:?}");
    for k in &keys {
        let stem = layout::key_stem(k).expect("stem");
        assert_eq!(
            layout::stem_first_offset(stem),
            None,
            "{k} looks like an ingester name"
        );
    }
    // A second run has nothing to do.
    let again = compact(&store, &[DATE.to_string()], &now_options(), &mut |_| {}).expect("again");
    assert_eq!((again.merged, again.objects_after), (0, 2));
}

#[test]
fn a_crash_at_any_step_leaves_every_row_readable_and_a_rerun_finishes() {
    for (point, nth) in [
        (step::AFTER_MANIFEST, 1),
        (step::AFTER_OUTPUT, 1),
        (step::AFTER_DELETE, 1),
        (step::AFTER_DELETE, 3),
        (step::BEFORE_MANIFEST_DELETE, 1),
    ] {
        let (_dir, store) = store_with_small_objects(5);
        let mut expected = all_rows(&store);
        expected.dedup();
        let mut seen = 0;
        let crashed = catch_unwind(AssertUnwindSafe(|| {
            compact(&store, &[DATE.to_string()], &now_options(), &mut |p| {
                if p == point {
                    seen += 1;
                    if seen == nth {
                        panic!("crash at {p}");
                    }
                }
            })
        }));
        assert!(crashed.is_err(), "{point}@{nth} was not reached");
        let mut now = all_rows(&store);
        now.dedup();
        assert_eq!(now, expected, "rows missing after a crash at {point}@{nth}");
        let s = compact(&store, &[DATE.to_string()], &now_options(), &mut |_| {}).expect("rerun");
        assert_eq!(
            all_rows(&store),
            expected,
            "after the re-run ({point}@{nth}): {s:?}"
        );
        assert!(store.list("compaction/").expect("list").is_empty());
        assert_eq!(s.objects_after, 2, "{point}@{nth}: {s:?}");
    }
}

#[test]
fn young_objects_and_a_lone_object_are_left_alone() {
    let (_dir, store) = store_with_small_objects(4);
    let young = Options {
        min_age: Duration::from_secs(3600),
        ..Options::default()
    };
    let s = compact(&store, &[DATE.to_string()], &young, &mut |_| {}).expect("compact");
    assert_eq!((s.merged, s.too_young, s.objects_after), (0, 8, 8), "{s:?}");
    let (_dir, store) = store_with_small_objects(1);
    let s = compact(&store, &[DATE.to_string()], &now_options(), &mut |_| {}).expect("compact");
    assert_eq!((s.merged, s.objects_after), (0, 2), "{s:?}");
}

#[test]
fn an_input_written_again_with_other_rows_survives_the_cleanup() {
    let (_dir, store) = store_with_small_objects(3);
    let first = store.list("events/").expect("list")[0].clone();
    let crashed = catch_unwind(AssertUnwindSafe(|| {
        compact(&store, &[DATE.to_string()], &now_options(), &mut |p| {
            if p == step::AFTER_OUTPUT {
                panic!("crash");
            }
        })
    }));
    assert!(crashed.is_err());
    // An ingester cut differently after a restart writes the same name with more rows.
    let mut rows = vec![row(sid(9), 0, EventKind::Output, b"new")];
    store
        .put(&first, &encode_events(&mut rows, &meta()).expect("encode"))
        .expect("put");
    compact(&store, &[DATE.to_string()], &now_options(), &mut |_| {}).expect("rerun");
    assert!(
        all_rows(&store).contains(&(sid(9), 0)),
        "the new row must not be deleted"
    );
}

#[test]
fn retention_hook_drops_the_named_sessions_rows() {
    let (_dir, store) = store_with_small_objects(6);
    let options = Options {
        drop_sessions: [sid(2)].into_iter().collect(),
        ..now_options()
    };
    let s = compact(&store, &[DATE.to_string()], &options, &mut |_| {}).expect("compact");
    assert!(s.dropped > 0);
    assert!(all_rows(&store).iter().all(|(id, _)| *id != sid(2)));
}

#[test]
fn dry_run_plans_without_touching_anything() {
    let (_dir, store) = store_with_small_objects(5);
    let keys = store.list("").expect("list");
    let options = Options {
        dry_run: true,
        ..now_options()
    };
    let s = compact(&store, &[DATE.to_string()], &options, &mut |_| {}).expect("plan");
    assert_eq!(s.plan.len(), 2);
    assert_eq!(s.plan[0].inputs.len(), 5);
    assert_eq!(store.list("").expect("list"), keys);
}

#[test]
fn target_bytes_cuts_the_plan() {
    let listed = |n: u64| -> Vec<Listed> {
        (0..n)
            .map(|i| Listed {
                key: format!("k{i}"),
                size: 10,
                modified: None,
            })
            .collect()
    };
    let groups = plan(listed(7), 30);
    let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
    assert_eq!(sizes, [3, 3], "the lone seventh is not merged with itself");
}
