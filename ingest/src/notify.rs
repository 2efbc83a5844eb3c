//! Session start/end notifications: one JSON document per `start` or `end` row, sent once
//! the row is durable in the store.
//!
//! Two sinks get the same bytes ([`notifications`] builds them, once):
//! - the Kafka notify topic (`--notify-topic`): sent and acknowledged before the batch's
//!   offset is committed, so it is lossless (at least once);
//! - a webhook (`--notify-webhook URL`): posted from a thread of its own through a
//!   bounded queue, so ingestion never waits on the receiver. Failed posts (connection
//!   errors, 5xx, 429) are retried with exponential backoff up to a bound; when the queue
//!   is full a notification is dropped, counted and logged. Use the Kafka topic where
//!   nothing may be lost.
//!
//! Webhook signature (README "Notifications" shows how to check it): with a secret, each
//! post carries `X-Auditty-Timestamp: <Unix seconds>` and `X-Auditty-Signature:
//! sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`; receivers reject a stale
//! timestamp, so a captured post cannot be replayed later.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use hmac::{Hmac, Mac};
use kafka::{KafkaOptions, LogContext};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::json;
use sha2::Sha256;

use crate::telemetry::IngestMetrics;

/// One notification: the session id (the Kafka key) and the JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The session id, text form.
    pub session_id: String,
    /// `session_start` or `session_end`.
    pub event: &'static str,
    /// The JSON document.
    pub body: String,
}

/// The notifications for the `sessions` rows of a durable batch whose objects are `keys`.
pub fn notifications(sessions: &[store::SessionRow], keys: &[String]) -> Vec<Notification> {
    sessions
        .iter()
        .map(|row| {
            let meta: serde_json::Value =
                serde_json::from_slice(&row.metadata).unwrap_or(serde_json::Value::Null);
            let event = match row.kind {
                schemas::EventKind::Start => "session_start",
                _ => "session_end",
            };
            let start_ns = row.session_id.start_time_ns();
            let message = json!({
                "event": event,
                "session_id": row.session_id.to_string(),
                "user": meta.get("user"),
                "host": meta.get("host"),
                "start": start_ns.map(schemas::time::rfc3339),
                "time": schemas::time::rfc3339(row.time_ns),
                "exit_status": meta.get("exit_status"),
                "end_reason": meta.get("reason"),
                "metadata": meta,
                "objects": keys,
            });
            Notification {
                session_id: row.session_id.to_string(),
                event,
                body: message.to_string(),
            }
        })
        .collect()
}

/// Where notifications go.
pub struct Notifier {
    kafka: Option<(BaseProducer<LogContext>, String)>,
    webhook: Option<Webhook>,
    metrics: IngestMetrics,
}

impl Notifier {
    /// A notifier for the Kafka topic (with the brokers of `options`) and/or the webhook;
    /// one that does nothing when neither is given.
    pub fn new(
        kafka: Option<(&KafkaOptions, String)>,
        webhook: Option<WebhookConfig>,
        metrics: IngestMetrics,
    ) -> anyhow::Result<Notifier> {
        let kafka = match kafka {
            Some((options, topic)) => Some((
                options
                    .client_config(&[("enable.idempotence", "true"), ("acks", "all")])
                    .create_with_context(LogContext::default())
                    .context("cannot create the Kafka producer for notifications")?,
                topic,
            )),
            None => None,
        };
        let webhook = match webhook {
            Some(config) => Some(Webhook::start(config, metrics.clone())?),
            None => None,
        };
        Ok(Notifier {
            kafka,
            webhook,
            metrics,
        })
    }

    /// Sends the notifications of a durable batch: to Kafka, waiting for the
    /// acknowledgement (an error here keeps the batch uncommitted, so it is sent again);
    /// to the webhook's queue, never waiting.
    pub fn send(&self, sessions: &[store::SessionRow], keys: &[String]) -> anyhow::Result<()> {
        if sessions.is_empty() || (self.kafka.is_none() && self.webhook.is_none()) {
            return Ok(());
        }
        let all = notifications(sessions, keys);
        if let Some((producer, topic)) = &self.kafka {
            for n in &all {
                let record = BaseRecord::to(topic).key(&n.session_id).payload(&n.body);
                kafka::send_waiting(producer, record, Duration::from_millis(50))
                    .context("cannot queue a notification")?;
            }
            producer
                .flush(Duration::from_secs(30))
                .context("notifications were not acknowledged by Kafka within 30 s")?;
            self.metrics.notify_kafka.add(all.len() as u64);
        }
        if let Some(w) = &self.webhook {
            for n in all {
                w.enqueue(n);
            }
        }
        Ok(())
    }

    /// At exit: gives the webhook up to `grace` to post what is queued.
    pub fn finish(self, grace: Duration) {
        if let Some(w) = self.webhook {
            w.finish(grace);
        }
    }
}

/// How to post to a webhook.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL.
    pub url: String,
    /// The HMAC key; `None` posts unsigned.
    pub secret: Option<Vec<u8>>,
    /// Attempts per notification before giving up (at least 1).
    pub max_attempts: u32,
    /// Notifications that may wait; more are dropped.
    pub queue: usize,
}

impl WebhookConfig {
    /// Checks the URL and reads the secret file (its content, less a final newline).
    pub fn new(
        url: &str,
        secret_file: Option<&Path>,
        max_attempts: u32,
        queue: usize,
    ) -> anyhow::Result<WebhookConfig> {
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            bail!("--notify-webhook {url:?} is not an http:// or https:// URL");
        }
        url.parse::<ureq::http::Uri>()
            .with_context(|| format!("--notify-webhook {url:?} is not a valid URL"))?;
        let secret = match secret_file {
            Some(p) => Some(read_secret(p)?),
            None => {
                tracing::warn!(
                    url,
                    "Webhook notifications are not signed: give --notify-webhook-secret-file so receivers can tell them from forgeries."
                );
                None
            }
        };
        Ok(WebhookConfig {
            url: url.to_string(),
            secret,
            max_attempts: max_attempts.max(1),
            queue: queue.max(1),
        })
    }
}

fn read_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut s = std::fs::read(path)
        .with_context(|| format!("cannot read the webhook secret file {}", path.display()))?;
    while s.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        s.pop();
    }
    if s.is_empty() {
        bail!(
            "the webhook secret file {} is empty; put a random secret in it (e.g. `openssl rand -hex 32 > {}`)",
            path.display(),
            path.display()
        );
    }
    Ok(s)
}

/// `sha256=<hex>` of HMAC-SHA256(secret, "<timestamp>.<body>").
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    // HMAC takes keys of any length; new_from_slice cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Delay before attempt `n + 1` after `n` failed ones: 0.5 s, 1 s, 2 s, … capped at 30 s.
fn backoff(failed: u32) -> Duration {
    let ms = 500u64.saturating_mul(1 << failed.saturating_sub(1).min(6));
    Duration::from_millis(ms.min(30_000))
}

/// The HTTP client: a 10 s bound per attempt; for https://, rustls with the aws-lc-rs
/// provider (the one the AWS SDK builds anyway) and the system's root certificates
/// (rustls-native-certs: /etc/ssl/certs, or SSL_CERT_FILE / SSL_CERT_DIR), so a receiver
/// behind a company CA works as it does for curl.
fn http_agent(url: &str) -> anyhow::Result<ureq::Agent> {
    let mut builder = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        // Statuses are decided here (retry or not), not turned into errors.
        .http_status_as_error(false)
        .user_agent(concat!("auditty-ingest/", env!("CARGO_PKG_VERSION")));
    if url.to_ascii_lowercase().starts_with("https://") {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!("Cannot load a system root certificate: {e}");
        }
        if found.certs.is_empty() {
            bail!(
                "--notify-webhook {url}: no system root certificates were found to check the \
                 receiver's certificate (install ca-certificates, or point SSL_CERT_FILE at a \
                 PEM bundle)"
            );
        }
        let roots: Vec<ureq::tls::Certificate<'static>> = found
            .certs
            .iter()
            .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        builder = builder.tls_config(
            ureq::tls::TlsConfig::builder()
                .provider(ureq::tls::TlsProvider::Rustls)
                .root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots)))
                .unversioned_rustls_crypto_provider(Arc::new(
                    rustls::crypto::aws_lc_rs::default_provider(),
                ))
                .build(),
        );
    }
    Ok(builder.build().into())
}

/// The webhook's queue and the thread that empties it.
struct Webhook {
    tx: Sender<Notification>,
    done: Receiver<()>,
    url: String,
    metrics: IngestMetrics,
}

impl Webhook {
    fn start(config: WebhookConfig, metrics: IngestMetrics) -> anyhow::Result<Webhook> {
        let (tx, rx) = crossbeam_channel::bounded::<Notification>(config.queue);
        let (done_tx, done) = crossbeam_channel::bounded(1);
        let agent = http_agent(&config.url)?;
        let url = config.url.clone();
        let poster = Poster {
            agent,
            config: Arc::new(config),
            metrics: metrics.clone(),
        };
        std::thread::Builder::new()
            .name("notify-webhook".into())
            .spawn(move || {
                for n in &rx {
                    poster.metrics.webhook_queue.set(rx.len() as f64);
                    poster.deliver(&n);
                }
                let _ = done_tx.send(());
            })
            .context("cannot start the webhook thread")?;
        Ok(Webhook {
            tx,
            done,
            url,
            metrics,
        })
    }

    fn enqueue(&self, n: Notification) {
        match self.tx.try_send(n) {
            Ok(()) => self.metrics.webhook_queue.set(self.tx.len() as f64),
            Err(TrySendError::Full(n)) | Err(TrySendError::Disconnected(n)) => {
                self.metrics.webhook_dropped.inc();
                tracing::error!(
                    url = %self.url,
                    session = %n.session_id,
                    event = n.event,
                    "The webhook queue is full (is the receiver down?): this notification is dropped. The Kafka notify topic (--notify-topic) is the lossless path."
                );
            }
        }
    }

    fn finish(self, grace: Duration) {
        let waiting = self.tx.len();
        drop(self.tx);
        if self.done.recv_timeout(grace).is_err() {
            tracing::error!(
                url = %self.url,
                waiting,
                "Exiting with webhook notifications not yet delivered (the receiver did not take them within {grace:?})."
            );
        }
    }
}

struct Poster {
    agent: ureq::Agent,
    config: Arc<WebhookConfig>,
    metrics: IngestMetrics,
}

impl Poster {
    /// Posts one notification, retrying as documented; counts the outcome.
    fn deliver(&self, n: &Notification) {
        let started = Instant::now();
        let mut failed = 0u32;
        loop {
            let outcome = self.post(n);
            match outcome {
                Ok(status) if (200..300).contains(&status) => {
                    self.metrics.webhook_delivered.inc();
                    return;
                }
                Ok(status) if status != 429 && (400..500).contains(&status) => {
                    self.metrics.webhook_failed.inc();
                    tracing::error!(url = %self.config.url, session = %n.session_id, event = n.event, status, "The webhook refused a notification (a 4xx is not retried: check the receiver's URL and secret).");
                    return;
                }
                other => {
                    failed += 1;
                    let why = match other {
                        Ok(status) => format!("HTTP status {status}"),
                        Err(e) => e,
                    };
                    if failed >= self.config.max_attempts {
                        self.metrics.webhook_failed.inc();
                        tracing::error!(url = %self.config.url, session = %n.session_id, event = n.event, attempts = failed, "Giving up on a webhook notification after {:.0?}: {why}. It is in the store; the Kafka notify topic is the lossless path.", started.elapsed());
                        return;
                    }
                    self.metrics.webhook_retries.inc();
                    let wait = backoff(failed);
                    tracing::warn!(url = %self.config.url, session = %n.session_id, event = n.event, attempt = failed, "A webhook post failed ({why}); trying again in {wait:?}.");
                    std::thread::sleep(wait);
                }
            }
        }
    }

    /// One post: the HTTP status, or why there was none.
    fn post(&self, n: &Notification) -> Result<u16, String> {
        let mut req = self
            .agent
            .post(&self.config.url)
            .header("Content-Type", "application/json")
            .header("X-Auditty-Event", n.event)
            // The same id on every attempt: receivers drop the duplicate of a retried post.
            .header(
                "X-Auditty-Delivery",
                format!("{}:{}", n.session_id, n.event),
            );
        if let Some(secret) = &self.config.secret {
            let ts = u64::try_from(schemas::time::now_ns() / 1_000_000_000).unwrap_or(0);
            req = req.header("X-Auditty-Timestamp", ts.to_string()).header(
                "X-Auditty-Signature",
                signature(secret, ts, n.body.as_bytes()),
            );
        }
        match req.send(n.body.as_bytes()) {
            Ok(resp) => Ok(resp.status().as_u16()),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed with Python's hmac module:
        // hmac.new(b"key", b"1700000000.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            signature(b"key", 1_700_000_000, b"{}"),
            "sha256=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
    }

    #[test]
    fn https_goes_through_rustls_and_fails_cleanly_on_a_non_tls_peer() {
        // A peer that answers plain HTTP: the TLS handshake fails as an error (retried by
        // the caller), not a panic for want of a crypto provider.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            use std::io::Write as _;
            for s in listener.incoming().flatten() {
                let mut s = s;
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            }
        });
        let config = WebhookConfig::new(&format!("https://{addr}/x"), None, 1, 1).expect("config");
        let poster = Poster {
            agent: http_agent(&config.url).expect("agent"),
            config: Arc::new(config),
            metrics: IngestMetrics::default(),
        };
        let n = Notification {
            session_id: "s".into(),
            event: "session_start",
            body: "{}".into(),
        };
        assert!(poster.post(&n).is_err());
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        // A receiver that accepts the connection and never answers holds the worker on its
        // first notification (10 s timeout); the queue holds one more; the rest are dropped
        // at once, whatever the interleaving: at most 2 of 5 can be taken.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in listener.incoming().flatten() {
                held.push(s);
            }
        });
        let metrics = IngestMetrics::default();
        let config = WebhookConfig::new(&format!("http://{addr}/x"), None, 1, 1).expect("config");
        let webhook = Webhook::start(config, metrics.clone()).expect("start");
        let started = Instant::now();
        for i in 0..5 {
            webhook.enqueue(Notification {
                session_id: format!("s{i}"),
                event: "session_start",
                body: "{}".into(),
            });
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "enqueue never waits"
        );
        assert!(
            metrics.webhook_dropped.get() >= 3,
            "{}",
            metrics.webhook_dropped.get()
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(2));
        assert_eq!(backoff(20), Duration::from_secs(30));
    }

    #[test]
    fn bad_urls_and_empty_secrets_are_explained() {
        assert!(
            WebhookConfig::new("ftp://x", None, 3, 10)
                .unwrap_err()
                .to_string()
                .contains("http:// or https://")
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("secret");
        std::fs::write(&empty, "\n").expect("write");
        let err = WebhookConfig::new("http://127.0.0.1:1/x", Some(&empty), 3, 10).unwrap_err();
        assert!(err.to_string().contains("is empty"), "{err}");
        std::fs::write(&empty, "s3cret\n").expect("write");
        let c = WebhookConfig::new("http://127.0.0.1:1/x", Some(&empty), 3, 10).expect("config");
        assert_eq!(c.secret.as_deref(), Some(&b"s3cret"[..]));
    }
}
