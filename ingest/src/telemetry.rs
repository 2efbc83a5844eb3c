//! What the ingester reports about itself on `--metrics-listen` (Prometheus).
//!
//! Counters are bumped where the work happens (a batch made durable, a commit, a
//! notification); gauges of consumer lag come from [`crate::lag`], which asks the broker
//! for the group's committed offsets as an outside observer would.

use crate::output::Written;

/// The ingester's counters and gauges.
#[derive(Clone, Debug)]
pub struct IngestMetrics {
    /// Kafka records or spool entries read.
    pub records: metrics::Counter,
    /// Batches made durable (and then committed).
    pub batches: metrics::Counter,
    /// Objects put in the store.
    pub objects: metrics::Counter,
    /// Bytes of the objects put in the store.
    pub bytes: metrics::Counter,
    /// `events` rows written.
    pub events: metrics::Counter,
    /// `sessions` rows written.
    pub session_rows: metrics::Counter,
    /// Records kept in `dead-letter/`.
    pub dead_letters: metrics::Counter,
    /// Offset commits (Kafka) that failed after a durable batch.
    pub commit_failures: metrics::Counter,
    /// Errors that did not stop the ingester (unreadable spool files, consumer errors).
    pub errors: metrics::Counter,
    /// Unix time of the last committed batch.
    pub last_commit: metrics::Gauge,
    /// Notifications acknowledged by Kafka's notify topic.
    pub notify_kafka: metrics::Counter,
    /// Webhook notifications the receiver accepted (2xx).
    pub webhook_delivered: metrics::Counter,
    /// Webhook attempts that failed and were tried again.
    pub webhook_retries: metrics::Counter,
    /// Webhook notifications given up after the last attempt (or refused with a 4xx).
    pub webhook_failed: metrics::Counter,
    /// Webhook notifications dropped because the queue was full.
    pub webhook_dropped: metrics::Counter,
    /// Webhook notifications waiting to be posted.
    pub webhook_queue: metrics::Gauge,
}

impl IngestMetrics {
    /// Registers the ingester's metrics in `r`.
    pub fn register(r: &metrics::Registry) -> IngestMetrics {
        IngestMetrics {
            records: r.counter(
                "auditty_ingest_records_total",
                "Kafka records or spool entries read.",
            ),
            batches: r.counter(
                "auditty_ingest_batches_total",
                "Batches written durably and then committed.",
            ),
            objects: r.counter(
                "auditty_ingest_objects_written_total",
                "Objects put in the store.",
            ),
            bytes: r.counter(
                "auditty_ingest_bytes_written_total",
                "Bytes of the objects put in the store.",
            ),
            events: r.counter(
                "auditty_ingest_events_written_total",
                "Rows written to events/.",
            ),
            session_rows: r.counter(
                "auditty_ingest_session_rows_written_total",
                "Rows written to sessions/ (one per session start and end).",
            ),
            dead_letters: r.counter(
                "auditty_ingest_dead_letters_total",
                "Records that could not be decoded, kept in dead-letter/.",
            ),
            commit_failures: r.counter(
                "auditty_ingest_commit_failures_total",
                "Kafka offset commits that failed after a durable batch (the next owner cuts at the same place).",
            ),
            errors: r.counter(
                "auditty_ingest_errors_total",
                "Errors the ingester logged and went on after (unreadable spool files, Kafka consumer errors).",
            ),
            last_commit: r.gauge(
                "auditty_ingest_last_commit_timestamp_seconds",
                "Unix time of the last batch committed (0: none since start).",
            ),
            notify_kafka: r.counter(
                "auditty_notify_kafka_sent_total",
                "Session start/end notifications acknowledged by the Kafka notify topic.",
            ),
            webhook_delivered: r.counter(
                "auditty_notify_webhook_delivered_total",
                "Webhook notifications the receiver accepted with a 2xx.",
            ),
            webhook_retries: r.counter(
                "auditty_notify_webhook_retries_total",
                "Webhook posts that failed (connection error, 5xx, 429) and were tried again.",
            ),
            webhook_failed: r.counter(
                "auditty_notify_webhook_failed_total",
                "Webhook notifications given up after the last attempt or refused with a 4xx.",
            ),
            webhook_dropped: r.counter(
                "auditty_notify_webhook_dropped_total",
                "Webhook notifications dropped because the queue was full.",
            ),
            webhook_queue: r.gauge(
                "auditty_notify_webhook_queue",
                "Webhook notifications waiting to be posted.",
            ),
        }
    }

    /// Counts what one durable batch wrote.
    pub fn batch_written(&self, w: &Written) {
        self.batches.inc();
        self.objects.add(w.objects);
        self.bytes.add(w.bytes);
        self.events.add(w.events);
        self.session_rows.add(w.sessions);
        self.dead_letters.add(w.dead_letters);
    }

    /// Notes that a batch's position was committed now.
    pub fn committed(&self) {
        self.last_commit.set(schemas::time::now_ns() as f64 / 1e9);
    }
}

impl Default for IngestMetrics {
    /// Metrics nobody serves (no --metrics-listen): counting costs a few atomics.
    fn default() -> Self {
        IngestMetrics::register(&metrics::Registry::new())
    }
}
