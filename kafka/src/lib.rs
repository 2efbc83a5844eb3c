//! How auditty talks to Kafka: one place that turns our flags into a librdkafka
//! configuration and routes librdkafka's logs into `tracing`.
//!
//! - [`KafkaOptions`]: brokers plus pass-through librdkafka properties (`-X key=value` and
//!   a `key=value` config file, as in other Kafka tools), so TLS and SASL work without
//!   auditty modelling them.
//! - [`LogContext`]: a client context that reports librdkafka's own messages through
//!   `tracing`, so broker outages are visible in our logs.
//!
//! Callers: `auditty-agent ship` (producer) and `auditty-ingest run --source kafka://…`
//! (consumer group member).

use std::path::{Path, PathBuf};

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;

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

/// A client context that forwards librdkafka's logs and errors to `tracing`.
#[derive(Clone, Debug, Default)]
pub struct LogContext;

impl ClientContext for LogContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        report_error(&error, reason);
    }
}

/// Producers that only need `flush` to know their messages arrived.
impl rdkafka::producer::ProducerContext for LogContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            tracing::warn!("Kafka did not take a message: {e}");
        }
    }
}

/// Forwards one librdkafka log line.
pub fn log(level: RDKafkaLogLevel, fac: &str, message: &str) {
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

/// Reports a client-level error (e.g. all brokers down) as a warning: the client retries.
pub fn report_error(error: &KafkaError, reason: &str) {
    tracing::warn!("Kafka: {error}: {reason}");
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
