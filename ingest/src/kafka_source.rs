//! The fleet source: a Kafka consumer-group member.
//!
//! Per assigned partition the ingester buffers rows and writes a batch when a row-count,
//! byte or age bound is reached. The batch's objects are named after (topic-partition,
//! first offset); only once they are durable is the offset after the batch committed
//! (auto-commit is off). On revoke, unflushed rows are dropped: the next owner re-reads
//! them from the committed offset. A batch already written from the committed offset
//! (crash between put and commit) fixes where the re-read batch is cut, so the same
//! objects are written again, never overlapping ones: the output is exactly once although
//! delivery is at least once.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kafka::{KafkaOptions, LogContext, RebalanceHandler};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, Rebalance};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;
use store::ObjectStore;

use crate::decode::{Rows, decode_chunk};
use crate::notify::Notifier;
use crate::output::{Batch, DeadLetter, ExistingCuts, Written, write_batch};
use crate::telemetry::IngestMetrics;

/// Name of this source in object names.
pub const SOURCE: &str = "kafka";

/// Where and how to consume.
#[derive(Clone, Debug)]
pub struct KafkaSourceConfig {
    /// Brokers and librdkafka properties.
    pub options: KafkaOptions,
    /// The topic of chunks.
    pub topic: String,
    /// Consumer group.
    pub group: String,
    /// Write a batch at this many events.
    pub max_batch_events: usize,
    /// … or this many bytes of event data.
    pub max_batch_bytes: usize,
    /// … or when its first record is this old.
    pub max_batch_age: Duration,
    /// Records larger than this are dead letters without being decoded.
    pub max_record_bytes: usize,
    /// With `Some`, exit once no record arrived for this long (after partitions were assigned).
    pub exit_when_idle: Option<Duration>,
    /// With `Some`, fail once no broker has answered for this long.
    pub give_up_unreachable: Option<Duration>,
}

/// What the consumer group did to us, recorded by the rebalance callback and acted on by
/// the loop (which owns the buffers).
#[derive(Default)]
struct GroupContext {
    events: Mutex<Vec<(bool, Vec<i32>)>>,
}

impl RebalanceHandler for GroupContext {
    fn pre_rebalance(&self, rebalance: &Rebalance<'_>) {
        let (assigned, tpl) = match rebalance {
            Rebalance::Assign(tpl) => (true, tpl),
            Rebalance::Revoke(tpl) => (false, tpl),
            Rebalance::Error(e) => {
                tracing::warn!("Kafka rebalance error: {e}");
                return;
            }
        };
        let partitions = tpl.elements().iter().map(|e| e.partition()).collect();
        if let Ok(mut ev) = self.events.lock() {
            ev.push((assigned, partitions));
        }
    }
}

/// Rows waiting to be written for one partition.
struct Pending {
    first_offset: i64,
    next_offset: i64,
    rows: Rows,
    dead_letters: Vec<DeadLetter>,
    bytes: usize,
    started: Instant,
    /// Set when a batch from `first_offset` is already in the store: cut exactly there.
    cut_at: Option<i64>,
    date: String,
}

/// What the run did.
#[derive(Default, Debug, Clone, Copy)]
pub struct KafkaSummary {
    /// Rows and objects written.
    pub written: Written,
    /// Batches committed.
    pub batches: u64,
    /// Records consumed.
    pub records: u64,
}

/// Consumes until stopped (or idle, with `exit_when_idle`); session starts and ends go to
/// `notifier` once durable, and the work done to `telemetry`.
pub fn run(
    config: &KafkaSourceConfig,
    store: &dyn ObjectStore,
    stop: &AtomicBool,
    notifier: &Notifier,
    telemetry: &IngestMetrics,
) -> anyhow::Result<KafkaSummary> {
    let client = config.options.client_config(&[
        ("group.id", config.group.as_str()),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("auto.offset.reset", "earliest"),
        ("session.timeout.ms", "10000"),
        ("fetch.message.max.bytes", "16777216"),
    ]);
    let session_timeout = Duration::from_millis(
        client
            .get("session.timeout.ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(10_000),
    );
    let consumer: BaseConsumer<LogContext<GroupContext>> = client
        .create_with_context(LogContext::new(GroupContext::default()))
        .context("cannot create the Kafka consumer (check -X / --kafka-config properties)")?;
    consumer
        .subscribe(&[config.topic.as_str()])
        .with_context(|| format!("cannot subscribe to topic {}", config.topic))?;
    let mut ingester = Ingester {
        config,
        store,
        consumer: &consumer,
        notifier,
        telemetry,
        pending: HashMap::new(),
        assignment: None,
        cuts: ExistingCuts::load(store).context("cannot list the store's events/")?,
        summary: KafkaSummary::default(),
    };
    let mut last_record = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            tracing::info!("Stopping: writing what is buffered.");
            ingester.flush_all()?;
            break;
        }
        let polled = consumer.poll(Duration::from_millis(100));
        if ingester.handle_rebalances()? {
            // Joining the group can take longer than the idle limit: count quiet time
            // from the assignment, not from the start.
            last_record = Instant::now();
        }
        let reach = consumer.context().reachability();
        match polled {
            Some(Ok(msg)) => {
                reach.reached();
                last_record = Instant::now();
                ingester.take(&msg)?;
            }
            Some(Err(e)) if kafka::is_unreachable(&e) => reach.unreachable(&e.to_string()),
            Some(Err(e)) => {
                telemetry.errors.inc();
                tracing::warn!("Kafka consumer error: {e}");
            }
            None => {}
        }
        if let (Some(limit), Some(down)) = (config.give_up_unreachable, reach.unreachable_for())
            && down >= limit
        {
            anyhow::bail!(
                "gave up after {} s: no Kafka broker of {} answered (--broker-wait; without \
                 --once the ingester keeps retrying)",
                down.as_secs(),
                config.options.brokers
            );
        }
        ingester.flush_old()?;
        if let Some(idle) = config.exit_when_idle
            && ingester.quiet_enough(last_record.elapsed(), idle, session_timeout)
        {
            ingester.flush_all()?;
            break;
        }
    }
    Ok(ingester.summary)
}

struct Ingester<'a> {
    config: &'a KafkaSourceConfig,
    store: &'a dyn ObjectStore,
    consumer: &'a BaseConsumer<LogContext<GroupContext>>,
    notifier: &'a Notifier,
    telemetry: &'a IngestMetrics,
    pending: HashMap<i32, Pending>,
    /// The partitions this member owns; `None` before the first assignment and while a
    /// rebalance has revoked all of them (an assignment may also be empty: more members
    /// than partitions).
    assignment: Option<BTreeSet<i32>>,
    cuts: ExistingCuts,
    summary: KafkaSummary,
}

impl Ingester<'_> {
    /// Whether `--once` may exit after `quiet` without a record. Never while a rebalance
    /// has taken every partition and not handed out new ones. A member assigned nothing
    /// waits a session timeout longer: when an earlier member crashed (a killed
    /// ingester's restart), the group can hand everything to the dead member and nothing
    /// to the new one, until the dead one's session expires.
    fn quiet_enough(&self, quiet: Duration, idle: Duration, session_timeout: Duration) -> bool {
        match &self.assignment {
            None => false,
            Some(owned) if owned.is_empty() => quiet >= idle + session_timeout,
            Some(_) => quiet >= idle,
        }
    }

    /// Applies what the group did; true if partitions were assigned.
    fn handle_rebalances(&mut self) -> anyhow::Result<bool> {
        let events = match self.consumer.context().handler().events.lock() {
            Ok(mut e) => std::mem::take(&mut *e),
            Err(_) => bail!("the rebalance state is poisoned"),
        };
        let mut assigned = false;
        for (is_assign, partitions) in events {
            if is_assign {
                tracing::info!(topic = %self.config.topic, ?partitions, "Assigned partitions.");
                self.assignment
                    .get_or_insert_with(BTreeSet::new)
                    .extend(partitions.iter().copied());
                // The previous owner may have written batches it could not commit.
                self.cuts =
                    ExistingCuts::load(self.store).context("cannot list the store's events/")?;
                assigned = true;
            } else {
                for p in &partitions {
                    if let Some(owned) = &mut self.assignment {
                        owned.remove(p);
                    }
                    if let Some(dropped) = self.pending.remove(p) {
                        tracing::info!(
                            partition = p,
                            from = dropped.first_offset,
                            "Partition revoked: dropped unwritten rows; the next owner re-reads them."
                        );
                    }
                }
                if self.assignment.as_ref().is_some_and(BTreeSet::is_empty) {
                    self.assignment = None;
                }
                tracing::info!(topic = %self.config.topic, ?partitions, "Revoked partitions.");
            }
        }
        Ok(assigned)
    }

    fn take(&mut self, msg: &BorrowedMessage<'_>) -> anyhow::Result<()> {
        self.summary.records += 1;
        self.telemetry.records.inc();
        let partition = msg.partition();
        let offset = msg.offset();
        // A copy of the reference, so that it outlives the borrow of `pending`.
        let config = self.config;
        let topic = config.topic.as_str();
        let pending = self.pending_for(partition, msg)?;
        let payload = msg.payload().unwrap_or(&[]);
        let result = if payload.len() > config.max_record_bytes {
            Err(format!(
                "record of {} bytes exceeds --max-record-bytes {}",
                payload.len(),
                config.max_record_bytes
            ))
        } else {
            decode_chunk(payload, &mut pending.rows).map_err(|e| e.to_string())
        };
        if let Err(reason) = result {
            tracing::warn!(
                topic,
                partition,
                offset,
                bytes = payload.len(),
                %reason,
                "The record is not a valid chunk; kept as a dead letter."
            );
            pending.dead_letters.push(DeadLetter {
                offset: offset as u64,
                bytes: payload.to_vec(),
                info: json!({
                    "source": SOURCE, "topic": topic, "partition": partition, "offset": offset,
                    "key": msg.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    "timestamp_ms": msg.timestamp().to_millis(),
                    "error": reason,
                }),
            });
        }
        pending.bytes += payload.len();
        pending.next_offset = offset + 1;
        let full = match pending.cut_at {
            Some(cut) => pending.next_offset >= cut,
            None => {
                pending.rows.events.len() >= config.max_batch_events
                    || pending.bytes >= config.max_batch_bytes
            }
        };
        if full {
            self.flush(partition)?;
        }
        Ok(())
    }

    /// The rows waiting for `partition`; a new batch starting at `msg` if there are none.
    fn pending_for(
        &mut self,
        partition: i32,
        msg: &BorrowedMessage<'_>,
    ) -> anyhow::Result<&mut Pending> {
        let vacant = match self.pending.entry(partition) {
            Entry::Occupied(o) => return Ok(o.into_mut()),
            Entry::Vacant(v) => v,
        };
        let offset = msg.offset();
        let name = partition_name(&self.config.topic, partition);
        let cut = self.cuts.end_of(self.store, SOURCE, &name, offset as u64)?;
        if let Some(end) = cut {
            tracing::info!(
                partition,
                first = offset,
                end,
                "A batch from this offset is already stored but was not committed: cutting at the same place."
            );
        }
        let ts = msg.timestamp().to_millis().unwrap_or(0);
        Ok(vacant.insert(Pending {
            first_offset: offset,
            next_offset: offset,
            rows: Rows::default(),
            dead_letters: Vec::new(),
            bytes: 0,
            started: Instant::now(),
            cut_at: cut.map(|c| c as i64),
            // Objects without rows are filed under the first record's date, which is the
            // same on every re-read.
            date: schemas::time::date(ts.saturating_mul(1_000_000)),
        }))
    }

    fn flush_old(&mut self) -> anyhow::Result<()> {
        // A batch that must end at a known cut waits for it: cutting by age there would
        // write a second, overlapping object.
        let due: Vec<i32> = self
            .pending
            .iter()
            .filter(|(_, p)| p.cut_at.is_none() && p.started.elapsed() >= self.config.max_batch_age)
            .map(|(k, _)| *k)
            .collect();
        for p in due {
            self.flush(p)?;
        }
        Ok(())
    }

    fn flush_all(&mut self) -> anyhow::Result<()> {
        let all: Vec<i32> = self.pending.keys().copied().collect();
        for p in all {
            self.flush(p)?;
        }
        Ok(())
    }

    fn flush(&mut self, partition: i32) -> anyhow::Result<()> {
        let Some(p) = self.pending.remove(&partition) else {
            return Ok(());
        };
        let name = partition_name(&self.config.topic, partition);
        let sessions = p.rows.sessions.clone();
        let batch = Batch {
            source: SOURCE.into(),
            partition: name.clone(),
            first_offset: p.first_offset as u64,
            end_offset: p.next_offset as u64,
            rows: p.rows,
            dead_letters: p.dead_letters,
            fallback_date: p.date,
        };
        let (written, keys) = write_batch(self.store, batch).with_context(|| {
            format!(
                "cannot write the batch of {name} from offset {}",
                p.first_offset
            )
        })?;
        self.telemetry.batch_written(&written);
        // Sent after the rows are durable and before the offset is committed: at least once.
        self.notifier.send(&sessions, &keys)?;
        crate::failpoint::hit(crate::failpoint::AFTER_WRITE_BEFORE_COMMIT);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.config.topic, partition, Offset::Offset(p.next_offset))
            .context("cannot build the commit")?;
        if let Err(e) = self.consumer.commit(&tpl, CommitMode::Sync) {
            self.telemetry.commit_failures.inc();
            // The objects are durable; whoever reads this partition next finds them and
            // cuts at the same place, so nothing is written twice.
            tracing::warn!(
                partition,
                offset = p.next_offset,
                error = %e,
                "Could not commit the offset after a durable batch."
            );
        } else {
            self.telemetry.committed();
        }
        tracing::debug!(
            partition,
            first = p.first_offset,
            end = p.next_offset,
            events = written.events,
            "Committed a batch."
        );
        self.summary.written += written;
        self.summary.batches += 1;
        Ok(())
    }
}

/// A partition's name in object names: `<topic>-<partition>`.
fn partition_name(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}
