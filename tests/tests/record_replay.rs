//! Issue 2: a real shell recorded on a real PTY, ingested, listed, exported and replayed.

use std::time::Duration;

use auditty_tests::{PtySession, Sandbox, render_asciicast, show};
use terminal::pty::WinSize;

const T: Duration = Duration::from_secs(20);

fn hostname() -> String {
    nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn only_session(sb: &Sandbox) -> serde_json::Value {
    let sessions = sb.sessions();
    assert_eq!(sessions.len(), 1, "expected one session: {sessions:#?}");
    sessions.into_iter().next().unwrap()
}

#[test]
fn a_scripted_shell_session_round_trips_to_an_identical_screen() {
    let sb = Sandbox::new();
    let mut s = sb.record_bash(&[], &[], WinSize { cols: 80, rows: 24 });
    s.type_line("echo ready-$((40+2))");
    s.wait_for("ready-42", T);

    s.type_line("echo 'zażółć gęślą jaźń — 🦀🎉 done'");
    s.wait_for("🎉 done", T);

    // A window resize, seen by the program inside.
    s.settle(Duration::from_millis(300));
    s.resize(WinSize {
        cols: 100,
        rows: 30,
    });
    s.type_line("stty size");
    s.wait_for("30 100", T);

    // A full-screen program: vi on the alternate screen, then back.
    s.type_line("vi -u NONE -N");
    s.wait_for("~", T);
    s.send("ihello from vi\x1b");
    s.wait_for("hello from vi", T);
    s.send(":q!\r");
    // vi discards typeahead when it restores the terminal: let it finish first.
    s.settle(Duration::from_millis(500));
    s.type_line("echo after-vi");
    s.wait_for("after-vi", T);

    // And a pager.
    s.type_line("seq 1 300 | less");
    s.wait_for("29", T);
    s.send("G");
    s.wait_for("(END)", T);
    s.send("q");
    s.settle(Duration::from_millis(500));
    s.type_line("auditty-agent mark checkpoint-one && echo marked");
    s.wait_for("marked", T);

    s.type_line("exit 3");
    let status = s.wait(T);
    assert_eq!(
        status.code(),
        Some(3),
        "the shell's exit status passes through the agent"
    );
    let live = s.rows();

    let ingest_log = sb.ingest();
    assert!(ingest_log.contains("0 dead letters"), "{ingest_log}");

    let session = only_session(&sb);
    let id = session["id"].as_str().unwrap().to_string();
    assert_eq!(
        session["user"],
        nix::unistd::User::from_uid(nix::unistd::getuid())
            .unwrap()
            .unwrap()
            .name
    );
    assert_eq!(session["host"], hostname());
    assert_eq!(
        session["command"],
        serde_json::json!(["bash", "--norc", "--noprofile"])
    );
    assert_eq!(session["exit_status"], 3);
    assert_eq!(session["ended"], true);
    assert_eq!(
        (session["cols"].as_u64(), session["rows"].as_u64()),
        (Some(80), Some(24))
    );

    // asciicast export: valid for the real asciinema, and the same final screen.
    let cast_path = sb.path().join("session.cast");
    sb.run(
        sb.cmd("replay")
            .args(["export", &id[..8], "--format", "asciicast", "-o"])
            .arg(&cast_path),
    );
    let cast = std::fs::read_to_string(&cast_path).unwrap();
    let replayed = render_asciicast(&cast);
    assert_eq!(
        replayed, live,
        "final screen of the replay differs from the live session"
    );
    assert!(
        cast.contains(r#""r", "100x30""#),
        "resize event exported: {cast}"
    );
    assert!(cast.contains(r#""m", "checkpoint-one""#), "marker exported");
    assert!(cast.contains("zażółć gęślą jaźń — 🦀🎉 done"));

    // `asciinema cat` needs a terminal of its own.
    let mut cat = PtySession::spawn(
        "asciinema",
        [std::ffi::OsStr::new("cat"), cast_path.as_os_str()],
        &sb.env(),
        WinSize { cols: 80, rows: 24 },
    );
    let status = cat.wait(T);
    let printed = String::from_utf8_lossy(&cat.raw_output()).into_owned();
    assert!(
        status.success(),
        "asciinema cat rejected the export ({status}):\n{printed}"
    );
    assert!(
        printed.contains("🦀🎉 done"),
        "asciinema cat output: {printed}"
    );

    // Plain-text export shows what the user saw.
    let text = sb.run(sb.cmd("replay").args(["export", &id, "--format", "text"]));
    assert!(
        text.contains("ready-42") && text.contains("after-vi") && text.contains("marked"),
        "{text}"
    );

    // Refuses to overwrite without --force.
    let out = sb.output(sb.cmd("replay").args(["export", &id, "-o"]).arg(&cast_path));
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
}

#[test]
fn playback_writes_the_session_and_restores_the_terminal() {
    let sb = Sandbox::new();
    sb.run(sb.cmd("auditty-agent").args([
        "record",
        "-q",
        "--",
        "sh",
        "-c",
        "printf 'one\\n'; sleep 0.3; printf 'two\\n'",
    ]));
    sb.ingest();
    let id = only_session(&sb)["id"].as_str().unwrap().to_string();

    let replay = auditty_tests::bin("replay");
    let mut p = PtySession::spawn(
        &replay,
        ["play", &id, "--speed", "2"],
        &sb.env(),
        WinSize { cols: 80, rows: 24 },
    );
    let status = p.wait(T);
    assert!(status.success(), "{status}");
    let rows = p.rows();
    assert_eq!(
        &rows[..2],
        &["one".to_string(), "two".to_string()],
        "{rows:?}"
    );

    // q quits a long playback at once, and leaves the terminal in cooked mode: the shell
    // around it echoes what is typed afterwards.
    sb.run(sb.cmd("auditty-agent").args([
        "record",
        "-q",
        "--",
        "sh",
        "-c",
        "echo start; sleep 30; echo never",
    ]));
    sb.ingest();
    let long = sb
        .sessions()
        .into_iter()
        .find(|s| s["command"][2] == "echo start; sleep 30; echo never")
        .unwrap();
    let script = format!(
        "{} play {}; stty -a | grep -o ' icanon' ; echo done",
        replay.display(),
        long["id"].as_str().unwrap()
    );
    let mut p = PtySession::spawn(
        "sh",
        ["-c", &script],
        &sb.env(),
        WinSize { cols: 80, rows: 24 },
    );
    p.wait_for("start", T);
    p.send("q");
    let status = p.wait(T);
    assert!(status.success());
    p.wait_for("done", T);
    p.wait_for(" icanon", T);
}

#[test]
fn killing_the_agent_keeps_every_spooled_event_and_reads_as_not_ended() {
    let sb = Sandbox::new();
    let mut s = sb.record_bash(&[], &[], WinSize::default());
    s.type_line("echo before-kill-$((6*7))");
    s.wait_for("before-kill-42", T);
    s.type_line("for i in 1 2 3; do echo line$i; done");
    s.wait_for("line3", T);

    // Wait until the spool holds the output (chunks are cut every 250 ms), reading it the
    // way the ingester does.
    let deadline = std::time::Instant::now() + T;
    let spooled = loop {
        let events = sb.spooled_events();
        let output: Vec<u8> = events
            .iter()
            .filter(|e| e.kind == schemas::EventKind::Output)
            .flat_map(|e| e.data.clone())
            .collect();
        if String::from_utf8_lossy(&output).contains("line3") {
            break events;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the spool never held the output"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    s.signal(libc::SIGKILL);
    s.wait(T);

    // Everything the spool held at the kill, plus whatever was appended before it died.
    let at_kill = sb.spooled_events();
    assert!(at_kill.len() >= spooled.len());
    // Simulate the kill landing mid-append: half an entry at the end of the segment.
    let seg = spool::list_segments(&sb.spool()).unwrap().pop().unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&seg.path)
        .unwrap();
    std::io::Write::write_all(
        &mut f,
        &[0xA7, b'S', b'P', b'1', 200, 0, 0, 0, 1, 2, 3, 4, 5],
    )
    .unwrap();
    drop(f);

    let log = sb.ingest();
    assert!(
        log.contains("torn tail") && log.contains(&seg.path.display().to_string()),
        "{log}"
    );
    let session = only_session(&sb);
    assert_eq!(session["ended"], false, "{session:#}");
    assert_eq!(session["exit_status"], serde_json::Value::Null);

    let id: schemas::SessionId = session["id"].as_str().unwrap().parse().unwrap();
    let stored: Vec<schemas::Event> = search::session_events(sb.open_store().as_ref(), id)
        .unwrap()
        .iter()
        .filter_map(|r| r.to_event())
        .collect();
    assert_eq!(
        stored, at_kill,
        "the store holds exactly the events the spool held"
    );
    assert!(
        stored.iter().enumerate().all(|(i, e)| e.seq == i as u64),
        "no gaps"
    );
    assert!(
        spool::list_segments(&sb.spool()).unwrap().is_empty(),
        "ingested segments are removed"
    );

    let listing = sb.run(sb.cmd("replay").arg("ls"));
    let row = listing
        .lines()
        .find(|l| l.starts_with(&id.to_string()))
        .unwrap();
    assert!(
        row.contains("     -"),
        "not-ended sessions show '-' for exit: {listing}"
    );
}

#[test]
fn a_damaged_segment_and_a_garbage_chunk_are_reported_and_the_rest_ingested() {
    let sb = Sandbox::new();
    let script = "for i in $(seq 1 40); do echo line-$i; sleep 0.01; done";
    for _ in 0..2 {
        sb.run(sb.cmd("auditty-agent").args([
            "record",
            "-q",
            "--chunk-latency-ms",
            "5",
            "--",
            "sh",
            "-c",
            script,
        ]));
    }
    let segments = spool::list_segments(&sb.spool()).unwrap();
    assert_eq!(segments.len(), 2);

    // Flip a byte inside the payload of the third entry of the first session's segment.
    let damaged = &segments[0];
    let scan = spool::scan_segment(&damaged.path, 0).unwrap();
    assert!(
        scan.items.len() > 6,
        "want several chunks, got {}",
        scan.items.len()
    );
    let spool::ScanItem::Entry {
        offset: bad_at,
        end: bad_end,
        payload,
    } = scan.items[2].clone()
    else {
        panic!()
    };
    // The events the damaged chunk holds: exactly these must be missing afterwards.
    let header = schemas::chunk::ChunkHeader::parse(&payload).expect("a chunk header");
    let lost = header.first_seq..header.first_seq + u64::from(header.event_count);
    assert!(!lost.is_empty());
    let mut bytes = std::fs::read(&damaged.path).unwrap();
    bytes[bad_at as usize + 20] ^= 0x55;
    std::fs::write(&damaged.path, &bytes).unwrap();

    // A segment holding a garbage record and a chunk from a future format version.
    let mut w =
        spool::SpoolWriter::create(&sb.spool(), "garbage", spool::SpoolOptions::default()).unwrap();
    w.append(b"this is not a chunk").unwrap();
    let future = schemas::Chunk {
        session_id: schemas::SessionId::new_v7_at(0),
        events: vec![],
    };
    let mut future = future.encode(false);
    future[4] = 9;
    w.append(&future).unwrap();
    let garbage = w.current_segment().to_path_buf();
    w.finish().unwrap();

    let log = sb.ingest();
    assert!(
        log.contains(&format!(
            "spool file {} is damaged: bytes {bad_at}..{bad_end}",
            damaged.path.display()
        )),
        "the damage is named with its file and offsets:\n{log}"
    );
    assert!(
        log.contains(&format!(
            "spool file {}: the entry at offset 0",
            garbage.display()
        )) && log.contains("not an auditty chunk"),
        "{log}"
    );
    assert!(log.contains("unsupported chunk format version 9"), "{log}");

    // Both sessions are there; the damaged one lost exactly one chunk, nothing else.
    let sessions = sb.sessions();
    assert_eq!(sessions.len(), 2);
    for s in &sessions {
        let id = s["id"].as_str().unwrap();
        let text = sb.run(sb.cmd("replay").args(["export", id, "--format", "text"]));
        assert!(text.contains("line-40"), "{text}");
        assert_eq!(s["ended"], true);
    }
    let rows = auditty_tests::all_event_rows(sb.open_store().as_ref());
    let damaged_id = header.session_id;
    let mut seqs: Vec<u64> = rows
        .iter()
        .filter(|r| r.session_id == damaged_id)
        .map(|r| r.seq)
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    let last = *seqs.last().expect("rows of the damaged session");
    let missing: Vec<u64> = (0..=last)
        .filter(|s| seqs.binary_search(s).is_err())
        .collect();
    assert_eq!(
        missing,
        lost.collect::<Vec<_>>(),
        "exactly the damaged chunk's events"
    );
    let others: Vec<_> = rows
        .iter()
        .filter(|r| r.session_id != damaged_id)
        .cloned()
        .collect();
    auditty_tests::assert_exactly_once(&others);
    let dead: Vec<String> = sb.open_store().list("dead-letter/").unwrap();
    assert_eq!(
        dead.iter().filter(|k| k.ends_with(".bin")).count(),
        3,
        "{dead:?}"
    );
    assert!(spool::list_segments(&sb.spool()).unwrap().is_empty());
}

#[test]
fn markers_outside_a_session_and_unknown_sessions_fail_clearly() {
    let sb = Sandbox::new();
    let out = sb.output(
        sb.cmd("auditty-agent")
            .args(["mark", "x"])
            .env_remove("AUDITTY_CONTROL"),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not inside a recorded session"),
        "{}",
        show(&out)
    );

    let out = sb.output(sb.cmd("replay").args(["play", "0123"]));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("replay ls"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_full_spool_refuses_to_record_with_a_clear_error() {
    let sb = Sandbox::new();
    sb.run(
        sb.cmd("auditty-agent")
            .args(["record", "-q", "--", "sh", "-c", "seq 1 2000"]),
    );
    let out = sb.output(sb.cmd("auditty-agent").args([
        "record",
        "--spool-max-bytes",
        "100",
        "--",
        "true",
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is full") && err.contains("ingester"), "{err}");
}
