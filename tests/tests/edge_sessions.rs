//! Issue 16: sessions at the edges, end to end through the real agent and ingester: a
//! session across midnight UTC, output that is not UTF-8, a thousand resizes in a second,
//! twenty agents recording at once into one spool.

use std::time::{Duration, Instant};

use auditty_tests::{Sandbox, all_event_rows, assert_exactly_once, show};
use schemas::{EventKind, RowKind};
use terminal::pty::WinSize;

const T: Duration = Duration::from_secs(60);

#[test]
fn output_that_is_not_utf8_is_stored_and_played_byte_for_byte() {
    let sb = Sandbox::new();
    // Invalid UTF-8, a lone continuation byte, Latin-1 and a NUL, between markers.
    let script = r"printf 'begin\377\376\303(\200 caf\351 \000end\n'";
    sb.run(
        sb.cmd("auditty-agent")
            .args(["record", "-q", "--", "sh", "-c", script])
            .stdout(std::process::Stdio::null()),
    );
    sb.ingest();
    let rows = all_event_rows(sb.open_store().as_ref());
    assert_exactly_once(&rows);
    let output: Vec<u8> = rows
        .iter()
        .filter(|r| r.kind == RowKind::Event(EventKind::Output))
        .flat_map(|r| r.data.clone())
        .collect();
    let wanted = b"begin\xff\xfe\xc3(\x80 caf\xe9 \x00end";
    assert!(
        output.windows(wanted.len()).any(|w| w == wanted),
        "the bytes as written: {output:?}"
    );
    let id = sb.sessions()[0]["id"].as_str().unwrap().to_string();
    let out = sb.output(sb.cmd("replay").args(["verify", &id]));
    assert!(out.status.success(), "{}", show(&out));
    // asciicast needs UTF-8 text: the export is valid JSON Lines all the same.
    let cast = sb.run(sb.cmd("replay").args(["export", &id]));
    for line in cast.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    }
    assert!(cast.contains("begin") && cast.contains("end"), "{cast}");
}

#[test]
fn a_thousand_resizes_in_a_second_are_followed_and_end_at_the_last_size() {
    let sb = Sandbox::new();
    let mut s = sb.record_bash(&[], &[], WinSize { cols: 80, rows: 24 });
    let started = Instant::now();
    for i in 0..1000u16 {
        s.resize(WinSize {
            cols: 60 + i % 60,
            rows: 20 + i % 20,
        });
    }
    let took = started.elapsed();
    let last = WinSize {
        cols: 100,
        rows: 33,
    };
    s.resize(last);
    s.type_line("stty size");
    s.wait_for("33 100", T);
    s.type_line("exit");
    assert!(s.wait(T).success());
    sb.ingest();
    let rows = all_event_rows(sb.open_store().as_ref());
    assert_exactly_once(&rows);
    // The seq order is the order they happened in; SIGWINCHes that arrive together are
    // one resize, of the size then current.
    let mut by_seq: Vec<_> = rows
        .iter()
        .filter(|r| r.kind == RowKind::Event(EventKind::Resize))
        .collect();
    by_seq.sort_by_key(|r| r.seq);
    assert!(!by_seq.is_empty());
    assert_eq!(
        by_seq.last().unwrap().data,
        b"100x33",
        "the last size is the last resize"
    );
    let id = sb.sessions()[0]["id"].as_str().unwrap().to_string();
    let out = sb.output(sb.cmd("replay").args(["verify", &id]));
    assert!(out.status.success(), "{}", show(&out));
    eprintln!(
        "1000 resizes in {:.0} ms; {} resize events recorded",
        took.as_secs_f64() * 1000.0,
        by_seq.len()
    );
}

#[test]
fn twenty_agents_recording_at_once_into_one_spool_lose_and_mix_nothing() {
    let sb = Sandbox::new();
    let agents: Vec<_> = (0..20)
        .map(|n| {
            let script = format!("for i in $(seq 1 300); do echo agent-{n}-line-$i; done");
            sb.cmd("auditty-agent")
                .args([
                    "record",
                    "-q",
                    "--chunk-latency-ms",
                    "5",
                    "--",
                    "sh",
                    "-c",
                    &script,
                ])
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("start an agent")
        })
        .collect();
    for mut a in agents {
        assert!(a.wait().expect("wait").success());
    }
    sb.ingest();
    let rows = all_event_rows(sb.open_store().as_ref());
    assert_exactly_once(&rows);
    let sessions = sb.sessions();
    assert_eq!(sessions.len(), 20);
    // Each session holds its own agent's lines and no other's.
    for s in &sessions {
        let id = s["id"].as_str().unwrap();
        let text = sb.run(sb.cmd("replay").args(["export", id, "--format", "text"]));
        let n = s["command"][2]
            .as_str()
            .and_then(|c| c.split("agent-").nth(1))
            .and_then(|c| c.split('-').next())
            .expect("agent number");
        assert!(text.contains(&format!("agent-{n}-line-300")), "{text}");
        let others = text
            .lines()
            .filter(|l| l.starts_with("agent-") && !l.starts_with(&format!("agent-{n}-")))
            .count();
        assert_eq!(others, 0, "session {id} holds lines of other agents");
    }
    // One node, twenty sessions numbered 1..=20 by its ledger under concurrent starts.
    let out = sb.output(sb.cmd("replay").args(["verify", "--all"]));
    assert!(out.status.success(), "{}", show(&out));
    let mut numbers: Vec<u64> = sb
        .open_store()
        .list("sessions/")
        .unwrap()
        .iter()
        .flat_map(|k| {
            let store = sb.open_store();
            let bytes = store.get(k).unwrap();
            store::parquet_io::decode_sessions(k, &bytes).unwrap()
        })
        .filter(|r| r.kind == EventKind::Start)
        .map(|r| {
            schemas::SessionStart::from_bytes(&r.metadata)
                .unwrap()
                .node_seq
        })
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=20).collect::<Vec<_>>());
}

#[test]
fn a_session_across_midnight_utc_is_stored_under_both_dates_and_found_whole() {
    let sb = Sandbox::new();
    // The agent's clock (wall and monotonic) starts two seconds before midnight.
    let out = sb.output(
        std::process::Command::new("faketime")
            .arg("2026-12-31 23:59:58")
            .arg(auditty_tests::bin("auditty-agent"))
            .args(["record", "-q", "--", "sh", "-c"])
            .arg("echo before-midnight; sleep 3; echo after-midnight")
            .envs(sb.env()),
    );
    assert!(
        out.status.success(),
        "faketime (scripts/install-test-deps installs it): {}",
        show(&out)
    );
    sb.ingest();
    let keys = sb.open_store().list("events/").unwrap();
    for date in ["date=2026-12-31", "date=2027-01-01"] {
        assert!(keys.iter().any(|k| k.contains(date)), "{date}: {keys:?}");
    }
    let sessions = sb.sessions();
    assert_eq!(sessions.len(), 1);
    let id = sessions[0]["id"].as_str().unwrap().to_string();
    assert!(
        sessions[0]["start"]
            .as_str()
            .unwrap()
            .starts_with("2026-12-31T23:59:5")
    );
    let text = sb.run(sb.cmd("replay").args(["export", &id, "--format", "text"]));
    assert!(
        text.contains("before-midnight") && text.contains("after-midnight"),
        "{text}"
    );
    let out = sb.output(sb.cmd("replay").args(["verify", "--all"]));
    assert!(out.status.success(), "{}", show(&out));
    // The index files the session under its start date and finds what it printed the
    // next day (a program's output is dated at the session's start: no command dates it).
    sb.run(sb.cmd("replay").arg("index"));
    let hits = sb.run(sb.cmd("replay").args(["search", "after", "--json"]));
    assert!(hits.contains(&id), "{hits}");
    let listed = sb.run(
        sb.cmd("replay")
            .args(["ls", "--since", "2026-12-31", "--json"]),
    );
    assert!(listed.contains(&id), "{listed}");
}
