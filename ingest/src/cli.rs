//! Command-line definitions of `auditty-ingest`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Turns recorded sessions into Parquet: reads chunks from the agent's spool (or, in a
/// fleet, from Kafka), writes `events/` and `sessions/` objects to the store, and forgets
/// input only once the objects are durable.
#[derive(Parser, Debug)]
#[command(name = "auditty-ingest", version, about, long_about = None)]
pub struct Cli {
    /// Data directory holding the spool and the local store.
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
    /// Ingest continuously (or once, with --once).
    #[command(
        after_help = "Examples:\n  auditty-ingest run --once\n  auditty-ingest run --source spool:/var/spool/auditty --store file:///var/lib/auditty/store\n\nWith no flags it reads <data dir>/spool and writes <data dir>/store.\nSIGTERM or Ctrl-C finishes the file in hand and exits."
    )]
    Run(RunArgs),
}

/// Options of `run`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Where chunks come from: `spool:DIR`. Default: spool:<data dir>/spool.
    #[arg(long, value_name = "URL")]
    pub source: Option<String>,

    /// Where Parquet goes: `file:///PATH` or a path. Default: <data dir>/store.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,

    /// Ingest what is there now, then exit.
    #[arg(long)]
    pub once: bool,

    /// How often to look for new chunks, in milliseconds, when not --once.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub poll_interval_ms: u64,

    /// Do not print the summary line.
    #[arg(short, long)]
    pub quiet: bool,
}
