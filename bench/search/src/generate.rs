//! Synthetic shell sessions written straight to a local store, as the ingester would lay
//! them out: `events` and `sessions` Parquet objects of about [`BATCH`] sessions each,
//! split by the UTC date of each row.
//!
//! A session is a bash as a user sees it: a prompt, keystrokes (one input event each,
//! echoed by one output event each, as the line discipline does), Enter, the command's
//! output, the next prompt.
//!
//! Sessions are signed as the agent signs them (DESIGN.md §6): each of the 200 hosts has a
//! node key (derived from its number, so runs repeat), numbers its sessions in its ledger
//! (`node_seq`, `prev_session`), chains every event, writes a signed checkpoint every
//! [`CHECKPOINT_EVERY`] events and after `end`, and has a signed ledger head naming its
//! newest session. The keys go to a trust file, so `replay verify --all` finds every
//! session complete and the ledger whole: what compaction and purge must keep true.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use integrity::{NodeKey, SessionChain};
use schemas::{EndReason, Event, EventKind, SessionEnd, SessionId, SessionStart};
use store::parquet_io::{encode_events, encode_sessions};
use store::{EventRow, LocalStore, ObjectMeta, ObjectStore, SessionRow, layout};

use crate::rng::Rng;

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
/// Events between signed checkpoints: what the agent's default of one checkpoint per
/// chunks-worth of a busy session amounts to, roughly.
pub const CHECKPOINT_EVERY: usize = 256;
/// Users and hosts the sessions are spread over.
pub const USERS: usize = 50;
pub const HOSTS: usize = 200;

const NAMES: [&str; 25] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "karl",
    "lena", "mallory", "nina", "oscar", "peggy", "quinn", "rupert", "sybil", "trent", "ursula",
    "victor", "wendy", "xavier", "yusuf",
];
const ROLES: [&str; 8] = [
    "web", "db", "api", "cache", "batch", "k8s-node", "ci", "log",
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

/// The seed of host `h`'s node key: derived from its number, so that runs repeat.
fn node_seed(h: usize) -> [u8; 32] {
    let mut rng = Rng::new(0x6b65_7900 ^ h as u64);
    let mut seed = [0u8; 32];
    for part in seed.chunks_mut(8) {
        part.copy_from_slice(&rng.next().to_le_bytes());
    }
    seed
}

/// What is fixed of session `i` before it is written: when it starts, who and where, its
/// id and its place in its host's ledger. Planned in one pass over all sessions, because a
/// node numbers its sessions in start order across the batches the threads write.
struct Planned {
    /// The session's own generator, past the draws below: the rest of the session.
    rng: Rng,
    start_ns: i64,
    user: usize,
    host: usize,
    id: SessionId,
    node_seq: u64,
    prev: Option<SessionId>,
}

/// A host's newest session: what its ledger head names.
#[derive(Clone, Copy)]
struct Newest {
    node_seq: u64,
    id: SessionId,
}

/// Every session's plan, and each host's newest session.
fn plan(n: usize) -> (Vec<Planned>, Vec<Option<Newest>>) {
    // Sessions start in order, evenly over the days, each at a random point of its slot.
    let slot = DAYS * DAY_NS / n.max(1) as i64;
    let mut newest: Vec<Option<Newest>> = vec![None; HOSTS];
    let plans = (0..n)
        .map(|i| {
            let mut rng = Rng::new(i as u64);
            let start_ns = BASE_NS + i as i64 * slot + rng.below(slot.max(1) as u64) as i64;
            let user = rng.below(USERS as u64) as usize;
            let host = rng.below(HOSTS as u64) as usize;
            let id = SessionId::new_v7_at(start_ns);
            let prev = newest[host];
            let node_seq = prev.map_or(1, |p| p.node_seq + 1);
            newest[host] = Some(Newest { node_seq, id });
            Planned {
                rng,
                start_ns,
                user,
                host,
                id,
                node_seq,
                prev: prev.map(|p| p.id),
            }
        })
        .collect();
    (plans, newest)
}

/// Writes `n` sessions to a local store at `root`, on `threads` threads, the hosts' public
/// keys to the trust file `trust` and their ledger heads to the store; returns the totals
/// and the sessions (sorted by start).
pub fn generate(
    root: &Path,
    trust: &Path,
    n: usize,
    threads: usize,
) -> anyhow::Result<(Written, Vec<Made>)> {
    let store = LocalStore::new(root).with_context(|| format!("cannot open {}", root.display()))?;
    let keys: Vec<[u8; 32]> = (0..HOSTS).map(node_seed).collect();
    for (h, seed) in keys.iter().enumerate() {
        integrity::add_to_trust_file(trust, &NodeKey::from_seed(*seed).public(), &host(h))?;
    }
    let (plans, newest) = plan(n);
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
                        let w = write_batch(&store, b, &plans[range], &keys, &mut made)?;
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
    total.objects += write_ledger_heads(&store, batches, &keys, &newest)?;
    made.sort_by_key(|m| m.start_ns);
    Ok((total, made))
}

/// Each host's signed head, naming its newest session, as the shipper sends one after the
/// session's last chunk; in one object, as one ingest batch would hold them. Returns the
/// objects written.
fn write_ledger_heads(
    store: &LocalStore,
    batches: usize,
    keys: &[[u8; 32]],
    newest: &[Option<Newest>],
) -> anyhow::Result<u64> {
    // After every session's end: the last day's last second.
    let time_ns = BASE_NS + DAYS * DAY_NS - 1_000_000_000;
    let mut lines = Vec::new();
    for (seed, head) in keys.iter().zip(newest) {
        if let Some(h) = head {
            let key = NodeKey::from_seed(*seed);
            let head = integrity::ledger::sign_head(&key, h.node_seq, h.id, time_ns);
            lines.extend_from_slice(&head.to_json());
            lines.push(b'\n');
        }
    }
    if lines.is_empty() {
        return Ok(0);
    }
    // The offset after every batch's: a name no events object has.
    let stem = layout::object_stem("kafka", "auditty.events-0", (batches as u64) << 32);
    store.put(
        &layout::ledger_key(&schemas::time::date(time_ns), &stem),
        &lines,
    )?;
    Ok(1)
}

/// Planned sessions as one batch (number `batch`), split by date as the ingester splits a
/// batch.
fn write_batch(
    store: &LocalStore,
    batch: usize,
    plans: &[Planned],
    keys: &[[u8; 32]],
    made: &mut Vec<Made>,
) -> anyhow::Result<Written> {
    let mut written = Written::default();
    let mut events: Vec<EventRow> = Vec::new();
    let mut sessions: Vec<SessionRow> = Vec::new();
    for p in plans {
        let (m, evs) = session(p, NodeKey::from_seed(keys[p.host]));
        for e in &evs {
            if matches!(e.kind, EventKind::Input | EventKind::Output) {
                written.terminal_bytes += e.data.len() as u64;
            }
            let row = EventRow::from_event(m.id, p.start_ns, e);
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

/// Appends events with increasing seq, chained and checkpointed as the agent does.
struct Timeline {
    events: Vec<Event>,
    now: u64,
    input: u64,
    output: u64,
    chain: SessionChain,
    since_checkpoint: usize,
}

impl Timeline {
    fn push(&mut self, after_ms: u64, kind: EventKind, data: Vec<u8>) {
        self.now += after_ms * MS;
        match kind {
            EventKind::Input => self.input += data.len() as u64,
            EventKind::Output => self.output += data.len() as u64,
            _ => {}
        }
        self.append(kind, data);
        if self.since_checkpoint >= CHECKPOINT_EVERY {
            self.checkpoint();
        }
    }

    fn append(&mut self, kind: EventKind, data: Vec<u8>) {
        let e = Event {
            seq: self.events.len() as u64,
            elapsed_ns: self.now,
            kind,
            data,
        };
        self.chain.add_event(&e);
        self.events.push(e);
        self.since_checkpoint += 1;
    }

    /// A signed checkpoint over everything so far, as the next event.
    fn checkpoint(&mut self) {
        let data = self.chain.checkpoint(self.events.len() as u64);
        self.append(EventKind::Checkpoint, data);
        self.since_checkpoint = 0;
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

/// The planned session, signed with its host's `key`: its metadata and its events.
fn session(p: &Planned, key: NodeKey) -> (Made, Vec<Event>) {
    let rng = &mut p.rng.clone();
    let (id, start_ns) = (p.id, p.start_ns);
    let (user, host) = (user(p.user), host(p.host));
    let start = SessionStart {
        version: 1,
        start_time_ns: start_ns,
        user: user.clone(),
        uid: 1000 + p.user as u32,
        host: host.clone(),
        command: vec!["/bin/bash".into(), "-l".into()],
        term: Some("xterm-256color".into()),
        cols: 120,
        rows: 40,
        agent_version: "bench".into(),
        node_seq: p.node_seq,
        prev_session: p.prev.map(|s| s.to_string()),
        ..Default::default()
    };
    let prompt = format!("{user}@{host}:~$ ");
    let mut t = Timeline {
        events: Vec::new(),
        now: 0,
        input: 0,
        output: 0,
        chain: SessionChain::new(id, key),
        since_checkpoint: 0,
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
        chain_hash: Some(integrity::chain::hex(&t.chain.hash())),
        ..Default::default()
    };
    t.now += 5 * MS;
    t.append(EventKind::End, end.to_bytes());
    t.checkpoint();
    let made = Made { id, user, start_ns };
    (made, t.events)
}
