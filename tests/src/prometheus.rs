//! Scraping our `--metrics-listen` endpoints as Prometheus would, and reading them with a
//! real Prometheus-format parser: `prometheus_client.parser` (the official Python client)
//! in the venv that `scripts/install-test-deps` makes. A parse error fails the test.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Parses the exposition text on stdin; prints every sample as JSON, with its family's
/// name and type (`unknown` when the text has no TYPE line for it).
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.append({"family": fam.name, "type": fam.type, "help": fam.documentation,
                    "name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps(out))
"#;

/// One sample.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The sample's name (a counter's ends in `_total`).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// What one scrape returned, parsed.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// The exposition text, for failure messages.
    pub text: String,
    /// Every sample.
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// The value of the unlabelled sample `name`; panics with the text when missing.
    pub fn value(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels.is_empty())
            .map(|s| s.value)
            .unwrap_or_else(|| panic!("{name} is not in the metrics:\n{}", self.text))
    }

    /// Samples of `name` (any labels).
    pub fn series(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }

    /// The sum of every series of `name` (0 if there is none).
    pub fn sum(&self, name: &str) -> f64 {
        self.series(name).iter().map(|s| s.value).sum()
    }

    /// Every sample name.
    pub fn names(&self) -> BTreeSet<String> {
        self.samples.iter().map(|s| s.name.clone()).collect()
    }
}

/// `GET /metrics` from `addr` (HOST:PORT); `None` if nothing listens there yet.
pub fn fetch(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: text/plain\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "not the Prometheus text format: {head}"
    );
    Some(body.to_string())
}

/// Parses exposition text with `prometheus_client`; panics on a parse error or a family
/// without HELP and TYPE.
pub fn parse(text: &str) -> Scrape {
    let python = crate::moto::venv_bin("python");
    let mut child = Command::new(&python)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write metrics to the parser");
    let out = child.wait_with_output().expect("parser output");
    assert!(
        out.status.success(),
        "prometheus_client could not parse the metrics (install it with scripts/install-test-deps):\n{}\n--- text ---\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("parser JSON");
    let mut samples = Vec::new();
    for s in parsed {
        assert_ne!(s["type"], "unknown", "no TYPE line for {s}\n{text}");
        assert_ne!(s["help"], "", "no HELP line for {s}\n{text}");
        let labels = s["labels"]
            .as_object()
            .expect("labels")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("label value").to_string()))
            .collect();
        samples.push(Sample {
            name: s["name"].as_str().expect("name").to_string(),
            labels,
            value: s["value"].as_f64().expect("value"),
        });
    }
    Scrape {
        text: text.to_string(),
        samples,
    }
}

/// Fetches and parses; panics if nothing answers at `addr`.
pub fn scrape(addr: &str) -> Scrape {
    let text = fetch(addr).unwrap_or_else(|| panic!("no metrics endpoint answers at {addr}"));
    parse(&text)
}
