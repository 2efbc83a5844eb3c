//! How auditty talks to Kafka: one place that turns our flags into a librdkafka
//! configuration and routes librdkafka's logs into `tracing`.
//!
//! - [`KafkaOptions`]: brokers plus pass-through librdkafka properties (`-X key=value` and
//!   a `key=value` config file, as in other Kafka tools), so TLS and SASL work without
//!   auditty modelling them.
//! - [`LogContext`]: the client context of every client we create. It reports
//!   librdkafka's own messages through `tracing`, so broker outages are visible in our
//!   logs, and hands delivery reports ([`DeliveryHandler`]) and rebalances
//!   ([`RebalanceHandler`]) to what is particular to each client.
//! - [`send_waiting`]: queues a record, waiting while the producer's queue is full.
//!
//! Callers: `auditty-agent ship` (producer) and `auditty-ingest run --source kafka://…`
//! (consumer group member).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, ToBytes};
use rdkafka::producer::{BaseProducer, BaseRecord, ProducerContext};
use rdkafka::util::IntoOpaque;

/// Why Kafka options could not be used.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    /// `-X` without `=`.
    #[error("librdkafka option {0:?} is not key=value (e.g. -X security.protocol=SASL_SSL)")]
    NotKeyValue(String),
    /// The config file could not be read.
    #[error("cannot read Kafka config file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line of the config file is not key=value.
    #[error("Kafka config file {path} line {line}: {text:?} is not key=value")]
    FileLine {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The text.
        text: String,
    },
}

/// The librdkafka properties of a command line: `-X KEY=VALUE` and `--kafka-config FILE`,
/// the same for the shipper, the ingester and the lag exporter.
#[cfg(feature = "clap")]
#[derive(clap::Args, Clone, Debug, Default)]
pub struct KafkaArgs {
    /// A librdkafka property, e.g. -X security.protocol=SSL (repeatable; wins over --kafka-config).
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    pub librdkafka: Vec<String>,

    /// A file of librdkafka properties, one key=value per line (# comments).
    #[arg(long, value_name = "FILE")]
    pub kafka_config: Option<PathBuf>,
}

#[cfg(feature = "clap")]
impl KafkaArgs {
    /// The options for `brokers` with these properties.
    pub fn options(&self, brokers: &str) -> Result<KafkaOptions, OptionsError> {
        KafkaOptions::new(brokers, self.kafka_config.as_deref(), &self.librdkafka)
    }
}

/// Brokers and librdkafka properties.
#[derive(Clone, Debug, Default)]
pub struct KafkaOptions {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Properties applied over our defaults, in order (file first, then `-X`).
    pub overrides: Vec<(String, String)>,
}

fn split_kv(s: &str) -> Option<(String, String)> {
    let (k, v) = s.split_once('=')?;
    let k = k.trim();
    (!k.is_empty()).then(|| (k.to_string(), v.trim().to_string()))
}

impl KafkaOptions {
    /// Builds options from `--brokers`, an optional config file (`key=value` lines, `#`
    /// comments) and `-X key=value` flags.
    pub fn new(
        brokers: &str,
        config_file: Option<&Path>,
        flags: &[String],
    ) -> Result<KafkaOptions, OptionsError> {
        let mut overrides = Vec::new();
        if let Some(path) = config_file {
            let text = std::fs::read_to_string(path).map_err(|source| OptionsError::File {
                path: path.to_path_buf(),
                source,
            })?;
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let kv = split_kv(line).ok_or_else(|| OptionsError::FileLine {
                    path: path.to_path_buf(),
                    line: i + 1,
                    text: line.to_string(),
                })?;
                overrides.push(kv);
            }
        }
        for f in flags {
            overrides.push(split_kv(f).ok_or_else(|| OptionsError::NotKeyValue(f.clone()))?);
        }
        Ok(KafkaOptions {
            brokers: brokers.to_string(),
            overrides,
        })
    }

    /// A client configuration: `defaults` first, then the user's properties, which win.
    pub fn client_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &self.brokers);
        for (k, v) in defaults {
            cfg.set(*k, *v);
        }
        for (k, v) in &self.overrides {
            cfg.set(k, v);
        }
        cfg
    }
}

/// A client context that forwards librdkafka's logs and errors to `tracing`. `H` handles
/// what is particular to one client: delivery reports ([`DeliveryHandler`]) for a
/// producer, rebalances ([`RebalanceHandler`]) for a consumer. With `()`, a producer only
/// warns about messages Kafka did not take (for producers that rely on `flush`).
///
/// Brokers that cannot be reached are said once, in one line, when it starts, and once
/// when one answers again ([`Reachability`]), not in an error per retry every few
/// milliseconds as librdkafka reports them.
#[derive(Clone, Debug, Default)]
pub struct LogContext<H = ()> {
    handler: H,
    reach: Arc<Reachability>,
}

impl<H> LogContext<H> {
    /// A context around `handler`.
    pub fn new(handler: H) -> LogContext<H> {
        LogContext {
            handler,
            reach: Arc::default(),
        }
    }

    /// The handler given to [`LogContext::new`].
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// Whether the brokers answer.
    pub fn reachability(&self) -> &Reachability {
        &self.reach
    }
}

impl<H: Send + Sync> ClientContext for LogContext<H> {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        // librdkafka logs each failed connection attempt too; `error` below says it once.
        if fac == "FAIL" && is_connection_failure(message) {
            tracing::debug!(facility = fac, "librdkafka: {message}");
            return;
        }
        log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if is_unreachable(&error) {
            self.reach.unreachable(reason);
            return;
        }
        // Any other client-level error is a warning: the client retries.
        tracing::warn!("Kafka: {error}: {reason}");
    }
}

/// Whether any broker answers, as a client's errors and successes tell.
#[derive(Debug, Default)]
pub struct Reachability {
    down_since: Mutex<Option<Instant>>,
}

impl Reachability {
    /// No broker could be reached: logged once, until one is reached again.
    pub fn unreachable(&self, reason: &str) {
        let Ok(mut down) = self.down_since.lock() else {
            return;
        };
        if down.is_none() {
            *down = Some(Instant::now());
            tracing::error!(
                "Cannot reach the Kafka brokers: {reason}. Retrying until they answer."
            );
        }
    }

    /// A broker answered (a delivery, a message, an assignment).
    pub fn reached(&self) {
        let Ok(mut down) = self.down_since.lock() else {
            return;
        };
        if let Some(since) = down.take() {
            tracing::info!(
                "The Kafka brokers answer again, after {:.1} s.",
                since.elapsed().as_secs_f64()
            );
        }
    }

    /// How long no broker has answered; `None` while they answer.
    pub fn unreachable_for(&self) -> Option<Duration> {
        self.down_since.lock().ok()?.map(|since| since.elapsed())
    }
}

/// Whether `error` says that no broker could be reached (as opposed to a broker that
/// answered with an error).
pub fn is_unreachable(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::Resolve
        )
    )
}

/// librdkafka's log line of a failed connection attempt.
fn is_connection_failure(message: &str) -> bool {
    [
        "Connect to ",
        "Connection refused",
        "Failed to resolve",
        "Connection reset",
    ]
    .iter()
    .any(|m| message.contains(m))
}

/// What a producer does with the delivery report of each message.
pub trait DeliveryHandler: Send + Sync + 'static {
    /// What is passed along with each record ([`BaseRecord::with_opaque_to`]).
    type Opaque: IntoOpaque;
    /// Called once per message, delivered or failed.
    fn delivered(&self, result: &DeliveryResult<'_>, opaque: Self::Opaque);
}

impl DeliveryHandler for () {
    type Opaque = ();
    fn delivered(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            tracing::warn!("Kafka did not take a message: {e}");
        }
    }
}

impl<H: DeliveryHandler> ProducerContext for LogContext<H> {
    type DeliveryOpaque = H::Opaque;
    fn delivery(&self, result: &DeliveryResult<'_>, opaque: H::Opaque) {
        if result.is_ok() {
            self.reach.reached();
        }
        self.handler.delivered(result, opaque);
    }
}

/// What a consumer does when the group assigns or revokes partitions.
pub trait RebalanceHandler: Send + Sync + 'static {
    /// Called before a rebalance takes effect; must return quickly.
    fn pre_rebalance(&self, rebalance: &Rebalance<'_>);
}

impl<H: RebalanceHandler> ConsumerContext for LogContext<H> {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if !matches!(rebalance, Rebalance::Error(_)) {
            self.reach.reached();
        }
        self.handler.pre_rebalance(rebalance);
    }
}

/// Forwards one librdkafka log line.
fn log(level: RDKafkaLogLevel, fac: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => {
            tracing::error!(facility = fac, "librdkafka: {message}")
        }
        RDKafkaLogLevel::Warning => tracing::warn!(facility = fac, "librdkafka: {message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(facility = fac, "librdkafka: {message}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!(facility = fac, "librdkafka: {message}"),
    }
}

/// Queues `record`. While the producer's queue is full, serves delivery reports for
/// `poll` at a time and tries again: the queue drains as the broker acknowledges.
pub fn send_waiting<'a, C, K, P>(
    producer: &BaseProducer<C>,
    mut record: BaseRecord<'a, K, P, C::DeliveryOpaque>,
    poll: Duration,
) -> Result<(), KafkaError>
where
    C: ProducerContext,
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                producer.poll(poll);
            }
            Err((e, _)) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_file_are_applied_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kafka.conf");
        std::fs::write(&file, "# TLS\nsecurity.protocol = SSL\n\nacks=1\n").unwrap();
        let o = KafkaOptions::new("127.0.0.1:9092", Some(&file), &["acks=all".into()]).unwrap();
        let cfg = o.client_config(&[("acks", "0"), ("linger.ms", "5")]);
        assert_eq!(cfg.get("acks"), Some("all"));
        assert_eq!(cfg.get("security.protocol"), Some("SSL"));
        assert_eq!(cfg.get("linger.ms"), Some("5"));
        assert_eq!(cfg.get("bootstrap.servers"), Some("127.0.0.1:9092"));
    }

    #[test]
    fn malformed_options_are_explained() {
        let e = KafkaOptions::new("b", None, &["acks".into()]).unwrap_err();
        assert!(e.to_string().contains("key=value"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.conf");
        std::fs::write(&file, "ok=1\nnonsense\n").unwrap();
        let e = KafkaOptions::new("b", Some(&file), &[]).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }
}
