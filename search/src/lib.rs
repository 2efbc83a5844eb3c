//! The reading side: which sessions the store holds, and what the user saw in them.
//!
//! - [`catalog`]: [`list_sessions`] merges the `sessions/` and `events/` tables into
//!   [`SessionInfo`]s; [`find_and_open_session`] turns an id or unique prefix into a
//!   session's rows, reading only what can hold it; [`resolve_session`] resolves a prefix
//!   against a listed catalog. Lookups by what the user typed fail with [`CatalogError`].
//! - [`commands`]: [`extract_commands`] reads the command lines of a session off the
//!   emulated screen (after readline editing, history and completion), with their offsets,
//!   output and, where the shell reports it (OSC 133), exit status.
//! - [`render::Screen`]: feeds output and resize events to a `vt100` emulator and reads
//!   back the screen, or the whole transcript (scrollback + screen).
//!
//! - [`index`]: the full-text index (tantivy, one index per day of session start) of
//!   sessions and commands, updated incrementally from the store ([`index::update`]) and
//!   queried by [`index::search`].
//!
//! Callers: `replay` (every subcommand) and the end-to-end tests (which compare the
//! rendered screen of a replay with the screen of the live session).
#![warn(missing_docs)]

pub mod catalog;
pub mod commands;
mod error;
pub mod index;
pub mod render;

pub use catalog::{
    OpenedSession, Provenance, SessionInfo, find_and_open_session, find_and_open_session_observing,
    find_session, list_sessions, list_sessions_observing, list_sessions_observing_objects,
    open_session, open_sessions_observing, resolve_session, session_events,
    session_events_with_warnings,
};
pub use commands::{Command, extract_commands};
pub use error::CatalogError;
