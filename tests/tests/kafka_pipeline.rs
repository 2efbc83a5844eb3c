//! Issue 4: spool → Kafka → consumer-group ingester → Parquet, exactly once, against a
//! real Kafka-protocol broker (tansu) started by each test.

use std::process::Child;
use std::time::{Duration, Instant};

use auditty_tests::broker::Broker;
use auditty_tests::synthetic::{keyed, session_chunks};
use auditty_tests::{Sandbox, all_event_rows, assert_exactly_once};
use schemas::Event;

const T: Duration = Duration::from_secs(60);

fn ingester(
    sb: &Sandbox,
    broker: &Broker,
    topic: &str,
    group: &str,
    extra: &[&str],
    log: &str,
) -> Child {
    let mut c = sb.cmd("auditty-ingest");
    c.args(["run", "--source", &broker.source(topic), "--group", group])
        .args(extra);
    sb.spawn_logged(c, log)
}

fn wait_ok(mut c: Child, what: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = c.try_wait().expect("wait") {
            assert!(s.success(), "{what} failed: {s}");
            return;
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            panic!("{what} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn terminate(c: &mut Child) {
    // SAFETY: signal to our own child.
    unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
}

#[test]
fn a_session_recorded_during_a_broker_outage_arrives_exactly_once_in_order() {
    let sb = Sandbox::new();
    let mut broker = Broker::start(&sb.path().join("broker"));
    broker.create_topic("sessions", 3);
    broker.stop();

    // The shipper starts while the broker is down, and a session is recorded meanwhile.
    let ship_log = std::fs::File::create(sb.path().join("ship.log")).unwrap();
    let metrics = sb.path().join("ship.prom");
    let mut shipper = sb
        .cmd("auditty-agent")
        .args([
            "ship",
            "--brokers",
            &broker.address(),
            "--topic",
            "sessions",
        ])
        // A tiny cap, as the agents would see it, so the outage fills the spool.
        .args(["--spool-max-bytes", "1000", "--metrics-file"])
        .arg(&metrics)
        .env("AUDITTY_LOG", "info")
        .stderr(ship_log)
        .spawn()
        .unwrap();
    let script =
        "for i in $(seq 1 400); do echo out-$i; [ $((i % 50)) = 0 ] && sleep 0.05; done; exit 7";
    let out = sb.output(
        sb.cmd("auditty-agent")
            .args(["record", "-q", "--", "sh", "-c", script]),
    );
    assert_eq!(
        out.status.code(),
        Some(7),
        "recording does not wait on Kafka"
    );
    let spooled = sb.spooled_events();
    let spooled_chunks: usize = spool::list_segments(&sb.spool())
        .unwrap()
        .iter()
        .map(|seg| spool::scan_segment(&seg.path, 0).unwrap().items.len())
        .sum();
    assert!(spooled.len() > 5);

    // The outage is visible: a loud log line and the metrics.
    let read_gauge = |name: &str| -> Option<u64> {
        let text = std::fs::read_to_string(&metrics).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
    };
    let gauge = |name: &str| -> u64 {
        read_gauge(name).unwrap_or_else(|| {
            panic!(
                "{name} missing from the metrics:\n{}",
                std::fs::read_to_string(&metrics).unwrap_or_default()
            )
        })
    };
    // Wait for the shipper to have seen the session's chunks (and failed to send them),
    // rather than for a fixed time.
    let deadline = Instant::now() + T;
    while read_gauge("auditty_spool_full") != Some(1) {
        assert!(
            Instant::now() < deadline,
            "the shipper never saw the full spool"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !spool::list_segments(&sb.spool()).unwrap().is_empty(),
        "nothing may leave the spool while the broker is down"
    );
    assert_eq!(gauge("auditty_spool_full"), 1);
    assert!(gauge("auditty_spool_bytes") > 1000);
    assert_eq!(gauge("auditty_chunks_shipped_total"), 0);
    let log = std::fs::read_to_string(sb.path().join("ship.log")).unwrap();
    assert!(log.contains("The spool is full"), "{log}");
    broker.resume();
    let deadline = Instant::now() + T;
    while !spool::list_segments(&sb.spool()).unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the shipper never emptied the spool; log:\n{}",
            std::fs::read_to_string(sb.path().join("ship.log")).unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // One more pass writes the metrics of the emptied spool.
    let deadline = Instant::now() + T;
    while read_gauge("auditty_spool_bytes") != Some(0) {
        assert!(
            Instant::now() < deadline,
            "the metrics never showed the empty spool"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(gauge("auditty_spool_full"), 0);
    assert_eq!(gauge("auditty_spool_bytes"), 0);
    assert_eq!(
        gauge("auditty_chunks_shipped_total") as usize,
        spooled_chunks
    );
    terminate(&mut shipper);
    wait_ok(shipper, "shipper", T);

    wait_ok(
        ingester(&sb, &broker, "sessions", "g1", &["--once"], "ingest.log"),
        "ingester",
        T,
    );
    let rows = all_event_rows(sb.open_store().as_ref());
    assert_eq!(assert_exactly_once(&rows), spooled.len());
    let mut stored: Vec<Event> = rows.iter().filter_map(|r| r.to_event()).collect();
    stored.sort_by_key(|e| e.seq);
    assert_eq!(
        stored, spooled,
        "the store holds exactly what was recorded, in order"
    );
    let sessions = sb.sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["exit_status"], 7);
    // Through the outage, the broker and the ingester, the signed chain still holds.
    assert_eq!(sessions[0]["integrity"], "complete", "{:#}", sessions[0]);
    let verified = sb.run(sb.cmd("replay").args(["verify", "--all"]));
    assert!(verified.contains("  complete: "), "{verified}");
}

#[test]
fn an_ingester_killed_again_and_again_still_stores_every_event_exactly_once() {
    let sb = Sandbox::new();
    let broker = Broker::start(&sb.path().join("broker"));
    broker.create_topic("load", 3);
    let (sessions, per_session) = (40u64, 5_000u64);
    let mut records = Vec::new();
    for _ in 0..sessions {
        let (id, chunks) = session_chunks(per_session, 50);
        records.extend(keyed(id, chunks));
    }
    broker.produce("load", &records);

    // A killed member stays in the group until its session times out; keep that short so
    // each restart gets partitions soon.
    let args = [
        "--max-batch-events",
        "7000",
        "--max-batch-age-ms",
        "300",
        "-X",
        "session.timeout.ms=6000",
    ];
    let mut kills = 0;
    let mut objects_seen = 0;
    while kills < 6 {
        let log = format!("ingest-{kills}.log");
        let mut c = ingester(&sb, &broker, "load", "crashy", &args, &log);
        // Kill it while it works: some time after it got its partitions.
        let deadline = Instant::now() + T;
        while !std::fs::read_to_string(sb.path().join(&log))
            .unwrap_or_default()
            .contains("Assigned partitions")
        {
            assert!(
                Instant::now() < deadline,
                "ingester {kills} never got partitions"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let wait = 200 + rand::random::<u64>() % 1500;
        std::thread::sleep(Duration::from_millis(wait));
        let _ = c.kill(); // SIGKILL
        let _ = c.wait();
        kills += 1;
        objects_seen = sb.open_store().list("events/").unwrap().len();
    }
    assert!(
        objects_seen > 0,
        "the kills should land while objects are being written"
    );
    wait_ok(
        ingester(
            &sb,
            &broker,
            "load",
            "crashy",
            &[
                "--once",
                "--max-batch-events",
                "7000",
                "-X",
                "session.timeout.ms=6000",
            ],
            "ingest-final.log",
        ),
        "final ingester",
        Duration::from_secs(180),
    );

    let rows = all_event_rows(sb.open_store().as_ref());
    assert_eq!(
        assert_exactly_once(&rows) as u64,
        sessions * per_session,
        "every event, once"
    );
}

/// The broker is SIGKILLed mid-session while the shipper has chunks in flight, and comes
/// back while the session still runs: every (session, seq) reaches the store exactly
/// once, in order, and the session verifies complete.
#[test]
fn the_broker_killed_with_chunks_in_flight_mid_session_loses_and_duplicates_nothing() {
    let sb = Sandbox::new();
    let mut broker = Broker::start(&sb.path().join("broker"));
    broker.create_topic("flight", 3);
    let metrics = sb.path().join("ship.prom");
    let mut ship = sb.cmd("auditty-agent");
    ship.args(["ship", "--brokers", &broker.address(), "--topic", "flight"])
        .args(["--poll-interval-ms", "20", "--metrics-file"])
        .arg(&metrics);
    let mut shipper = sb.spawn_logged(ship, "ship.log");
    let shipped = || -> u64 {
        std::fs::read_to_string(&metrics)
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("auditty_chunks_shipped_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    // About 5 s of output in small chunks.
    let script = "for i in $(seq 1 2500); do echo line-$i; [ $((i % 25)) = 0 ] && sleep 0.05; done";
    let mut session = sb
        .cmd("auditty-agent")
        .args([
            "record",
            "-q",
            "--chunk-latency-ms",
            "20",
            "--",
            "sh",
            "-c",
            script,
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + T;
    while shipped() < 10 {
        assert!(Instant::now() < deadline, "nothing was shipped");
        std::thread::sleep(Duration::from_millis(10));
    }
    broker.stop(); // SIGKILL
    let at_kill = shipped();
    assert!(
        session.try_wait().unwrap().is_none(),
        "the kill must fall while the session runs"
    );
    assert!(!spool::list_segments(&sb.spool()).unwrap().is_empty());
    std::thread::sleep(Duration::from_millis(800));
    broker.resume();
    assert!(session.wait().unwrap().success());
    let deadline = Instant::now() + T;
    while !spool::list_segments(&sb.spool()).unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the shipper never emptied the spool; log:\n{}",
            std::fs::read_to_string(sb.path().join("ship.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let total = shipped();
    assert!(at_kill < total, "chunks were still to ship at the kill");
    terminate(&mut shipper);
    wait_ok(shipper, "shipper", T);
    wait_ok(
        ingester(&sb, &broker, "flight", "g", &["--once"], "ingest.log"),
        "ingester",
        T,
    );
    let rows = all_event_rows(sb.open_store().as_ref());
    let n = assert_exactly_once(&rows);
    let sessions = sb.sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["events"].as_u64(), Some(n as u64));
    let id = sessions[0]["id"].as_str().unwrap();
    let out = sb.output(sb.cmd("replay").args(["verify", id]));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("complete"),
        "{}",
        auditty_tests::show(&out)
    );
    eprintln!("broker killed with {at_kill} of {total} chunks shipped; {n} events stored once");
}

/// A failpoint kills the ingester (SIGKILL) exactly after a batch's objects are durable
/// and before its offset is committed, the instant exactly-once output is hardest to
/// keep: the restart finds the uncommitted batch, cuts at the same place, rewrites the
/// same objects byte for byte, and the store holds every event once.
#[test]
fn an_ingester_killed_between_a_durable_write_and_its_commit_resumes_exactly_once() {
    use std::os::unix::process::ExitStatusExt;
    let sb = Sandbox::new();
    let broker = Broker::start(&sb.path().join("broker"));
    broker.create_topic("fp", 2);
    let (sessions, per_session) = (10u64, 3_000u64);
    let mut records = Vec::new();
    for _ in 0..sessions {
        let (id, chunks) = session_chunks(per_session, 50);
        records.extend(keyed(id, chunks));
    }
    broker.produce("fp", &records);
    let args = ["--once", "--max-batch-events", "2000"];

    let mut c = sb.cmd("auditty-ingest");
    c.args(["run", "--source", &broker.source("fp"), "--group", "fp"])
        .args(args)
        .env("AUDITTY_FAILPOINT", "after-write-before-commit@3");
    let status = sb.spawn_logged(c, "killed.log").wait().expect("wait");
    let log = std::fs::read_to_string(sb.path().join("killed.log")).unwrap();
    assert_eq!(status.signal(), Some(9), "{status}\n{log}");
    assert!(
        log.contains("failpoint after-write-before-commit: killing the process"),
        "{log}"
    );
    let store = sb.open_store();
    let before: std::collections::BTreeMap<String, Vec<u8>> = store
        .list("")
        .unwrap()
        .into_iter()
        .map(|k| {
            let bytes = store.get(&k).unwrap();
            (k, bytes)
        })
        .collect();
    assert!(before.keys().filter(|k| k.starts_with("events/")).count() >= 3);

    wait_ok(
        ingester(&sb, &broker, "fp", "fp", &args, "resumed.log"),
        "ingester after the kill",
        T,
    );
    let log = std::fs::read_to_string(sb.path().join("resumed.log")).unwrap();
    assert!(
        log.contains("already stored but was not committed: cutting at the same place"),
        "the restart must meet the batch written but not committed:\n{log}"
    );
    for (key, bytes) in &before {
        assert_eq!(
            &store.get(key).unwrap(),
            bytes,
            "{key} was rewritten with different bytes"
        );
    }
    let rows = all_event_rows(store.as_ref());
    assert_eq!(
        assert_exactly_once(&rows) as u64,
        sessions * per_session,
        "every event, once"
    );
}

/// Rebalances while records keep arriving: a second member joins, then the first leaves,
/// both while the producer is still sending. Every event is stored exactly once.
#[test]
fn members_join_and_leave_while_data_flows_and_nothing_is_lost_or_doubled() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let sb = Sandbox::new();
    let broker = Broker::start(&sb.path().join("broker"));
    broker.create_topic("flow", 4);
    let (rounds, per_round, per_session) = (16usize, 2usize, 1_000u64);
    let produced = AtomicUsize::new(0);
    let args = ["--max-batch-events", "1500", "--max-batch-age-ms", "300"];
    let holds_partitions = |log: &str| {
        let text = std::fs::read_to_string(sb.path().join(log)).unwrap_or_default();
        text.lines()
            .rfind(|l| l.contains("Assigned partitions") || l.contains("Revoked partitions"))
            .is_some_and(|l| l.contains("Assigned") && !l.contains("partitions=[]"))
    };
    let wait_until = |what: &str, ok: &dyn Fn() -> bool| {
        let deadline = Instant::now() + T;
        while !ok() {
            assert!(Instant::now() < deadline, "never: {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let mut a = ingester(&sb, &broker, "flow", "moving", &args, "a.log");
    wait_until("member a holds partitions", &|| holds_partitions("a.log"));
    let ((joined_at, left_at), mut b) = std::thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 0..rounds {
                let mut records = Vec::new();
                for _ in 0..per_round {
                    let (id, chunks) = session_chunks(per_session, 50);
                    records.extend(keyed(id, chunks));
                }
                broker.produce("flow", &records);
                produced.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(400));
            }
        });
        wait_until("a stored something", &|| {
            !sb.open_store().list("events/").unwrap().is_empty()
        });
        let b = ingester(&sb, &broker, "flow", "moving", &args, "b.log");
        let joined_at = produced.load(Ordering::SeqCst);
        wait_until("member b holds partitions", &|| holds_partitions("b.log"));
        terminate(&mut a);
        let left_at = produced.load(Ordering::SeqCst);
        wait_ok(a, "member a leaving", T);
        ((joined_at, left_at), b)
    });
    assert!(
        joined_at < rounds && left_at < rounds,
        "the rebalances must happen while records arrive: rounds {joined_at} and {left_at} of {rounds}"
    );
    let total = rounds * per_round * per_session as usize;
    wait_until("every event stored", &|| {
        all_event_rows(sb.open_store().as_ref()).len() >= total
    });
    terminate(&mut b);
    wait_ok(b, "member b", T);
    let rows = all_event_rows(sb.open_store().as_ref());
    assert_eq!(assert_exactly_once(&rows), total);
    eprintln!("b joined after {joined_at} and a left after {left_at} of {rounds} rounds");
}

#[test]
fn two_ingesters_in_one_group_share_the_partitions_without_duplicates() {
    let sb = Sandbox::new();
    let broker = Broker::start(&sb.path().join("broker"));
    broker.create_topic("shared", 4);

    let args = ["--max-batch-events", "3000", "--max-batch-age-ms", "500"];
    let mut a = ingester(&sb, &broker, "shared", "pair", &args, "a.log");
    let mut b = ingester(&sb, &broker, "shared", "pair", &args, "b.log");
    // Both members hold partitions before the data arrives, so both work on it.
    let holds_partitions = |log: &str| {
        let text = std::fs::read_to_string(sb.path().join(log)).unwrap_or_default();
        // The last assignment or revocation decides what a member holds now.
        text.lines()
            .rfind(|l| l.contains("Assigned partitions") || l.contains("Revoked partitions"))
            .is_some_and(|l| l.contains("Assigned") && !l.contains("partitions=[]"))
    };
    let deadline = Instant::now() + T;
    while !(holds_partitions("a.log") && holds_partitions("b.log")) {
        assert!(
            Instant::now() < deadline,
            "the group never gave both members partitions:\n--- a ---\n{}\n--- b ---\n{}",
            std::fs::read_to_string(sb.path().join("a.log")).unwrap_or_default(),
            std::fs::read_to_string(sb.path().join("b.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut records = Vec::new();
    for _ in 0..24 {
        let (id, chunks) = session_chunks(2_000, 40);
        records.extend(keyed(id, chunks));
    }
    broker.produce("shared", &records);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let rows = all_event_rows(sb.open_store().as_ref());
        if rows.len() >= 48_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of 48000 events arrived",
            rows.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    terminate(&mut a);
    terminate(&mut b);
    wait_ok(a, "ingester a", T);
    wait_ok(b, "ingester b", T);

    for log in ["a.log", "b.log"] {
        let text = std::fs::read_to_string(sb.path().join(log)).unwrap();
        let events: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("auditty-ingest: "))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("{log} has no summary line:\n{text}"));
        assert!(events > 0, "{log} wrote nothing:\n{text}");
    }
    let rows = all_event_rows(sb.open_store().as_ref());
    assert_eq!(assert_exactly_once(&rows), 48_000);
}

#[test]
fn garbage_records_become_dead_letters_and_the_pipeline_goes_on() {
    let sb = Sandbox::new();
    let broker = Broker::start(&sb.path().join("broker"));
    broker.create_topic("mixed", 1);
    broker.create_topic("notices", 1);

    let (good, chunks) = session_chunks(100, 30);
    let truncated = chunks[1][..chunks[1].len() / 2].to_vec();
    let mut future = chunks[1].clone();
    future[4] = 7;
    let random: Vec<u8> = (0..300).map(|_| rand::random::<u8>()).collect();
    let oversized = vec![b'x'; 1_500_000];
    let k = |s: &str| s.as_bytes().to_vec();
    let mut records = vec![
        (k("junk"), random),
        (k("junk"), truncated),
        (k("junk"), future),
        (k("junk"), oversized),
    ];
    records.extend(keyed(good, chunks));
    broker.produce("mixed", &records);

    wait_ok(
        ingester(
            &sb,
            &broker,
            "mixed",
            "dl",
            &[
                "--once",
                "--max-record-bytes",
                "1000000",
                "--notify-topic",
                "notices",
            ],
            "ingest.log",
        ),
        "ingester",
        T,
    );
    let log = std::fs::read_to_string(sb.path().join("ingest.log")).unwrap();
    let store = sb.open_store();
    let dead = store.list("dead-letter/").unwrap();
    let bins: Vec<&String> = dead.iter().filter(|k| k.ends_with(".bin")).collect();
    assert_eq!(bins.len(), 4, "{dead:?}\n{log}");
    let infos: Vec<serde_json::Value> = dead
        .iter()
        .filter(|k| k.ends_with(".json"))
        .map(|k| serde_json::from_slice(&store.get(k).unwrap()).unwrap())
        .collect();
    let errors: Vec<&str> = infos.iter().map(|i| i["error"].as_str().unwrap()).collect();
    assert!(
        errors.iter().any(|e| e.contains("not an auditty chunk")),
        "{errors:?}"
    );
    assert!(errors.iter().any(|e| e.contains("truncated")), "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("unsupported chunk format version 7")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("exceeds --max-record-bytes")),
        "{errors:?}"
    );
    // Each dead letter names where it came from: the four junk records were the first
    // four of the topic's only partition, in this order, and are kept byte for byte.
    let originals = [&records[0].1, &records[1].1, &records[2].1, &records[3].1];
    let reasons = [
        "not an auditty chunk",
        "truncated",
        "unsupported chunk format version 7",
        "exceeds --max-record-bytes",
    ];
    let mut by_offset: Vec<&serde_json::Value> = infos.iter().collect();
    by_offset.sort_by_key(|i| i["offset"].as_u64());
    for (n, i) in by_offset.iter().enumerate() {
        assert_eq!(i["topic"], "mixed", "{i}");
        assert_eq!(i["partition"], 0, "{i}");
        assert_eq!(i["offset"], n as u64, "{i}");
        let error = i["error"].as_str().unwrap();
        assert!(error.contains(reasons[n]), "offset {n}: {error}");
        let bin = bins
            .iter()
            .find(|k| k.ends_with(&format!("{:020}.bin", n)))
            .unwrap_or_else(|| panic!("no dead letter for offset {n}: {bins:?}"));
        assert_eq!(
            &store.get(bin).unwrap(),
            originals[n],
            "offset {n} kept as received"
        );
    }
    // The good session after the garbage is complete.
    let rows = all_event_rows(store.as_ref());
    assert_eq!(assert_exactly_once(&rows), 100);
    assert_eq!(sb.sessions()[0]["id"], good.to_string());

    // Start and end notifications, after the rows were stored.
    let notes = broker.consume("notices", 2, T);
    let kinds: Vec<String> = notes
        .iter()
        .map(|(_, p)| serde_json::from_slice::<serde_json::Value>(p).unwrap())
        .map(|v| {
            assert_eq!(v["session_id"], good.to_string());
            assert!(v["objects"].as_array().is_some_and(|o| !o.is_empty()));
            v["event"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(kinds, ["session_start", "session_end"]);
}

/// A broker nobody can reach, tried as a new user would: both daemons say within a
/// moment, once, what they cannot reach; with `--once` they give up after
/// `--broker-wait` and exit non-zero; the spooled chunks stay.
#[test]
fn an_unreachable_broker_is_said_once_and_once_gives_up() {
    let sb = Sandbox::new();
    let nobody = format!("127.0.0.1:{}", auditty_tests::moto::free_port());
    sb.run(
        sb.cmd("auditty-agent")
            .args(["record", "-q", "--", "sh", "-c", "echo spooled"]),
    );
    let wait_for_exit = |mut c: Child, log: &str| -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + T;
        loop {
            if let Some(status) = c.try_wait().expect("wait") {
                let text = std::fs::read_to_string(sb.path().join(log)).unwrap_or_default();
                return (status, text);
            }
            assert!(Instant::now() < deadline, "{log}: never gave up");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let mut ingest = sb.cmd("auditty-ingest");
    ingest
        .args([
            "run",
            "--once",
            "--group",
            "g",
            "--broker-wait",
            "2",
            "--source",
        ])
        .arg(format!("kafka://{nobody}/t"));
    let (status, log) = wait_for_exit(sb.spawn_logged(ingest, "ingest.log"), "ingest.log");
    assert!(!status.success(), "{log}");
    assert_eq!(
        log.matches("Cannot reach the Kafka brokers").count(),
        1,
        "{log}"
    );
    assert!(
        log.contains(&nobody) && log.contains("gave up after"),
        "{log}"
    );

    let mut ship = sb.cmd("auditty-agent");
    ship.args(["ship", "--once", "--broker-wait", "2", "--brokers", &nobody]);
    let (status, log) = wait_for_exit(sb.spawn_logged(ship, "ship.log"), "ship.log");
    assert!(!status.success(), "{log}");
    assert_eq!(
        log.matches("Cannot reach the Kafka brokers").count(),
        1,
        "{log}"
    );
    assert!(
        log.contains("gave up after") && log.contains("stay in the spool"),
        "{log}"
    );
    assert!(
        log.lines().count() < 10,
        "a few lines, not one per retry:\n{log}"
    );
    assert!(!spool::list_segments(&sb.spool()).unwrap().is_empty());

    // Without --once: the same one line, however long it keeps retrying.
    let mut daemon = sb.cmd("auditty-agent");
    daemon.args(["ship", "--brokers", &nobody, "--poll-interval-ms", "20"]);
    let mut d = sb.spawn_logged(daemon, "daemon.log");
    std::thread::sleep(Duration::from_secs(3));
    terminate(&mut d);
    let (_, log) = wait_for_exit(d, "daemon.log");
    assert_eq!(
        log.matches("Cannot reach the Kafka brokers").count(),
        1,
        "{log}"
    );
    assert!(
        !log.contains("librdkafka"),
        "no raw librdkafka retries:\n{log}"
    );
}

#[test]
fn the_shipper_refuses_nonsense_options_clearly() {
    let sb = Sandbox::new();
    let out =
        sb.output(
            sb.cmd("auditty-agent")
                .args(["ship", "--brokers", "127.0.0.1:1", "-X", "acks"]),
        );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("key=value"),
        "{}",
        auditty_tests::show(&out)
    );
}
