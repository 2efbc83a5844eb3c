//! How every auditty binary logs: `tracing` events to stderr, filtered by `AUDITTY_LOG`
//! (`EnvFilter` syntax, e.g. `AUDITTY_LOG=debug` or `AUDITTY_LOG=ingest=debug,warn`), in
//! colour only when stderr is a terminal, so that logs piped to a file stay plain text.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Environment variable holding the log filter.
pub const ENV_VAR: &str = "AUDITTY_LOG";

/// How much of each event's context is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Time and target before each message: for daemons whose logs are read later.
    Full,
    /// The level and message only: for commands whose logs are read as they run.
    Compact,
}

/// Installs the global subscriber. `default_filter` applies when `AUDITTY_LOG` is unset or
/// does not parse.
pub fn init(default_filter: &str, style: Style) {
    let filter =
        EnvFilter::try_from_env(ENV_VAR).unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match style {
        Style::Full => builder.init(),
        Style::Compact => builder.with_target(false).without_time().init(),
    }
}
