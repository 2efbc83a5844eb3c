//! Command-line definitions of `auditty-agent`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Records terminal sessions for audit: every keystroke and every byte of output, with
/// timing, into a durable on-disk spool that `auditty-ingest` turns into Parquet.
#[derive(Parser, Debug)]
#[command(name = "auditty-agent", version, about, long_about = None)]
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
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a shell (or COMMAND) on a PTY and record the session.
    #[command(
        after_help = "Examples:\n  auditty-agent record\n  auditty-agent record -- bash --norc\n  auditty-agent record --spool /var/spool/auditty -- top\n\nThe exit status is the recorded program's (128+N if it was killed by signal N).\nThe session id is printed on stderr when the session ends (unless -q)."
    )]
    Record(RecordArgs),
    /// Ship spooled chunks to Kafka; delete each only once the broker acknowledged it.
    #[command(
        after_help = "Examples:\n  auditty-agent ship --brokers kafka1:9092,kafka2:9092\n  auditty-agent ship --brokers kafka:9093 -X security.protocol=SASL_SSL -X sasl.mechanism=SCRAM-SHA-512 \\\n      -X sasl.username=agent -X sasl.password=...\n\nRuns until SIGTERM (or, with --once, until the spool is empty). Recording never waits on\nit: sessions go to the spool, and the shipper catches up when the broker is reachable."
    )]
    Ship(ShipArgs),
    /// Add a marker to the session this command runs inside.
    #[command(
        after_help = "Example, inside a recorded session:\n  auditty-agent mark \"starting the database migration\""
    )]
    Mark(MarkArgs),
    /// Print this node's public key line for the verifiers' trust file (creates the key on
    /// first use).
    #[command(
        after_help = "Example, collecting a fleet's keys for `replay verify --trust`:\n  for h in web-1 web-2; do ssh $h auditty-agent node-key; done >> trusted-keys"
    )]
    NodeKey(NodeKeyArgs),
    /// Check the configuration file and show every setting with where it came from.
    Config(config::ConfigArgs),
}

/// Options of `node-key`.
#[derive(Args, Debug, Clone)]
pub struct NodeKeyArgs {
    /// The node key file. Default: $AUDITTY_NODE_KEY, else <data dir>/node.key.
    #[arg(long, env = "AUDITTY_NODE_KEY", value_name = "FILE")]
    pub node_key: Option<PathBuf>,
}

/// Options of `record`.
#[derive(Args, Debug, Clone)]
pub struct RecordArgs {
    /// Spool directory to write chunks to. Default: <data dir>/spool.
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,

    /// Do not print the session id at the end.
    #[arg(short, long)]
    pub quiet: bool,

    /// Record USER's session: the agent (run as root) keeps the node key, the ledger
    /// and the spool to itself, mode 0600/0700, and runs the program as USER, with their
    /// groups, home, login shell (unless a command is given) and an environment of their
    /// own. The user can then neither read the key nor rewrite the spool. See the
    /// README's threat model for how sshd, login shells and PAM start it.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// Cut a chunk once it holds this many bytes of events.
    #[arg(long, default_value_t = 64 * 1024, value_name = "BYTES")]
    pub chunk_bytes: usize,

    /// Cut a chunk at most this many milliseconds after its first event, so a killed
    /// agent loses at most this much.
    #[arg(long, default_value_t = 250, value_name = "MS")]
    pub chunk_latency_ms: u64,

    /// Refuse to record past this many bytes in the spool (all sessions together).
    #[arg(long, default_value_t = 1 << 30, value_name = "BYTES")]
    pub spool_max_bytes: u64,

    /// Record what is typed while the program's terminal hides it, as at a password
    /// prompt (echo off in canonical mode: `read -s`, getpass, sudo, passwd, ssh). By
    /// default such input reaches the program but is left out of the recording, and a
    /// `redacted` event says how many bytes were left out. Full-screen programs (vi,
    /// less, the shell's line editor) are recorded either way.
    #[arg(long)]
    pub no_redact_hidden_input: bool,

    /// Who the session is sealed for (end-to-end encryption).
    #[command(flatten)]
    pub recipients: envelope::RecipientArgs,

    /// The node's ed25519 key that signs checkpoints; created (mode 0600) on first use,
    /// and its public key added to <data dir>/trusted-keys.
    /// Default: $AUDITTY_NODE_KEY, else <data dir>/node.key.
    #[arg(long, env = "AUDITTY_NODE_KEY", value_name = "FILE")]
    pub node_key: Option<PathBuf>,

    /// Write a signed integrity checkpoint after this many chunks (and after the end).
    #[arg(long, default_value_t = 16, value_name = "CHUNKS", value_parser = clap::value_parser!(u32).range(1..))]
    pub checkpoint_every: u32,

    /// With --user, when sshd forces the login through the agent and the client gave a
    /// command (`ssh host CMD`, in SSH_ORIGINAL_COMMAND): `record` runs it as the user
    /// and records it (on a PTY if the client asked for one, else its stdin, stdout and
    /// stderr through pipes), `pass` runs it unrecorded (logged to the data directory's
    /// unrecorded.log and syslog), `deny` refuses it. Interactive logins are always
    /// recorded.
    #[arg(long, value_enum, default_value_t = SshPolicy::Record, value_name = "POLICY")]
    pub ssh_command: SshPolicy,

    /// As --ssh-command, for file transfers: scp, sftp (the sftp subsystem, including
    /// internal-sftp, which is run as sftp-server) and rsync. Recording keeps every byte
    /// transferred; `pass` keeps only the line in unrecorded.log.
    #[arg(long, value_enum, default_value_t = SshPolicy::Record, value_name = "POLICY")]
    pub file_transfer: SshPolicy,

    /// Break-glass: when the spool is full and a session cannot be recorded, members of
    /// GROUP get their session unrecorded instead of being refused, with a warning on
    /// their terminal and a line in unrecorded.log and syslog. Everyone else is refused,
    /// as without this flag.
    #[arg(long, value_name = "GROUP")]
    pub break_glass_group: Option<String>,

    /// Do not compress chunks (for debugging the format).
    #[arg(long, hide = true)]
    pub no_compress: bool,

    /// The program to record and its arguments. Default: $SHELL, else /bin/sh.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// What happens to a command that arrives through ssh (see `record --ssh-command`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SshPolicy {
    /// Run it and record it.
    Record,
    /// Run it unrecorded; the fact is logged.
    Pass,
    /// Refuse it.
    Deny,
}

/// Options of `mark`.
#[derive(Args, Debug, Clone)]
pub struct MarkArgs {
    /// The marker's label, shown by `replay` as a point to jump to.
    pub label: String,
}

/// Options of `ship`.
#[derive(Args, Debug, Clone)]
pub struct ShipArgs {
    /// Spool directory to ship from. Default: <data dir>/spool.
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,

    /// Kafka bootstrap servers, HOST:PORT[,HOST:PORT…].
    #[arg(long, env = "AUDITTY_KAFKA_BROKERS", value_name = "HOSTS")]
    pub brokers: String,

    /// Topic to produce to (key = session id, so a session stays in order on one partition).
    #[arg(long, default_value = "auditty.events", value_name = "TOPIC")]
    pub topic: String,

    /// librdkafka properties (-X, --kafka-config).
    #[command(flatten)]
    pub kafka: kafka::KafkaArgs,

    /// Ship what is in the spool, wait until every finished segment is acknowledged and
    /// deleted, then exit (sessions still recording are shipped as far as they got).
    #[arg(long)]
    pub once: bool,

    /// Write metrics in Prometheus text format to FILE after every pass (for
    /// node_exporter's textfile collector): the same metrics as --metrics-listen serves.
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,

    /// Serve Prometheus metrics at http://ADDR:PORT/metrics: spool bytes, segments and
    /// whether it is full, the age of the oldest chunk not yet shipped, chunks and bytes
    /// shipped, delivery errors, failed passes, the time of the last complete pass. The
    /// endpoint has no authentication: bind it to an internal interface.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<String>,

    /// The spool's size cap (the agents' --spool-max-bytes), to report a full spool.
    #[arg(long, default_value_t = 1 << 30, value_name = "BYTES")]
    pub spool_max_bytes: u64,

    /// How often to look for new chunks, in milliseconds.
    #[arg(long, default_value_t = 200, value_name = "MS")]
    pub poll_interval_ms: u64,

    /// With --once: give up, and exit 1, when no broker has answered for this long
    /// (without --once the shipper keeps retrying, saying once that it cannot reach them).
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub broker_wait: u64,

    /// Node key that signs the ledger heads (the recorder's). Default:
    /// <data dir>/node.key; while there is none, no heads are sent: the shipper looks
    /// for it again on each pass, so the first recorded session (which creates it) starts
    /// them without a restart.
    #[arg(long, value_name = "FILE")]
    pub node_key: Option<PathBuf>,

    /// Send a signed ledger head, naming the node's newest session, whenever a newer
    /// session's chunks are all shipped and at least this often; 0 = never. `replay
    /// verify --all` names a newest session deleted from the store by the heads.
    #[arg(long, default_value_t = 3600, value_name = "SECS")]
    pub ledger_head_interval: u64,
}
