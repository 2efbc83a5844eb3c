//! Command-line definitions of `auditty-agent`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Records terminal sessions for audit: every keystroke and every byte of output, with
/// timing, into a durable on-disk spool that `auditty-ingest` turns into Parquet.
#[derive(Parser, Debug)]
#[command(name = "auditty-agent", version, about, long_about = None)]
pub struct Cli {
    /// Data directory holding the spool (and the local store).
    /// Default: $AUDITTY_DATA_DIR, else $XDG_DATA_HOME/auditty, else ~/.local/share/auditty.
    #[arg(long, global = true, env = "AUDITTY_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

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
    /// Add a marker to the session this command runs inside.
    #[command(
        after_help = "Example, inside a recorded session:\n  auditty-agent mark \"starting the database migration\""
    )]
    Mark(MarkArgs),
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

    /// Do not compress chunks (for debugging the format).
    #[arg(long, hide = true)]
    pub no_compress: bool,

    /// The program to record and its arguments. Default: $SHELL, else /bin/sh.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// Options of `mark`.
#[derive(Args, Debug, Clone)]
pub struct MarkArgs {
    /// The marker's label, shown by `replay` as a point to jump to.
    pub label: String,
}
