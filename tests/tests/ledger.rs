//! Issue 16: a node's session ledger. Sessions recorded on one node are numbered, each
//! `start` naming the one before; the shipper sends a signed ledger head naming the newest
//! once its chunks are shipped; through a real broker and the ingester, `replay verify
//! --all` then names a session deleted whole from the store, the newest one included, and
//! fails a forged head.

use std::path::{Path, PathBuf};
use std::process::Output;

use auditty_tests::broker::Broker;
use auditty_tests::{Sandbox, copy_tree, delete_session, files_under, show};
use schemas::SessionId;
use schemas::ledger::LedgerHead;

fn replay(sb: &Sandbox, store: &Path, args: &[&str]) -> Output {
    let mut c = sb.cmd("replay");
    c.arg("--store").arg(store).args(args);
    sb.output(&mut c)
}

#[test]
fn sessions_deleted_whole_are_named_by_their_successor_or_the_signed_head() {
    let sb = Sandbox::new();
    let broker = Broker::start(&sb.path().join("broker"));
    broker.create_topic("events", 2);
    for i in 1..=3 {
        let script = format!("echo session-{i}");
        let out = sb.record_sh(&script);
        assert!(out.status.success(), "{}", show(&out));
    }
    // Everything shipped, then one head naming the newest session.
    let out = sb.output(
        sb.cmd("auditty-agent")
            .args(["ship", "--once", "--brokers", &broker.address()])
            .args(["--topic", "events"])
            .env("AUDITTY_LOG", "info"),
    );
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Sent a ledger head"),
        "{}",
        show(&out)
    );
    let out = sb.output(
        sb.cmd("auditty-ingest")
            .args(["run", "--once", "--group", "ledger-test", "--source"])
            .arg(broker.source("events")),
    );
    assert!(out.status.success(), "{}", show(&out));

    let sessions = sb.sessions();
    assert_eq!(sessions.len(), 3, "{sessions:#?}");
    let ids: Vec<SessionId> = sessions
        .iter()
        .map(|s| s["id"].as_str().expect("id").parse().expect("session id"))
        .collect();
    let out = replay(&sb, &sb.store(), &["verify", "--all"]);
    assert!(out.status.success(), "{}", show(&out));
    let heads: Vec<PathBuf> = files_under(&sb.store())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/ledger/"))
        .collect();
    assert_eq!(heads.len(), 1, "{heads:?}");
    let line = std::fs::read(&heads[0]).expect("ledger object");
    let head = LedgerHead::from_json(line.trim_ascii_end()).expect("a head");
    assert_eq!(
        (head.node_seq, head.session.as_str()),
        (3, &*ids[2].to_string())
    );

    // The newest session deleted whole: only the head knows it.
    let newest = sb.path().join("newest-deleted");
    copy_tree(&sb.store(), &newest);
    delete_session(&newest, ids[2]);
    let out = replay(&sb, &newest, &["verify", "--all"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let expected = format!(
        "{}  FAILED: missing from the store: session #3 of node ",
        ids[2]
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&expected))
        .unwrap_or_else(|| panic!("no {expected:?}:\n{}", show(&out)));
    assert!(
        line.ends_with("named by the node's signed ledger head)"),
        "{line}"
    );

    // The middle one: named by the session after it.
    let middle = sb.path().join("middle-deleted");
    copy_tree(&sb.store(), &middle);
    delete_session(&middle, ids[1]);
    let out = replay(&sb, &middle, &["verify", "--all"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "{}  FAILED: missing from the store: session #2 of node ",
            ids[1]
        )),
        "{}",
        show(&out)
    );

    // A head claiming more sessions than the node signed does not check out.
    let forged = sb.path().join("forged-head");
    copy_tree(&sb.store(), &forged);
    let object = forged.join(heads[0].strip_prefix(sb.store()).expect("in the store"));
    let mut fake = head.clone();
    fake.node_seq = 4;
    let mut text = std::fs::read(&object).expect("read");
    text.extend_from_slice(&fake.to_json());
    text.push(b'\n');
    std::fs::write(&object, text).expect("write");
    let out = replay(&sb, &forged, &["verify", "--all"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("line 2: ledger head with a bad signature"),
        "{}",
        show(&out)
    );
    assert!(!stdout.contains("#4"), "{}", show(&out));
}

/// A shipper installed and started before the node's first session (the README's order:
/// enable the service, then the first login) has no node key when it starts; the
/// session creates one, and the shipper must then send the head without a restart.
#[test]
fn a_shipper_started_before_the_first_session_sends_its_head_once_the_key_exists() {
    let sb = Sandbox::new();
    let broker = Broker::start(&sb.path().join("broker"));
    broker.create_topic("events", 1);
    let key = sb.data_dir().join("node.key");
    assert!(!key.exists(), "a fresh data dir has no node key");
    let mut ship = sb.cmd("auditty-agent");
    ship.args(["ship", "--brokers", &broker.address(), "--topic", "events"]);
    let mut shipper = sb.spawn_logged(ship, "ship.log");
    let log = || std::fs::read_to_string(sb.path().join("ship.log")).unwrap_or_default();
    let until = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !done() {
            assert!(
                std::time::Instant::now() < deadline,
                "{what}; shipper log:\n{}",
                log()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    until("the shipper never said it had no key", &|| {
        log().contains("No node key")
    });

    let out = sb.record_sh("echo first");
    assert!(out.status.success(), "{}", show(&out));
    assert!(key.exists(), "recording created the node key");
    until("no ledger head was sent after the key appeared", &|| {
        log().contains("Sent a ledger head")
    });
    // SAFETY: signals our own child.
    unsafe { libc::kill(shipper.id() as i32, libc::SIGTERM) };
    let status = shipper.wait().expect("wait for the shipper");
    assert!(status.success(), "{status}; shipper log:\n{}", log());

    let out = sb.output(
        sb.cmd("auditty-ingest")
            .args(["run", "--once", "--group", "ledger-late-key", "--source"])
            .arg(broker.source("events")),
    );
    assert!(out.status.success(), "{}", show(&out));
    let heads = files_under(&sb.store())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/ledger/"))
        .count();
    assert_eq!(heads, 1, "one head stored");
    let out = replay(&sb, &sb.store(), &["verify", "--all"]);
    assert!(out.status.success(), "{}", show(&out));
}
