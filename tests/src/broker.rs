//! A real Kafka-protocol broker for tests: tansu with its SQLite engine, one per test, on
//! a free loopback port, with its data in the test's sandbox so it can be stopped and
//! started again with its topics and records intact.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

/// The tansu binary: `$AUDITTY_TANSU`, else the cache `scripts/install-tansu` fills.
pub fn tansu_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("AUDITTY_TANSU") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let p = home.join(".cache/auditty/tansu-0.6.0/bin/tansu");
    assert!(
        p.exists(),
        "the Kafka broker for the tests is missing at {}: run scripts/install-tansu (scripts/test does)",
        p.display()
    );
    p
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// One broker process and its data directory.
pub struct Broker {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Broker {
    /// Starts a broker with its data under `dir`.
    pub fn start(dir: &Path) -> Broker {
        std::fs::create_dir_all(dir).expect("broker dir");
        let mut b = Broker {
            dir: dir.to_path_buf(),
            port: free_port(),
            child: None,
        };
        b.resume();
        b
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The ingester's `--source` for `topic` on this broker.
    pub fn source(&self, topic: &str) -> String {
        format!("kafka://{}/{topic}", self.address())
    }

    fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// Starts the broker again after [`Broker::stop`], with the same data and port.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("tansu.log"))
            .expect("broker log");
        let child = Command::new(tansu_bin())
            .current_dir(&self.dir)
            .args([
                "broker",
                "--listener-url",
                &self.url(),
                "--advertised-listener-url",
                &self.url(),
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", tansu_bin().display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(self.address()).is_err() {
            assert!(
                Instant::now() < deadline,
                "broker did not listen on {} within 30 s; log:\n{}",
                self.address(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the broker (SIGKILL: an outage, not a shutdown).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("tansu.log")).unwrap_or_default()
    }

    /// Creates a topic (the broker does not create topics on demand).
    pub fn create_topic(&self, name: &str, partitions: u32) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new(tansu_bin())
                .current_dir(&self.dir)
                .args([
                    "topic",
                    "create",
                    "--broker",
                    &self.url(),
                    "--partitions",
                    &partitions.to_string(),
                    name,
                ])
                .output()
                .expect("run tansu topic create");
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "cannot create topic {name}: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A producer as an agent would configure it (idempotent, acks=all).
    pub fn producer(&self) -> BaseProducer {
        ClientConfig::new()
            .set("bootstrap.servers", self.address())
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.max.bytes", "10485760")
            .set("linger.ms", "5")
            .create()
            .expect("producer")
    }

    /// Produces records and waits until every one is acknowledged.
    pub fn produce(&self, topic: &str, records: &[(Vec<u8>, Vec<u8>)]) {
        let producer = self.producer();
        for (key, payload) in records {
            let mut record = BaseRecord::to(topic).key(key).payload(payload);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        record = r;
                        producer.poll(Duration::from_millis(50));
                    }
                }
            }
        }
        producer
            .flush(Duration::from_secs(60))
            .expect("records acknowledged");
    }

    /// Reads a topic from the start with a plain consumer until `n` records arrived.
    pub fn consume(
        &self,
        topic: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.address())
            .set("group.id", format!("test-reader-{}", rand::random::<u64>()))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < n && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                out.push((
                    m.key().map(<[u8]>::to_vec),
                    m.payload().unwrap_or_default().to_vec(),
                ));
            }
        }
        out
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}
