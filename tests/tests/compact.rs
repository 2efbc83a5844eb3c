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
use std::sync::Once;
use std::time::{Duration, Instant};

use auditty_tests::broker::Broker;
use auditty_tests::moto::{Moto, s3_env, venv_bin};
use auditty_tests::s3_proxy::S3Proxy;
use auditty_tests::{PtySession, Sandbox, all_event_rows, assert_exactly_once, copy_tree, show};
use store::{ObjectStore, S3Options, StoreUrl};
use terminal::pty::WinSize;

const T: Duration = Duration::from_secs(60);

/// `--store` and friends for one store: a directory, or the S3 bucket behind an endpoint.
#[derive(Clone)]
enum At {
    Dir(PathBuf),
    S3(String),
}

const BUCKET: &str = "audit";
const PREFIX: &str = "fleet";

impl At {
    fn args(&self) -> Vec<String> {
        match self {
            At::Dir(p) => vec!["--store".into(), p.display().to_string()],
            At::S3(endpoint) => vec![
                "--store".into(),
                format!("s3://{BUCKET}/{PREFIX}"),
                "--s3-endpoint".into(),
                endpoint.clone(),
            ],
        }
    }
}

/// One of our binaries with the sandbox's environment and moto's credentials. The store
/// flags go after the subcommand (`At::args`): they are the ingester's subcommand's own.
fn cmd(sb: &Sandbox, name: &str) -> Command {
    let mut c = sb.cmd(name);
    c.envs(s3_env());
    c
}

/// `replay --no-access-log ARGS --store …` (the access log would add objects and
/// requests of its own to what the tests count).
fn replay(sb: &Sandbox, at: &At, args: &[&str]) -> std::process::Output {
    let mut c = cmd(sb, "replay");
    c.arg("--no-access-log").args(args).args(at.args());
    sb.output(&mut c)
}

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

/// `auditty-ingest compact --min-age 0 EXTRA`, with `failpoint` armed if given.
fn compact(sb: &Sandbox, at: &At, extra: &[&str], failpoint: Option<&str>) -> std::process::Output {
    let mut c = cmd(sb, "auditty-ingest");
    c.args(["compact", "--min-age", "0"])
        .args(at.args())
        .args(extra);
    if let Some(fp) = failpoint {
        c.env("AUDITTY_FAILPOINT", fp);
    }
    sb.output(&mut c)
}

/// Parquet objects of `events/` and `sessions/` and their bytes.
fn table_objects(store: &dyn ObjectStore) -> (usize, u64) {
    let mut n = 0;
    let mut bytes = 0;
    for table in ["events/", "sessions/"] {
        for o in store.list_info(table).expect("list") {
            if o.key.ends_with(".parquet") {
                n += 1;
                bytes += o.size;
            }
        }
    }
    (n, bytes)
}

/// Records `n` short sessions with the real agent, ingesting after each, so that each
/// lands in objects of its own (many small objects, as a fleet of short sessions makes).
fn record_sessions(sb: &Sandbox, n: usize) {
    for i in 0..n {
        let script = format!(
            "for j in $(seq 1 150); do echo s{i}-line-$j; done; sleep 0.3; echo s{i}-done; exit {i}"
        );
        let out = sb.output(
            sb.cmd("auditty-agent")
                .args(["record", "-q", "--", "sh", "-c", &script]),
        );
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

fn test_credentials() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (k, v) in s3_env() {
            // SAFETY: set once, before any thread of this process reads them.
            unsafe { std::env::set_var(k, v) };
        }
    });
}

/// Requests `replay play` of `id` makes (through the proxy), and its screen.
fn play_requests(sb: &Sandbox, proxy: &S3Proxy, id: &str) -> (usize, Vec<String>) {
    let mut env = sb.env();
    env.extend(s3_env());
    proxy.clear_log();
    let endpoint = proxy.endpoint();
    let store = format!("s3://{BUCKET}/{PREFIX}");
    let mut p = PtySession::spawn(
        auditty_tests::bin("replay"),
        [
            "--no-access-log",
            "--store",
            store.as_str(),
            "--s3-endpoint",
            endpoint.as_str(),
            "play",
            id,
            "--speed",
            "100",
        ],
        &env,
        WinSize { cols: 80, rows: 24 },
    );
    let status = p.wait(T);
    assert!(status.success(), "play {id}: {status}: {:?}", p.rows());
    (proxy.log().len(), p.rows())
}

#[test]
fn a_store_written_through_kafka_to_s3_compacts_and_playback_needs_fewer_requests() {
    test_credentials();
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
        sb.run(
            sb.cmd("auditty-agent")
                .args(["record", "-q", "--", "sh", "-c", &script]),
        );
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

    let direct = StoreUrl::S3 {
        bucket: BUCKET.into(),
        prefix: PREFIX.into(),
        options: S3Options {
            endpoint: Some(moto.endpoint()),
            force_path_style: true,
            ..S3Options::default()
        },
    }
    .open()
    .expect("open the S3 store");
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

/// `AUDITTY_COMPACT_BENCH_STORE`'s objects re-cut into objects of `per_object` sessions each
/// (per table and date), with the ingester's encoders and names, under `to`: a store as a
/// fleet of short sessions ingested in small batches leaves it. Returns the object count.
fn recut(from: &Path, to: &Path, per_object: usize) -> usize {
    use store::layout;
    use store::parquet_io::{decode_events, decode_sessions, encode_events, encode_sessions};
    let src = StoreUrl::Local(from.to_path_buf())
        .open()
        .expect("open source");
    let dst = StoreUrl::Local(to.to_path_buf())
        .open()
        .expect("open target");
    let mut offset = 0u64;
    let mut written = 0;
    let mut meta = |n: usize| {
        let m = store::ObjectMeta {
            source: "kafka".into(),
            partition: "auditty.events-0".into(),
            first_offset: offset,
            end_offset: offset + n as u64,
        };
        offset += n as u64;
        m
    };
    for key in src.list("").expect("list") {
        let Some(date) = layout::key_date(&key).map(str::to_string) else {
            continue;
        };
        let bytes = src.get(&key).expect("get");
        if key.starts_with("events/") {
            let rows = decode_events(&key, &bytes, None).expect("decode");
            let mut groups: Vec<Vec<store::EventRow>> = Vec::new();
            let mut sessions = 0;
            for r in rows {
                let new_session = groups
                    .last()
                    .and_then(|g| g.last())
                    .is_none_or(|last| last.session_id != r.session_id);
                if new_session {
                    if sessions % per_object == 0 {
                        groups.push(Vec::new());
                    }
                    sessions += 1;
                }
                groups.last_mut().expect("a group").push(r);
            }
            for mut g in groups {
                let m = meta(g.len());
                let stem = layout::object_stem(&m.source, &m.partition, m.first_offset);
                let out = encode_events(&mut g, &m).expect("encode");
                dst.put(&layout::events_key(&date, &stem), &out)
                    .expect("put");
                written += 1;
            }
        } else if key.starts_with("sessions/") {
            let rows = decode_sessions(&key, &bytes).expect("decode");
            // Two rows (start, end) per session.
            for chunk in rows.chunks(per_object * 2) {
                let mut g = chunk.to_vec();
                let m = meta(g.len());
                let stem = layout::object_stem(&m.source, &m.partition, m.first_offset);
                let out = encode_sessions(&mut g, &m).expect("encode");
                dst.put(&layout::sessions_key(&date, &stem), &out)
                    .expect("put");
                written += 1;
            }
        }
    }
    written
}

/// Runs `cmd`, returning its output and wall time; it must succeed.
fn timed(sb: &Sandbox, cmd: &mut Command) -> (std::process::Output, Duration) {
    let started = Instant::now();
    let out = sb.output(cmd);
    assert!(out.status.success(), "{cmd:?}\n{}", show(&out));
    (out, started.elapsed())
}

/// DuckDB over the events objects under `root`: (rows, distinct (session_id, seq)).
fn duckdb_counts(root: &Path) -> (u64, u64) {
    let script = r#"
import sys, duckdb
q = ("select count(*), count(distinct (session_id, seq)) from "
     "read_parquet(?, hive_partitioning=false)")
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
print(*con.execute(q, [sys.argv[1]]).fetchone())
"#;
    let glob = format!("{}/events/*/*.parquet", root.display());
    let out = Command::new(venv_bin("python"))
        .arg("-c")
        .arg(script)
        .arg(&glob)
        .output()
        .expect("run the venv's python");
    assert!(out.status.success(), "duckdb failed\n{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    let mut it = last
        .split_whitespace()
        .map(|n| n.parse::<u64>().expect("a count"));
    (it.next().expect("rows"), it.next().expect("distinct"))
}

/// Not a test: the harness behind the "Compaction" figures of bench/README.md. It needs a
/// store made by `auditty-bench-search --work-dir DIR` (set
/// `AUDITTY_COMPACT_BENCH_STORE=DIR/store`) and release binaries:
/// `cargo test --release -p auditty-tests --test compact -- --ignored --nocapture`.
/// `AUDITTY_COMPACT_BENCH_PER_OBJECT` (default 10) is how many sessions each small object
/// holds after the re-cut.
#[test]
#[ignore = "measurement harness for bench/README.md (needs AUDITTY_COMPACT_BENCH_STORE)"]
fn compaction_figures_over_a_large_store() {
    test_credentials();
    let from = PathBuf::from(
        std::env::var("AUDITTY_COMPACT_BENCH_STORE").expect("AUDITTY_COMPACT_BENCH_STORE"),
    );
    let per_object: usize = std::env::var("AUDITTY_COMPACT_BENCH_PER_OBJECT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let sb = Sandbox::new();
    let small = sb.path().join("small");
    let started = Instant::now();
    let n = recut(&from, &small, per_object);
    println!(
        "re-cut into {n} objects of {per_object} sessions in {:.1?}",
        started.elapsed()
    );
    let at = At::Dir(small.clone());
    let local = StoreUrl::Local(small.clone()).open().expect("open");
    let (objects_before, bytes_before) = table_objects(local.as_ref());

    // The corpus is unsigned: verify --all names every session so (exit 1); what counts
    // is that it says exactly the same after compaction.
    let started = Instant::now();
    let verify_before = replay(&sb, &at, &["verify", "--all"]);
    let t_before = started.elapsed();

    // A copy killed mid-compaction (after the 50th deleted input), then run again.
    let copy = sb.path().join("killed");
    copy_tree(&small, &copy);
    let at_copy = At::Dir(copy.clone());
    let killed = compact(&sb, &at_copy, &[], Some("compact-after-delete@50"));
    assert_eq!(killed.status.signal(), Some(9), "{}", show(&killed));
    let (rows_mid, distinct_mid) = duckdb_counts(&copy);
    let rerun = compact(&sb, &at_copy, &[], None);
    assert!(rerun.status.success(), "{}", show(&rerun));
    let (rows_after_kill, distinct_after_kill) = duckdb_counts(&copy);
    assert_eq!(
        rows_after_kill, distinct_after_kill,
        "every (session, seq) once"
    );

    let (out, t_compact) = timed(
        &sb,
        cmd(&sb, "auditty-ingest")
            .args(["compact", "--min-age", "0"])
            .args(at.args()),
    );
    let (objects_after, bytes_after) = table_objects(local.as_ref());
    let (rows_final, distinct_final) = duckdb_counts(&small);
    assert_eq!(rows_final, distinct_final);
    assert_eq!(rows_final, distinct_after_kill);
    let started = Instant::now();
    let verify_after = replay(&sb, &at, &["verify", "--all"]);
    let t_after = started.elapsed();
    assert_eq!(verify_after.status.code(), verify_before.status.code());
    assert_eq!(
        verify_after.stdout, verify_before.stdout,
        "verify --all says the same"
    );
    println!(
        "local: {objects_before} objects ({bytes_before} bytes) → {objects_after} objects \
         ({bytes_after} bytes); compaction {t_compact:.1?}: {}\n\
         verify --all: {t_before:.1?} before, {t_after:.1?} after, same output ({} lines, \
         exit {:?})\nkilled at the 50th delete: {rows_mid} rows, {distinct_mid} distinct; \
         after the re-run {rows_after_kill} rows, {distinct_after_kill} distinct",
        String::from_utf8_lossy(&out.stderr).trim(),
        verify_after.stdout.split(|b| *b == b'\n').count(),
        verify_after.status.code(),
    );

    // S3 (moto, through the counting proxy): the re-cut store uploaded, played, compacted,
    // played again.
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let proxy = S3Proxy::start(moto.port());
    let s3 = StoreUrl::S3 {
        bucket: BUCKET.into(),
        prefix: PREFIX.into(),
        options: S3Options {
            endpoint: Some(moto.endpoint()),
            force_path_style: true,
            ..S3Options::default()
        },
    }
    .open()
    .expect("open the S3 store");
    let source = StoreUrl::Local(copy_of_uncompacted(&sb, &from, per_object))
        .open()
        .expect("open");
    let started = Instant::now();
    for key in source.list("").expect("list") {
        s3.put(&key, &source.get(&key).expect("get"))
            .expect("upload");
    }
    println!("uploaded to moto in {:.1?}", started.elapsed());
    let id = {
        let key = source.list("sessions/").expect("list").remove(0);
        let rows = store::parquet_io::decode_sessions(&key, &source.get(&key).expect("get"))
            .expect("decode");
        rows[0].session_id.to_string()
    };
    let (play_before, screen_before) = play_requests(&sb, &proxy, &id);
    let at_s3 = At::S3(proxy.endpoint());
    proxy.clear_log();
    let (out, t_s3) = timed(
        &sb,
        cmd(&sb, "auditty-ingest")
            .args(["compact", "--min-age", "0"])
            .args(at_s3.args()),
    );
    let compaction_requests = proxy.log().len();
    let (play_after, screen_after) = play_requests(&sb, &proxy, &id);
    assert_eq!(screen_after, screen_before);
    let (s3_objects_after, _) = table_objects(s3.as_ref());
    println!(
        "S3: compaction {t_s3:.1?}, {compaction_requests} requests, {s3_objects_after} objects \
         after: {}\nreplay play {id}: {play_before} S3 requests before, {play_after} after",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    assert!(play_after < play_before);
}

/// The re-cut store again (the first one was compacted in place).
fn copy_of_uncompacted(sb: &Sandbox, from: &Path, per_object: usize) -> PathBuf {
    let dir = sb.path().join("small-again");
    recut(from, &dir, per_object);
    dir
}
