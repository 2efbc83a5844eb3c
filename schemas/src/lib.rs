//! The contracts every part of auditty agrees on.
//!
//! - [`event`]: [`Event`], [`EventKind`] and [`SessionId`], the event model of DESIGN.md §3,
//!   and [`RowKind`], what one row of the `events` table holds.
//! - [`session`]: [`SessionStart`] and [`SessionEnd`], the metadata carried by the `start`
//!   and `end` events, and the [`session::Envelope`] of a sealed session's wrapped keys.
//! - [`chunk`]: [`Chunk`], the unit of transport (one spool entry, one Kafka record), and
//!   its versioned binary encoding. `chunk-format.md` next to this crate documents the bytes.
//!   Sealing is part of it: [`chunk::seal`] holds sealed (encrypted) chunks and the
//!   session's [`chunk::seal::DataKey`] (DESIGN.md §5).
//! - [`ledger`]: the signed ledger head a node's shipper sends about its newest session.
//! - [`arrow`]: the Arrow schemas of the `events` and `sessions` Parquet tables.
//! - [`asciicast`]: asciicast v2 and v3 encoding and parsing, shared by `replay export` and tests.
//! - [`data_dir`]: where the agent, the ingester and replay keep their files by default.
//! - [`time`]: UTC calendar helpers for partition dates and listings.
//!
//! Callers: `agent` builds chunks, `ingest` decodes them into rows, `replay` reads rows back
//! into events. Decoders here never panic on any input; they return [`DecodeError`].
#![warn(missing_docs)]

pub mod arrow;
pub mod asciicast;
pub mod chunk;
pub mod data_dir;
pub mod event;
pub mod ledger;
pub mod session;
pub mod text;
pub mod time;

pub use chunk::{Chunk, DecodeError, DecodeErrorKind};
pub use event::{Event, EventKind, RowKind, SessionId};
pub use session::{EndReason, Envelope, ImportSource, SessionEnd, SessionStart};
