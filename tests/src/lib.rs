//! Test harness for auditty's end-to-end tests: real binaries, real PTYs, real files.
//!
//! - [`Sandbox`]: a fresh data directory per test, and commands for our binaries with it
//!   set; [`Sandbox::run`] fails with the command's stdout and stderr shown.
//! - [`broker::Broker`]: a real Kafka-protocol broker (tansu) per test.
//! - [`PtySession`]: a program on a PTY the test owns; a reader thread draws everything
//!   it prints into a terminal emulator, so tests wait for and compare *screens*.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub mod broker;
pub mod compaction;
pub mod moto;
pub mod packages;
pub mod prometheus;
pub mod s3_proxy;
pub mod synthetic;

use search::render::Screen;
use store::ObjectStore as _;
use terminal::pty::{self, WinSize};

/// The directory holding the workspace's built binaries (`target/debug`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/<test> → target/debug
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// Path of one of our binaries; panics with a hint when it was not built.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: build the binaries first (`cargo build --workspace --bins`, which the README's test command does)",
        p.display()
    );
    p
}

/// A temporary data directory and the environment our binaries run with.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    /// A fresh sandbox.
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("auditty-test-")
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir_all(dir.path().join("run")).expect("run dir");
        std::fs::create_dir_all(dir.path().join("home")).expect("home dir");
        Sandbox { dir }
    }

    /// The sandbox root.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The data directory (spool/ and store/ inside).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The spool directory.
    pub fn spool(&self) -> PathBuf {
        self.data_dir().join("spool")
    }

    /// The local store.
    pub fn store(&self) -> PathBuf {
        self.data_dir().join("store")
    }

    /// Environment for our binaries and the programs they record.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let path = format!(
            "{}:{}",
            bin_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        vec![
            ("AUDITTY_DATA_DIR", self.data_dir().display().to_string()),
            // No configuration file: a machine's /etc/auditty/auditty.toml (package.rs
            // installs one for its length) must not change what a test runs.
            ("AUDITTY_CONFIG", "/dev/null".to_string()),
            (
                "XDG_RUNTIME_DIR",
                self.dir.path().join("run").display().to_string(),
            ),
            ("HOME", self.dir.path().join("home").display().to_string()),
            ("PATH", path),
            ("TERM", "xterm".to_string()),
            ("PS1", "$ ".to_string()),
            ("LANG", "C.UTF-8".to_string()),
        ]
    }

    /// A command for one of our binaries with the sandbox environment.
    pub fn cmd(&self, name: &str) -> Command {
        let mut c = Command::new(bin(name));
        c.envs(self.env());
        c.env_remove("AUDITTY_STORE");
        c
    }

    /// Starts a long-running binary in the background with `AUDITTY_LOG=info`, its stderr
    /// in `log` under the sandbox (read it when the test fails).
    pub fn spawn_logged(&self, mut cmd: Command, log: &str) -> Child {
        let file = std::fs::File::create(self.path().join(log)).expect("log file");
        cmd.env("AUDITTY_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"))
    }

    /// Runs a command to completion and returns its output, whatever its status.
    pub fn output(&self, cmd: &mut Command) -> Output {
        cmd.output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn run(&self, cmd: &mut Command) -> String {
        let out = self.output(cmd);
        assert!(
            out.status.success(),
            "{cmd:?} failed with {}\n{}",
            out.status,
            show(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `replay ARGS` with this sandbox's environment, whatever its status.
    pub fn replay(&self, args: &[&str]) -> Output {
        self.output(self.cmd("replay").args(args))
    }

    /// `replay ARGS`, which must succeed; its stdout.
    pub fn replay_ok(&self, args: &[&str]) -> String {
        self.run(self.cmd("replay").args(args))
    }

    /// `replay serve hash-password` with `password` on its stdin: the argon2 hash for an
    /// auth file.
    pub fn hash_password(&self, password: &str) -> String {
        let mut child = self
            .cmd("replay")
            .args(["serve", "hash-password"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run replay serve hash-password");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{password}\n").as_bytes())
            .expect("write the password");
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "hash-password: {}", show(&out));
        let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(hash.starts_with("$argon2"), "not an argon2 hash: {hash:?}");
        hash
    }

    /// `auditty-ingest run --once`, which must succeed; returns its stderr.
    pub fn ingest(&self) -> String {
        let out = self.output(self.cmd("auditty-ingest").args(["run", "--once"]));
        assert!(
            out.status.success(),
            "ingest failed with {}\n{}",
            out.status,
            show(&out)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `replay ls --json`, parsed.
    pub fn sessions(&self) -> Vec<serde_json::Value> {
        let out = self.run(self.cmd("replay").args(["ls", "--json"]));
        match serde_json::from_str::<serde_json::Value>(&out) {
            Ok(serde_json::Value::Array(a)) => a,
            other => panic!("replay ls --json printed {out:?}: {other:?}"),
        }
    }

    /// Every event in the spool, decoded chunk by chunk in file order, as the ingester
    /// and the shipper read them.
    pub fn spooled_events(&self) -> Vec<schemas::Event> {
        let mut out = Vec::new();
        for seg in spool::list_segments(&self.spool()).expect("list spool") {
            for item in spool::scan_segment(&seg.path, 0)
                .expect("scan segment")
                .items
            {
                if let spool::ScanItem::Entry { payload, .. } = item {
                    out.extend(
                        schemas::Chunk::decode(&payload)
                            .expect("spooled chunk decodes")
                            .events,
                    );
                }
            }
        }
        out
    }

    /// Opens the local store, as replay does.
    pub fn open_store(&self) -> Box<dyn store::ObjectStore> {
        store::StoreUrl::Local(self.store())
            .open()
            .expect("open store")
    }

    /// `auditty-agent record -q -- sh -c SCRIPT` (no terminal), run to completion; its
    /// output whatever its status (the recorder exits with the script's).
    pub fn record_sh(&self, script: &str) -> Output {
        self.output(
            self.cmd("auditty-agent")
                .args(["record", "-q", "--", "sh", "-c", script]),
        )
    }

    /// `auditty-agent record -q RECORD_ARGS -- bash --norc --noprofile` on a new PTY of
    /// `size`, with this sandbox's environment plus `extra_env`, once bash shows its
    /// prompt. Typeahead before the agent is up would be echoed by the outer terminal
    /// itself, which no recorder can see, so tests start typing at the prompt, as a person
    /// would.
    pub fn record_bash(
        &self,
        record_args: &[&str],
        extra_env: &[(&'static str, String)],
        size: WinSize,
    ) -> PtySession {
        let mut env = self.env();
        env.extend(extra_env.iter().cloned());
        let mut args = vec!["record", "-q"];
        args.extend_from_slice(record_args);
        args.extend(["--", "bash", "--norc", "--noprofile"]);
        let s = PtySession::spawn(bin("auditty-agent"), &args, &env, size);
        s.wait_for("$", Duration::from_secs(30));
        s
    }
}

/// Removes every row of `id` from the store, as someone with write access to the bucket
/// would: each object holding some is rewritten without them (with the ingester's encoder
/// and the object's own footer metadata), or deleted if nothing else is left in it.
pub fn delete_session(store: &Path, id: schemas::SessionId) {
    let s = store::LocalStore::new(store).expect("store");
    let mut touched = 0;
    for key in s.list("").expect("list") {
        let bytes = s.get(&key).expect("get");
        let rewritten = if key.starts_with("events/") {
            let mut rows = store::parquet_io::decode_events(&key, &bytes, None).expect("decode");
            let before = rows.len();
            rows.retain(|r| r.session_id != id);
            (rows.len() < before).then(|| {
                let meta = store::parquet_io::read_object_meta(&key, &bytes).expect("footer");
                (
                    rows.is_empty(),
                    store::parquet_io::encode_events(&mut rows, &meta).expect("encode"),
                )
            })
        } else if key.starts_with("sessions/") {
            let mut rows = store::parquet_io::decode_sessions(&key, &bytes).expect("decode");
            let before = rows.len();
            rows.retain(|r| r.session_id != id);
            (rows.len() < before).then(|| {
                let meta = store::parquet_io::read_object_meta(&key, &bytes).expect("footer");
                (
                    rows.is_empty(),
                    store::parquet_io::encode_sessions(&mut rows, &meta).expect("encode"),
                )
            })
        } else {
            None
        };
        match rewritten {
            Some((true, _)) => std::fs::remove_file(store.join(&key)).expect("delete"),
            Some((false, bytes)) => s.put(&key, &bytes).expect("rewrite"),
            None => continue,
        }
        touched += 1;
    }
    assert!(touched > 0, "nothing held {id}");
}

/// Rewrites a session's `events` rows: `edit` gets them by seq and may change, drop
/// or reorder them. Each row goes back into the object that held its seq, re-encoded
/// with the ingester's encoder and that object's own footer metadata; other
/// sessions' rows and objects are left as they were.
pub fn edit_event_rows(
    store: &Path,
    id: schemas::SessionId,
    edit: impl FnOnce(&mut Vec<store::EventRow>),
) {
    let local = store::LocalStore::new(store).expect("open the store");
    let mut objects = Vec::new();
    let mut home: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    let mut mine = Vec::new();
    for (i, key) in local.list("events/").expect("list").into_iter().enumerate() {
        let bytes = local.get(&key).expect("get");
        let meta = store::parquet_io::read_object_meta(&key, &bytes).expect("footer metadata");
        let (ours, others): (Vec<store::EventRow>, Vec<store::EventRow>) =
            store::parquet_io::decode_events(&key, &bytes, None)
                .expect("decode events")
                .into_iter()
                .partition(|r| r.session_id == id);
        for r in &ours {
            home.insert(r.seq, i);
        }
        mine.extend(ours);
        objects.push((key, meta, others));
    }
    let touched: std::collections::BTreeSet<usize> = home.values().copied().collect();
    let first = *touched.first().expect("the session has rows");
    mine.sort_by_key(|r| r.seq);
    edit(&mut mine);
    for r in mine {
        let i = home.get(&r.seq).copied().unwrap_or(first);
        objects[i].2.push(r);
    }
    for i in touched {
        let (key, meta, rows) = &mut objects[i];
        let bytes = store::parquet_io::encode_events(rows, meta).expect("encode events");
        local.put(key, &bytes).expect("write the altered object");
    }
}

/// An SSH ed25519 key made by ssh-keygen: (private key file, public key line).
pub fn ssh_key(dir: &Path, name: &str) -> (PathBuf, String) {
    std::fs::create_dir_all(dir).expect("key dir");
    let path = dir.join(name);
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C"])
        .arg(format!("{name}@auditty-test"))
        .arg("-f")
        .arg(&path)
        .output()
        .expect("run ssh-keygen");
    assert!(out.status.success(), "ssh-keygen: {}", show(&out));
    let public = std::fs::read_to_string(path.with_extension("pub")).expect("public key");
    (path, public.trim().to_string())
}

/// Every file below `dir` (none if it does not exist), for checks over a store or spool.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files.extend(files_under(&p));
        } else {
            files.push(p);
        }
    }
    files
}

/// A copy of the tree at `from` in `to` (a store to tamper with, say).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// stdout and stderr of a finished command, for failure messages.
pub fn show(out: &Output) -> String {
    format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A program on a PTY owned by the test, with its screen emulated.
pub struct PtySession {
    child: Child,
    writer: std::fs::File,
    master_fd: i32,
    screen: Arc<Mutex<Screen>>,
    raw: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
}

impl PtySession {
    /// Starts `program args` on a new PTY of `size`.
    pub fn spawn<I, S>(
        program: impl AsRef<OsStr>,
        args: I,
        env: &[(&str, String)],
        size: WinSize,
    ) -> PtySession
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let spawned = pty::spawn(program.as_ref(), args, env, size).expect("spawn on a pty");
        let master_fd = spawned.master.as_raw_fd();
        let mut reader_file = std::fs::File::from(spawned.master);
        let writer = reader_file.try_clone().expect("clone master");
        let screen = Arc::new(Mutex::new(Screen::new(size.cols, size.rows)));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let (screen2, raw2) = (Arc::clone(&screen), Arc::clone(&raw));
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            // Ends with EIO once every process holding the slave side is gone.
            while let Ok(n) = reader_file.read(&mut buf) {
                if n == 0 {
                    break;
                }
                screen2.lock().expect("screen lock").process(&buf[..n]);
                raw2.lock().expect("raw lock").extend_from_slice(&buf[..n]);
            }
        });
        PtySession {
            child: spawned.child,
            writer,
            master_fd,
            screen,
            raw,
            reader: Some(reader),
        }
    }

    /// The process id of the program (the agent, when the test runs the agent).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Types bytes, as a user would.
    pub fn send(&mut self, s: impl AsRef<[u8]>) {
        self.writer.write_all(s.as_ref()).expect("write to pty");
    }

    /// Types a line and Enter, a few bytes at a time like a fast typist.
    pub fn type_line(&mut self, line: &str) {
        for chunk in line.as_bytes().chunks(8) {
            self.send(chunk);
            std::thread::sleep(Duration::from_millis(5));
        }
        self.send(b"\r");
    }

    /// The visible screen, one string per row.
    pub fn rows(&self) -> Vec<String> {
        self.screen.lock().expect("screen lock").rows()
    }

    /// Everything the program printed so far.
    pub fn raw_output(&self) -> Vec<u8> {
        self.raw.lock().expect("raw lock").clone()
    }

    /// Waits until the screen shows `text`; panics with the screen after `timeout`.
    pub fn wait_for(&self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let rows = self.rows();
            if rows.iter().any(|r| r.contains(text)) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "screen never showed {text:?}; it shows:\n{}",
                    rows.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the output stops changing for `quiet`, so that what the program
    /// printed has been drawn before the test acts.
    pub fn settle(&self, quiet: Duration) {
        let mut last = self.raw.lock().expect("raw lock").len();
        let mut since = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(20);
        while since.elapsed() < quiet && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            let now = self.raw.lock().expect("raw lock").len();
            if now != last {
                last = now;
                since = Instant::now();
            }
        }
    }

    /// Resizes the terminal (the program gets SIGWINCH) and the emulated screen with it.
    pub fn resize(&mut self, size: WinSize) {
        pty::set_size(self.master_fd, size).expect("resize pty");
        self.screen
            .lock()
            .expect("screen lock")
            .resize(size.cols, size.rows);
    }

    /// Waits for the program to exit and the reader to drain its output.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                if let Some(r) = self.reader.take() {
                    r.join().expect("reader thread");
                }
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "program did not exit within {timeout:?}; screen:\n{}",
                    self.rows().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal to the program.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }
}

impl Drop for PtySession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Renders asciicast v2 text through the same emulator as [`PtySession`]: output and
/// resize events, from the header's size.
pub fn render_asciicast(text: &str) -> Vec<String> {
    let (header, events) = schemas::asciicast::parse_v2(text).expect("valid asciicast v2");
    let mut screen = Screen::new(header.width, header.height);
    for e in events {
        match e.code.as_str() {
            "o" => screen.process(e.data.as_bytes()),
            "r" => {
                let (c, r) = schemas::event::parse_size(e.data.as_bytes()).expect("resize data");
                screen.resize(c, r);
            }
            _ => {}
        }
    }
    screen.rows()
}

/// Every event row in the store, read object by object with no deduplication, so that a
/// row written twice shows up twice.
pub fn all_event_rows(store: &dyn store::ObjectStore) -> Vec<store::EventRow> {
    let mut rows = Vec::new();
    for key in store.list("events/").expect("list events/") {
        let bytes = store.get(&key).expect("get object");
        rows.extend(store::parquet_io::decode_events(&key, &bytes, None).expect("decode events"));
    }
    rows
}

/// Asserts that every (session, seq) appears exactly once and each session's seqs run
/// 0..n without gaps; returns the number of rows.
pub fn assert_exactly_once(rows: &[store::EventRow]) -> usize {
    let mut by_session: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for r in rows {
        by_session
            .entry(r.session_id.to_string())
            .or_default()
            .push(r.seq);
    }
    for (id, seqs) in &mut by_session {
        seqs.sort_unstable();
        let dupes: Vec<u64> = seqs
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| w[0])
            .collect();
        assert!(
            dupes.is_empty(),
            "session {id}: seq stored more than once: {:?}…",
            &dupes[..dupes.len().min(10)]
        );
        let gaps: Vec<u64> = seqs
            .iter()
            .enumerate()
            .filter(|(i, s)| *i as u64 != **s)
            .map(|(i, _)| i as u64)
            .take(5)
            .collect();
        assert!(
            gaps.is_empty(),
            "session {id}: missing seq starting at {gaps:?}"
        );
    }
    rows.len()
}
