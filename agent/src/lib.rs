//! `auditty-agent`: records a terminal session into the spool.
//!
//! - [`record::run`] is `auditty-agent record`: it spawns the shell on a PTY
//!   ([`terminal::pty`]), puts the user's terminal in raw mode ([`terminal::RawMode`]),
//!   and runs the [`relay`] loop, which copies bytes between terminal and PTY and hands
//!   every read to the [`recorder`] as an event (output reads less than 2 ms apart as
//!   one). The recorder runs on its own thread: it numbers events, cuts chunks (size or
//!   latency bound), encodes them and appends them to the spool, so the relay never
//!   waits on the disk.
//! - [`control`] is the per-session socket through which `auditty-agent mark LABEL`
//!   ([`mark::run`]) adds a marker to the session it runs in.
//! - [`ship`] is `auditty-agent ship`: the daemon that produces spooled chunks to Kafka
//!   and deletes them only once the broker acknowledged them.
//! - [`metadata`] gathers what the `start` event says about the session, and [`ledger`]
//!   numbers it in the node's sequence of sessions.
//!
//! - [`runas`] is `record --user`: a root-started agent recording another user, who can
//!   reach neither the node key nor the spool. [`login`] handles what a forced ssh login
//!   asks for (a command, scp, sftp: recorded through [`pipes`] when there is no PTY,
//!   passed or denied by policy) and break-glass on a full spool.
//!
//! Caller: `main.rs` (the binary). The end-to-end tests and the bench run the agent as a
//! program, on PTYs of their own ([`terminal::pty`]).

pub mod cli;
pub mod control;
pub mod ledger;
pub mod login;
pub mod mark;
pub mod metadata;
pub mod pipes;
pub mod record;
pub mod recorder;
pub mod relay;
pub mod runas;
pub mod ship;
