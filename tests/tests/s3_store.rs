//! Issue 5: the S3 store, against moto's S3 server (started per test) and, where the test
//! needs to see or disturb the traffic, through [`S3Proxy`].

use std::process::Child;
use std::time::{Duration, Instant};

use auditty_tests::broker::Broker;
use auditty_tests::moto::{Moto, open_s3_store, s3_env, venv_bin};
use auditty_tests::s3_proxy::{Fault, S3Proxy};
use auditty_tests::synthetic::{keyed, session_chunks};
use auditty_tests::{PtySession, Sandbox, all_event_rows, assert_exactly_once, show};
use schemas::{Event, EventKind, SessionEnd, SessionId, SessionStart};
use store::parquet_io::{encode_events, encode_sessions};
use store::{EventRow, ObjectMeta, ObjectStore, SessionRow};
use terminal::pty::WinSize;

const T: Duration = Duration::from_secs(120);
const BUCKET: &str = "audit";
const PREFIX: &str = "fleet/a";

fn store_url() -> String {
    format!("s3://{BUCKET}/{PREFIX}")
}

/// `--store s3://… --s3-endpoint URL` plus short timeouts, so stalls are noticed quickly.
fn store_args(endpoint: &str) -> Vec<String> {
    [
        "--store",
        &store_url(),
        "--s3-endpoint",
        endpoint,
        "--s3-timeout",
        "3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The store as the test sees it (directly at moto, not through the proxy).
fn open_store(moto: &Moto) -> Box<dyn ObjectStore> {
    open_s3_store(&moto.endpoint(), BUCKET, PREFIX)
}

fn cmd(sb: &Sandbox, name: &str) -> std::process::Command {
    let mut c = sb.cmd(name);
    c.envs(s3_env());
    c
}

#[test]
fn spool_to_s3_with_sse_kms_then_replay_reads_it_back() {
    let sb = Sandbox::new();
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let proxy = S3Proxy::start(moto.port());

    let script = "for i in $(seq 1 300); do echo out-$i; done; exit 7";
    let out = sb.output(cmd(&sb, "auditty-agent").args(["record", "-q", "--", "sh", "-c", script]));
    assert_eq!(out.status.code(), Some(7), "{}", show(&out));
    let spooled = sb.spooled_events();

    let mut ingest = cmd(&sb, "auditty-ingest");
    ingest
        .args(["run", "--once"])
        .args(store_args(&proxy.endpoint()))
        .args(["--sse", "kms", "--sse-kms-key-id", "alias/auditty-test"]);
    sb.run(&mut ingest);

    // What the server received: every object write carries the SSE-KMS headers.
    let puts: Vec<_> = proxy
        .log()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .collect();
    assert!(puts.len() >= 2, "an events and a sessions object: {puts:?}");
    for p in &puts {
        assert_eq!(
            p.header("x-amz-server-side-encryption"),
            Some("aws:kms"),
            "{p:?}"
        );
        assert_eq!(
            p.header("x-amz-server-side-encryption-aws-kms-key-id"),
            Some("alias/auditty-test"),
            "{p:?}"
        );
        assert_eq!(p.header("if-none-match"), Some("*"), "{p:?}");
        assert!(
            p.target.starts_with(&format!("/{BUCKET}/{PREFIX}/")),
            "path style: {p:?}"
        );
    }

    let store = open_store(&moto);
    let rows = all_event_rows(store.as_ref());
    assert_eq!(assert_exactly_once(&rows), spooled.len());
    let mut stored: Vec<Event> = rows.iter().filter_map(|r| r.to_event()).collect();
    stored.sort_by_key(|e| e.seq);
    assert_eq!(stored, spooled);

    let listing = sb.run(
        cmd(&sb, "replay")
            .args(store_args(&moto.endpoint()))
            .args(["ls", "--json"]),
    );
    let sessions: Vec<serde_json::Value> = serde_json::from_str(&listing).unwrap();
    assert_eq!(sessions.len(), 1, "{listing}");
    assert_eq!(sessions[0]["exit_status"], 7);
    let id = sessions[0]["id"].as_str().unwrap().to_string();

    let text = sb.run(cmd(&sb, "replay").args(store_args(&moto.endpoint())).args([
        "export",
        &id[..8],
        "--format",
        "text",
    ]));
    assert!(
        text.contains("out-1\n") && text.contains("out-300"),
        "{text}"
    );

    // Replaying an upload of identical bytes succeeds; different bytes are refused.
    let key = store.list("events/").unwrap().remove(0);
    let bytes = store.get(&key).unwrap();
    store.put(&key, &bytes).expect("identical rewrite is fine");
    let err = store.put(&key, b"something else").unwrap_err();
    assert!(matches!(err, store::StoreError::Conflict { .. }), "{err}");
    assert_eq!(store.get(&key).unwrap(), bytes, "never clobbered");
}

#[test]
fn clear_errors_for_a_missing_bucket_and_an_unreachable_endpoint() {
    let sb = Sandbox::new();
    let moto = Moto::start();
    let out = sb.output(
        cmd(&sb, "replay")
            .args(store_args(&moto.endpoint()))
            .arg("ls"),
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bucket 'audit' does not exist"), "{err}");

    let dead = format!("http://127.0.0.1:{}", auditty_tests::moto::free_port());
    let out = sb.output(cmd(&sb, "replay").args(store_args(&dead)).args([
        "--s3-give-up-after",
        "2",
        "ls",
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--s3-endpoint"), "{err}");
    // Each failure is one line naming the store (bucket and prefix), the action and what
    // to do; never the SDK's debug structures.
    let one_line = |out: &std::process::Output, wanted: &[&str]| {
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().filter(|l| !l.contains("no index at")).collect();
        assert_eq!(lines.len(), 1, "one line:\n{err}");
        for w in wanted {
            assert!(lines[0].contains(w), "{w:?} missing from {:?}", lines[0]);
        }
        assert!(
            !err.contains("ErrorMetadata") && !err.contains("DispatchFailure"),
            "{err}"
        );
    };
    let out = sb.output(
        cmd(&sb, "replay")
            .args(store_args(&moto.endpoint()))
            .arg("ls"),
    );
    one_line(
        &out,
        &[
            "cannot open s3://audit/fleet/a",
            "HTTP 404",
            "does not exist",
        ],
    );

    // No credentials at all.
    let out = sb.output(
        sb.cmd("replay")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AUDITTY_DATA_DIR", sb.data_dir())
            .env("HOME", sb.path())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .args(store_args(&moto.endpoint()))
            .args(["--s3-give-up-after", "2", "ls"]),
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    one_line(
        &out,
        &[
            "s3://audit/fleet/a",
            "no AWS credentials",
            "AWS_ACCESS_KEY_ID",
        ],
    );

    // Access denied, on a bucket that exists.
    moto.create_bucket(BUCKET);
    let proxy = S3Proxy::start(moto.port());
    proxy.inject(&[], vec![Fault::Status(403); 8]);
    let out = sb.output(
        cmd(&sb, "replay")
            .args(store_args(&proxy.endpoint()))
            .args(["--s3-give-up-after", "2", "ls"]),
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    one_line(&out, &["s3://audit/fleet/a", "HTTP 403", "access denied"]);
}

fn kafka_ingester(
    sb: &Sandbox,
    broker: &Broker,
    endpoint: &str,
    extra: &[&str],
    log: &str,
) -> Child {
    let mut c = cmd(sb, "auditty-ingest");
    c.args([
        "run",
        "--source",
        &broker.source("sessions"),
        "--group",
        "g1",
    ])
    .args(store_args(endpoint))
    .args(extra);
    sb.spawn_logged(c, log)
}

fn wait_ok(sb: &Sandbox, mut c: Child, what: &str, log: &str) {
    let deadline = Instant::now() + T;
    loop {
        if let Some(s) = c.try_wait().expect("wait") {
            assert!(
                s.success(),
                "{what} failed: {s}; log:\n{}",
                std::fs::read_to_string(sb.path().join(log)).unwrap_or_default()
            );
            return;
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            panic!("{what} did not finish within {T:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn kafka_to_ingester_to_s3_then_replay_play_and_export() {
    let sb = Sandbox::new();
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let broker = Broker::start(&sb.path().join("broker"));
    broker.create_topic("sessions", 3);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (id, chunks) = session_chunks(200, 25);
        broker.produce("sessions", &keyed(id, chunks));
        ids.push(id);
    }
    let c = kafka_ingester(&sb, &broker, &moto.endpoint(), &["--once"], "ingest.log");
    wait_ok(&sb, c, "ingester", "ingest.log");

    let store = open_store(&moto);
    assert_eq!(assert_exactly_once(&all_event_rows(store.as_ref())), 600);

    let id = ids[1].to_string();
    let cast = sb.run(
        cmd(&sb, "replay")
            .args(store_args(&moto.endpoint()))
            .args(["export", &id]),
    );
    let lines: Vec<&str> = cast.lines().collect();
    assert_eq!(lines.len(), 1 + 198, "header + output events: {cast}");
    assert!(
        lines[5].contains(&format!("line 5 of {id}")),
        "{}",
        lines[5]
    );

    let mut env = sb.env();
    env.extend(s3_env());
    let replay = auditty_tests::bin("replay");
    let mut args = store_args(&moto.endpoint());
    args.extend([
        "play".to_string(),
        id.clone(),
        "--speed".into(),
        "50".into(),
    ]);
    let mut p = PtySession::spawn(&replay, &args, &env, WinSize { cols: 80, rows: 24 });
    let status = p.wait(T);
    assert!(status.success(), "{status}");
    assert!(
        p.rows()
            .iter()
            .any(|r| r.contains(&format!("line 198 of {id}"))),
        "{:?}",
        p.rows()
    );
}

#[test]
fn s3_faults_are_retried_and_nothing_is_lost_or_duplicated() {
    let sb = Sandbox::new();
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let proxy = S3Proxy::start(moto.port());
    let broker = Broker::start(&sb.path().join("broker"));
    broker.create_topic("sessions", 2);
    let mut total = 0;
    for _ in 0..4 {
        let (id, chunks) = session_chunks(150, 10);
        broker.produce("sessions", &keyed(id, chunks));
        total += 150;
    }

    // First run: object writes answer 500 and 503, then stall longer than the attempt
    // timeout; the ingester is killed during the stall. Nothing may be committed for
    // records whose objects were not written, or the restart would lose them.
    proxy.inject(
        &["PUT", "POST"],
        vec![
            Fault::Status(500),
            Fault::Status(503),
            Fault::Status(503),
            Fault::Status(500),
            Fault::Stall(Duration::from_secs(20)),
            Fault::Stall(Duration::from_secs(20)),
        ],
    );
    let mut first = kafka_ingester(
        &sb,
        &broker,
        &proxy.endpoint(),
        // A killed member stays in the group until its session times out: keep it short.
        &["--max-batch-events", "200", "-X", "session.timeout.ms=6000"],
        "ingest1.log",
    );
    let deadline = Instant::now() + T;
    while proxy.faults_left() > 1 {
        assert!(
            Instant::now() < deadline,
            "the ingester never got to the stall; log:\n{}",
            std::fs::read_to_string(sb.path().join("ingest1.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = proxy.log();
    let statuses: Vec<u16> = log
        .iter()
        .filter(|r| r.method == "PUT")
        .map(|r| r.status)
        .collect();
    assert!(
        statuses.starts_with(&[500, 503, 503, 500]),
        "the injected errors were answered and retried: {statuses:?}"
    );
    first.kill().expect("kill -9 the ingester during the stall");
    let _ = first.wait();
    // The killed member stays in the group until its session (6 s) expires; a member that
    // joins before that may be assigned nothing (tansu gives the dead one everything) and
    // be handed the partitions only a rebalance later. A restart after a crash comes
    // after a supervisor's delay anyway; wait the session out.
    std::thread::sleep(Duration::from_secs(7));

    // Second run, with one more stall: the ingester waits it out and finishes.
    proxy.inject(&["PUT"], vec![Fault::Stall(Duration::from_secs(5))]);
    let c = kafka_ingester(
        &sb,
        &broker,
        &proxy.endpoint(),
        &[
            "--once",
            "--idle-exit-ms",
            "10000",
            "-X",
            "session.timeout.ms=6000",
        ],
        "ingest2.log",
    );
    wait_ok(&sb, c, "ingester after the faults", "ingest2.log");
    assert_eq!(
        proxy.faults_left(),
        0,
        "the second ingester never wrote an object; S3 saw {:?}; its log:\n{}",
        proxy
            .log()
            .iter()
            .map(|r| format!("{} {} {}", r.method, r.target, r.status))
            .collect::<Vec<_>>(),
        std::fs::read_to_string(sb.path().join("ingest2.log")).unwrap_or_default()
    );

    let store = open_store(&moto);
    assert_eq!(assert_exactly_once(&all_event_rows(store.as_ref())), total);
}

/// A PUT that lands but whose answer is lost (the proxy forwards it, then drops the
/// connection), and the ingester killed before it learns anything: the restart writes the
/// same batch again, S3 refuses to replace the object (conditional put), the store finds
/// the bytes identical and takes that as done, and every event is stored once.
#[test]
fn a_write_that_landed_but_lost_its_answer_is_rewritten_identically() {
    let sb = Sandbox::new();
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let proxy = S3Proxy::start(moto.port());
    let broker = Broker::start(&sb.path().join("broker"));
    broker.create_topic("sessions", 1);
    let (id, chunks) = session_chunks(300, 10);
    broker.produce("sessions", &keyed(id, chunks));

    proxy.inject(
        &["PUT"],
        vec![Fault::LoseResponse, Fault::Stall(Duration::from_secs(30))],
    );
    let mut first = kafka_ingester(
        &sb,
        &broker,
        &proxy.endpoint(),
        &["-X", "session.timeout.ms=6000"],
        "ingest1.log",
    );
    let deadline = Instant::now() + T;
    while proxy.faults_left() > 0 {
        assert!(
            Instant::now() < deadline,
            "the ingester never retried the lost write; log:\n{}",
            std::fs::read_to_string(sb.path().join("ingest1.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Its retry is stalled: kill it before it can learn anything.
    first.kill().expect("kill -9 the ingester");
    let _ = first.wait();
    let lost: Vec<_> = proxy.log().into_iter().filter(|r| r.lost).collect();
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].status, 200, "the write landed");
    let key = lost[0]
        .target
        .split('?')
        .next()
        .and_then(|p| p.strip_prefix(&format!("/{BUCKET}/{PREFIX}/")))
        .map(percent_decoded)
        .expect("an object key");
    let store = open_store(&moto);
    let landed = store.get(&key).expect("the object the lost write left");
    // The dead member's session (6 s) must expire before a new one gets the partition.
    std::thread::sleep(Duration::from_secs(7));

    proxy.clear_log();
    let c = kafka_ingester(
        &sb,
        &broker,
        &proxy.endpoint(),
        &["--once", "-X", "session.timeout.ms=6000"],
        "ingest2.log",
    );
    wait_ok(&sb, c, "ingester after the lost answer", "ingest2.log");
    let refused: Vec<_> = proxy
        .log()
        .into_iter()
        .filter(|r| {
            r.method == "PUT" && percent_decoded(&r.target).contains(&key) && r.status == 412
        })
        .collect();
    assert!(
        !refused.is_empty(),
        "the rewrite of {key} should meet the landed object"
    );
    assert_eq!(store.get(&key).unwrap(), landed, "identical bytes, kept");
    assert_eq!(assert_exactly_once(&all_event_rows(store.as_ref())), 300);
}

/// A request path with `%XX` escapes undone.
fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(v) if b[i] == b'%' => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// About 300 bytes of terminal output that compresses like real output (not to nothing).
fn output(session: usize, seq: u64) -> Vec<u8> {
    let mut x = (session as u64) << 20 | seq;
    let mut text = format!("$ ls /srv/{session}/{seq}\r\n");
    for _ in 0..6 {
        // xorshift: cheap, deterministic, incompressible enough.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        text.push_str(&format!(
            "{x:016x}  /var/log/app-{}.log  {}\r\n",
            x % 97,
            x % 65536
        ));
    }
    text.into_bytes()
}

/// Writes `n` sessions of a few events each into `objects` events objects and as many
/// sessions objects, a day's worth of sessions per pair, as an ingester batching many
/// sessions per object would. Returns the ids.
fn populate(store: &dyn ObjectStore, n: usize, days: usize) -> Vec<SessionId> {
    let day0 = 1_790_000_000_000_000_000i64; // 2026-09-21
    let per_day = n / days;
    let mut ids = Vec::new();
    for d in 0..days {
        let mut events = Vec::new();
        let mut sessions = Vec::new();
        for s in 0..per_day {
            let start = day0 + d as i64 * 86_400_000_000_000 + s as i64 * 8_000_000_000;
            let id = SessionId::new_v7_at(start);
            ids.push(id);
            let start_meta = SessionStart {
                version: 1,
                user: format!("user{}", s % 17),
                host: format!("host{}", s % 5),
                command: vec!["bash".into()],
                cols: 80,
                rows: 24,
                start_time_ns: start,
                ..Default::default()
            }
            .to_bytes();
            let end_meta = SessionEnd {
                version: 1,
                exit_status: Some(0),
                event_count: 12,
                ..Default::default()
            }
            .to_bytes();
            for seq in 0..12u64 {
                let (kind, data) = match seq {
                    0 => (EventKind::Start, start_meta.clone()),
                    11 => (EventKind::End, end_meta.clone()),
                    _ => (EventKind::Output, output(s, seq)),
                };
                let elapsed = seq * 150_000_000;
                events.push(EventRow {
                    session_id: id,
                    seq,
                    seq_last: seq,
                    elapsed_ns: elapsed,
                    time_ns: start + elapsed as i64,
                    kind: kind.into(),
                    data: data.clone(),
                });
                if matches!(kind, EventKind::Start | EventKind::End) {
                    sessions.push(SessionRow {
                        session_id: id,
                        kind,
                        seq,
                        time_ns: start + elapsed as i64,
                        elapsed_ns: elapsed,
                        metadata: data,
                    });
                }
            }
        }
        let date = schemas::time::date(day0 + d as i64 * 86_400_000_000_000);
        let stem = store::layout::object_stem("kafka", "sessions-0", (d * 1_000_000) as u64);
        let meta = ObjectMeta {
            source: "kafka".into(),
            partition: "sessions-0".into(),
            first_offset: (d * 1_000_000) as u64,
            end_offset: (d * 1_000_000 + 1000) as u64,
        };
        let bytes = encode_events(&mut events, &meta).unwrap();
        store
            .put(&store::layout::events_key(&date, &stem), &bytes)
            .unwrap();
        let bytes = encode_sessions(&mut sessions, &meta).unwrap();
        store
            .put(&store::layout::sessions_key(&date, &stem), &bytes)
            .unwrap();
    }
    ids
}

#[test]
fn exporting_one_of_10000_sessions_costs_a_handful_of_requests() {
    let sb = Sandbox::new();
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let store = open_store(&moto);
    let ids = populate(store.as_ref(), 10_000, 4);
    let store_bytes: u64 = store
        .list("")
        .unwrap()
        .iter()
        .map(|k| store.size(k).unwrap())
        .sum();

    let proxy = S3Proxy::start(moto.port());
    let id = ids[4321].to_string();
    let cast = sb.run(
        cmd(&sb, "replay")
            .args(store_args(&proxy.endpoint()))
            .args(["export", &id]),
    );
    assert!(cast.contains("/srv/1821/5\\r\\n"), "{cast}");
    let log = proxy.log();
    let requests = log.len();
    let transferred: u64 = log.iter().map(|r| r.response_bytes).sum();
    let summary: Vec<String> = log
        .iter()
        .map(|r| {
            format!(
                "{} {} range={:?} -> {} ({} bytes)",
                r.method,
                r.target,
                r.header("range"),
                r.status,
                r.response_bytes
            )
        })
        .collect();
    eprintln!(
        "export of 1 of 10000 sessions: {requests} requests, {transferred} bytes of a {store_bytes}-byte store:\n{}",
        summary.join("\n")
    );
    assert!(requests <= 12, "{}", summary.join("\n"));
    assert!(
        transferred * 10 < store_bytes,
        "{transferred} bytes of {store_bytes}: {}",
        summary.join("\n")
    );
    assert!(
        log.iter().all(|r| r.method != "GET"
            || r.target.contains("list-type")
            || r.header("range").is_some()),
        "every object read is ranged: {}",
        summary.join("\n")
    );
}

#[test]
fn pyarrow_and_duckdb_read_what_the_rust_reader_reads() {
    let sb = Sandbox::new();
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let store = open_store(&moto);
    populate(store.as_ref(), 300, 3);

    // Copy the store out as it is laid out in the bucket (hive partitions included).
    let dir = sb.path().join("copy");
    for key in store.list("").unwrap() {
        let path = dir.join(&key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, store.get(&key).unwrap()).unwrap();
    }
    let rows = all_event_rows(store.as_ref());
    let mut expected: Vec<(String, u64, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.session_id.to_string(),
                r.seq,
                r.kind.to_string(),
                String::from_utf8_lossy(&r.data).to_string(),
            )
        })
        .collect();
    expected.sort();
    let mut session_rows = 0usize;
    for key in store.list("sessions/").unwrap() {
        session_rows += store::parquet_io::decode_sessions(&key, &store.get(&key).unwrap())
            .unwrap()
            .len();
    }

    let script = r#"
import json, sys
import pyarrow.dataset as ds
import duckdb
root = sys.argv[1]
out = {}
ev = ds.dataset(root + "/events", format="parquet", partitioning="hive").to_table()
se = ds.dataset(root + "/sessions", format="parquet", partitioning="hive").to_table()
out["pyarrow_events"] = sorted([r["session_id"], r["seq"], r["kind"], r["data"].decode("utf-8", "replace")] for r in ev.select(["session_id", "seq", "kind", "data"]).to_pylist())
out["pyarrow_sessions"] = se.num_rows
out["pyarrow_dates"] = sorted(set(str(d) for d in ev.column("date").to_pylist()))
con = duckdb.connect()
q = f"read_parquet('{root}/events/*/*.parquet', hive_partitioning=true)"
out["duckdb_events"] = [[a, b, c, d.decode("utf-8", "replace")] for a, b, c, d in con.execute(f"select session_id, seq, kind, data from {q} order by 1, 2, 3, 4").fetchall()]
out["duckdb_dates"] = [str(r[0]) for r in con.execute(f"select distinct date from {q} order by 1").fetchall()]
out["duckdb_sessions"] = con.execute(f"select count(*) from read_parquet('{root}/sessions/*/*.parquet', hive_partitioning=true)").fetchone()[0]
out["duckdb_users"] = con.execute(f"select count(distinct \"user\") from read_parquet('{root}/sessions/*/*.parquet', hive_partitioning=true) where kind = 'start'").fetchone()[0]
print(json.dumps(out))
"#;
    let out = std::process::Command::new(venv_bin("python"))
        .args(["-c", script, dir.to_str().unwrap()])
        .output()
        .expect("run python");
    assert!(out.status.success(), "{}", show(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let as_rows = |name: &str| -> Vec<(String, u64, String, String)> {
        let mut rows: Vec<_> = v[name]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r[0].as_str().unwrap().to_string(),
                    r[1].as_u64().unwrap(),
                    r[2].as_str().unwrap().to_string(),
                    r[3].as_str().unwrap().to_string(),
                )
            })
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(expected.len(), 300 * 12);
    assert_eq!(as_rows("pyarrow_events"), expected);
    assert_eq!(as_rows("duckdb_events"), expected);
    assert_eq!(v["pyarrow_sessions"], session_rows);
    assert_eq!(v["duckdb_sessions"], session_rows);
    let dates: Vec<String> = store
        .list("events/")
        .unwrap()
        .iter()
        .filter_map(|k| store::layout::key_date(k).map(str::to_string))
        .collect();
    assert_eq!(v["duckdb_dates"], serde_json::json!(dates));
    assert_eq!(v["pyarrow_dates"], serde_json::json!(dates));
    assert_eq!(v["duckdb_users"], 17);
}

#[test]
fn large_objects_go_up_in_parts_and_come_back_whole() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let proxy = S3Proxy::start(moto.port());
    let store = open_s3_store(&proxy.endpoint(), BUCKET, PREFIX);

    // Past the multipart threshold, with a pattern that shows a misplaced part.
    let size = store::s3::MULTIPART_THRESHOLD + (3 << 20) + 12_345;
    let big: Vec<u8> = (0..size)
        .map(|i| (i % 251) as u8 ^ (i / 1_000_003) as u8)
        .collect();
    let key = "events/date=2026-11-28/big.parquet";
    store.put(key, &big).expect("multipart put");
    let log = proxy.log();
    let parts = log
        .iter()
        .filter(|r| r.method == "PUT" && r.target.contains("partNumber="))
        .count();
    assert!(
        parts >= 2,
        "uploaded in parts: {:?}",
        log.iter()
            .map(|r| format!("{} {}", r.method, r.target))
            .collect::<Vec<_>>()
    );
    assert!(
        log.iter()
            .any(|r| r.method == "POST" && r.target.contains("uploadId=")),
        "completed as a multipart upload"
    );

    assert_eq!(store.size(key).unwrap(), size as u64);
    assert!(
        store.get(key).unwrap() == big,
        "the object reads back byte for byte"
    );
    let at = (17 << 20) as u64;
    assert_eq!(
        store.get_range(key, at..at + 100).unwrap(),
        &big[at as usize..at as usize + 100]
    );

    // A replayed upload of the same bytes is fine; different bytes never clobber it.
    store.put(key, &big).expect("identical rewrite");
    let mut other = big.clone();
    other[5] ^= 1;
    let err = store
        .put(key, &other)
        .expect_err("a different object under the same name");
    assert!(matches!(err, store::StoreError::Conflict { .. }), "{err}");
    assert!(
        store.get(key).unwrap() == big,
        "the stored object is unchanged"
    );
}
