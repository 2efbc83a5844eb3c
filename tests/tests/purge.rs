//! Issue 19, item 6: legal hold, purge with signed tombstones. Three sessions recorded on
//! one node through the real agent and ingested; the middle one, whose rows span several
//! objects, is held (purge refused), released, purged with a crash after the first
//! object rewritten, and purged again. Then pyarrow finds none of its rows in any object,
//! `replay verify --all` lists it as purged with the reason while the others and the node
//! ledger verify complete, `ls`/`search` no longer show it and `play` says it was purged;
//! a tombstone signed by an untrusted key, or changed after signing, counts for nothing.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use auditty_tests::moto::venv_bin;
use auditty_tests::{Sandbox, copy_tree, show};
use terminal::pty::WinSize;

const T: Duration = Duration::from_secs(30);
const REASON: &str = "GDPR erasure request 2026-0042";

/// The shortest prefix of `id` that no id of `others` starts with, as a user would type it.
fn unique_prefix<'a>(id: &'a str, others: &[&str]) -> &'a str {
    (1..=id.len())
        .map(|n| &id[..n])
        .find(|p| others.iter().all(|o| !o.starts_with(p)))
        .unwrap_or(id)
}

/// The session ids of the hits of `replay search QUERY --json` (none: exit status 1).
fn search_ids(sb: &Sandbox, query: &str) -> Vec<String> {
    let out = sb.replay(&["search", query, "--json"]);
    if out.status.code() == Some(1) && out.stdout.is_empty() {
        return Vec::new();
    }
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON hit");
            v["id"].as_str().expect("id").to_string()
        })
        .collect()
}

fn record_sh(sb: &Sandbox, script: &str) {
    let out = sb.record_sh(script);
    assert!(out.status.success(), "{}", show(&out));
}

/// The events objects holding rows of `id`, read with the store's own decoder.
fn events_objects_of(sb: &Sandbox, id: &str) -> usize {
    let store = sb.open_store();
    store
        .list("events/")
        .expect("list")
        .iter()
        .filter(|k| {
            let bytes = store.get(k).expect("get");
            store::parquet_io::decode_events(k, &bytes, None)
                .expect("decode")
                .iter()
                .any(|r| r.session_id.to_string() == id)
        })
        .count()
}

/// pyarrow reads every `events/` and `sessions/` object of `store` and prints, per session
/// id, how many rows it found (JSON), and the number of objects read.
fn rows_per_session_by_pyarrow(store: &Path) -> (serde_json::Value, u64) {
    let script = r#"
import collections, json, pathlib, sys
import pyarrow.parquet as pq
counts = collections.Counter()
objects = 0
for table in ("events", "sessions"):
    for path in sorted(pathlib.Path(sys.argv[1], table).rglob("*.parquet")):
        objects += 1
        for sid in pq.read_table(path, columns=["session_id"]).column("session_id").to_pylist():
            counts[sid] += 1
print(json.dumps({"counts": counts, "objects": objects}))
"#;
    let out = Command::new(venv_bin("python3"))
        .arg("-c")
        .arg(script)
        .arg(store)
        .output()
        .expect("run the venv's python (scripts/install-test-deps)");
    assert!(out.status.success(), "pyarrow: {}", show(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("pyarrow's JSON");
    (v["counts"].clone(), v["objects"].as_u64().expect("objects"))
}

#[test]
fn purge_leaves_a_signed_tombstone_that_verify_accepts_and_nothing_else() {
    let sb = Sandbox::new();
    // Session 1 of the node.
    record_sh(&sb, "echo alpha-$((6*7))");
    sb.ingest();
    // Session 2, ingested three times while it runs: its rows span several objects.
    let mut pty = sb.record_bash(
        &["--chunk-latency-ms", "20"],
        &[],
        WinSize { cols: 80, rows: 24 },
    );
    pty.type_line("echo bravo-secret-$((6*7))");
    pty.wait_for("bravo-secret-42", T);
    pty.settle(Duration::from_millis(400));
    sb.ingest();
    pty.type_line("echo bravo-more-$((7*7))");
    pty.wait_for("bravo-more-49", T);
    pty.settle(Duration::from_millis(400));
    sb.ingest();
    pty.type_line("exit");
    pty.wait(T);
    sb.ingest();
    // Session 3, and 4 sealed for an SSH key (which the purge never needs).
    record_sh(&sb, "echo charlie-$((6*7))");
    let (_, recipient) = auditty_tests::ssh_key(&sb.path().join("keys"), "auditor");
    sb.run(sb.cmd("auditty-agent").args([
        "record",
        "-q",
        "--recipient",
        &recipient,
        "--",
        "sh",
        "-c",
        "echo delta-sealed",
    ]));
    sb.ingest();

    let sessions = sb.sessions();
    assert_eq!(sessions.len(), 4, "{sessions:#?}");
    let ids: Vec<String> = sessions
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect();
    let (alpha, bravo, charlie, delta) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    assert_eq!(sessions[3]["sealed"], true, "{sessions:#?}");
    let bravo_prefix = unique_prefix(bravo, &[alpha, charlie, delta]);
    let holding = events_objects_of(&sb, bravo);
    assert!(
        holding >= 2,
        "the purged session's rows should span several objects"
    );
    sb.replay_ok(&["verify", "--all"]);
    sb.replay_ok(&["index"]);
    assert_eq!(search_ids(&sb, "bravo"), [bravo.clone(), bravo.clone()]);

    // The operator's key, trusted by this data dir's verifier.
    let key = sb.path().join("operator.key");
    let key = key.to_str().expect("utf-8 path");
    let line = sb.replay_ok(&["operator-key", "--operator-key", key, "--operator", "dpo"]);
    std::fs::write(sb.data_dir().join("trusted-operators"), &line).expect("trust file");
    let purge = [
        "purge",
        bravo,
        "--reason",
        REASON,
        "--operator-key",
        key,
        "--operator",
        "dpo",
    ];

    // A hold blocks the purge; released, it does not.
    sb.replay_ok(&["hold", bravo_prefix, "--reason", "case 42"]);
    assert!(sb.replay_ok(&["holds"]).contains(&format!("{bravo}  ")));
    let out = sb.replay(&purge);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is on legal hold"),
        "{}",
        show(&out)
    );
    assert_eq!(
        events_objects_of(&sb, bravo),
        holding,
        "nothing was touched"
    );
    assert!(!sb.store().join("tombstones").exists());
    sb.replay_ok(&["hold", "--release", bravo, "--reason", "case 42 closed"]);

    // A crash after the tombstone and the first rewritten object: verify says so, and
    // the same purge again finishes it.
    let out = sb.output(
        sb.cmd("replay")
            .args(purge)
            .env("AUDITTY_FAILPOINT", "purge-after-first-rewrite"),
    );
    assert!(!out.status.success(), "{}", show(&out));
    let left = events_objects_of(&sb, bravo);
    assert!(
        left >= 1 && left < holding,
        "the crash left rows behind: {left} of {holding}"
    );
    let out = sb.replay(&["verify", bravo]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("purge incomplete"),
        "{}",
        show(&out)
    );
    let done = sb.replay_ok(&purge);
    assert!(
        done.contains("finishing an earlier interrupted purge"),
        "{done}"
    );

    // No row of it in any object, as pyarrow reads them; the others' rows are all there.
    let (counts, objects) = rows_per_session_by_pyarrow(&sb.store());
    assert!(objects >= 4, "{objects} objects");
    assert!(counts.get(bravo).is_none(), "{counts:#}");
    assert!(counts[alpha].as_u64() > Some(2) && counts[charlie].as_u64() > Some(2));

    // verify --all: exit 0, the purged session with who and why, the others complete, and
    // the ledger (#1, #2 purged, #3) whole.
    let out = sb.replay_ok(&["verify", "--all"]);
    let line_of = |id: &str| {
        out.lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("no line for {id}:\n{out}"))
            .to_string()
    };
    let purged = line_of(bravo);
    assert!(purged.contains("  purged on "), "{purged}");
    assert!(purged.contains("by dpo"), "{purged}");
    assert!(purged.contains("signed by operator dpo"), "{purged}");
    assert!(purged.ends_with(REASON), "{purged}");
    assert!(line_of(alpha).contains("  complete: "), "{out}");
    assert!(line_of(charlie).contains("  complete: "), "{out}");
    assert!(line_of(delta).contains("  complete: "), "{out}");
    assert_eq!(out.lines().count(), 4, "{out}");
    let json = sb.replay_ok(&["verify", bravo_prefix, "--json"]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("JSON");
    assert_eq!(v["state"], "purged", "{v:#}");
    assert_eq!(v["purged"]["reason"], REASON, "{v:#}");
    assert_eq!(v["purged"]["node_seq"], 2, "{v:#}");
    // The compliance report agrees: three sessions, none missing from the node's ledger.
    let report: serde_json::Value =
        serde_json::from_str(&sb.replay_ok(&["report", "--format", "json"])).expect("JSON");
    assert_eq!(
        report["header"]["missing_from_ledger"], 0,
        "{:#}",
        report["header"]
    );

    // Without the operator's key in the trust file the tombstone proves nothing: the
    // session is missing, and the ledger says so too.
    let empty = sb.path().join("no-operators");
    std::fs::write(&empty, "").expect("empty trust file");
    let out = sb.replay(&[
        "verify",
        "--all",
        "--operator-trust",
        empty.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "{bravo}  FAILED: missing from the store, and its tombstone does not count"
        )),
        "{}",
        show(&out)
    );
    assert!(
        stdout.contains("missing from the store: session #2 of node"),
        "{}",
        show(&out)
    );

    // The index drops it; ls and search no longer show it; play says it was purged.
    let index = sb.replay(&["index"]);
    assert!(index.status.success(), "{}", show(&index));
    assert!(
        String::from_utf8_lossy(&index.stderr).contains("dropped 1 purged session"),
        "{}",
        show(&index)
    );
    let listed: Vec<String> = sb
        .sessions()
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(listed, [alpha.clone(), charlie.clone(), delta.clone()]);
    assert!(search_ids(&sb, "bravo").is_empty());
    assert_eq!(search_ids(&sb, "charlie"), std::slice::from_ref(charlie));
    let out = sb.replay(&["play", bravo_prefix]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("session {bravo} was purged on ")) && stderr.contains(REASON),
        "{}",
        show(&out)
    );

    // A tombstone changed after signing counts for nothing.
    let changed = sb.path().join("changed");
    copy_tree(&sb.store(), &changed);
    let tomb = changed.join("tombstones").join(format!("{bravo}.json"));
    let text = std::fs::read_to_string(&tomb).expect("tombstone");
    std::fs::write(&tomb, text.replace(REASON, "routine cleanup")).expect("write");
    let c = changed.to_str().expect("utf-8");
    let out = sb.replay(&["--store", c, "verify", "--all"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("its signature does not match"),
        "{}",
        show(&out)
    );

    // Someone with write access and a key of their own deletes session 1 and signs a
    // tombstone: not in the operators' trust file, so verify fails and the ledger names
    // the gap.
    let forged = sb.path().join("forged");
    copy_tree(&sb.store(), &forged);
    let f = forged.to_str().expect("utf-8");
    let mallory = sb.path().join("mallory.key");
    let mallory = mallory.to_str().expect("utf-8");
    sb.replay_ok(&["operator-key", "--operator-key", mallory]);
    sb.replay_ok(&[
        "--store",
        f,
        "purge",
        alpha,
        "--reason",
        "routine",
        "--operator-key",
        mallory,
    ]);
    let out = sb.replay(&["--store", f, "verify", "--all"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "{alpha}  FAILED: missing from the store, and its tombstone does not count: signed by ed25519:"
        )),
        "{}",
        show(&out)
    );
    assert!(
        stdout.contains("missing from the store: session #1 of node"),
        "{}",
        show(&out)
    );
    assert!(
        stdout.contains(&format!("{bravo}  purged on ")),
        "{}",
        show(&out)
    );

    // Retention: everything started before 2100 and not held, which leaves the sealed
    // session 4 once 1 and 3 are held; purged without its key, ledger still whole.
    let kept = sb.path().join("retention");
    copy_tree(&sb.store(), &kept);
    let k = kept.to_str().expect("utf-8");
    for id in [alpha, charlie] {
        sb.replay_ok(&["--store", k, "hold", id, "--reason", "case 7"]);
    }
    let retention = [
        "--store",
        k,
        "purge",
        "--expired-before",
        "2100-01-01",
        "--reason",
        "retention: older than 0 days",
        "--operator-key",
        key,
    ];
    let mut dry = retention.to_vec();
    dry.push("--dry-run");
    assert_eq!(sb.replay_ok(&dry), format!("{delta}  would be purged\n"));
    sb.replay_ok(&retention);
    let (counts, _) = rows_per_session_by_pyarrow(&kept);
    assert!(counts.get(delta).is_none(), "{counts:#}");
    assert!(counts[alpha].as_u64() > Some(2) && counts[charlie].as_u64() > Some(2));
    let out = sb.replay_ok(&["--store", k, "verify", "--all"]);
    assert!(
        out.lines().any(|l| l.starts_with(delta.as_str())
            && l.contains("  purged on ")
            && l.ends_with(": retention: older than 0 days")),
        "{out}"
    );
    assert_eq!(out.matches("  complete: ").count(), 2, "{out}");

    // On S3 (moto) too: objects are replaced there without the guard that keeps every
    // other write from clobbering one.
    let moto = auditty_tests::moto::Moto::start();
    moto.create_bucket("purge-test");
    upload_tree(&moto, &sb.store(), "/purge-test/store");
    let endpoint = moto.endpoint();
    let on_s3 = |args: &[&str]| {
        let mut c = sb.cmd("replay");
        c.envs(auditty_tests::moto::s3_env()).args([
            "--store",
            "s3://purge-test/store",
            "--s3-endpoint",
            &endpoint,
        ]);
        sb.output(c.args(args))
    };
    let out = on_s3(&[
        "purge",
        alpha,
        "--reason",
        "erasure on S3",
        "--operator-key",
        key,
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let out = on_s3(&["verify", "--all"]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for (id, why) in [(alpha, "erasure on S3"), (bravo, REASON)] {
        assert!(
            text.lines().any(|l| l.starts_with(id.as_str())
                && l.contains("  purged on ")
                && l.ends_with(why)),
            "{text}"
        );
    }
    assert_eq!(text.matches("  complete: ").count(), 2, "{text}");
}

/// Puts every file under `dir` into moto at `prefix` (path-style, `/bucket/key`).
fn upload_tree(moto: &auditty_tests::moto::Moto, dir: &Path, prefix: &str) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if path.is_dir() {
            upload_tree(moto, &path, &format!("{prefix}/{name}"));
        } else if !name.starts_with('.') {
            let body = std::fs::read(&path).expect("read");
            let (status, answer) = moto
                .raw("PUT", &format!("{prefix}/{name}"), &body)
                .expect("moto answers");
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
        }
    }
}

/// An asciicast of a few seconds that started at `timestamp` (Unix seconds).
fn cast_at(timestamp: i64, word: &str) -> String {
    format!(
        "{{\"version\": 2, \"width\": 80, \"height\": 24, \"timestamp\": {timestamp}}}\n\
         [0.5, \"o\", \"$ \"]\n[1.0, \"i\", \"echo {word}\\r\"]\n[1.1, \"o\", \"echo {word}\\r\\n{word}\\r\\n$ \"]\n"
    )
}

/// Retention by compaction: `auditty-ingest compact --retention-days` purges the sessions
/// older than the period that are not held, each with a signed tombstone, then merges;
/// `verify --all` lists them as purged with the retention reason, and the held one and
/// the recent one stay.
#[test]
fn compaction_applies_retention_and_leaves_held_sessions() {
    let sb = Sandbox::new();
    let mut ids = Vec::new();
    for (name, timestamp) in [
        ("old-held", 1_600_000_000),
        ("old-gone", 1_600_000_100),
        ("recent", schemas::time::now_ns() / 1_000_000_000 - 60),
    ] {
        let path = sb.path().join(format!("{name}.cast"));
        std::fs::write(&path, cast_at(timestamp, name)).expect("cast");
        let out = sb.replay_ok(&[
            "import",
            "--user",
            "u",
            "--host",
            "h",
            path.to_str().expect("utf-8"),
        ]);
        ids.push(out.split_whitespace().next().expect("id").to_string());
    }
    let (held, gone, recent) = (&ids[0], &ids[1], &ids[2]);
    sb.replay_ok(&["hold", held, "--reason", "litigation 12"]);
    let key = sb.path().join("operator.key");
    let key = key.to_str().expect("utf-8 path");
    let line = sb.replay_ok(&["operator-key", "--operator-key", key]);
    std::fs::write(sb.data_dir().join("trusted-operators"), &line).expect("trust file");
    let nodes = sb.path().join("trusted-keys");
    std::fs::write(&nodes, "").expect("an empty nodes' trust file: imports have no node");

    let compact = |extra: &[&str]| {
        let out = sb.output(
            sb.cmd("auditty-ingest")
                .args(["compact", "--min-age", "0", "--retention-days", "30"])
                .args(["--operator-key", key, "--trust"])
                .arg(&nodes)
                .args(extra),
        );
        assert!(out.status.success(), "{}", show(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let plan = compact(&["--dry-run"]);
    let purged: Vec<&str> = plan
        .lines()
        .filter(|l| l.contains("would be purged"))
        .collect();
    assert_eq!(
        purged,
        [format!(
            "{gone}  would be purged (retention: started more than 30 days ago)"
        )],
        "only the old session that is not held:\n{plan}"
    );
    assert!(plan.contains("would merge"), "{plan}");
    compact(&[]);

    let (counts, _) = rows_per_session_by_pyarrow(&sb.store());
    assert!(counts.get(gone).is_none(), "{counts:#}");
    assert!(
        counts.get(held).is_some() && counts.get(recent).is_some(),
        "{counts:#}"
    );
    // Imports were not signed at capture, so verify exits 1 for the two kept; the
    // purged one is reported as purged, with the retention reason.
    let out = sb.replay(&["verify", "--all"]);
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.lines().any(|l| l.starts_with(gone.as_str())
            && l.contains("  purged on ")
            && l.ends_with("retention: started more than 30 days ago")),
        "{out}"
    );
    for id in [held, recent] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(id.as_str()) && l.contains("IMPORTED")),
            "{out}"
        );
    }
    assert_eq!(out.lines().count(), 3, "{out}");
    let access = sb.replay_ok(&["access-log", "--session", gone]);
    assert!(access.contains("purge"), "{access}");
}
