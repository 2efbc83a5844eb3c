//! Issue 19 item 5: `auditty-ingest compact` over real stores, and objects rewritten by
//! pyarrow (snappy, gzip, lz4, its own row groups, no bloom filter).
//!
//! Every test compares what an auditor gets (`replay export` of each session, byte for
//! byte, and `replay verify --all`) before compaction, at each point a `kill -9` can stop
//! it, and after, and checks the objects themselves: every `(session, seq)` exactly once.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use auditty_tests::broker::Broker;
use auditty_tests::compaction::{
    At, BUCKET, PREFIX, cmd, compact, play_requests, replay, table_objects,
};
use auditty_tests::moto::{Moto, open_s3_store, venv_bin};
use auditty_tests::s3_proxy::S3Proxy;
use auditty_tests::{PtySession, Sandbox, all_event_rows, assert_exactly_once, copy_tree, show};
use store::StoreUrl;
use terminal::pty::WinSize;

const T: Duration = Duration::from_secs(60);

/// The ids of the sessions in the store.
fn session_ids(sb: &Sandbox, at: &At) -> Vec<String> {
    let out = replay(sb, at, &["ls", "--scan", "--json"]);
    assert!(out.status.success(), "replay ls failed\n{}", show(&out));
    let listed: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).expect("ls --json parses");
    listed
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect()
}

/// What an auditor gets: the asciicast export of every session, by id.
fn exports(sb: &Sandbox, at: &At, ids: &[String]) -> BTreeMap<String, Vec<u8>> {
    ids.iter()
        .map(|id| {
            let out = replay(sb, at, &["export", id, "--format", "asciicast"]);
            assert!(out.status.success(), "export {id} failed\n{}", show(&out));
            (id.clone(), out.stdout)
        })
        .collect()
}

/// `replay verify --all` must say every session is complete (exit 0).
fn verify_all(sb: &Sandbox, at: &At, when: &str) -> String {
    let out = replay(sb, at, &["verify", "--all"]);
    assert!(
        out.status.success(),
        "verify --all {when} failed\n{}",
        show(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Records `n` short sessions with the real agent, ingesting after each, so that each
/// lands in objects of its own (many small objects, as a fleet of short sessions makes).
fn record_sessions(sb: &Sandbox, n: usize) {
    for i in 0..n {
        let script = format!(
            "for j in $(seq 1 150); do echo s{i}-line-$j; done; sleep 0.3; echo s{i}-done; exit {i}"
        );
        let out = sb.record_sh(&script);
        assert_eq!(out.status.code(), Some(i as i32), "{}", show(&out));
        sb.ingest();
    }
}

/// Rewrites Parquet files with pyarrow, as an operator exporting or rewriting objects
/// would: `pq.read_table` then `pq.write_table` with the codec and pyarrow's own defaults
/// (its row groups, no bloom filter, its Arrow schema in the footer).
fn rewrite_with_pyarrow(files: &[(PathBuf, &str)]) {
    let script = r#"
import os, sys
import pyarrow.parquet as pq
args = sys.argv[1:]
for path, codec in zip(args[0::2], args[1::2]):
    table = pq.read_table(path)
    tmp = path + ".pyarrow-tmp"
    pq.write_table(table, tmp, compression=codec)
    assert pq.ParquetFile(tmp).metadata.row_group(0).column(0).compression.lower().startswith(codec[:3]), codec
    os.replace(tmp, path)
"#;
    let mut c = Command::new(venv_bin("python"));
    c.arg("-c").arg(script);
    for (path, codec) in files {
        c.arg(path).arg(codec);
    }
    let out = c
        .output()
        .expect("run the venv's python (scripts/install-test-deps)");
    assert!(
        out.status.success(),
        "pyarrow rewrite failed\n{}",
        show(&out)
    );
}

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = auditty_tests::files_under(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    files
}

#[test]
fn a_local_store_compacts_through_kill_9_at_every_step_and_reads_the_same() {
    let sb = Sandbox::new();
    record_sessions(&sb, 5);
    let at = At::Dir(sb.store());
    let ids = session_ids(&sb, &at);
    assert_eq!(ids.len(), 5);
    let expected = exports(&sb, &at, &ids);
    let verified = verify_all(&sb, &at, "before anything");
    assert!(verified.contains("complete"), "{verified}");

    // Objects rewritten by pyarrow read the same: snappy, gzip and lz4 pages, pyarrow's
    // row groups, no bloom filter.
    let events = parquet_files(&sb.store().join("events"));
    let sessions = parquet_files(&sb.store().join("sessions"));
    assert!(events.len() >= 5 && sessions.len() >= 5, "{events:?}");
    rewrite_with_pyarrow(&[
        (events[0].clone(), "snappy"),
        (events[1].clone(), "gzip"),
        (events[2].clone(), "lz4"),
        (sessions[0].clone(), "snappy"),
        (sessions[1].clone(), "gzip"),
    ]);
    assert_eq!(
        exports(&sb, &at, &ids),
        expected,
        "objects rewritten by pyarrow must export the same"
    );
    verify_all(&sb, &at, "after the pyarrow rewrite");

    // An index built before compaction; play and export must not need it rebuilt.
    sb.run(sb.cmd("replay").args(["--no-access-log", "index"]));

    let (objects_before, bytes_before) = table_objects(sb.open_store().as_ref());

    // --dry-run changes nothing and says what it would merge.
    let before_keys = sb.open_store().list("").expect("list");
    let dry = compact(&sb, &at, &["--dry-run"], None);
    assert!(dry.status.success(), "{}", show(&dry));
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains("would merge"),
        "{}",
        show(&dry)
    );
    assert_eq!(sb.open_store().list("").expect("list"), before_keys);

    // kill -9 at each step of a merge, each on a copy of the store; the store is readable
    // right after the kill, and a re-run finishes the job.
    for point in [
        "compact-after-manifest",
        "compact-after-output",
        "compact-after-delete@2",
        "compact-before-manifest-delete",
    ] {
        let copy = sb.path().join(format!("copy-{}", point.replace('@', "-")));
        copy_tree(&sb.store(), &copy);
        let at_copy = At::Dir(copy.clone());
        let killed = compact(&sb, &at_copy, &[], Some(point));
        assert_eq!(
            killed.status.signal(),
            Some(9),
            "{point}\n{}",
            show(&killed)
        );
        assert_eq!(
            exports(&sb, &at_copy, &ids),
            expected,
            "right after a kill at {point}"
        );
        verify_all(&sb, &at_copy, &format!("right after a kill at {point}"));

        let rerun = compact(&sb, &at_copy, &[], None);
        assert!(
            rerun.status.success(),
            "re-run after {point}\n{}",
            show(&rerun)
        );
        let store = StoreUrl::Local(copy.clone()).open().expect("open copy");
        let rows = all_event_rows(store.as_ref());
        assert_exactly_once(&rows);
        let (objects_after, _) = table_objects(store.as_ref());
        assert!(
            objects_after < objects_before,
            "{point}: {objects_before} → {objects_after} objects"
        );
        assert!(
            store.list("compaction/").expect("list").is_empty(),
            "{point}: a manifest was left behind"
        );
        assert_eq!(
            exports(&sb, &at_copy, &ids),
            expected,
            "after re-run ({point})"
        );
        verify_all(&sb, &at_copy, &format!("after the re-run ({point})"));
    }

    // The real store, in one go.
    let out = compact(&sb, &at, &[], None);
    assert!(out.status.success(), "{}", show(&out));
    let summary = String::from_utf8_lossy(&out.stderr).into_owned();
    let store = sb.open_store();
    let (objects_after, bytes_after) = table_objects(store.as_ref());
    println!(
        "local store: {objects_before} objects ({bytes_before} bytes) → {objects_after} \
         objects ({bytes_after} bytes)\n{summary}"
    );
    assert_eq!(
        objects_after, 2,
        "one events and one sessions object for the day"
    );
    assert_exactly_once(&all_event_rows(store.as_ref()));
    assert_eq!(exports(&sb, &at, &ids), expected, "after compaction");
    verify_all(&sb, &at, "after compaction");

    // `replay play` with the index still naming the old objects.
    let mut env = sb.env();
    env.push(("AUDITTY_STORE", sb.store().display().to_string()));
    let mut p = PtySession::spawn(
        auditty_tests::bin("replay"),
        ["--no-access-log", "play", ids[2].as_str(), "--speed", "100"],
        &env,
        WinSize { cols: 80, rows: 24 },
    );
    let status = p.wait(T);
    assert!(status.success(), "play after compaction: {status}");
    assert!(
        p.rows().iter().any(|r| r.contains("s2-done")),
        "{:?}",
        p.rows()
    );

    // The index settles on the merged objects.
    let indexed = sb.run(sb.cmd("replay").args(["--no-access-log", "index"]));
    println!("{indexed}");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            auditty_tests::files_under(&sb.data_dir())
                .into_iter()
                .find(|p| p.ends_with("manifest.json"))
                .expect("the index has a manifest"),
        )
        .expect("read manifest"),
    )
    .expect("manifest parses");
    let objects: Vec<&str> = manifest["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .filter_map(|o| o.as_str())
        .collect();
    assert_eq!(objects.len(), 2, "{objects:?}");
    assert!(
        objects.iter().all(|o| o.contains("/compacted-")),
        "{objects:?}"
    );
    let listed = sb.sessions();
    assert_eq!(listed.len(), 5);
    assert!(
        listed.iter().all(|s| s["integrity"] == "complete"),
        "{listed:#?}"
    );
}

#[test]
fn a_store_written_through_kafka_to_s3_compacts_and_playback_needs_fewer_requests() {
    let sb = Sandbox::new();
    let broker = Broker::start(&sb.path().join("broker"));
    broker.create_topic("c", 2);
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let proxy = S3Proxy::start(moto.port());
    let at = At::S3(proxy.endpoint());

    // Sessions whose output comes in bursts a latency bound apart: many chunks each.
    for i in 0..3 {
        let script = format!("for j in $(seq 1 8); do echo k{i}-$j; sleep 0.3; done");
        let out = sb.record_sh(&script);
        assert!(out.status.success(), "{}", show(&out));
    }
    sb.run(sb.cmd("auditty-agent").args([
        "ship",
        "--once",
        "--brokers",
        &broker.address(),
        "--topic",
        "c",
    ]));
    // Small batches, as a quiet fleet with a short --max-batch-age-ms makes.
    let mut ingest = cmd(&sb, "auditty-ingest");
    ingest
        .args([
            "run",
            "--source",
            &broker.source("c"),
            "--group",
            "g",
            "--once",
        ])
        .args(["--max-batch-events", "4"])
        .args(at.args());
    let started = Instant::now();
    sb.run(&mut ingest);
    assert!(started.elapsed() < Duration::from_secs(120));

    let direct = open_s3_store(&moto.endpoint(), BUCKET, PREFIX);
    let rows_before = assert_exactly_once(&all_event_rows(direct.as_ref()));
    let (objects_before, bytes_before) = table_objects(direct.as_ref());
    assert!(
        objects_before >= 10,
        "{objects_before} objects: too few to show anything"
    );

    let ids = session_ids(&sb, &at);
    assert_eq!(ids.len(), 3);
    let expected = exports(&sb, &at, &ids);
    verify_all(&sb, &at, "before compaction");
    let (play_before, screen_before) = play_requests(&sb, &proxy, &ids[1]);
    assert!(
        screen_before.iter().any(|r| r.contains("k1-8")),
        "{screen_before:?}"
    );

    proxy.clear_log();
    let out = compact(&sb, &at, &[], None);
    assert!(out.status.success(), "{}", show(&out));
    let compaction_requests = proxy.log().len();

    let (objects_after, bytes_after) = table_objects(direct.as_ref());
    assert!(objects_after < objects_before);
    assert_eq!(
        assert_exactly_once(&all_event_rows(direct.as_ref())),
        rows_before
    );
    assert_eq!(exports(&sb, &at, &ids), expected, "after compaction");
    verify_all(&sb, &at, "after compaction");
    let (play_after, screen_after) = play_requests(&sb, &proxy, &ids[1]);
    assert_eq!(screen_after, screen_before);
    println!(
        "kafka → S3 store: {objects_before} objects ({bytes_before} bytes) → \
         {objects_after} objects ({bytes_after} bytes); compaction made \
         {compaction_requests} S3 requests; replay play: {play_before} S3 requests \
         before, {play_after} after\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        play_after < play_before,
        "play needs fewer requests after compaction: {play_before} → {play_after}"
    );
}
