//! `auditty-agent ship`: spool → Kafka, deleting only what the broker acknowledged.
//!
//! For each segment, the shipper produces every entry from its position (key = session
//! id; idempotent producer, `acks=all`), waits for the delivery reports, and records as
//! its new position the end of the longest run of acknowledged entries. A segment no agent
//! holds any more is deleted once it is fully shipped. While the broker is away, chunks
//! stay in the spool and the shipper retries with backoff; recording never waits on it.
//!
//! After each pass it also sends a signed ledger head when one is due ([`Heads`]).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use anyhow::Context;
use integrity::NodeKey;
use kafka::{DeliveryHandler, LogContext};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use schemas::SessionId;
use schemas::chunk::ChunkHeader;
use schemas::data_dir::DataDir;
use schemas::ledger::LedgerHead;
use spool::{ScanItem, SegmentFile};

use crate::cli::ShipArgs;

/// Name of the shipper's position files next to each segment.
pub const CONSUMER: &str = "shipped";
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How the shipper's reports of damaged spool files say what it did.
const WORDING: spool::Wording = spool::Wording {
    done: "shipped",
    around_damage: "are shipped",
};

/// Delivery reports, by the index of the entry in the batch being shipped.
struct Deliveries {
    tx: std::sync::Mutex<Sender<(usize, Result<(), String>)>>,
}

impl DeliveryHandler for Deliveries {
    type Opaque = usize;
    fn delivered(&self, result: &DeliveryResult<'_>, index: usize) {
        let outcome = match result {
            Ok(_) => Ok(()),
            Err((e, _)) => Err(e.to_string()),
        };
        if let Ok(tx) = self.tx.lock() {
            let _ = tx.send((index, outcome));
        }
    }
}

/// The producer configuration: durable and ordered by default; the user's -X wins.
pub fn producer_defaults() -> Vec<(&'static str, &'static str)> {
    vec![
        ("enable.idempotence", "true"),
        ("acks", "all"),
        ("compression.type", "zstd"),
        ("linger.ms", "5"),
        // Chunks are ~64 KiB; sealed ones carry a little more.
        ("message.max.bytes", "16777216"),
        // A broker outage must not fail deliveries early: the spool holds them anyway, and
        // a retry after a timeout would only add a duplicate.
        ("message.timeout.ms", "0"),
    ]
}

/// Ledger heads (DESIGN.md §6): the node's newest numbered session, signed with the
/// node key, sent on the events topic for `replay verify --all` to hold the store against.
struct Heads {
    key_path: PathBuf,
    /// Loaded when first found: a shipper installed and started before the node's first
    /// recorded session (which creates the key) finds it then, without a restart.
    key: Option<NodeKey>,
    ledger: PathBuf,
    every: Duration,
    /// The last head Kafka acknowledged, and when.
    sent: Option<(u64, SessionId, Instant)>,
}

impl Heads {
    /// Heads for the key at `key_path`; `None` when they are off.
    fn open(key_path: &Path, every: Duration) -> anyhow::Result<Option<Heads>> {
        if every.is_zero() {
            return Ok(None);
        }
        let key = NodeKey::load(key_path)?;
        if key.is_none() {
            tracing::info!(key = %key_path.display(), "No node key yet: ledger heads are sent once the first recorded session creates it (or give --node-key).");
        }
        Ok(Some(Heads {
            key_path: key_path.to_path_buf(),
            key,
            ledger: crate::ledger::path_for_key(key_path),
            every,
            sent: None,
        }))
    }

    /// The head to send now, if one is due. A head names a session only once none of its
    /// spool segments is left, so that its own chunks reach Kafka first.
    fn due(&mut self, spool: &Path) -> anyhow::Result<Option<(u64, SessionId, LedgerHead)>> {
        if self.key.is_none() {
            self.key = NodeKey::load(&self.key_path)?;
            if let Some(key) = &self.key {
                tracing::info!(key = %self.key_path.display(), public = %key.public(), "Found the node key: ledger heads are sent from now on.");
            }
        }
        let Some(key) = &self.key else {
            return Ok(None);
        };
        let Some((n, id)) = crate::ledger::read(&self.ledger)? else {
            return Ok(None);
        };
        let prefix = id.to_string();
        let segments = spool::list_segments(spool)
            .with_context(|| format!("cannot list spool {}", spool.display()))?;
        if segments.iter().any(|s| s.stem.starts_with(&prefix)) {
            return Ok(None);
        }
        let due = self
            .sent
            .is_none_or(|(sn, sid, at)| (sn, sid) != (n, id) || at.elapsed() >= self.every);
        let now = schemas::time::now_ns();
        Ok(due.then(|| (n, id, integrity::ledger::sign_head(key, n, id, now))))
    }
}

struct Shipper {
    /// With --once: stop waiting for reports once no broker answered this long.
    give_up: Option<Duration>,
    metrics_file: Option<PathBuf>,
    metrics: ShipMetrics,
    registry: metrics::Registry,
    /// When the chunk at a segment's shipped position was recorded, by (segment, position):
    /// reading a chunk to date it happens once per position, not once per report.
    chunk_times: RefCell<HashMap<(String, u64), i64>>,
    cap: u64,
    was_full: Cell<bool>,
    producer: BaseProducer<LogContext<Deliveries>>,
    reports: Receiver<(usize, Result<(), String>)>,
    topic: String,
    spool: PathBuf,
}

/// What a pass did.
#[derive(Default, Debug)]
struct Pass {
    shipped: u64,
    /// Bytes of the chunks shipped.
    bytes: u64,
    removed: u64,
    /// Segments still there (in use, or not fully shipped).
    remaining: u64,
    failed: bool,
}

/// Runs the shipper.
pub fn run(data_dir: Option<&Path>, args: ShipArgs) -> anyhow::Result<()> {
    let spool = match &args.spool {
        Some(d) => d.clone(),
        None => DataDir::resolve(data_dir)?.spool(),
    };
    let options = args.kafka.options(&args.brokers)?;
    let (tx, reports) = channel();
    let producer: BaseProducer<LogContext<Deliveries>> = options
        .client_config(&producer_defaults())
        .create_with_context(LogContext::new(Deliveries {
            tx: std::sync::Mutex::new(tx),
        }))
        .context("cannot create the Kafka producer (check -X / --kafka-config properties)")?;
    let key_path = match &args.node_key {
        Some(p) => p.clone(),
        None => DataDir::resolve(data_dir)?.node_key(),
    };
    let mut heads = Heads::open(&key_path, Duration::from_secs(args.ledger_head_interval))?;
    let registry = metrics::Registry::new();
    let shipper = Shipper {
        give_up: args.once.then(|| Duration::from_secs(args.broker_wait)),
        metrics_file: args.metrics_file.clone(),
        metrics: ShipMetrics::register(&registry),
        registry: registry.clone(),
        chunk_times: RefCell::new(HashMap::new()),
        cap: args.spool_max_bytes,
        was_full: Cell::new(false),
        producer,
        reports,
        topic: args.topic.clone(),
        spool,
    };

    shipper.metrics.max_bytes.set_u64(args.spool_max_bytes);
    if let Some(addr) = &args.metrics_listen {
        metrics::serve(addr, registry)?;
    }

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("cannot install signal handlers")?;
    }
    tracing::info!(spool = %shipper.spool.display(), topic = %args.topic, brokers = %args.brokers, "Shipping the spool to Kafka.");
    let mut backoff = Duration::from_millis(args.poll_interval_ms.max(10));
    let mut total = 0u64;

    loop {
        let pass = shipper.pass(&stop)?;
        total += pass.shipped;
        shipper.metrics.count(&pass);
        shipper.report();
        let unreachable = shipper.producer.context().reachability().unreachable_for();
        if args.once
            && let Some(down) = unreachable.filter(|d| d.as_secs() >= args.broker_wait)
        {
            anyhow::bail!(
                "gave up after {} s: no Kafka broker of {} answered (--broker-wait); the \
                 chunks stay in the spool for the next run",
                down.as_secs(),
                args.brokers
            );
        }
        if pass.failed {
            // Unreachable brokers were said once already, by the client context.
            if unreachable.is_none() {
                tracing::warn!(
                    "Some chunks were not acknowledged; they stay in the spool and are retried in {backoff:?}."
                );
            }
        } else if let Some(h) = heads.as_mut() {
            shipper.send_head(h, &stop);
        }
        if args.once && !pass.failed && pass.remaining == 0 {
            break;
        }
        let wait = if pass.failed {
            let w = backoff;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            w
        } else {
            backoff = Duration::from_millis(args.poll_interval_ms.max(10));
            backoff
        };
        let until = Instant::now() + wait;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    let _ = shipper.producer.flush(Duration::from_secs(5));
    tracing::info!(chunks = total, "The shipper stopped.");
    Ok(())
}

impl Shipper {
    /// Says loudly when the spool is full and refreshes the metrics file. Called after
    /// every pass and while waiting for the broker, so an outage shows while it lasts.
    fn report(&self) {
        let spool_bytes = spool::dir_size(&self.spool).unwrap_or(0);
        let full = spool_bytes >= self.cap;
        if full && !self.was_full.get() {
            tracing::error!(
                spool = %self.spool.display(),
                bytes = spool_bytes,
                cap = self.cap,
                "The spool is full: new sessions cannot be recorded until Kafka takes the chunks waiting here (is the broker reachable?)."
            );
        }
        self.was_full.set(full);
        let m = &self.metrics;
        m.spool_bytes.set_u64(spool_bytes);
        m.full.set_u64(u64::from(full));
        let segments = spool::list_segments(&self.spool).unwrap_or_default();
        m.segments.set_u64(segments.len() as u64);
        let oldest = self.oldest_unshipped(&segments);
        let age_ns = oldest.map_or(0, |t| schemas::time::now_ns().saturating_sub(t).max(0));
        m.oldest_age.set(age_ns as f64 / 1e9);
        let down = self.producer.context().reachability().unreachable_for();
        m.unreachable.set(down.map_or(0.0, |d| d.as_secs_f64()));
        if let Some(path) = &self.metrics_file
            && let Err(e) = self.registry.write_textfile(path)
        {
            tracing::warn!(path = %path.display(), error = %e, "Cannot write metrics.");
        }
    }

    /// When the oldest chunk not yet acknowledged by Kafka was recorded (Unix ns), or
    /// `None` when every chunk in the spool is shipped. The oldest unshipped chunk of a
    /// segment is the one at the shipper's position; each is read once and remembered.
    fn oldest_unshipped(&self, segments: &[SegmentFile]) -> Option<i64> {
        let mut times = self.chunk_times.borrow_mut();
        let mut seen = HashSet::with_capacity(segments.len());
        let mut oldest: Option<i64> = None;
        for seg in segments {
            let Ok(position) = spool::read_position(&seg.path, CONSUMER) else {
                continue;
            };
            let len = std::fs::metadata(&seg.path).map_or(0, |m| m.len());
            if position >= len {
                continue;
            }
            let key = (seg.stem.clone(), position);
            let time = match times.get(&key) {
                Some(t) => Some(*t),
                None => {
                    let t = first_chunk_time(seg, position);
                    if let Some(t) = t {
                        times.insert(key.clone(), t);
                    }
                    t
                }
            };
            seen.insert(key);
            if let Some(t) = time {
                oldest = Some(oldest.map_or(t, |o| o.min(t)));
            }
        }
        times.retain(|k, _| seen.contains(k));
        oldest
    }

    fn pass(&self, stop: &AtomicBool) -> anyhow::Result<Pass> {
        let mut pass = Pass::default();
        let segments = spool::list_segments(&self.spool)
            .with_context(|| format!("cannot list spool {}", self.spool.display()))?;
        for seg in segments {
            if stop.load(Ordering::Relaxed) {
                pass.remaining += 1;
                continue;
            }
            match self.ship_segment(&seg, &mut pass, stop) {
                Ok(true) => pass.removed += 1,
                Ok(false) => pass.remaining += 1,
                Err(e) => {
                    tracing::error!("{e:#}");
                    pass.failed = true;
                    pass.remaining += 1;
                    // The broker is likely down: do not hammer it segment after segment.
                    break;
                }
            }
        }
        Ok(pass)
    }

    /// Ships what is new in one segment; true if the segment is done and removed.
    fn ship_segment(
        &self,
        seg: &SegmentFile,
        pass: &mut Pass,
        stop: &AtomicBool,
    ) -> anyhow::Result<bool> {
        let path = seg.path.display().to_string();
        let Some((from, scan)) = spool::scan_from_position(seg, CONSUMER)
            .with_context(|| format!("cannot read spool file {path}"))?
        else {
            return Ok(false);
        };
        let mut ends = Vec::with_capacity(scan.items.len());
        let mut sizes = Vec::with_capacity(scan.items.len());
        let mut sent = 0usize;
        for item in &scan.items {
            match item {
                ScanItem::Entry { payload, end, .. } => {
                    self.send(&seg.stem, payload, sent)?;
                    ends.push(*end);
                    sizes.push(payload.len() as u64);
                    sent += 1;
                }
                ScanItem::Damaged {
                    offset,
                    end,
                    reason,
                    bytes,
                } => {
                    let kept = quarantine(&self.spool, &seg.stem, *offset, bytes)?;
                    spool::report_damage(
                        &seg.path,
                        *offset,
                        *end,
                        reason,
                        kept.display(),
                        &WORDING,
                    );
                    // Damage counts as handled once it is kept aside.
                    ends.push(*end);
                    sizes.push(0);
                    sent += 1;
                    self.mark_handled(sent - 1);
                }
            }
        }
        let acked = self.await_reports(sent, &path, stop)?;
        let end = if acked == 0 { from } else { ends[acked - 1] };
        if end > from {
            spool::commit_position(seg, &scan, end, CONSUMER)?;
            pass.shipped += acked as u64;
            pass.bytes += sizes[..acked].iter().sum::<u64>();
        }
        if acked < sent {
            if stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
            anyhow::bail!(
                "spool file {path}: {} of {sent} chunks were not acknowledged by Kafka",
                sent - acked
            );
        }
        match spool::finish_segment(seg, &scan, end, CONSUMER)? {
            spool::Finish::Kept => Ok(false),
            spool::Finish::Removed { torn_tail } => {
                if let Some(t) = torn_tail {
                    spool::report_torn_tail(&seg.path, &t, &WORDING);
                }
                Ok(true)
            }
        }
    }

    fn send(&self, stem: &str, payload: &[u8], index: usize) -> anyhow::Result<()> {
        // Key by session so one session's chunks stay in order on one partition; a record
        // that is not a chunk is keyed by the segment's session and dead-lettered downstream.
        let key = match ChunkHeader::parse(payload) {
            Ok(h) => h.session_id.to_string(),
            Err(_) => stem.get(..36).unwrap_or(stem).to_string(),
        };
        let record = BaseRecord::with_opaque_to(&self.topic, index)
            .key(&key)
            .payload(payload);
        kafka::send_waiting(&self.producer, record, Duration::from_millis(100))
            .context("cannot queue a chunk for Kafka")
    }

    /// Sends the ledger head that is due, if any; a failure is logged and retried after
    /// the next pass (heads are evidence, never a reason to stop shipping).
    fn send_head(&self, heads: &mut Heads, stop: &AtomicBool) {
        let (n, id, head) = match heads.due(&self.spool) {
            Ok(Some(due)) => due,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!("Cannot make a ledger head: {e:#}");
                return;
            }
        };
        let payload = head.to_record();
        let record = BaseRecord::with_opaque_to(&self.topic, 0)
            .key(&head.key)
            .payload(&payload);
        let sent = kafka::send_waiting(&self.producer, record, Duration::from_millis(100))
            .context("cannot queue a ledger head for Kafka")
            .and_then(|()| self.await_reports(1, "ledger head", stop));
        match sent {
            Ok(1) => {
                tracing::info!(session = %id, node_seq = n, "Sent a ledger head.");
                heads.sent = Some((n, id, Instant::now()));
            }
            Ok(_) => tracing::warn!("Kafka did not take the ledger head; it is sent again later."),
            Err(e) => tracing::warn!("{e:#}"),
        }
    }

    fn mark_handled(&self, index: usize) {
        if let Ok(tx) = self.producer.context().handler().tx.lock() {
            let _ = tx.send((index, Ok(())));
        }
    }

    /// Waits for `n` reports; returns how many leading entries were acknowledged.
    fn await_reports(&self, n: usize, path: &str, stop: &AtomicBool) -> anyhow::Result<usize> {
        let mut done = vec![None; n];
        let mut received = 0;
        let mut last_note = Instant::now();
        let mut last_report = Instant::now();
        while received < n {
            self.producer.poll(Duration::from_millis(50));
            while let Ok((i, r)) = self.reports.try_recv() {
                if let Some(slot) = done.get_mut(i)
                    && slot.is_none()
                {
                    *slot = Some(r);
                    received += 1;
                }
            }
            if received < n && last_report.elapsed() > Duration::from_secs(1) {
                self.report();
                last_report = Instant::now();
            }
            let unreachable = self.producer.context().reachability().unreachable_for();
            if self.give_up.is_some_and(|limit| unreachable >= Some(limit)) {
                // --once: the caller gives up; what is not acknowledged stays spooled.
                break;
            }
            if received < n
                && unreachable.is_none()
                && last_note.elapsed() > Duration::from_secs(10)
            {
                tracing::warn!(
                    file = path,
                    chunks = n - received,
                    "Waiting for Kafka to acknowledge chunks (is the broker reachable?)."
                );
                last_note = Instant::now();
            }
            if stop.load(Ordering::Relaxed) {
                // What is not acknowledged yet stays in the spool and is sent again on the
                // next start (readers drop the duplicate if both copies arrive).
                break;
            }
        }
        let errors = done.iter().filter(|r| matches!(r, Some(Err(_)))).count();
        self.metrics.delivery_errors.add(errors as u64);
        let mut acked = 0;
        for r in &done {
            match r {
                Some(Ok(())) => acked += 1,
                Some(Err(e)) => {
                    tracing::warn!(file = path, error = %e, "Kafka did not take a chunk.");
                    break;
                }
                None => break,
            }
        }
        Ok(acked)
    }
}

/// Keeps damaged spool bytes aside in `<spool>/quarantine/`.
fn quarantine(spool: &Path, stem: &str, offset: u64, bytes: &[u8]) -> anyhow::Result<PathBuf> {
    let dir = spool.join("quarantine");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("{stem}-{offset:020}.bin"));
    std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// When the first chunk at or after `position` in a segment was recorded (Unix ns): the
/// session's start (its id's timestamp) plus the chunk's first `elapsed_ns`, read in clear
/// from a sealed chunk too. A record that is not a chunk is dated by its session's start,
/// which is earlier, so the age errs towards alerting.
fn first_chunk_time(seg: &SegmentFile, position: u64) -> Option<i64> {
    let scan = spool::scan_segment(&seg.path, position).ok()?;
    let payload = scan.items.iter().find_map(|i| match i {
        ScanItem::Entry { payload, .. } => Some(payload),
        ScanItem::Damaged { .. } => None,
    })?;
    let session_start = || {
        seg.stem
            .get(..36)
            .and_then(|s| s.parse::<SessionId>().ok())
            .and_then(|id| id.start_time_ns())
    };
    let (id, elapsed) = if let Ok(sealed) = schemas::chunk::seal::SealedChunk::parse(payload) {
        (sealed.header.session_id, sealed.first_elapsed_ns)
    } else if let Ok(chunk) = schemas::Chunk::decode(payload) {
        let first = chunk.events.first().map_or(0, |e| e.elapsed_ns);
        (chunk.session_id, first)
    } else {
        return session_start();
    };
    let start = id.start_time_ns().or_else(session_start)?;
    Some(start.saturating_add(i64::try_from(elapsed).unwrap_or(i64::MAX)))
}

/// What the shipper reports about itself, on --metrics-listen and in --metrics-file.
struct ShipMetrics {
    spool_bytes: metrics::Gauge,
    max_bytes: metrics::Gauge,
    segments: metrics::Gauge,
    full: metrics::Gauge,
    oldest_age: metrics::Gauge,
    chunks_shipped: metrics::Counter,
    bytes_shipped: metrics::Counter,
    delivery_errors: metrics::Counter,
    failed_passes: metrics::Counter,
    last_success: metrics::Gauge,
    unreachable: metrics::Gauge,
}

impl ShipMetrics {
    /// Counts what a pass did.
    fn count(&self, pass: &Pass) {
        self.chunks_shipped.add(pass.shipped);
        self.bytes_shipped.add(pass.bytes);
        if pass.failed {
            self.failed_passes.inc();
        } else {
            self.last_success.set(schemas::time::now_ns() as f64 / 1e9);
        }
    }

    fn register(r: &metrics::Registry) -> ShipMetrics {
        ShipMetrics {
            spool_bytes: r.gauge("auditty_spool_bytes", "Bytes waiting in the spool."),
            max_bytes: r.gauge("auditty_spool_max_bytes", "The spool's size cap."),
            segments: r.gauge(
                "auditty_spool_segments",
                "Segments not yet shipped and removed.",
            ),
            full: r.gauge(
                "auditty_spool_full",
                "1 when the spool is at its cap and recording is refused.",
            ),
            oldest_age: r.gauge(
                "auditty_spool_oldest_unshipped_age_seconds",
                "Age of the oldest chunk in the spool not yet acknowledged by Kafka (0 when all are shipped).",
            ),
            chunks_shipped: r.counter(
                "auditty_chunks_shipped_total",
                "Chunks acknowledged by Kafka.",
            ),
            bytes_shipped: r.counter(
                "auditty_ship_bytes_total",
                "Bytes of chunks acknowledged by Kafka.",
            ),
            delivery_errors: r.counter(
                "auditty_ship_delivery_errors_total",
                "Chunks Kafka refused or failed to deliver (they stay in the spool and are retried).",
            ),
            failed_passes: r.counter(
                "auditty_ship_failed_passes_total",
                "Passes that left chunks unacknowledged; each is retried after a backoff.",
            ),
            last_success: r.gauge(
                "auditty_ship_last_success_timestamp_seconds",
                "Unix time of the last pass that shipped everything it found (0: none yet).",
            ),
            unreachable: r.gauge(
                "auditty_ship_broker_unreachable_seconds",
                "How long no Kafka broker has answered (0 while one does).",
            ),
        }
    }
}
