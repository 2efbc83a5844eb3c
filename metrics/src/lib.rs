//! Prometheus metrics for the daemons: counters, gauges and labelled gauges kept by the
//! [`prometheus-client`](prometheus_client) crate (the Prometheus project's Rust client),
//! rendered in its text exposition format (version 0.0.4), and a small HTTP endpoint that
//! serves them.
//!
//! This crate is a thin layer over `prometheus-client`: it keeps the daemons' API (a
//! [`Registry`] that is cloned and shared, registration through `&self`, [`GaugeVec::with`]
//! by label values) and the exposed text exactly as the alert rules in
//! `deploy/prometheus/auditty-alerts.yml` and the end-to-end tests expect it. Each metric
//! is registered as a [`Collector`] that writes its own name and HELP text, rather than
//! with `Registry::register`, because that one appends a full stop to the HELP text and
//! leaves out a labelled gauge with no series yet; here every family is listed from
//! start-up, with its HELP text as given. A counter is registered under its full name
//! (`…_total`, as Prometheus shows it); the suffix is taken off before it reaches the
//! crate, which adds it when encoding. A gauge holds an `f64` and is written as an
//! integer when its value is whole (`0`, where the crate alone would write `0.0`), as
//! readers of `--metrics-file` expect.
//!
//! Updating a metric is one atomic operation, so the hot paths (the shipper's pass, the
//! ingester's poll loop) never wait on a scrape: the HTTP thread reads the atomics while
//! rendering. A metric is registered once, at start-up, and then updated through its
//! handle ([`Counter`], [`Gauge`], [`GaugeVec`]).
//!
//! The HTTP endpoint is a std `TcpListener` on a thread of its own (`prometheus-client`
//! ships no server, and one request at a time is all a scrape needs). It has no
//! authentication: bind it to an internal interface (the metrics say how busy the
//! pipeline is, never what was typed).

#![warn(missing_docs)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::prometheus_text::{self, CONTENT_TYPE};
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::{MetricType, TypedMetric, counter, family::Family, gauge};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The metrics address could not be bound.
    #[error(
        "cannot listen for metrics on {addr}: {source} (is another process using the port? \
         pick another with --metrics-listen)"
    )]
    Bind {
        /// The address asked for.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The metrics address is not HOST:PORT.
    #[error("metrics address {addr:?} is not HOST:PORT (e.g. 127.0.0.1:9464): {source}")]
    Address {
        /// The address given.
        addr: String,
        /// Why it did not resolve.
        source: std::io::Error,
    },
}

/// A monotonically increasing count (its name ends in `_total`).
#[derive(Clone, Debug, Default)]
pub struct Counter(counter::Counter<u64, AtomicU64>);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.inc();
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.inc_by(n);
    }
    /// The current count.
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// The gauge underneath: `prometheus-client`'s, holding an `f64` so that a gauge can hold
/// ages and timestamps, but written as an integer when the value is whole (`0`, not
/// `0.0`): that is how this crate has always written them, and readers of
/// `--metrics-file` (the end-to-end tests among them) parse `auditty_spool_full` and the
/// like as integers.
#[derive(Clone, Debug, Default)]
struct FloatGauge(gauge::Gauge<f64, AtomicU64>);

impl TypedMetric for FloatGauge {
    const TYPE: MetricType = MetricType::Gauge;
}

impl EncodeMetric for FloatGauge {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let v = self.0.get();
        // NaN and the infinities have no whole part: they take the f64 path.
        if v.fract() == 0.0 && (i64::MIN as f64..i64::MAX as f64).contains(&v) {
            encoder.encode_gauge(&(v as i64))
        } else {
            encoder.encode_gauge(&v)
        }
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

/// A value that goes up and down.
#[derive(Clone, Debug, Default)]
pub struct Gauge(FloatGauge);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: f64) {
        self.0.0.set(v);
    }
    /// Sets the value from an integer.
    pub fn set_u64(&self, v: u64) {
        self.0.0.set(v as f64);
    }
    /// The current value.
    pub fn get(&self) -> f64 {
        self.0.0.get()
    }
}

/// One series' labels, as (name, value) pairs in the order the labels were registered.
type LabelSet = Vec<(&'static str, String)>;

/// A gauge with labels: one series per distinct set of label values.
#[derive(Clone, Debug)]
pub struct GaugeVec {
    labels: &'static [&'static str],
    family: Family<LabelSet, FloatGauge>,
    /// The label values of the series in `family` (which cannot list them), for
    /// [`GaugeVec::retain`].
    present: Arc<Mutex<BTreeSet<Vec<String>>>>,
}

impl GaugeVec {
    fn label_set(&self, values: &[impl AsRef<str>]) -> LabelSet {
        debug_assert_eq!(values.len(), self.labels.len(), "label count");
        self.labels
            .iter()
            .zip(values)
            .map(|(l, v)| (*l, v.as_ref().to_string()))
            .collect()
    }

    fn present(&self) -> MutexGuard<'_, BTreeSet<Vec<String>>> {
        self.present.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The gauge for these label values (in the order the labels were registered);
    /// created at 0 on first use.
    pub fn with(&self, values: &[&str]) -> Gauge {
        let mut present = self.present();
        present.insert(values.iter().map(|v| (*v).to_string()).collect());
        Gauge(self.family.get_or_create_owned(&self.label_set(values)))
    }

    /// Drops every series (before publishing a fresh set, e.g. after partitions changed).
    pub fn clear(&self) {
        let mut present = self.present();
        self.family.clear();
        present.clear();
    }

    /// Drops the series whose label values are not in `keep`.
    pub fn retain(&self, keep: &[Vec<String>]) {
        let mut present = self.present();
        present.retain(|values| {
            let kept = keep.contains(values);
            if !kept {
                self.family.remove(&self.label_set(values));
            }
            kept
        });
    }
}

/// One registered metric: its name and HELP text as they are exposed (a counter's name
/// without the `_total` that the encoder adds).
#[derive(Debug)]
struct Described<M> {
    name: &'static str,
    help: &'static str,
    metric: M,
}

impl<M: EncodeMetric + std::fmt::Debug + Send + Sync + 'static> Collector for Described<M> {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let metric_encoder =
            encoder.encode_descriptor(self.name, self.help, None, self.metric.metric_type())?;
        self.metric.encode(metric_encoder)
    }
}

/// The metrics of one process, in registration order. Clones share the metrics.
#[derive(Clone, Default, Debug)]
pub struct Registry(Arc<Mutex<prometheus_client::registry::Registry>>);

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    fn inner(&self) -> MutexGuard<'_, prometheus_client::registry::Registry> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add<M: EncodeMetric + std::fmt::Debug + Send + Sync + 'static>(
        &self,
        name: &'static str,
        help: &'static str,
        metric: M,
    ) {
        self.inner()
            .register_collector(Box::new(Described { name, help, metric }));
    }

    /// Registers a counter. Its name ends in `_total`, as Prometheus' parsers want it.
    pub fn counter(&self, name: &'static str, help: &'static str) -> Counter {
        let Some(base) = name.strip_suffix("_total") else {
            panic!("counter {name} must end in _total");
        };
        let c = Counter::default();
        self.add(base, help, c.0.clone());
        c
    }

    /// Registers a gauge.
    pub fn gauge(&self, name: &'static str, help: &'static str) -> Gauge {
        let g = Gauge::default();
        self.add(name, help, g.0.clone());
        g
    }

    /// Registers a gauge with labels; series appear as [`GaugeVec::with`] creates them.
    pub fn gauge_vec(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> GaugeVec {
        let v = GaugeVec {
            labels,
            family: Family::default(),
            present: Arc::default(),
        };
        self.add(name, help, v.family.clone());
        v
    }

    /// Everything, in the Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String fails only if a metric's encoder does, which ours do not.
        if let Err(e) = prometheus_text::encode(&mut out, &self.inner()) {
            tracing::warn!(error = %e, "Cannot encode the metrics.");
        }
        out
    }

    /// Writes the metrics to `path` for node_exporter's textfile collector: to a
    /// temporary file first, then renamed, so the collector never reads half a file.
    pub fn write_textfile(&self, path: &std::path::Path) -> std::io::Result<()> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        std::fs::write(&tmp, self.render())?;
        std::fs::rename(&tmp, path)
    }
}

/// The running HTTP endpoint.
pub struct Server {
    addr: SocketAddr,
}

impl Server {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Serves `GET /metrics` on `addr` (HOST:PORT) from a thread of its own, until the
/// process exits. Binding happens here, so a taken port is an error at start-up.
///
/// One request at a time, each with a 5 s read/write timeout: scrapes come every few
/// seconds from one or two Prometheus servers, and a stuck client cannot hold the thread
/// longer than that. The daemons' own work never waits on it.
pub fn serve(addr: &str, registry: Registry) -> Result<Server, MetricsError> {
    use std::net::ToSocketAddrs as _;
    let resolved: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|source| MetricsError::Address {
            addr: addr.to_string(),
            source,
        })?
        .collect();
    let listener = TcpListener::bind(&resolved[..]).map_err(|source| MetricsError::Bind {
        addr: addr.to_string(),
        source,
    })?;
    let local = listener.local_addr().map_err(|source| MetricsError::Bind {
        addr: addr.to_string(),
        source,
    })?;
    std::thread::Builder::new()
        .name("metrics-http".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(s) => {
                        if let Err(e) = answer(s, &registry) {
                            tracing::debug!(error = %e, "A metrics request failed.");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "Cannot accept a metrics connection.");
                        // Out of descriptors, say: do not spin.
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })
        .map_err(|source| MetricsError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    tracing::info!(address = %local, "Serving Prometheus metrics on http://{local}/metrics (unauthenticated: bind it to an internal interface).");
    Ok(Server { addr: local })
}

/// Answers one HTTP/1.x request and closes the connection.
fn answer(stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Skip the headers: nothing in them changes the answer.
    let mut line = String::new();
    for _ in 0..100 {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => ("200 OK", CONTENT_TYPE, registry.render()),
        ("GET" | "HEAD", "/") => (
            "200 OK",
            "text/plain; charset=utf-8",
            "auditty metrics: GET /metrics\n".to_string(),
        ),
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found: the metrics are at /metrics\n".to_string(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET /metrics\n".to_string(),
        ),
    };
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        out.write_all(body.as_bytes())?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn renders_help_type_and_escaped_labels() {
        let r = Registry::new();
        let c = r.counter("x_things_total", "Things done.\nSecond line \\ here.");
        let g = r.gauge("x_age_seconds", "Age.");
        let v = r.gauge_vec("x_lag", "Lag.", &["topic", "partition"]);
        c.add(3);
        c.inc();
        g.set(1.5);
        v.with(&["a\"b\\c\nd", "0"]).set_u64(7);
        let text = r.render();
        // The HELP texts as given (no full stop added), the counter's name once with
        // `_total`; whole gauge values as integers.
        assert_eq!(
            text,
            "# HELP x_things_total Things done.\\nSecond line \\\\ here.\n\
             # TYPE x_things_total counter\n\
             x_things_total 4\n\
             # HELP x_age_seconds Age.\n\
             # TYPE x_age_seconds gauge\n\
             x_age_seconds 1.5\n\
             # HELP x_lag Lag.\n\
             # TYPE x_lag gauge\n\
             x_lag{topic=\"a\\\"b\\\\c\\nd\",partition=\"0\"} 7\n"
        );
    }

    #[test]
    fn gauge_values_are_written_as_prometheus_reads_them() {
        let r = Registry::new();
        let v = r.gauge_vec("x", "X.", &["v"]);
        for (label, value) in [
            ("zero", 0.0),
            ("whole", 12345.0),
            ("negative", -1.0),
            ("fraction", 0.25),
            ("huge", 1e16),
            ("beyond_i64", 1e19),
            ("nan", f64::NAN),
            ("inf", f64::INFINITY),
        ] {
            v.with(&[label]).set(value);
        }
        let text = r.render();
        for line in [
            "x{v=\"zero\"} 0\n",
            "x{v=\"whole\"} 12345\n",
            "x{v=\"negative\"} -1\n",
            "x{v=\"fraction\"} 0.25\n",
            "x{v=\"huge\"} 10000000000000000\n",
            "x{v=\"beyond_i64\"} 10000000000000000000.0\n",
            "x{v=\"nan\"} NaN\n",
            "x{v=\"inf\"} +Inf\n",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
    }

    #[test]
    fn retain_drops_series_and_an_empty_family_keeps_help_and_type() {
        let r = Registry::new();
        let v = r.gauge_vec("x_lag", "Lag.", &["topic", "partition"]);
        v.with(&["t", "0"]).set(1.0);
        v.with(&["t", "1"]).set(2.0);
        v.retain(&[vec!["t".to_string(), "1".to_string()]]);
        let text = r.render();
        assert!(!text.contains("partition=\"0\""), "{text}");
        assert!(
            text.contains("x_lag{topic=\"t\",partition=\"1\"} 2"),
            "{text}"
        );
        // A series dropped and asked for again starts at 0.
        assert_eq!(v.with(&["t", "0"]).get(), 0.0);
        v.clear();
        assert_eq!(r.render(), "# HELP x_lag Lag.\n# TYPE x_lag gauge\n");
    }

    #[test]
    #[should_panic(expected = "must end in _total")]
    fn a_counter_name_without_total_is_refused() {
        Registry::new().counter("x_things", "Things.");
    }

    #[test]
    fn serves_metrics_over_http_and_refuses_other_paths() {
        let r = Registry::new();
        r.gauge("x_up", "Up.").set(1.0);
        let server = serve("127.0.0.1:0", r).expect("serve");
        let get = |path: &str| {
            let mut s = TcpStream::connect(server.local_addr()).expect("connect");
            write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
            let mut out = String::new();
            s.read_to_string(&mut out).expect("read");
            out
        };
        let ok = get("/metrics");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("text/plain; version=0.0.4"), "{ok}");
        assert!(ok.ends_with("x_up 1\n"), "{ok}");
        assert!(get("/nope").starts_with("HTTP/1.1 404"));
    }

    #[test]
    fn a_taken_port_is_a_clear_error() {
        let first = serve("127.0.0.1:0", Registry::new()).expect("serve");
        let addr = first.local_addr().to_string();
        let err = serve(&addr, Registry::new())
            .err()
            .expect("second bind fails");
        assert!(err.to_string().contains("--metrics-listen"), "{err}");
        assert!(serve("not an address", Registry::new()).is_err());
    }
}
