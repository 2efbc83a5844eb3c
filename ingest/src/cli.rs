//! Command-line definitions of `auditty-ingest`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Turns recorded sessions into Parquet: reads chunks from the agent's spool (or, in a
/// fleet, from Kafka), writes `events/` and `sessions/` objects to the store, and forgets
/// input only once the objects are durable.
#[derive(Parser, Debug)]
#[command(name = "auditty-ingest", version, about, long_about = None)]
pub struct Cli {
    /// Where spool/, store/ and the node key live.
    #[command(flatten)]
    pub data_dir: schemas::data_dir::DataDirArg,

    /// The configuration file (/etc/auditty/auditty.toml).
    #[command(flatten)]
    pub config: config::ConfigFileArg,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
// Parsed once at start-up and matched once: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Ingest continuously (or once, with --once).
    #[command(
        after_help = "Examples:\n  auditty-ingest run --once\n  auditty-ingest run --source spool:/var/spool/auditty --store file:///var/lib/auditty/store\n\nWith no flags it reads <data dir>/spool and writes <data dir>/store.\nSIGTERM or Ctrl-C finishes the file in hand and exits."
    )]
    Run(RunArgs),
    /// Merge a day's small objects into large ones (fewer S3 requests, faster scans).
    #[command(
        long_about = COMPACT_ABOUT,
        after_help = "Examples:\n  auditty-ingest compact --dry-run\n  auditty-ingest compact --date 2026-11-27 --store s3://audit/fleet\n  auditty-ingest compact --min-age 0 --target-bytes 64MiB"
    )]
    Compact(CompactArgs),
    /// Show a consumer group's lag on a topic, from outside the group (for alerting while
    /// every ingester is down).
    #[command(
        long_about = LAG_ABOUT,
        after_help = "Examples:\n  auditty-ingest lag --source kafka://k1:9092/auditty.events --group auditty-ingest --once\n  auditty-ingest lag --source kafka://k1:9092/auditty.events --metrics-listen 10.0.0.5:9465"
    )]
    Lag(LagArgs),
    /// Check the configuration file and show every setting with where it came from.
    Config(config::ConfigArgs),
}

const COMPACT_ABOUT: &str = "\
Merge a day's small events/ and sessions/ objects into large ones, so that a fleet of short \
sessions does not become millions of tiny objects (an S3 request each to read, a file each \
for Athena or DuckDB to open).

Safety: the merged object (events/date=D/compacted-<digest>.parquet, a name the ingester \
never writes) is durable before any input is deleted, and a manifest under compaction/ \
names both first. Readers drop duplicate (session, seq) rows and look again when an object \
they listed is gone, so while it runs they neither see a row twice nor miss one. Killed at \
any point, the store stays readable and the next run finishes the job. Rows are not \
changed, so `replay verify` gives the same verdicts. Objects younger than --min-age are \
left alone, because a restarted ingester reuses the cut points of the objects it wrote \
last. Run one compaction at a time per store.";

const LAG_ABOUT: &str = "\
Show how far a consumer group is behind on a topic: per partition, the high watermark minus \
the offset the group committed. This client never joins the group (it only reads the \
group's committed offsets and the partitions' watermarks), so it keeps measuring while every \
ingester is stopped, which is when the lag matters; a stopped ingester's own \
--metrics-listen cannot be scraped. With --once it prints a table and exits; with \
--metrics-listen it serves auditty_kafka_consumer_lag{topic,group,partition} and measures \
every --interval-ms.";

/// Options of `lag`.
#[derive(Args, Debug, Clone)]
pub struct LagArgs {
    /// The topic: `kafka://HOST:PORT[,HOST:PORT…]/TOPIC`.
    #[arg(long, value_name = "URL")]
    pub source: String,

    /// The consumer group to measure.
    #[arg(long, default_value = "auditty-ingest", value_name = "GROUP")]
    pub group: String,

    /// librdkafka properties (-X, --kafka-config).
    #[command(flatten)]
    pub kafka: kafka::KafkaArgs,

    /// Print the lag once, as a table, and exit.
    #[arg(long, conflicts_with = "metrics_listen")]
    pub once: bool,

    /// Serve the lag as Prometheus metrics at http://ADDR:PORT/metrics (unauthenticated:
    /// bind it to an internal interface).
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<String>,

    /// How often to measure, in milliseconds.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub interval_ms: u64,
}

/// Options of `compact`.
#[derive(Args, Debug, Clone)]
pub struct CompactArgs {
    /// The store to compact: `file:///PATH`, a path, or `s3://BUCKET/PREFIX`.
    /// Default: <data dir>/store.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,

    /// How to reach an s3:// store.
    #[command(flatten)]
    pub s3: store::S3Args,

    /// The UTC day to compact, YYYY-MM-DD (repeatable). Default: every day in the store
    /// (young objects are skipped anyway, see --min-age).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: Vec<String>,

    /// Stop adding inputs to a merged object once they hold this many bytes (suffixes
    /// KiB, MiB, GiB). Objects already this large are left as they are.
    #[arg(long, default_value = "128MiB", value_name = "BYTES", value_parser = parse_bytes)]
    pub target_bytes: u64,

    /// Hold at most about this many bytes of decoded rows in memory; a merge is written
    /// early when it would hold more.
    #[arg(long, default_value = "1GiB", value_name = "BYTES", value_parser = parse_bytes)]
    pub max_memory: u64,

    /// Leave objects written less than this long ago (s, m, h, d suffix; 0 takes
    /// everything, for tests). An ingester that restarts within this time finds the
    /// objects it must cut at again.
    #[arg(long, default_value = "1h", value_name = "AGE", value_parser = parse_age)]
    pub min_age: std::time::Duration,

    /// Print the plan (which objects would be merged, which sessions have expired) and
    /// change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Retention: before merging, purge every session that started more than DAYS days
    /// ago and is not on legal hold (`replay hold`): each gets a tombstone signed with
    /// --operator-key (who, when, why), then its rows leave every object, so `replay
    /// verify` reports it as purged, not missing, and the node's ledger stays whole.
    /// Bucket lifecycle rules cannot do this: they delete whole objects of many sessions.
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..))]
    pub retention_days: Option<u32>,

    /// With --retention-days: the operator key that signs the tombstones (`replay
    /// operator-key --operator-key FILE` makes one and prints the line for the verifiers'
    /// trusted-operators file).
    #[arg(long, value_name = "FILE", requires = "retention_days")]
    pub operator_key: Option<PathBuf>,

    /// With --retention-days: the nodes' trust file (`replay verify --trust`), so that each
    /// tombstone keeps its session's place in its node's ledger. Default: <data
    /// dir>/trusted-keys.
    #[arg(long, value_name = "FILE", requires = "retention_days")]
    pub trust: Option<PathBuf>,

    /// Do not print the summary.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `123`, `64KiB`, `128MiB`, `1GiB` (also KB/MB/GB as powers of 1000).
fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(digits);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a size; write e.g. 134217728, 128MiB or 1GiB"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => return Err(format!("unknown size unit {other:?}; use KiB, MiB or GiB")),
    };
    n.checked_mul(mult)
        .filter(|&b| b > 0)
        .ok_or_else(|| format!("{s:?} must be between 1 byte and 16 EiB"))
}

/// `0`, `90s`, `30m`, `1h`, `2d` (a bare number is seconds).
fn parse_age(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(digits);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not an age; write e.g. 0, 90s, 30m, 1h or 2d"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        other => return Err(format!("unknown age unit {other:?}; use s, m, h or d")),
    };
    Ok(std::time::Duration::from_secs(secs))
}

/// Options of `run`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Where chunks come from: `spool:DIR`, or `kafka://HOST:PORT[,HOST:PORT…]/TOPIC` as a
    /// member of consumer group --group. Default: spool:<data dir>/spool.
    #[arg(long, value_name = "URL")]
    pub source: Option<String>,

    /// Where Parquet goes: `file:///PATH`, a path, or `s3://BUCKET/PREFIX`.
    /// Default: <data dir>/store.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,

    /// How to reach an s3:// store.
    #[command(flatten)]
    pub s3: store::S3Args,

    /// Ingest what is there now, then exit. For Kafka: once no record arrived for
    /// --idle-exit-ms while partitions were assigned (a rebalance pauses the count; a
    /// member assigned none waits one session.timeout.ms longer, for a crashed member's).
    #[arg(long)]
    pub once: bool,

    /// Kafka consumer group; ingesters in one group share the topic's partitions.
    #[arg(long, default_value = "auditty-ingest", value_name = "GROUP")]
    pub group: String,

    /// librdkafka properties (-X, --kafka-config).
    #[command(flatten)]
    pub kafka: kafka::KafkaArgs,

    /// Kafka: write a partition's batch once it holds this many events …
    #[arg(long, default_value_t = 200_000, value_name = "N")]
    pub max_batch_events: usize,

    /// … or this many bytes of records …
    #[arg(long, default_value_t = 64 << 20, value_name = "BYTES")]
    pub max_batch_bytes: usize,

    /// … or when its first record is this many milliseconds old.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub max_batch_age_ms: u64,

    /// Kafka: records larger than this are dead letters (chunks are ~64 KiB).
    #[arg(long, default_value_t = 16 << 20, value_name = "BYTES")]
    pub max_record_bytes: usize,

    /// Kafka with --once: how long the topic must be quiet before exiting.
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    pub idle_exit_ms: u64,

    /// Kafka with --once: give up, and exit 1, when no broker has answered for this long
    /// (without --once the ingester keeps retrying, saying once that it cannot reach
    /// them).
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub broker_wait: u64,

    /// Kafka: after a session's start or end is durably stored, send a JSON notification
    /// (event, session id, user, host, times, exit status, object keys) to this topic.
    #[arg(long, value_name = "TOPIC")]
    pub notify_topic: Option<String>,

    /// How often to look for new chunks, in milliseconds, when not --once.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub poll_interval_ms: u64,

    /// Serve Prometheus metrics at http://ADDR:PORT/metrics: records read, batches,
    /// objects, bytes, events and dead letters written, commit failures, errors, the time
    /// of the last commit, notifications, and (Kafka) the group's lag per partition. The
    /// endpoint has no authentication: bind it to an internal interface.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<String>,

    /// Kafka with --metrics-listen: how often to measure the group's lag, in milliseconds.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub lag_interval_ms: u64,

    /// Also post each session start/end notification (the JSON --notify-topic gets) to
    /// this http:// or https:// URL, from a background queue: ingestion never waits on
    /// it. Failed posts are retried with backoff; a full queue drops (and counts)
    /// notifications, so use --notify-topic where none may be lost. README "Notifications"
    /// says how receivers check the signature.
    #[arg(long, value_name = "URL")]
    pub notify_webhook: Option<String>,

    /// The webhook's HMAC-SHA256 secret (the file's content, less a final newline).
    /// Without it posts are not signed.
    #[arg(long, value_name = "FILE", requires = "notify_webhook")]
    pub notify_webhook_secret_file: Option<PathBuf>,

    /// Attempts per webhook notification before giving up (backoff 0.5 s, 1 s, 2 s, …
    /// up to 30 s between them).
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub notify_webhook_attempts: u32,

    /// Webhook notifications that may wait for the receiver; more are dropped.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub notify_webhook_queue: usize,

    /// Do not print the summary line.
    #[arg(short, long)]
    pub quiet: bool,
}
