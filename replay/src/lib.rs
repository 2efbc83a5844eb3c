//! `replay`: the auditor's tool.
//!
//! - [`open`]: `--store`/data dir → the store; id or unique prefix → a session's events.
//! - [`stream`]: playback timing as iterator adapters (`cap_idle`, `speed`), shared by
//!   `play` and `export`.
//! - [`formats`]: a session as asciicast v2/v3, JSON lines or text, for `export`,
//!   `serve` and the bundle alike.
//! - [`bundle`]: evidence bundles: `export --format bundle` writes them, `verify --bundle`
//!   checks them offline.
//! - [`verdict`]: a session's integrity as every command shows it (the verifier's report
//!   from the rows the catalog read, and its one line).
//! - [`access`]: the access log every command that shows recordings writes first.
//! - [`cmd`]: one module per subcommand (`ls`, `play`, `export`, `verify`,
//!   `commands`, `index`, `search`).
//!
//! Exit codes: 0 done, 1 nothing found, 2 the job could not run.

pub mod access;
pub mod bundle;
pub mod cli;
pub mod cmd;
pub mod formats;
pub mod open;
pub mod stream;
pub mod verdict;
