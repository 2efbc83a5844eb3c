//! The recorder thread: numbers events, cuts chunks, seals them (when the session has
//! recipients), chains and signs them (DESIGN.md §5, §6), and appends them to the spool.
//!
//! `start`, checkpoints and `end` are written in clear chunks of their own, even in a
//! sealed session: the ingester must read session metadata and a verifier the
//! checkpoints without a key. Everything the user typed or saw is sealed.
//!
//! Chunks are appended as soon as they are cut (so a killed agent loses only what was
//! not cut yet), and fdatasync'd at most once per `max_latency`: under bulk output a
//! chunk is cut every few milliseconds, and one sync per chunk made the disk, not the
//! terminal, set the pace. A crash of the machine loses at most about two `max_latency`.
//!
//! The relay loop sends [`Message`]s over a bounded channel and never touches the disk.
//! If the disk falls behind, the channel fills and the relay waits: recording slows the
//! shell down rather than losing what it showed. If the spool fails (full, I/O error),
//! the recorder reports it through [`Recorder::failure`] and the relay ends the session,
//! so nothing goes unrecorded.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use integrity::SessionChain;
use schemas::chunk::ChunkEncoder;
use schemas::chunk::seal::DataKey;
use schemas::{Chunk, Event, EventKind, SessionEnd, SessionId, SessionStart};
use spool::SpoolWriter;

/// One event as the relay saw it; the recorder gives it its sequence number.
pub struct Queued {
    /// What happened.
    pub kind: EventKind,
    /// Nanoseconds since the session started.
    pub elapsed_ns: u64,
    /// The bytes.
    pub data: Vec<u8>,
}

/// What the relay sends to the recorder.
pub enum Message {
    /// Events, in order.
    Events {
        /// The events.
        events: Vec<Queued>,
        /// When the relay queued the first of them: a chunk's latency counts from there.
        first: Instant,
    },
    /// The session is over; the recorder fills in the counts.
    End {
        /// Nanoseconds since the session started.
        elapsed_ns: u64,
        /// The end metadata (event and byte counts are filled in by the recorder).
        end: SessionEnd,
    },
}

/// Events are handed to the recorder thread in batches of up to this many bytes, or
/// when the chunk they start is due (`ChunkPolicy::max_latency` after the first; see
/// [`Recorder::handover_due`]). One message per PTY read woke the thread every 4 KiB
/// under bulk output, two context switches each, and put a wake-up of the recorder in
/// the path of every keystroke's echo. Handing over sooner than the chunk is due buys
/// nothing: the recorder would only hold the events until then, and a killed agent loses
/// them from either thread. It cost a recorder wake-up every 10 ms while someone types
/// (the previous delay), each one a chance to delay an echo on a busy machine.
const BATCH_BYTES: usize = 64 * 1024;
/// ... or this many events.
const BATCH_EVENTS: usize = 1024;
/// Output read within this long of the start of the previous output event, with nothing
/// recorded in between, joins that event (see [`Recorder::send_output`]).
const OUTPUT_JOIN_WINDOW_NS: u64 = 2_000_000;
/// ... up to this many bytes per event (or the chunk size, if smaller).
const MAX_JOINED_OUTPUT: usize = 64 * 1024;
/// A PTY read at least this large (half of the 4 KiB a PTY hands out at most) is taken
/// for bulk output, and its event is given room for the reads that will join it.
const BULK_READ_BYTES: usize = 2048;
/// Batches the channel holds before the relay waits: a few MiB, as before batching.
const CHANNEL_BATCHES: usize = 64;

/// How chunks are cut.
#[derive(Clone, Copy, Debug)]
pub struct ChunkPolicy {
    /// Cut once the pending events hold this many data bytes.
    pub max_bytes: usize,
    /// Cut this long after the first pending event arrived.
    pub max_latency: Duration,
    /// zstd-compress payloads.
    pub compress: bool,
    /// Write a signed checkpoint after this many chunks (and always after `end`).
    pub checkpoint_every: u32,
}

/// How chunks are protected.
pub struct Protection {
    /// The session's data key, when it is sealed for recipients.
    pub key: Option<DataKey>,
    /// The hash chain, signed with the node key.
    pub chain: SessionChain,
}

/// Why recording stopped.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The spool failed (full, I/O error).
    #[error("{0}")]
    Spool(#[from] spool::SpoolError),
    /// A chunk could not be sealed.
    #[error("{0}")]
    Seal(#[source] schemas::chunk::seal::SealError),
}

/// Why [`Recorder::finish`] could not report a complete recording.
#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    /// Recording failed during the session or while ending it.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The recorder thread panicked; what it had not written is lost.
    #[error("the recorder thread panicked")]
    Panicked,
}

/// What the recorder did, when it is done.
#[derive(Clone, Debug, Default)]
pub struct RecorderStats {
    /// Events written, `start` and `end` included.
    pub events: u64,
    /// Chunks written.
    pub chunks: u64,
}

/// Handle to the recorder thread.
pub struct Recorder {
    tx: Sender<Message>,
    /// How long the first queued event may wait in the relay: the chunk latency.
    handover_delay: Duration,
    /// Largest output event made by joining reads.
    max_joined_output: usize,
    failure: FailureSlot,
    thread: JoinHandle<RecorderStats>,
    /// Events not handed over yet, their bytes, and when the first was queued. The relay
    /// is the only user.
    batch: RefCell<Batch>,
}

impl Recorder {
    /// Starts the recorder; the `start` event is written and synced before this returns,
    /// so a session exists in the spool from its first moment.
    pub fn start(
        writer: SpoolWriter,
        session_id: SessionId,
        start: &SessionStart,
        policy: ChunkPolicy,
        protection: Protection,
    ) -> Result<Recorder, RecordError> {
        let mut state = State {
            writer,
            encoder: ChunkEncoder::new(policy.compress).sealed_with(protection.key),
            chain: protection.chain,
            chunks_since_checkpoint: 0,
            last_elapsed_ns: 0,
            session_id,
            policy,
            pending: Vec::new(),
            pending_bytes: 0,
            next_seq: 0,
            input_bytes: 0,
            output_bytes: 0,
            stats: RecorderStats::default(),
            synced_at: Instant::now(),
            unsynced: false,
        };
        state.push(EventKind::Start, 0, start.to_bytes());
        state.flush_clear()?;
        state.sync()?;
        let (tx, rx) = bounded(CHANNEL_BATCHES);
        let failure = Arc::new(Mutex::new(None));
        let thread_failure = Arc::clone(&failure);
        let thread = std::thread::Builder::new()
            .name("auditty-recorder".into())
            .spawn(move || Worker::new(state, thread_failure).run(rx))
            .map_err(|e| {
                RecordError::Spool(spool::SpoolError::Io {
                    path: Default::default(),
                    op: "start recorder thread",
                    source: e,
                })
            })?;
        Ok(Recorder {
            tx,
            handover_delay: policy.max_latency,
            max_joined_output: MAX_JOINED_OUTPUT.min(policy.max_bytes),
            failure,
            thread,
            batch: RefCell::new(Batch::default()),
        })
    }

    /// Queues an event for the recorder; it is handed over once the batch is full, or by
    /// [`Recorder::hand_over`] once [`Recorder::handover_due`] is past. Blocks only while
    /// the recorder is behind.
    pub fn send(&self, kind: EventKind, elapsed_ns: u64, data: Vec<u8>) {
        self.queue(data.len(), |events| {
            events.push(Queued {
                kind,
                elapsed_ns,
                data,
            })
        });
    }

    /// Queues output the relay read from the program, joined to the previous output event
    /// when that one started less than 2 ms earlier and nothing else was recorded since.
    ///
    /// A PTY hands out at most 4 KiB per read, so bulk output came as one event per 4 KiB:
    /// per-event costs (a BLAKE3 unit hash, which is slower per byte on small inputs, an
    /// allocation, a row in the store) were paid 16 times per 64 KiB. Joined,
    /// a byte is replayed at most 2 ms before it was shown, which no one watching can
    /// tell; output that trickles (a prompt, a progress bar, an echo) stays an event per
    /// read.
    pub fn send_output(&self, elapsed_ns: u64, data: &[u8]) {
        let max = self.max_joined_output;
        self.queue(data.len(), |events| match events.last_mut() {
            Some(last)
                if last.kind == EventKind::Output
                    && elapsed_ns.saturating_sub(last.elapsed_ns) < OUTPUT_JOIN_WINDOW_NS
                    && last.data.len() + data.len() <= max =>
            {
                last.data.extend_from_slice(data);
            }
            _ => {
                // A large read means bulk output: leave room for what will join it.
                let capacity = if data.len() >= BULK_READ_BYTES {
                    max.max(data.len())
                } else {
                    data.len()
                };
                let mut owned = Vec::with_capacity(capacity);
                owned.extend_from_slice(data);
                events.push(Queued {
                    kind: EventKind::Output,
                    elapsed_ns,
                    data: owned,
                });
            }
        });
    }

    /// Adds `bytes` to the batch with `add`, and hands the batch over if it is full.
    fn queue(&self, bytes: usize, add: impl FnOnce(&mut Vec<Queued>)) {
        let full = {
            let mut b = self.batch.borrow_mut();
            b.first.get_or_insert_with(Instant::now);
            add(&mut b.events);
            b.bytes += bytes;
            b.bytes >= BATCH_BYTES || b.events.len() >= BATCH_EVENTS
        };
        if full {
            self.hand_over();
        }
    }

    /// Hands the batch over if it has waited long enough, and returns how long a loop may
    /// sleep (at most `longest`) before the next one is due.
    pub fn hand_over_if_due(&self, longest: Duration) -> Duration {
        let Some(due) = self.handover_due() else {
            return longest;
        };
        let now = Instant::now();
        if now >= due {
            self.hand_over();
            longest
        } else {
            longest.min(due - now)
        }
    }

    /// When queued events must be handed over, if any wait. The relay wakes up for it.
    pub fn handover_due(&self) -> Option<Instant> {
        self.batch.borrow().first.map(|t| t + self.handover_delay)
    }

    /// Hands the queued events to the recorder thread.
    pub fn hand_over(&self) {
        let (mut events, first) = {
            let mut b = self.batch.borrow_mut();
            b.bytes = 0;
            (std::mem::take(&mut b.events), b.first.take())
        };
        // Room left for output that did not come (see `send_output`) would otherwise sit
        // in the channel: up to 64 KiB per event instead of the event's bytes.
        for e in &mut events {
            if e.data.capacity() > 2 * e.data.len() + 4096 {
                e.data.shrink_to_fit();
            }
        }
        if let Some(first) = first
            && !events.is_empty()
        {
            // A send fails only if the thread is gone, which `failure` reports.
            let _ = self.tx.send(Message::Events { events, first });
        }
    }

    /// Why recording failed, if it did.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .ok()
            .and_then(|f| f.as_ref().map(ToString::to_string))
    }

    /// Writes the `end` event, waits for everything to be synced, and returns the counts.
    pub fn finish(self, elapsed_ns: u64, end: SessionEnd) -> Result<RecorderStats, FinishError> {
        self.hand_over();
        let _ = self.tx.send(Message::End { elapsed_ns, end });
        drop(self.tx);
        let stats = self.thread.join().map_err(|_| FinishError::Panicked)?;
        match self.failure.lock().ok().and_then(|mut f| f.take()) {
            Some(e) => Err(e.into()),
            None => Ok(stats),
        }
    }
}

#[derive(Default)]
struct Batch {
    events: Vec<Queued>,
    bytes: usize,
    first: Option<Instant>,
}

struct State {
    writer: SpoolWriter,
    encoder: ChunkEncoder,
    chain: SessionChain,
    chunks_since_checkpoint: u32,
    /// Time of the latest event, for the events the recorder makes itself.
    last_elapsed_ns: u64,
    session_id: SessionId,
    policy: ChunkPolicy,
    pending: Vec<Event>,
    pending_bytes: usize,
    next_seq: u64,
    input_bytes: u64,
    output_bytes: u64,
    stats: RecorderStats,
    /// When the spool was last synced.
    synced_at: Instant,
    /// Chunks were appended since.
    unsynced: bool,
}

impl State {
    fn push(&mut self, kind: EventKind, elapsed_ns: u64, data: Vec<u8>) {
        match kind {
            EventKind::Input => self.input_bytes += data.len() as u64,
            EventKind::Output => self.output_bytes += data.len() as u64,
            _ => {}
        }
        self.pending_bytes += data.len();
        self.last_elapsed_ns = self.last_elapsed_ns.max(elapsed_ns);
        self.pending.push(Event {
            seq: self.next_seq,
            elapsed_ns,
            kind,
            data,
        });
        self.next_seq += 1;
    }

    /// Cuts the pending events into a chunk (sealed if the session is), and writes a
    /// checkpoint when one is due.
    fn flush(&mut self) -> Result<(), RecordError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunk = self.take_chunk();
        let bytes = if self.encoder.is_sealing() {
            let bytes = self.encoder.encode(&chunk).map_err(RecordError::Seal)?;
            self.chain.add_sealed_chunk(&bytes);
            bytes
        } else {
            chunk.events.iter().for_each(|e| self.chain.add_event(e));
            self.encoder.encode_clear(&chunk)
        };
        self.append(&bytes, chunk.events.len())?;
        self.chunks_since_checkpoint += 1;
        if self.chunks_since_checkpoint >= self.policy.checkpoint_every {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Writes the pending events in a clear chunk: `start`, checkpoints and `end`.
    fn flush_clear(&mut self) -> Result<(), RecordError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunk = self.take_chunk();
        chunk.events.iter().for_each(|e| self.chain.add_event(e));
        let bytes = self.encoder.encode_clear(&chunk);
        self.append(&bytes, chunk.events.len())
    }

    /// Signs the chain so far into a checkpoint event, written at once.
    fn checkpoint(&mut self) -> Result<(), RecordError> {
        let data = self.chain.checkpoint(self.next_seq);
        self.push(EventKind::Checkpoint, self.last_elapsed_ns, data);
        self.chunks_since_checkpoint = 0;
        self.flush_clear()
    }

    /// Ends the session: the pending events, `end` with the chain hash before it, and the
    /// final checkpoint that covers `end`.
    fn end(&mut self, elapsed_ns: u64, mut end: SessionEnd) -> Result<(), RecordError> {
        self.flush()?;
        // `end` counts itself; the final checkpoint follows it.
        end.event_count = self.next_seq + 1;
        end.input_bytes = self.input_bytes;
        end.output_bytes = self.output_bytes;
        end.chain_hash = Some(integrity::chain::hex(&self.chain.hash()));
        self.push(EventKind::End, elapsed_ns, end.to_bytes());
        self.flush_clear()?;
        self.checkpoint()
    }

    fn take_chunk(&mut self) -> Chunk {
        self.pending_bytes = 0;
        Chunk {
            session_id: self.session_id,
            events: std::mem::take(&mut self.pending),
        }
    }

    fn append(&mut self, bytes: &[u8], events: usize) -> Result<(), RecordError> {
        self.writer.append(bytes)?;
        self.unsynced = true;
        self.stats.chunks += 1;
        self.stats.events += events as u64;
        if self.synced_at.elapsed() >= self.policy.max_latency {
            self.sync()?;
        }
        Ok(())
    }

    /// Makes every appended chunk durable.
    fn sync(&mut self) -> Result<(), spool::SpoolError> {
        if self.unsynced {
            self.writer.sync()?;
            self.unsynced = false;
        }
        self.synced_at = Instant::now();
        Ok(())
    }

    /// When appended chunks must be synced, if any wait.
    fn sync_due(&self) -> Option<Instant> {
        self.unsynced
            .then(|| self.synced_at + self.policy.max_latency)
    }
}

/// Where the recorder thread leaves why recording failed, for the relay to see.
type FailureSlot = Arc<Mutex<Option<RecordError>>>;

/// The recorder thread: takes messages until the session ends, cutting and syncing
/// chunks when they are due.
struct Worker {
    state: State,
    failure: FailureSlot,
    /// When the oldest event not yet in a chunk was queued by the relay.
    oldest: Option<Instant>,
    /// Recording failed: what arrives from now on is dropped.
    failed: bool,
}

impl Worker {
    fn new(state: State, failure: FailureSlot) -> Worker {
        Worker {
            state,
            failure,
            oldest: None,
            failed: false,
        }
    }

    fn run(mut self, rx: Receiver<Message>) -> RecorderStats {
        loop {
            let ended = match rx.recv_timeout(self.timeout()) {
                Ok(Message::Events { events, first }) => {
                    self.take(events, first);
                    false
                }
                Ok(Message::End { elapsed_ns, end }) => {
                    if !self.failed
                        && let Err(e) = self.state.end(elapsed_ns, end)
                    {
                        self.fail(e);
                    }
                    true
                }
                Err(RecvTimeoutError::Timeout) => false,
                // The relay is gone without an `end`; keep what we have (the session reads
                // as "never ended", which is the truth).
                Err(RecvTimeoutError::Disconnected) => true,
            };
            self.write_due(ended);
            if self.failed {
                // Drop what arrives so the relay is never blocked while it winds down.
                self.state.pending.clear();
                self.state.pending_bytes = 0;
            }
            if ended {
                if !self.failed
                    && let Err(e) = self.state.writer.finish()
                    && let Ok(mut f) = self.failure.lock()
                {
                    *f = Some(e.into());
                }
                return self.state.stats;
            }
        }
    }

    /// How long to wait for the next message: until a chunk or a sync is due.
    fn timeout(&self) -> Duration {
        let wake = [
            self.oldest.map(|t| t + self.state.policy.max_latency),
            self.state.sync_due(),
        ]
        .into_iter()
        .flatten()
        .min();
        match wake {
            Some(t) => t.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(3600),
        }
    }

    /// Adds a batch of events, cutting chunks inside it as they fill up.
    fn take(&mut self, events: Vec<Queued>, first: Instant) {
        for q in events {
            if self.failed {
                // Dropped so the relay is never blocked while it winds down.
                continue;
            }
            self.state.push(q.kind, q.elapsed_ns, q.data);
            // The batch's first event, also for events after a cut inside it: their
            // chunk is due no later than it would have been.
            self.oldest.get_or_insert(first);
            // Cut inside the batch, so chunks stay within `max_bytes` (plus one event)
            // as when events came one by one.
            if self.state.pending_bytes >= self.state.policy.max_bytes {
                if let Err(e) = self.state.flush() {
                    self.fail(e);
                }
                self.oldest = None;
            }
        }
    }

    /// Cuts the pending events into a chunk when the session ended, the chunk is due or
    /// full, and syncs the spool when a sync is due.
    fn write_due(&mut self, ended: bool) {
        let policy = self.state.policy;
        let due = self
            .oldest
            .is_some_and(|t| t.elapsed() >= policy.max_latency);
        if !self.failed && (ended || due || self.state.pending_bytes >= policy.max_bytes) {
            if let Err(e) = self.state.flush() {
                self.fail(e);
            }
            self.oldest = None;
        }
        if !self.failed
            && !ended
            && self.state.sync_due().is_some_and(|t| Instant::now() >= t)
            && let Err(e) = self.state.sync()
        {
            self.fail(e.into());
        }
    }

    fn fail(&mut self, e: RecordError) {
        tracing::error!(
            session = %self.state.session_id,
            error = %e,
            "Recording failed; the session will be ended."
        );
        if let Ok(mut f) = self.failure.lock() {
            *f = Some(e);
        }
        self.failed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &std::path::Path) -> usize {
        spool::list_segments(dir)
            .unwrap()
            .iter()
            .map(|s| spool::scan_segment(&s.path, 0).unwrap().items.len())
            .sum()
    }

    fn start(dir: &std::path::Path, max_latency: Duration, max_bytes: usize) -> Recorder {
        let session = SessionId::new_v7();
        let writer = SpoolWriter::create(dir, "s", spool::SpoolOptions::default()).unwrap();
        Recorder::start(
            writer,
            session,
            &SessionStart::default(),
            ChunkPolicy {
                max_bytes,
                max_latency,
                compress: true,
                checkpoint_every: 1000,
            },
            Protection {
                key: None,
                chain: SessionChain::new(session, integrity::NodeKey::from_seed([7; 32])),
            },
        )
        .unwrap()
    }

    /// The queued events' kinds, times and lengths.
    fn queued(r: &Recorder) -> Vec<(EventKind, u64, usize)> {
        r.batch
            .borrow()
            .events
            .iter()
            .map(|e| (e.kind, e.elapsed_ns, e.data.len()))
            .collect()
    }

    /// A chunk is due `max_latency` after its first event was queued by the relay, not
    /// after the recorder received it: handing over late must not add a second latency.
    #[test]
    fn chunk_latency_counts_from_the_first_queued_event() {
        let dir = tempfile::tempdir().unwrap();
        let max_latency = Duration::from_secs(3);
        let recorder = start(dir.path(), max_latency, 64 << 10);
        assert_eq!(entries(dir.path()), 1, "the start chunk");

        let queued = Instant::now();
        recorder.send(EventKind::Output, 1_000, b"hello".to_vec());
        let due = recorder.handover_due().unwrap();
        assert!(due >= queued + max_latency && due <= Instant::now() + max_latency);
        // The relay hands over when the batch is due; the chunk is cut right away.
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        recorder.hand_over();
        assert_eq!(recorder.handover_due(), None);
        let deadline = Instant::now() + max_latency / 2;
        while entries(dir.path()) < 2 {
            assert!(
                Instant::now() < deadline,
                "the chunk waited for a second chunk latency"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let stats = recorder.finish(2_000, SessionEnd::default()).unwrap();
        // start, hello, end, final checkpoint.
        assert_eq!(stats.events, 4);
    }

    /// Output reads less than 2 ms after the start of the previous output event join it,
    /// up to the size limit; anything recorded in between, or a longer pause, starts a
    /// new event. The bytes are kept in order either way.
    #[test]
    fn output_reads_close_together_join_one_event() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = start(dir.path(), Duration::from_secs(60), 16 << 10);
        let ms = 1_000_000;
        recorder.send_output(10 * ms, &[b'a'; 4000]);
        recorder.send_output(10 * ms + 500_000, &[b'b'; 4000]);
        recorder.send_output(11 * ms + 999_000, b"c");
        assert_eq!(queued(&recorder), [(EventKind::Output, 10 * ms, 8001)]);
        // 2 ms after the event started: a new one.
        recorder.send_output(12 * ms, b"d");
        // Input in between: a new one.
        recorder.send(EventKind::Input, 12 * ms + 1, b"x".to_vec());
        recorder.send_output(12 * ms + 2, b"e");
        // Beyond the size limit (the chunk size, 16 KiB here): a new one.
        recorder.send_output(12 * ms + 3, &[b'f'; 10_000]);
        recorder.send_output(12 * ms + 4, &[b'g'; 10_000]);
        assert_eq!(
            queued(&recorder),
            [
                (EventKind::Output, 10 * ms, 8001),
                (EventKind::Output, 12 * ms, 1),
                (EventKind::Input, 12 * ms + 1, 1),
                (EventKind::Output, 12 * ms + 2, 10_001),
                (EventKind::Output, 12 * ms + 4, 10_000),
            ]
        );
        let first = recorder.batch.borrow().events[0].data.clone();
        assert!(first[..4000].iter().all(|&b| b == b'a'));
        assert!(first[4000..8000].iter().all(|&b| b == b'b'));
        assert_eq!(first[8000], b'c');
        let stats = recorder.finish(13 * ms, SessionEnd::default()).unwrap();
        // start, five events, end, final checkpoint.
        assert_eq!(stats.events, 8);
    }
}
