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

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Ingest continuously (or once, with --once).
    #[command(
        after_help = "Examples:\n  auditty-ingest run --once\n  auditty-ingest run --source spool:/var/spool/auditty --store file:///var/lib/auditty/store\n\nWith no flags it reads <data dir>/spool and writes <data dir>/store.\nSIGTERM or Ctrl-C finishes the file in hand and exits."
    )]
    Run(RunArgs),
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

    /// A librdkafka property, e.g. -X security.protocol=SSL (repeatable; wins over --kafka-config).
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    pub librdkafka: Vec<String>,

    /// A file of librdkafka properties, one key=value per line (# comments).
    #[arg(long, value_name = "FILE")]
    pub kafka_config: Option<PathBuf>,

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

    /// Do not print the summary line.
    #[arg(short, long)]
    pub quiet: bool,
}
