//! Arrow schemas of the `events` and `sessions` tables (DESIGN.md §4).
//!
//! The `date` partition column is not stored in the files: it is the hive-style
//! `date=YYYY-MM-DD` directory, which DuckDB, Athena, Spark and pyarrow read as a column.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Version of the table layout, kept in each file's footer metadata.
///
/// - 1: `events.time` in nanoseconds.
/// - 2: `events.time` in milliseconds.
/// - 3: `events.elapsed_us` (microseconds) in place of `events.elapsed_ns`. The agent
///   records event times to the microsecond (as asciicast and `script` do), and at
///   nanosecond resolution the column took ~2.6 bytes per keystroke event, the largest
///   part of an interactive session's store. An `events` object holding any event time
///   that is not a whole microsecond (from an older agent) is written as version 2, so
///   that nothing recorded is rounded away.
///
/// Readers accept all three.
pub const TABLE_VERSION: &str = "3";
/// The `events` layout with nanosecond `elapsed_ns` (see [`TABLE_VERSION`]).
pub const TABLE_VERSION_ELAPSED_NS: &str = "2";

/// Column names of the `events` table.
pub mod events {
    /// Session id, text form.
    pub const SESSION_ID: &str = "session_id";
    /// Sequence number of the event (first of the chunk for sealed rows).
    pub const SEQ: &str = "seq";
    /// Last sequence number covered by the row (= `seq` for plaintext rows).
    pub const SEQ_LAST: &str = "seq_last";
    /// Microseconds since session start (table version 3).
    pub const ELAPSED_US: &str = "elapsed_us";
    /// Nanoseconds since session start (table versions 1 and 2, and version-2 objects
    /// written for events whose times are not whole microseconds).
    pub const ELAPSED_NS: &str = "elapsed_ns";
    /// Wall-clock time of the event (session start + elapsed), UTC, to the millisecond
    /// (`elapsed_us` has the microseconds). Table version 1 stored nanoseconds: at
    /// nanosecond precision this column and `elapsed_ns` each took ~2.5 bytes per
    /// keystroke event, a third of an interactive session's store.
    pub const TIME: &str = "time";
    /// `start`, `input`, `output`, `resize`, `marker`, `end` or `sealed`.
    pub const KIND: &str = "kind";
    /// Raw bytes of the event (ciphertext for sealed rows).
    pub const DATA: &str = "data";
}

/// Column names of the `sessions` table.
pub mod sessions {
    /// Session id, text form.
    pub const SESSION_ID: &str = "session_id";
    /// `start` or `end`.
    pub const KIND: &str = "kind";
    /// Sequence number of the start or end event.
    pub const SEQ: &str = "seq";
    /// Wall-clock time of the event, UTC.
    pub const TIME: &str = "time";
    /// Nanoseconds since session start.
    pub const ELAPSED_NS: &str = "elapsed_ns";
    /// Login name (start rows).
    pub const USER: &str = "user";
    /// Host name (start rows).
    pub const HOST: &str = "host";
    /// Command line (start rows).
    pub const COMMAND: &str = "command";
    /// Exit status (end rows).
    pub const EXIT_STATUS: &str = "exit_status";
    /// End reason (end rows).
    pub const END_REASON: &str = "end_reason";
    /// Event count of the session (end rows).
    pub const EVENT_COUNT: &str = "event_count";
    /// The start or end metadata as recorded (JSON).
    pub const METADATA: &str = "metadata";
}

fn time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

fn event_time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// Schema of `events/` files: one row per event (plaintext sessions), one per chunk
/// (sealed sessions). `elapsed_ns` selects the version-2 layout (see [`TABLE_VERSION`]).
pub fn events_schema(elapsed_ns: bool) -> SchemaRef {
    use events::*;
    Arc::new(Schema::new(vec![
        Field::new(SESSION_ID, DataType::Utf8, false),
        Field::new(SEQ, DataType::UInt64, false),
        Field::new(SEQ_LAST, DataType::UInt64, false),
        Field::new(
            if elapsed_ns { ELAPSED_NS } else { ELAPSED_US },
            DataType::UInt64,
            false,
        ),
        Field::new(TIME, event_time_type(), false),
        Field::new(KIND, DataType::Utf8, false),
        Field::new(DATA, DataType::Binary, false),
    ]))
}

/// Schema of `sessions/` files: one row per `start` and per `end` event.
pub fn sessions_schema() -> SchemaRef {
    use sessions::*;
    Arc::new(Schema::new(vec![
        Field::new(SESSION_ID, DataType::Utf8, false),
        Field::new(KIND, DataType::Utf8, false),
        Field::new(SEQ, DataType::UInt64, false),
        Field::new(TIME, time_type(), false),
        Field::new(ELAPSED_NS, DataType::UInt64, false),
        Field::new(USER, DataType::Utf8, true),
        Field::new(HOST, DataType::Utf8, true),
        Field::new(COMMAND, DataType::Utf8, true),
        Field::new(EXIT_STATUS, DataType::Int32, true),
        Field::new(END_REASON, DataType::Utf8, true),
        Field::new(EVENT_COUNT, DataType::UInt64, true),
        Field::new(METADATA, DataType::Utf8, false),
    ]))
}
