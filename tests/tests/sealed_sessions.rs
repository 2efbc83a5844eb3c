//! Issue 6: sealed sessions (DESIGN.md §5). What a user types and sees inside a session
//! recorded for recipients is never in the clear outside `replay`: not in the spool, not
//! in a Kafka record, not in a stored object. `replay` shows it with a key that opens it,
//! and without one refuses in one line that names the session and its recipients.
//!
//! A session's metadata (user, host, command line) is in the clear by design, so the
//! secret is typed at the prompt inside the session, never passed on a command line.
//!
//! Two checks for every place the secret could leak: the raw bytes of every file and
//! record, and the decoded structure (a chunk or row in the clear may only be `start`, a
//! checkpoint or `end`; everything else must be a sealed chunk). The raw scan alone is
//! blind to compressed bytes (zstd chunks, Parquet pages), hence the second check; the
//! SSH session is recorded with `--no-compress` so that its raw scan means something on
//! its own (`redaction.rs`'s control test shows such a scan does find typed text).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Once;
use std::time::Duration;

use auditty_tests::broker::Broker;
use auditty_tests::moto::{Moto, s3_env};
use auditty_tests::{Sandbox, all_event_rows, show, ssh_key};
use envelope::KmsOptions;
use envelope::testsuite::create_kms_key;
use schemas::chunk::seal::SealedChunk;
use schemas::chunk::{ChunkHeader, FLAG_SEALED};
use schemas::{Chunk, EventKind, RowKind};
use terminal::pty::WinSize;

const T: Duration = Duration::from_secs(30);

/// Dummy AWS credentials for the KMS calls this process makes itself (creating a key on
/// moto). Every test calls this first: `Once` holds the others back until it is done, so
/// the environment is never written while another thread of this process reads it.
fn aws_credentials() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (k, v) in s3_env() {
            // SAFETY: set once, before any test thread goes on to read the environment.
            unsafe { std::env::set_var(k, v) };
        }
    });
}

/// A secret typed inside a session: the command line holds `typed`; the output holds
/// `shown` too, upper-cased by `tr`, so it is something the user never typed.
struct Secret {
    typed: String,
    shown: String,
    nonce: String,
}

impl Secret {
    fn new() -> Secret {
        let nonce = format!("{:016x}", rand::random::<u64>());
        Secret {
            typed: format!("s3cr3t-{nonce}"),
            shown: format!("S3CR3T-{}", nonce.to_uppercase()),
            nonce,
        }
    }

    /// What is typed at the prompt.
    fn command(&self) -> String {
        format!("echo {} | tr a-z A-Z", self.typed)
    }

    /// The byte strings that must not appear: both forms, and the random part alone in
    /// either case.
    fn needles(&self) -> [String; 4] {
        [
            self.typed.clone(),
            self.shown.clone(),
            self.nonce.clone(),
            self.nonce.to_uppercase(),
        ]
    }

    /// The first needle found in `bytes`.
    fn found_in(&self, bytes: &[u8]) -> Option<String> {
        self.needles()
            .into_iter()
            .find(|n| bytes.windows(n.len()).any(|w| w == n.as_bytes()))
    }

    /// Asserts that `bytes` (what `what` names) holds no part of the secret.
    fn assert_absent(&self, bytes: &[u8], what: &str) {
        if let Some(n) = self.found_in(bytes) {
            panic!("{what} holds {n:?}, the secret typed in a sealed session, in the clear");
        }
    }
}

/// Records `bash` on a PTY with `record_args`, runs a harmless command, types the
/// secret's command in one write (so that even an input event stored in the clear would
/// hold it whole), waits for its output and exits.
fn record(sb: &Sandbox, extra_env: &[(&'static str, String)], record_args: &[&str], s: &Secret) {
    let mut pty = sb.record_bash(
        record_args,
        extra_env,
        WinSize {
            cols: 100,
            rows: 30,
        },
    );
    pty.type_line("echo ready-$((40+2))");
    pty.wait_for("ready-42", T);
    pty.send(format!("{}\r", s.command()));
    pty.wait_for(&s.shown, T);
    pty.type_line("exit");
    let status = pty.wait(T);
    assert!(
        status.success(),
        "the recorded shell failed ({status}); screen:\n{}",
        pty.rows().join("\n")
    );
}

/// Every regular file under `dir`, with its raw bytes.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("read {}: {e}", d.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read file");
                out.push((path, bytes));
            }
        }
    }
    out
}

/// Asserts the secret is in no file under `dir`; returns how many files were read.
fn assert_absent_from_files(s: &Secret, dir: &Path, what: &str) -> usize {
    let files = files_under(dir);
    assert!(!files.is_empty(), "no {what} files under {}", dir.display());
    for (path, bytes) in &files {
        s.assert_absent(bytes, &format!("{what} file {}", path.display()));
    }
    files.len()
}

/// Checks one chunk as it travels (spool entry, Kafka record): either sealed, or in the
/// clear holding only `start`, checkpoints and `end`, without the secret. Returns whether
/// it is sealed.
fn check_chunk(s: &Secret, bytes: &[u8], what: &str) -> bool {
    s.assert_absent(bytes, what);
    let header = ChunkHeader::parse(bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
    if header.flags & FLAG_SEALED != 0 {
        let sealed = SealedChunk::parse(bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(sealed.header.first_seq, header.first_seq, "{what}");
        assert!(
            Chunk::decode(bytes).is_err(),
            "{what}: a sealed chunk decodes without its key"
        );
        return true;
    }
    let chunk = Chunk::decode(bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
    for e in &chunk.events {
        assert!(
            matches!(
                e.kind,
                EventKind::Start | EventKind::Checkpoint | EventKind::End
            ),
            "{what}: a {} event (seq {}) travels in the clear in a sealed session: {:?}",
            e.kind,
            e.seq,
            String::from_utf8_lossy(&e.data)
        );
        s.assert_absent(&e.data, &format!("{what}, {} event {}", e.kind, e.seq));
    }
    false
}

/// Checks a whole session's chunks; returns how many were sealed.
fn check_chunks(s: &Secret, chunks: &[(String, Vec<u8>)]) -> usize {
    assert!(!chunks.is_empty(), "no chunks to look at");
    let sealed = chunks
        .iter()
        .filter(|(what, bytes)| check_chunk(s, bytes, what))
        .count();
    assert!(
        sealed >= 1,
        "no sealed chunk among {} chunks of a sealed session",
        chunks.len()
    );
    sealed
}

/// Every spool entry (a chunk), named by file and index.
fn spool_chunks(sb: &Sandbox) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for seg in spool::list_segments(&sb.spool()).expect("list spool") {
        for (i, item) in spool::scan_segment(&seg.path, 0)
            .expect("scan segment")
            .items
            .into_iter()
            .enumerate()
        {
            if let spool::ScanItem::Entry { payload, .. } = item {
                out.push((
                    format!("spool entry {i} of {}", seg.path.display()),
                    payload,
                ));
            }
        }
    }
    out
}

/// The spool before ingest: raw bytes of every file, and every chunk in it.
fn check_spool(sb: &Sandbox, s: &Secret) -> usize {
    assert_absent_from_files(s, &sb.spool(), "spool");
    let chunks = spool_chunks(sb);
    check_chunks(s, &chunks);
    chunks.len()
}

/// The store after ingest: raw bytes of every object, and every row decoded.
fn check_store(sb: &Sandbox, s: &Secret) {
    // What the store holds: the two tables, and the nodes' ledger heads when a shipper
    // sent some, nothing else; every file of them is checked for the secret below. (The
    // search index lives outside the store.)
    let mut top: Vec<String> = std::fs::read_dir(sb.store())
        .expect("read store")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name != "ledger")
        .collect();
    top.sort();
    assert_eq!(top, ["events", "sessions"], "unexpected parts of the store");
    assert_absent_from_files(s, &sb.store(), "store");

    let store = sb.open_store();
    let rows = all_event_rows(store.as_ref());
    assert!(!rows.is_empty());
    let mut sealed = 0;
    for r in &rows {
        let what = format!("events row seq {} ({})", r.seq, r.kind);
        s.assert_absent(&r.data, &what);
        match &r.kind {
            RowKind::Event(EventKind::Start | EventKind::Checkpoint | EventKind::End) => {}
            RowKind::Sealed => {
                let c = SealedChunk::parse(&r.data).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(
                    (c.header.first_seq, c.last_seq()),
                    (r.seq, r.seq_last),
                    "{what}"
                );
                sealed += 1;
            }
            other => panic!(
                "{what}: a {other} row is stored in the clear in a sealed session: {:?}",
                String::from_utf8_lossy(&r.data)
            ),
        }
    }
    assert!(sealed >= 1, "no sealed row in the store");
    for key in store.list("sessions/").expect("list sessions/") {
        let bytes = store.get(&key).expect("get");
        for r in store::parquet_io::decode_sessions(&key, &bytes).expect("decode sessions") {
            s.assert_absent(&r.metadata, &format!("sessions row {} of {key}", r.kind));
        }
    }
}

/// `replay ARGS` in the sandbox, with `extra_env`, and no key from the caller's
/// environment.
fn replay(sb: &Sandbox, extra_env: &[(&'static str, String)], args: &[&str]) -> Output {
    let mut c = sb.cmd("replay");
    c.env_remove("AUDITTY_IDENTITY")
        .env_remove("AUDITTY_KMS_ENDPOINT_URL")
        .envs(extra_env.iter().cloned())
        .args(args);
    sb.output(&mut c)
}

/// `replay ARGS`, which must succeed; its stdout as text.
fn replay_ok(sb: &Sandbox, extra_env: &[(&'static str, String)], args: &[&str]) -> String {
    let out = replay(sb, extra_env, args);
    assert!(
        out.status.success(),
        "replay {args:?} failed: {}\n{}",
        out.status,
        show(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts that `replay ARGS` could not run (exit 2) and said why in one line, which
/// contains each of `expected`; returns that line. Nothing of the session is printed.
fn assert_refused(
    sb: &Sandbox,
    extra_env: &[(&'static str, String)],
    args: &[&str],
    expected: &[&str],
    s: &Secret,
) -> String {
    let out = replay(sb, extra_env, args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "replay {args:?}\n{}",
        show(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "replay {args:?} must say why in one line:\n{stderr}"
    );
    for e in expected {
        assert!(lines[0].contains(e), "{e:?} not in: {}", lines[0]);
    }
    s.assert_absent(&out.stdout, &format!("stdout of replay {args:?}"));
    s.assert_absent(&out.stderr, &format!("stderr of replay {args:?}"));
    lines[0].to_string()
}

/// The one session in the store, as `replay ls --json` shows it.
fn only_session(sb: &Sandbox) -> serde_json::Value {
    let sessions = sb.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:#?}");
    sessions.into_iter().next().expect("one session")
}

/// How messages show an SSH key: `ssh-ed25519 SHA256:… (comment)`, with the fingerprint
/// as ssh-keygen computes it.
fn ssh_shown(private: &Path) -> String {
    let out = std::process::Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(private.with_extension("pub"))
        .output()
        .expect("run ssh-keygen -l");
    assert!(out.status.success(), "ssh-keygen -l: {}", show(&out));
    // "256 SHA256:… comment (ED25519)"
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let words: Vec<&str> = text.split_whitespace().collect();
    format!("ssh-ed25519 {} ({})", words[1], words[2])
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[test]
fn a_session_sealed_for_two_ssh_keys_is_clear_only_in_replay_with_either_key() {
    aws_credentials();
    let sb = Sandbox::new();
    let keys = sb.path().join("keys");
    let (key1, pub1) = ssh_key(&keys, "auditor-one");
    let (key2, pub2) = ssh_key(&keys, "auditor-two");
    let (stranger, _) = ssh_key(&keys, "stranger");
    let secret = Secret::new();
    record(
        &sb,
        &[],
        &["--no-compress", "--recipient", &pub1, "--recipient", &pub2],
        &secret,
    );

    // The spool, raw and chunk by chunk, before anything moves it.
    let chunks = check_spool(&sb, &secret);

    // Through Kafka: every record as a plain consumer reads it.
    let broker = Broker::start(&sb.path().join("broker"));
    broker.create_topic("sealed", 1);
    sb.run(sb.cmd("auditty-agent").args([
        "ship",
        "--once",
        "--brokers",
        &broker.address(),
        "--topic",
        "sealed",
    ]));
    let records = broker.consume("sealed", chunks, T);
    assert_eq!(records.len(), chunks, "every spooled chunk is in Kafka");
    let mut as_chunks = Vec::new();
    for (i, (key, payload)) in records.into_iter().enumerate() {
        secret.assert_absent(
            &key.unwrap_or_default(),
            &format!("key of Kafka record {i}"),
        );
        as_chunks.push((format!("Kafka record {i}"), payload));
    }
    check_chunks(&secret, &as_chunks);

    // Into the store from Kafka: every object's raw bytes and every row.
    sb.run(sb.cmd("auditty-ingest").args([
        "run",
        "--source",
        &broker.source("sealed"),
        "--group",
        "sealed-ingest",
        "--once",
    ]));
    check_store(&sb, &secret);

    // The listing says it is sealed, for whom, and that it is intact; the metadata is
    // in the clear by design.
    let session = only_session(&sb);
    let id = session["id"].as_str().expect("id").to_string();
    assert_eq!(session["sealed"], true, "{session:#}");
    assert_eq!(session["integrity"], "complete", "{session:#}");
    assert_eq!(
        session["sealed_for"],
        serde_json::json!([pub1, pub2]),
        "{session:#}"
    );
    assert_eq!(
        session["command"],
        serde_json::json!(["bash", "--norc", "--noprofile"])
    );
    let verified = replay_ok(&sb, &[], &["verify", &id]);
    assert!(
        verified.starts_with(&format!("{id}  complete: ")),
        "{verified}"
    );

    // Either key opens it: the text export shows the session and the secret.
    for key in [&key1, &key2] {
        let text = replay_ok(
            &sb,
            &[],
            &[
                "--identity",
                path_str(key),
                "export",
                &id,
                "--format",
                "text",
            ],
        );
        for expected in ["ready-42", &secret.command(), &secret.shown] {
            assert!(
                text.contains(expected),
                "export with {} lacks {expected:?}:\n{text}",
                key.display()
            );
        }
    }
    // play writes the session's output to a pipe as well.
    let played = replay(
        &sb,
        &[],
        &[
            "play",
            &id,
            "--identity",
            path_str(&key2),
            "--idle-limit",
            "0.1",
        ],
    );
    assert!(played.status.success(), "{}", show(&played));
    assert!(
        played
            .stdout
            .windows(secret.shown.len())
            .any(|w| w == secret.shown.as_bytes()),
        "{}",
        show(&played)
    );

    // No key, or a key it was not sealed for: one line naming the session and who it is
    // sealed for (SSH keys by fingerprint), and nothing of the session.
    let sealed_for = format!("is sealed for {}, {}", ssh_shown(&key1), ssh_shown(&key2));
    for args in [
        vec!["export", id.as_str(), "--format", "text"],
        vec!["export", id.as_str()],
        vec!["play", id.as_str()],
    ] {
        let line = assert_refused(&sb, &[], &args, &[&id, &sealed_for], &secret);
        assert!(line.contains("--identity"), "says what to give: {line}");
        let mut wrong = vec!["--identity", path_str(&stranger)];
        wrong.extend(&args);
        assert_refused(
            &sb,
            &[],
            &wrong,
            &[&id, &sealed_for, path_str(&stranger)],
            &secret,
        );
    }
}

#[test]
fn a_session_sealed_with_kms_is_clear_only_in_replay_with_kms() {
    aws_credentials();
    let moto = Moto::start();
    let kms = KmsOptions {
        endpoint_url: Some(moto.endpoint()),
        region: Some("us-east-1".to_string()),
    };
    let key_id = create_kms_key(&kms, None).expect("create a KMS key on moto");
    let sb = Sandbox::new();
    let secret = Secret::new();
    let endpoint = moto.endpoint();
    // Default chunk compression: the structural checks carry the weight here.
    record(
        &sb,
        &s3_env(),
        &[
            "--kms-key-id",
            &key_id,
            "--kms-endpoint-url",
            &endpoint,
            "--kms-region",
            "us-east-1",
        ],
        &secret,
    );
    check_spool(&sb, &secret);
    sb.ingest();
    check_store(&sb, &secret);

    let session = only_session(&sb);
    let id = session["id"].as_str().expect("id").to_string();
    assert_eq!(session["sealed"], true, "{session:#}");
    assert_eq!(
        session["sealed_for"],
        serde_json::json!([format!("kms:{key_id}")]),
        "{session:#}"
    );
    assert_eq!(session["integrity"], "complete", "{session:#}");

    let text = replay_ok(
        &sb,
        &s3_env(),
        &[
            "--kms",
            "--kms-endpoint-url",
            &endpoint,
            "export",
            &id,
            "--format",
            "text",
        ],
    );
    for expected in ["ready-42", &secret.command(), &secret.shown] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    let played = replay(
        &sb,
        &s3_env(),
        &[
            "--kms",
            "--kms-endpoint-url",
            &endpoint,
            "play",
            &id,
            "--idle-limit",
            "0.1",
        ],
    );
    assert!(played.status.success(), "{}", show(&played));
    assert!(
        String::from_utf8_lossy(&played.stdout).contains(&secret.shown),
        "{}",
        show(&played)
    );

    // Without --kms replay never calls KMS: one line saying what to add.
    let sealed_for = format!("session {id} is sealed for kms:{key_id}");
    let line = assert_refused(
        &sb,
        &s3_env(),
        &["export", &id, "--format", "text"],
        &[&sealed_for],
        &secret,
    );
    assert!(line.contains("--kms"), "says what to give: {line}");
    // An SSH identity does not open a session sealed only for KMS.
    let (ssh, _) = ssh_key(&sb.path().join("keys"), "auditor");
    assert_refused(
        &sb,
        &s3_env(),
        &["--identity", path_str(&ssh), "play", &id],
        &[&sealed_for, path_str(&ssh)],
        &secret,
    );
}
