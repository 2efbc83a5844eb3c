//! Consumer lag of a group, measured from outside the group (as kafka_exporter and Burrow
//! do): the partitions' high watermarks minus the offsets the group committed.
//!
//! A stopped ingester cannot be scraped, and lag matters most exactly then; so the lag
//! comes from a client that never joins the group. It only asks the group coordinator for
//! the group's committed offsets (OffsetFetch) and the partition leaders for their
//! watermarks (ListOffsets). The same probe runs inside `auditty-ingest run
//! --metrics-listen` (a thread of its own, so the consume loop never waits on it) and as
//! `auditty-ingest lag`, which keeps reporting while every ingester is down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kafka::{KafkaOptions, LogContext, RebalanceHandler};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

/// One partition's position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// Partition number.
    pub partition: i32,
    /// Oldest offset still in the log.
    pub low: i64,
    /// Offset the next record will get.
    pub high: i64,
    /// The group's committed offset (`None`: it never committed here).
    pub committed: Option<i64>,
    /// Records not yet committed by the group: `high - committed`, or `high - low` when it
    /// never committed (it starts at the earliest record, as the ingester does).
    pub lag: i64,
}

/// The probe never joins the group, so no rebalance ever reaches it.
#[derive(Default)]
struct NotAMember;

impl RebalanceHandler for NotAMember {
    fn pre_rebalance(&self, _: &rdkafka::consumer::Rebalance<'_>) {}
}

/// Asks the brokers where a group stands on a topic, without joining the group.
pub struct LagProbe {
    consumer: BaseConsumer<LogContext<NotAMember>>,
    topic: String,
    group: String,
    timeout: Duration,
}

impl LagProbe {
    /// A probe for `group` on `topic`.
    pub fn new(options: &KafkaOptions, topic: &str, group: &str) -> anyhow::Result<LagProbe> {
        // group.id names whose offsets OffsetFetch returns; without subscribe() or
        // assign() this client never joins the group, so it cannot cause a rebalance.
        let consumer: BaseConsumer<LogContext<NotAMember>> = options
            .client_config(&[
                ("group.id", group),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
            ])
            .create_with_context(LogContext::new(NotAMember))
            .context(
                "cannot create the Kafka client for lag (check -X / --kafka-config properties)",
            )?;
        Ok(LagProbe {
            consumer,
            topic: topic.to_string(),
            group: group.to_string(),
            timeout: Duration::from_secs(10),
        })
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Every partition of the topic, with the group's lag on it.
    pub fn measure(&self) -> anyhow::Result<Vec<PartitionLag>> {
        let topic = self.topic.as_str();
        let md = self
            .consumer
            .fetch_metadata(Some(topic), self.timeout)
            .with_context(|| format!("cannot read the metadata of topic {topic}"))?;
        let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
            bail!("the brokers did not describe topic {topic}");
        };
        if let Some(e) = t.error() {
            bail!("topic {topic}: {e:?} (does it exist?)");
        }
        let mut partitions: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
        partitions.sort_unstable();
        if partitions.is_empty() {
            bail!("topic {topic} has no partitions (does it exist?)");
        }
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition(topic, *p);
        }
        let committed = self
            .consumer
            .committed_offsets(tpl, self.timeout)
            .with_context(|| {
                format!(
                    "cannot read the committed offsets of group {} on {topic}",
                    self.group
                )
            })?;
        let mut out = Vec::with_capacity(partitions.len());
        for p in partitions {
            let (low, high) = self
                .consumer
                .fetch_watermarks(topic, p, self.timeout)
                .with_context(|| format!("cannot read the watermarks of {topic}/{p}"))?;
            let committed = committed
                .find_partition(topic, p)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) if o >= 0 => Some(o),
                    _ => None,
                });
            let lag = (high - committed.unwrap_or(low)).max(0);
            out.push(PartitionLag {
                partition: p,
                low,
                high,
                committed,
                lag,
            });
        }
        Ok(out)
    }
}

/// The lag gauges, labelled by topic, group and partition.
#[derive(Clone)]
pub struct LagMetrics {
    lag: metrics::GaugeVec,
    committed: metrics::GaugeVec,
    high: metrics::GaugeVec,
    errors: metrics::Counter,
    last_success: metrics::Gauge,
}

const LABELS: &[&str] = &["topic", "group", "partition"];

impl LagMetrics {
    /// Registers the lag metrics in `r`.
    pub fn register(r: &metrics::Registry) -> LagMetrics {
        LagMetrics {
            lag: r.gauge_vec(
                "auditty_kafka_consumer_lag",
                "Records in the partition the group has not committed yet (high watermark minus committed offset).",
                LABELS,
            ),
            committed: r.gauge_vec(
                "auditty_kafka_committed_offset",
                "The group's committed offset (-1: none yet).",
                LABELS,
            ),
            high: r.gauge_vec(
                "auditty_kafka_high_watermark",
                "The offset the partition's next record will get.",
                LABELS,
            ),
            errors: r.counter(
                "auditty_kafka_lag_errors_total",
                "Lag measurements that failed (broker unreachable, topic missing).",
            ),
            last_success: r.gauge(
                "auditty_kafka_lag_last_success_timestamp_seconds",
                "Unix time of the last successful lag measurement.",
            ),
        }
    }

    /// Publishes one measurement; partitions no longer there disappear.
    pub fn publish(&self, topic: &str, group: &str, parts: &[PartitionLag]) {
        let mut keep = Vec::with_capacity(parts.len());
        for p in parts {
            let partition = p.partition.to_string();
            let labels = [topic, group, partition.as_str()];
            self.lag.with(&labels).set(p.lag as f64);
            self.committed
                .with(&labels)
                .set(p.committed.unwrap_or(-1) as f64);
            self.high.with(&labels).set(p.high as f64);
            keep.push(labels.iter().map(|s| (*s).to_string()).collect());
        }
        for v in [&self.lag, &self.committed, &self.high] {
            v.retain(&keep);
        }
        self.last_success.set(schemas::time::now_ns() as f64 / 1e9);
    }
}

/// Measures every `interval` and publishes, until `stop`. A failure is counted and logged
/// once until the next success (the series keep their last values; the error counter and
/// the last-success time tell that they are stale).
pub fn watch(probe: &LagProbe, metrics: &LagMetrics, interval: Duration, stop: &AtomicBool) {
    let mut failing = false;
    while !stop.load(Ordering::Relaxed) {
        match probe.measure() {
            Ok(parts) => {
                if failing {
                    tracing::info!(
                        topic = probe.topic(),
                        group = probe.group(),
                        "Measuring consumer lag works again."
                    );
                }
                failing = false;
                metrics.publish(probe.topic(), probe.group(), &parts);
            }
            Err(e) => {
                metrics.errors.inc();
                if !failing {
                    tracing::warn!("Cannot measure the consumer lag: {e:#}");
                }
                failing = true;
            }
        }
        let until = Instant::now() + interval;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Starts [`watch`] on a thread of its own (the probe is made there).
pub fn spawn_watch(
    options: KafkaOptions,
    topic: String,
    group: String,
    metrics: LagMetrics,
    interval: Duration,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let probe = LagProbe::new(&options, &topic, &group)?;
    std::thread::Builder::new()
        .name("consumer-lag".into())
        .spawn(move || watch(&probe, &metrics, interval, &stop))
        .context("cannot start the consumer-lag thread")?;
    Ok(())
}

/// The table `auditty-ingest lag --once` prints.
pub fn table(topic: &str, group: &str, parts: &[PartitionLag]) -> String {
    use std::fmt::Write as _;
    let mut out = format!("topic {topic}, group {group}\n");
    let _ = writeln!(
        out,
        "{:>9}  {:>12}  {:>12}  {:>12}",
        "partition", "committed", "high", "lag"
    );
    for p in parts {
        let committed = p
            .committed
            .map_or_else(|| "-".to_string(), |c| c.to_string());
        let _ = writeln!(
            out,
            "{:>9}  {:>12}  {:>12}  {:>12}",
            p.partition, committed, p.high, p.lag
        );
    }
    let total: i64 = parts.iter().map(|p| p.lag).sum();
    let _ = writeln!(out, "{:>9}  {:>12}  {:>12}  {:>12}", "total", "", "", total);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_each_partition_and_the_total() {
        let parts = [
            PartitionLag {
                partition: 0,
                low: 0,
                high: 10,
                committed: Some(4),
                lag: 6,
            },
            PartitionLag {
                partition: 1,
                low: 2,
                high: 5,
                committed: None,
                lag: 3,
            },
        ];
        let t = table("t", "g", &parts);
        assert!(
            t.contains("        0             4            10             6"),
            "{t}"
        );
        assert!(
            t.contains("        1             -             5             3"),
            "{t}"
        );
        assert!(t.trim_end().ends_with("9"), "{t}");
    }

    #[test]
    fn published_series_follow_the_partitions() {
        let r = metrics::Registry::new();
        let m = LagMetrics::register(&r);
        let p = |partition, lag| PartitionLag {
            partition,
            low: 0,
            high: lag,
            committed: None,
            lag,
        };
        m.publish("t", "g", &[p(0, 3), p(1, 4)]);
        let text = r.render();
        assert!(
            text.contains("auditty_kafka_consumer_lag{topic=\"t\",group=\"g\",partition=\"1\"} 4"),
            "{text}"
        );
        assert!(
            text.contains(
                "auditty_kafka_committed_offset{topic=\"t\",group=\"g\",partition=\"0\"} -1"
            ),
            "{text}"
        );
        m.publish("t", "g", &[p(0, 0)]);
        assert!(!r.render().contains("partition=\"1\""));
    }
}
