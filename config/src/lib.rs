//! The configuration file of `auditty-agent` and `auditty-ingest`, laid under their clap
//! definitions: a value comes from the built-in default, then the file, then the
//! environment, then the command line, each beating the one before.
//!
//! The file has no schema of its own. Its keys are the long flags of the program's clap
//! definition (`chunk_bytes` or `chunk-bytes` for `--chunk-bytes`; the field name for a
//! flag with only a short form, like `librdkafka` for `-X`), in one table per program and
//! subcommand: `[agent]` for the agent's global flags, `[agent.ship]` for `auditty-agent
//! ship`, `[ingest.run]` for `auditty-ingest run`. Keys at the top level are global flags
//! every program takes (`data_dir`). So a flag added to a subcommand is a key of the file
//! at once, and its type, range and possible values are the flag's own: each value of
//! the file goes through the flag's clap value parser.
//!
//! - [`Layered::load`] finds the file (`--config`, [`ENV_VAR`], else [`DEFAULT_PATH`]
//!   when it exists), reads it ([`file`]) and lays its values under the command as clap
//!   defaults, which is what makes the order default < file < environment < flag: clap
//!   itself prefers a flag to a variable and a variable to a default.
//!   [`Layered::parse`] then parses the command line as `Parser::parse` would.
//! - [`Problem`]: an unknown key, a value of the wrong type or out of range, a TOML
//!   syntax error, with the file, line and column.
//! - [`check`] is `config check`: the effective configuration, each value with where it
//!   came from.
//!
//! Callers: the `main.rs` of `auditty-agent` and `auditty-ingest`, which flatten
//! [`ConfigFileArg`] into their `Cli` and add [`ConfigArgs`] as their `config` subcommand.

use std::path::PathBuf;

pub mod check;
pub mod file;
mod layer;

pub use file::{Origin, Problem, Setting};
pub use layer::{Layered, LoadError};

/// Where the file is when neither `--config` nor [`ENV_VAR`] names one.
pub const DEFAULT_PATH: &str = "/etc/auditty/auditty.toml";

/// Environment variable naming the configuration file.
pub const ENV_VAR: &str = "AUDITTY_CONFIG";

/// The id of [`ConfigFileArg`]'s flag, which the file cannot set.
const CONFIG_ARG_ID: &str = "config";

/// The name of the [`ConfigArgs`] subcommand, which has no table in the file.
const CONFIG_COMMAND: &str = "config";

/// The program sections of the file: each program reads its own and leaves the others'
/// to them.
pub const PROGRAM_SECTIONS: &[&str] = &["agent", "ingest", "replay"];

/// `--config FILE`, the flag every configured program takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConfigFileArg {
    /// The configuration file: TOML whose keys are the long flags, in a table per program
    /// and subcommand ([agent], [agent.ship], [ingest.run]; `auditty-agent config check`
    /// shows them). Flags and environment variables win over it.
    /// Default: $AUDITTY_CONFIG, else /etc/auditty/auditty.toml if it exists.
    #[arg(long = "config", global = true, env = ENV_VAR, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The `config` subcommand.
#[derive(clap::Args, Debug, Clone)]
pub struct ConfigArgs {
    /// What to do with the configuration.
    #[command(subcommand)]
    pub command: ConfigCommand,
}

/// Subcommands of `config`.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum ConfigCommand {
    /// Check the configuration file and print the effective configuration: every key with
    /// its value and where that came from (default, file and line, environment variable,
    /// flag). Exits 1, naming file, line and column, if a key is unknown or a value
    /// invalid, or if a COMMAND named here lacks a value it requires.
    #[command(
        after_help = "Examples:\n  auditty-agent config check\n  auditty-agent config check ship      # also: can `auditty-agent ship` start with it?\n  auditty-ingest --config ./test.toml config check run"
    )]
    Check(CheckArgs),
}

/// Options of `config check`.
#[derive(clap::Args, Debug, Clone)]
pub struct CheckArgs {
    /// Subcommands that must be able to start with this configuration: a value they
    /// require (like `ship`'s brokers) that is missing is then an error.
    #[arg(value_name = "COMMAND")]
    pub commands: Vec<String>,
}

/// Runs the `config` subcommand of a program whose command line `layered` parsed into
/// `matches`; returns its exit status (0, or 1 when the configuration has mistakes).
pub fn run(
    layered: &Layered,
    matches: &clap::ArgMatches,
    args: &ConfigArgs,
) -> std::process::ExitCode {
    match &args.command {
        ConfigCommand::Check(check) => {
            std::process::ExitCode::from(if check::run(layered, matches, check) == 0 {
                0
            } else {
                1
            })
        }
    }
}
