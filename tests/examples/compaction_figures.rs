//! The harness behind the "Compaction" figures of bench/README.md (not a test: it asserts
//! only what it must to measure, and prints the figures). It needs a store made by
//! `auditty-bench-search --work-dir DIR` and release binaries:
//!
//! ```sh
//! cargo build --release --workspace --bins
//! AUDITTY_COMPACT_BENCH_STORE=DIR/store \
//!     cargo run --release -p auditty-tests --example compaction_figures
//! ```
//!
//! `AUDITTY_COMPACT_BENCH_PER_OBJECT` (default 10) is how many sessions each small object
//! holds after the re-cut. The corpus is signed; `AUDITTY_COMPACT_BENCH_TRUST` (default:
//! `trusted-keys` in `data/` beside the store, where the generator writes it) is the trust
//! file `replay verify --all` checks it with, before and after compaction.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use auditty_tests::compaction::{
    At, BUCKET, PREFIX, cmd, compact, play_requests, replay, table_objects,
};
use auditty_tests::moto::{Moto, open_s3_store, venv_bin};
use auditty_tests::s3_proxy::S3Proxy;
use auditty_tests::{Sandbox, copy_tree, show};
use store::StoreUrl;

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
        } else if key.starts_with("ledger/") {
            // The nodes' signed heads: what lets verify --all tell a lost session.
            dst.put(&key, &bytes).expect("put");
            written += 1;
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

/// The sessions `replay verify` calls complete.
fn complete_lines(out: &std::process::Output) -> usize {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("complete:"))
        .count()
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

fn main() {
    let from = PathBuf::from(
        std::env::var("AUDITTY_COMPACT_BENCH_STORE").expect("AUDITTY_COMPACT_BENCH_STORE"),
    );
    let per_object: usize = std::env::var("AUDITTY_COMPACT_BENCH_PER_OBJECT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let trust = std::env::var_os("AUDITTY_COMPACT_BENCH_TRUST")
        .map(PathBuf::from)
        .unwrap_or_else(|| from.join("../data/trusted-keys"));
    assert!(
        trust.is_file(),
        "no trust file {}: set AUDITTY_COMPACT_BENCH_TRUST",
        trust.display()
    );
    let trust = trust.to_str().expect("a UTF-8 trust path");
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

    // Every session complete and every ledger whole, before and after, line for line.
    let started = Instant::now();
    let verify_before = replay(&sb, &at, &["verify", "--all", "--trust", trust]);
    let t_before = started.elapsed();
    let complete_before = complete_lines(&verify_before);
    assert!(verify_before.status.success(), "{}", show(&verify_before));

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
    let verify_after = replay(&sb, &at, &["verify", "--all", "--trust", trust]);
    let t_after = started.elapsed();
    assert!(verify_after.status.success(), "{}", show(&verify_after));
    assert_eq!(
        verify_after.stdout, verify_before.stdout,
        "verify --all says the same"
    );
    println!(
        "local: {objects_before} objects ({bytes_before} bytes) → {objects_after} objects \
         ({bytes_after} bytes); compaction {t_compact:.1?}: {}\n\
         verify --all: {t_before:.1?} before, {t_after:.1?} after, same output ({} lines, \
         {complete_before} complete, exit {:?})\nkilled at the 50th delete: {rows_mid} rows, {distinct_mid} distinct; \
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
    let s3 = open_s3_store(&moto.endpoint(), BUCKET, PREFIX);
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
