//! Synthetic shell sessions written straight to a local store, as the ingester would lay
//! them out: `events` and `sessions` Parquet objects of about [`BATCH`] sessions each,
//! split by the UTC date of each row.
//!
//! A session is a bash as a user sees it: a prompt, keystrokes (one input event each,
//! echoed by one output event each, as the line discipline does), Enter, the command's
//! output, the next prompt. Nothing is signed: the index shows these sessions as
//! unsigned, which costs the indexer the same listing work as a signed one minus the
//! signature checks.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use schemas::{EndReason, Event, EventKind, SessionEnd, SessionId, SessionStart};
use store::parquet_io::{encode_events, encode_sessions};
use store::{EventRow, LocalStore, ObjectMeta, ObjectStore, SessionRow, layout};

/// Sessions per Parquet batch: what one ingest flush of a busy partition holds.
pub const BATCH: usize = 1_000;
/// 2026-10-01T00:00:00Z: the first of the days the sessions are spread over.
pub const BASE_NS: i64 = 1_790_812_800 * 1_000_000_000;
/// Days the sessions are spread over.
pub const DAYS: i64 = 30;
const DAY_NS: i64 = 86_400 * 1_000_000_000;
const MS: u64 = 1_000_000;
/// Largest output event: what one read of a PTY master returns at most, roughly.
const READ_BYTES: usize = 4096;

const NAMES: [&str; 25] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "karl",
    "lena", "mallory", "nina", "oscar", "peggy", "quinn", "rupert", "sybil", "trent", "ursula",
    "victor", "wendy", "xavier", "yusuf",
];
const ROLES: [&str; 8] = [
    "web", "db", "api", "cache", "batch", "k8s-node", "ci", "log",
];
const SERVICES: [&str; 8] = [
    "nginx",
    "postgres",
    "redis",
    "billing",
    "auth",
    "scheduler",
    "gateway",
    "exporter",
];
const WORDS: [&str; 16] = [
    "config", "handler", "session", "token", "retry", "backend", "invoice", "payload", "cursor",
    "shard", "replica", "quota", "tenant", "widget", "ledger", "socket",
];
/// Log messages; the phrases the search benchmark looks for are among them.
const MESSAGES: [&str; 10] = [
    "request completed",
    "connection refused by upstream",
    "permission denied while opening socket",
    "timeout waiting for replica",
    "disk quota exceeded on volume",
    "deadlock detected, retrying transaction",
    "cache miss for tenant",
    "certificate expires soon",
    "worker restarted after panic",
    "health check passed",
];

/// Users, hosts and words a query can name.
pub fn user(n: usize) -> String {
    format!("{}{}", NAMES[n % NAMES.len()], n / NAMES.len())
}

/// The `n`th of 200 host names.
pub fn host(n: usize) -> String {
    format!("{}-{:02}", ROLES[n % ROLES.len()], n / ROLES.len())
}

/// Command words a search can look for (the programs the sessions run).
pub const COMMAND_WORDS: [&str; 8] = [
    "grep",
    "tail",
    "systemctl",
    "kubectl",
    "git",
    "docker",
    "journalctl",
    "psql",
];
/// Words that occur in command output only.
pub const OUTPUT_WORDS: [&str; 6] = [
    "deadlock",
    "quota",
    "refused",
    "certificate",
    "panic",
    "replica",
];
/// Phrases of the log lines.
pub const PHRASES: [&str; 4] = [
    "connection refused",
    "permission denied",
    "disk quota exceeded",
    "deadlock detected",
];

/// A small, fast, seedable generator (splitmix64): the data repeats run to run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// What was written.
#[derive(Default, Clone, Copy)]
pub struct Written {
    pub sessions: u64,
    pub objects: u64,
    /// Terminal bytes: output and input event data.
    pub terminal_bytes: u64,
    pub events: u64,
}

/// One generated session: its metadata and where it is.
#[derive(Clone)]
pub struct Made {
    pub id: SessionId,
    pub user: String,
    pub start_ns: i64,
}

/// Writes `n` sessions to a local store at `root`, on `threads` threads; returns the
/// totals and the sessions (sorted by start).
pub fn generate(root: &Path, n: usize, threads: usize) -> anyhow::Result<(Written, Vec<Made>)> {
    let store = LocalStore::new(root).with_context(|| format!("cannot open {}", root.display()))?;
    let batches = n.div_ceil(BATCH);
    let next = AtomicUsize::new(0);
    let results = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                s.spawn(|| -> anyhow::Result<(Written, Vec<Made>)> {
                    let mut total = Written::default();
                    let mut made = Vec::new();
                    loop {
                        let b = next.fetch_add(1, Ordering::Relaxed);
                        if b >= batches {
                            return Ok((total, made));
                        }
                        let range = b * BATCH..((b + 1) * BATCH).min(n);
                        let w = write_batch(&store, b, range, n, &mut made)?;
                        total.sessions += w.sessions;
                        total.objects += w.objects;
                        total.terminal_bytes += w.terminal_bytes;
                        total.events += w.events;
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("generator thread panicked"))
            .collect::<Vec<_>>()
    });
    let mut total = Written::default();
    let mut made = Vec::new();
    for r in results {
        let (w, m) = r?;
        total.sessions += w.sessions;
        total.objects += w.objects;
        total.terminal_bytes += w.terminal_bytes;
        total.events += w.events;
        made.extend(m);
    }
    made.sort_by_key(|m| m.start_ns);
    Ok((total, made))
}

/// Sessions `range` of `n` as one batch, split by date as the ingester splits a batch.
fn write_batch(
    store: &LocalStore,
    batch: usize,
    range: std::ops::Range<usize>,
    n: usize,
    made: &mut Vec<Made>,
) -> anyhow::Result<Written> {
    let mut rng = Rng::new(batch as u64);
    let mut written = Written::default();
    let mut events: Vec<EventRow> = Vec::new();
    let mut sessions: Vec<SessionRow> = Vec::new();
    // Sessions start in order, evenly over the days, each at a random point of its slot.
    let slot = DAYS * DAY_NS / n.max(1) as i64;
    for i in range {
        let start_ns = BASE_NS + i as i64 * slot + rng.below(slot.max(1) as u64) as i64;
        let (m, evs) = session(&mut rng, start_ns);
        for e in &evs {
            if matches!(e.kind, EventKind::Input | EventKind::Output) {
                written.terminal_bytes += e.data.len() as u64;
            }
            let row = EventRow::from_event(m.id, start_ns, e);
            if matches!(e.kind, EventKind::Start | EventKind::End) {
                sessions.push(SessionRow {
                    session_id: m.id,
                    kind: e.kind,
                    seq: e.seq,
                    time_ns: row.time_ns,
                    elapsed_ns: e.elapsed_ns,
                    metadata: e.data.clone(),
                });
            }
            events.push(row);
        }
        written.sessions += 1;
        made.push(m);
    }
    written.events = events.len() as u64;
    let first_offset = (batch as u64) << 32;
    let meta = ObjectMeta {
        source: "kafka".into(),
        partition: "auditty.events-0".into(),
        first_offset,
        end_offset: first_offset + events.len() as u64,
    };
    let stem = layout::object_stem(&meta.source, &meta.partition, first_offset);
    for (date, mut rows) in by_date(events, |r| r.time_ns) {
        store.put(
            &layout::events_key(&date, &stem),
            &encode_events(&mut rows, &meta)?,
        )?;
        written.objects += 1;
    }
    for (date, mut rows) in by_date(sessions, |r| r.time_ns) {
        store.put(
            &layout::sessions_key(&date, &stem),
            &encode_sessions(&mut rows, &meta)?,
        )?;
        written.objects += 1;
    }
    Ok(written)
}

fn by_date<T>(rows: Vec<T>, time: impl Fn(&T) -> i64) -> Vec<(String, Vec<T>)> {
    let mut out: std::collections::BTreeMap<String, Vec<T>> = Default::default();
    for r in rows {
        out.entry(schemas::time::date(time(&r)))
            .or_default()
            .push(r);
    }
    out.into_iter().collect()
}

/// Appends events with increasing seq.
struct Timeline {
    events: Vec<Event>,
    now: u64,
    input: u64,
    output: u64,
}

impl Timeline {
    fn push(&mut self, after_ms: u64, kind: EventKind, data: Vec<u8>) {
        self.now += after_ms * MS;
        match kind {
            EventKind::Input => self.input += data.len() as u64,
            EventKind::Output => self.output += data.len() as u64,
            _ => {}
        }
        self.events.push(Event {
            seq: self.events.len() as u64,
            elapsed_ns: self.now,
            kind,
            data,
        });
    }

    /// A command typed at the prompt: keystrokes echoed, Enter, output, the next prompt.
    fn command(&mut self, rng: &mut Rng, line: &str, output: &[u8], prompt: &str) {
        for b in line.bytes() {
            self.push(60 + rng.below(140), EventKind::Input, vec![b]);
            self.push(1, EventKind::Output, vec![b]);
        }
        self.push(80 + rng.below(200), EventKind::Input, b"\r".to_vec());
        let mut out = b"\r\n".to_vec();
        out.extend_from_slice(output);
        for (i, part) in out.chunks(READ_BYTES).enumerate() {
            self.push(if i == 0 { 1 } else { 2 }, EventKind::Output, part.to_vec());
        }
        self.push(3, EventKind::Output, prompt.as_bytes().to_vec());
    }
}

/// One session starting at `start_ns`: its metadata and its events.
fn session(rng: &mut Rng, start_ns: i64) -> (Made, Vec<Event>) {
    let id = SessionId::new_v7_at(start_ns);
    let u = rng.below(50) as usize;
    let (user, host) = (user(u), host(rng.below(200) as usize));
    let start = SessionStart {
        version: 1,
        start_time_ns: start_ns,
        user: user.clone(),
        uid: 1000 + u as u32,
        host: host.clone(),
        command: vec!["/bin/bash".into(), "-l".into()],
        term: Some("xterm-256color".into()),
        cols: 120,
        rows: 40,
        agent_version: "bench".into(),
        ..Default::default()
    };
    let prompt = format!("{user}@{host}:~$ ");
    let mut t = Timeline {
        events: Vec::new(),
        now: 0,
        input: 0,
        output: 0,
    };
    t.push(0, EventKind::Start, start.to_bytes());
    // bash prints its first prompt a few ms after it starts.
    t.push(2, EventKind::Output, prompt.as_bytes().to_vec());
    let commands = 3 + rng.below(10);
    for _ in 0..commands {
        t.now += (500 + rng.below(15_000)) * MS; // reading, thinking
        let (line, output) = crate::shell::command(rng, &user, &host);
        t.command(rng, &line, &output, &prompt);
    }
    // About one session in 100 dumps a big log (30-170 KB): the heavy tail of output sizes.
    if rng.below(100) == 0 {
        let lines = 300 + rng.below(1200) as usize;
        let out = crate::shell::log_lines(rng, lines, start_ns);
        t.command(rng, "cat /var/log/app/service.log", &out, &prompt);
    }
    t.command(rng, "exit", b"logout\r\n", "");
    let end = SessionEnd {
        version: 1,
        exit_status: Some(0),
        reason: EndReason::Exit,
        event_count: t.events.len() as u64 + 1,
        input_bytes: t.input,
        output_bytes: t.output,
        ..Default::default()
    };
    t.push(5, EventKind::End, end.to_bytes());
    let made = Made { id, user, start_ns };
    (made, t.events)
}

/// Words and services for [`crate::shell`].
pub fn service(rng: &mut Rng) -> &'static str {
    rng.pick(&SERVICES)
}

/// A word of the code base the sessions grep in.
pub fn word(rng: &mut Rng) -> &'static str {
    rng.pick(&WORDS)
}

/// A log message.
pub fn message(rng: &mut Rng) -> &'static str {
    rng.pick(&MESSAGES)
}
