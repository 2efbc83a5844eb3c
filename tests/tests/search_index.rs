//! Issue 15: `replay index` and `replay search` over a real recorded bash session:
//! commands found by their text and their output, with the right session and offset; a
//! secret typed at `read -s` is found nowhere; filters; a second index run is a no-op;
//! `replay ls` from the index lists what a scan of the store lists.

use std::time::Duration;

use auditty_tests::{Sandbox, show};
use terminal::pty::WinSize;

const T: Duration = Duration::from_secs(20);
const SIZE: WinSize = WinSize {
    cols: 120,
    rows: 40,
};
/// Typed at `read -s` only.
const SECRET: &str = "swordfish7Qz";

fn search(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    let mut cmd = sb.cmd("replay");
    cmd.arg("search").args(args);
    sb.output(&mut cmd)
}

fn ls(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    let mut cmd = sb.cmd("replay");
    cmd.arg("ls").args(args);
    sb.output(&mut cmd)
}

fn ls_json(sb: &Sandbox, args: &[&str]) -> serde_json::Value {
    let out = ls(sb, &[args, &["--json"]].concat());
    assert!(out.status.success(), "{}", show(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)))
}

fn json_hits(sb: &Sandbox, query: &str) -> Vec<serde_json::Value> {
    let out = search(sb, &[query, "--json"]);
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

#[test]
fn a_recorded_session_is_indexed_and_searchable() {
    let sb = Sandbox::new();
    let mut s = sb.record_bash(&[], &[], SIZE);
    s.type_line("printf 'haystack-%s\\n' unique123");
    s.wait_for("haystack-unique123", T);
    s.settle(Duration::from_millis(200));
    s.type_line("read -s secret; echo got-${#secret}");
    s.settle(Duration::from_millis(300));
    s.type_line(SECRET);
    s.wait_for("got-12", T);
    s.type_line("exit");
    assert!(s.wait(T).success());
    sb.ingest();

    // Before `replay index`, there is no index.
    let out = search(&sb, &["unique123"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("replay index"),
        "{}",
        show(&out)
    );

    // `replay ls` without an index reads the store and says how to build one.
    let out = ls(&sb, &[]);
    assert!(out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no index at") && err.contains("run `replay index`"),
        "{}",
        show(&out)
    );
    let scanned = ls_json(&sb, &[]);

    let out = sb.output(sb.cmd("replay").arg("index"));
    assert!(out.status.success(), "{}", show(&out));
    // From the index, the same objects as a scan of the store, with no hint.
    let out = ls(&sb, &["--json"]);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("no index"),
        "{}",
        show(&out)
    );
    let listed = ls_json(&sb, &[]);
    assert_eq!(listed, scanned);
    assert_eq!(listed, ls_json(&sb, &["--scan"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["integrity"], "complete", "{listed:#}");
    let user = listed[0]["user"].as_str().unwrap().to_string();
    assert_eq!(ls_json(&sb, &["--user", &user]), listed);
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let tomorrow = schemas::time::date(now_ns + 86_400 * 1_000_000_000);
    for filter in [&["--user", "nobody"][..], &["--since", &tomorrow]] {
        assert_eq!(ls_json(&sb, filter), serde_json::json!([]), "{filter:?}");
        assert_eq!(
            ls_json(&sb, &[filter, &["--scan"]].concat()),
            serde_json::json!([])
        );
    }
    let out = ls(&sb, &[]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("complete"),
        "{}",
        show(&out)
    );
    let id = sb.sessions()[0]["id"].as_str().unwrap().to_string();
    let commands = sb.run(sb.cmd("replay").args(["commands", &id, "--json"]));
    let printf: serde_json::Value = serde_json::from_str(commands.lines().next().unwrap()).unwrap();

    // By the command, with the session and the offset `replay commands` gives.
    let hits = json_hits(&sb, "cmd:printf");
    assert_eq!(hits.len(), 1, "{hits:#?}");
    let h = &hits[0];
    assert_eq!(h["id"], id.as_str());
    assert_eq!(h["command"], "printf 'haystack-%s\\n' unique123");
    assert_eq!(h["offset_ns"], printf["offset_ns"]);
    assert_eq!(h["index"], 0);
    for field in ["user", "host", "time", "exit_status", "snippet"] {
        assert!(h.get(field).is_some(), "{field} missing: {h}");
    }

    // By the output, in text form: short id, the command, the match marked.
    let out = search(&sb, &["unique123"]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with(&id[..8]), "{text}");
    assert!(
        text.contains("[haystack-unique123]") || text.contains("[unique123]"),
        "{text}"
    );
    assert!(json_hits(&sb, "hayst*").len() == 1);

    // The secret is nowhere; another user finds nothing.
    for query in [SECRET, "swordfish*"] {
        let out = search(&sb, &[query]);
        assert_eq!(out.status.code(), Some(1), "{query}: {}", show(&out));
    }
    let out = search(&sb, &["cmd:printf", "--user", "nobody-else"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let out = search(&sb, &["cmd:printf", "--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));

    // A second run finds nothing new and leaves the index alone.
    let manifest = std::fs::read(sb.data_dir().join("index/manifest.json")).unwrap();
    let out = sb.output(sb.cmd("replay").arg("index"));
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("up to date"),
        "{}",
        show(&out)
    );
    assert_eq!(
        std::fs::read(sb.data_dir().join("index/manifest.json")).unwrap(),
        manifest
    );
    assert!(!String::from_utf8_lossy(&search(&sb, &["unique123"]).stderr).contains("behind"));
}

/// Records `sh -c SCRIPT` (nothing typed) and returns nothing: its session is what
/// `auditty-ingest` finds next.
fn record_program(sb: &Sandbox, script: &str) {
    sb.run(
        sb.cmd("auditty-agent")
            .args(["record", "-q", "--", "sh", "-c", script]),
    );
}

/// Output no command precedes (a program run in place of a shell) is found with its
/// session at offset 0; `replay index` shows a progress bar on a terminal; `--follow`
/// takes in what is ingested while it runs and stops cleanly on SIGINT.
#[test]
fn program_output_is_found_with_a_progress_bar_and_a_following_index() {
    let sb = Sandbox::new();
    for i in 0..8 {
        let word = if i == 5 { "needle4711" } else { "hay" };
        record_program(&sb, &format!("echo banner-{i}; echo {word}-printed"));
    }
    sb.ingest();

    // On a terminal, with at least 8 sessions to index: the bar is drawn (and cleared).
    let mut pty =
        auditty_tests::PtySession::spawn(auditty_tests::bin("replay"), ["index"], &sb.env(), SIZE);
    assert!(pty.wait(T).success(), "{:?}", pty.rows());
    let raw = String::from_utf8_lossy(&pty.raw_output()).into_owned();
    assert!(
        raw.contains("indexing") && raw.contains("/8 sessions"),
        "{raw:?}"
    );
    assert!(raw.contains("8 session(s)"), "{raw:?}");

    let hits = json_hits(&sb, "needle4711");
    assert_eq!(hits.len(), 1, "{hits:#?}");
    let h = &hits[0];
    assert_eq!(h["offset_ns"], 0);
    assert_eq!(h["command"], "");
    assert!(h["index"].is_null(), "{h}");
    let listed = ls_json(&sb, &[]);
    let owner = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["command"].to_string().contains("needle4711"))
        .expect("the session that printed it");
    assert_eq!(h["id"], owner["id"]);
    let out = search(&sb, &["needle4711"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("(output before any command)"),
        "{}",
        show(&out)
    );

    // `--follow`: a session ingested while it runs becomes searchable.
    let mut follower = sb.spawn_logged(
        {
            let mut c = sb.cmd("replay");
            c.args(["index", "--follow", "--interval", "1"]);
            c
        },
        "index-follow.log",
    );
    record_program(&sb, "echo late-arrival-99");
    sb.ingest();
    let deadline = std::time::Instant::now() + T;
    loop {
        let out = search(&sb, &["late"]);
        if out.status.success() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not indexed within {T:?}: {}\n{}",
            show(&out),
            std::fs::read_to_string(sb.path().join("index-follow.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(follower.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    let status = follower.wait().expect("wait for replay index --follow");
    assert!(status.success(), "{status}");
}
