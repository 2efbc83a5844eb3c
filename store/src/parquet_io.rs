//! Rows of the `events` and `sessions` tables and their Parquet encoding (DESIGN.md §4).
//!
//! Writers: `ingest` builds [`EventRow`]s and [`SessionRow`]s, calls [`encode_events`] /
//! [`encode_sessions`] and puts the bytes in the store. Readers: [`decode_events`],
//! [`decode_sessions`] and [`read_object_meta`]. The decoders never panic on damaged input;
//! they return [`StoreError::Parquet`] naming the object.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::str::FromStr;
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BinaryArray, Int32Array, RecordBatch, StringArray, TimestampMillisecondArray,
    TimestampNanosecondArray, UInt64Array,
};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{FooterTail, KeyValue, ParquetMetaDataReader, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::reader::ChunkReader;
use parquet::schema::types::ColumnPath;
use schemas::arrow::{events as ev, sessions as ss};
use schemas::{Event, EventKind, RowKind, SessionEnd, SessionId, SessionStart};

use crate::{ObjectStore, StoreError};

/// Most rows in one row group: small enough that a reader looking for one session skips
/// most of a big file, large enough that per-group overhead stays negligible.
pub const MAX_ROW_GROUP_ROWS: usize = 64 * 1024;
/// Also cut a row group at this many bytes, so one group of large output rows does not
/// have to sit in a reader's memory at once.
const MAX_ROW_GROUP_BYTES: usize = 64 << 20;
/// Fewest rows a data page may be limited to. `session_id` compresses to almost nothing,
/// so without a row limit its one page would span the whole row group and its page index
/// would prune nothing; see [`page_rows`] for the limit actually used.
pub const PAGE_ROWS: usize = 4096;
/// About how many bytes of `data` a page of `events` should hold when rows are small:
/// Parquet's own default page size.
const PAGE_DATA_BYTES: usize = 1 << 20;
/// zstd level: 3 is zstd's own default, a good ratio at ingest speed.
const ZSTD_LEVEL: i32 = 3;
/// zstd level of the raw terminal bytes (`data`, `metadata`), nearly all of a table's
/// bytes: 9 stores log-like output markedly smaller than 3 and still compresses far
/// faster than terminals print (measurements: bench/HISTORY.md). The cost is the
/// ingester's, never the recorded shell's.
const DATA_ZSTD_LEVEL: i32 = 9;
/// Longest min/max value kept in statistics (a session id is 36).
const STATS_TRUNCATE_BYTES: usize = 64;
/// Bloom filter false-positive rate on `session_id`: a wrong "maybe" costs one row group read.
const BLOOM_FPP: f64 = 0.01;

/// Footer metadata key: layout version of the table ([`schemas::arrow::TABLE_VERSION`]).
pub const META_TABLE_VERSION: &str = "auditty.table_version";
/// Footer metadata key: the ingest source (e.g. `kafka`, `spool`).
pub const META_SOURCE: &str = "auditty.source";
/// Footer metadata key: the partition of the source.
pub const META_PARTITION: &str = "auditty.partition";
/// Footer metadata key: offset of the first record covered.
pub const META_FIRST_OFFSET: &str = "auditty.first_offset";
/// Footer metadata key: offset just past the last record covered.
pub const META_END_OFFSET: &str = "auditty.end_offset";

/// One row of the `events` table: one event, or one sealed chunk ([`RowKind::Sealed`],
/// `seq..=seq_last`, `data` = ciphertext).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRow {
    /// The session the event belongs to.
    pub session_id: SessionId,
    /// Sequence number (first of the chunk for sealed rows).
    pub seq: u64,
    /// Last sequence number covered (= `seq` for plaintext rows).
    pub seq_last: u64,
    /// Nanoseconds since session start.
    pub elapsed_ns: u64,
    /// Wall-clock time, UTC nanoseconds since the epoch, to the millisecond (as stored; see
    /// [`event_time_ns`]).
    pub time_ns: i64,
    /// What the row holds; stored as [`RowKind::as_str`] in the `kind` column.
    pub kind: RowKind,
    /// The event's bytes.
    pub data: Vec<u8>,
}

impl EventRow {
    /// The row borrowed, as scans hand rows to observers.
    pub fn borrowed(&self) -> EventRef<'_> {
        EventRef {
            session_id: self.session_id,
            seq: self.seq,
            seq_last: self.seq_last,
            elapsed_ns: self.elapsed_ns,
            time_ns: self.time_ns,
            kind: self.kind.clone(),
            data: &self.data,
        }
    }

    /// The row of a plaintext event of a session that started at `start_time_ns`.
    pub fn from_event(session_id: SessionId, start_time_ns: i64, e: &Event) -> EventRow {
        EventRow {
            session_id,
            seq: e.seq,
            seq_last: e.seq,
            elapsed_ns: e.elapsed_ns,
            time_ns: event_time_ns(start_time_ns, e.elapsed_ns),
            kind: RowKind::Event(e.kind),
            data: e.data.clone(),
        }
    }

    /// The event of this row; `None` for sealed rows and kinds this build does not know.
    pub fn to_event(&self) -> Option<Event> {
        Some(Event {
            seq: self.seq,
            elapsed_ns: self.elapsed_ns,
            kind: self.kind.event()?,
            data: self.data.clone(),
        })
    }
}

/// The `time` of an `events` row: session start + elapsed, truncated to the millisecond
/// (the precision of the column; `elapsed_ns` keeps the nanoseconds).
pub fn event_time_ns(start_time_ns: i64, elapsed_ns: u64) -> i64 {
    let t = start_time_ns.saturating_add_unsigned(elapsed_ns);
    t - t.rem_euclid(1_000_000)
}

/// One row of the `sessions` table: a session's `start` or `end` event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    /// The session.
    pub session_id: SessionId,
    /// [`EventKind::Start`] or [`EventKind::End`].
    pub kind: EventKind,
    /// Sequence number of the event.
    pub seq: u64,
    /// Wall-clock time, UTC nanoseconds since the epoch.
    pub time_ns: i64,
    /// Nanoseconds since session start.
    pub elapsed_ns: u64,
    /// The JSON data of the start/end event, verbatim.
    pub metadata: Vec<u8>,
}

/// What every object we write records in its footer, so that a restarted ingester can find
/// and reuse the cut points it made before (DESIGN.md §4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The ingest source, e.g. `kafka` or `spool`.
    pub source: String,
    /// The partition of the source.
    pub partition: String,
    /// Offset of the first record covered.
    pub first_offset: u64,
    /// Offset just past the last record covered.
    pub end_offset: u64,
}

impl ObjectMeta {
    fn to_key_values(&self, table_version: &str) -> Vec<KeyValue> {
        vec![
            KeyValue::new(META_TABLE_VERSION.to_string(), table_version.to_string()),
            KeyValue::new(META_SOURCE.to_string(), self.source.clone()),
            KeyValue::new(META_PARTITION.to_string(), self.partition.clone()),
            KeyValue::new(META_FIRST_OFFSET.to_string(), self.first_offset.to_string()),
            KeyValue::new(META_END_OFFSET.to_string(), self.end_offset.to_string()),
        ]
    }

    fn from_key_values(key: &str, kvs: Option<&Vec<KeyValue>>) -> Result<ObjectMeta, StoreError> {
        let get = |name: &str| -> Result<&str, StoreError> {
            kvs.into_iter()
                .flatten()
                .find(|kv| kv.key == name)
                .and_then(|kv| kv.value.as_deref())
                .ok_or_else(|| StoreError::parquet(key, format!("footer metadata has no '{name}'")))
        };
        let offset = |name: &str| -> Result<u64, StoreError> {
            let text = get(name)?;
            text.parse().map_err(|_| {
                StoreError::parquet(
                    key,
                    format!("footer metadata '{name}' = '{text}' is not an offset"),
                )
            })
        };
        get(META_TABLE_VERSION)?;
        Ok(ObjectMeta {
            source: get(META_SOURCE)?.to_string(),
            partition: get(META_PARTITION)?.to_string(),
            first_offset: offset(META_FIRST_OFFSET)?,
            end_offset: offset(META_END_OFFSET)?,
        })
    }
}

fn arrow_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Arrow(e.to_string())
}

/// How one table's columns are laid out.
struct Layout<'a> {
    statistics: EnabledStatistics,
    /// Indexes of the columns the rows are sorted by.
    sorted_by: &'a [usize],
    /// Raw byte columns: no statistics, no dictionary, `bytes_encoding`, zstd
    /// [`DATA_ZSTD_LEVEL`].
    no_stats: &'a [&'a str],
    bytes_encoding: Encoding,
    /// Columns stored as deltas.
    delta: &'a [&'a str],
    /// Most rows in one data page.
    page_rows: usize,
}

fn writer_properties(
    meta: &ObjectMeta,
    table_version: &str,
    layout: Layout<'_>,
) -> Result<WriterProperties, StoreError> {
    let Layout {
        statistics,
        sorted_by,
        no_stats,
        bytes_encoding,
        delta,
        page_rows,
    } = layout;
    let session_col = ColumnPath::from(ev::SESSION_ID);
    let sorting = sorted_by
        .iter()
        .map(|&i| {
            Ok(SortingColumn {
                column_idx: i32::try_from(i).map_err(arrow_err)?,
                descending: false,
                nulls_first: false,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(ZSTD_LEVEL).map_err(arrow_err)?,
        ))
        .set_statistics_enabled(statistics)
        // Min/max of long strings (command lines) are kept in the footer three times
        // (chunk statistics, page statistics, column index); a prefix prunes as well.
        .set_statistics_truncate_length(Some(STATS_TRUNCATE_BYTES))
        .set_max_row_group_row_count(Some(MAX_ROW_GROUP_ROWS))
        .set_max_row_group_bytes(Some(MAX_ROW_GROUP_BYTES))
        .set_column_bloom_filter_enabled(session_col.clone(), true)
        .set_column_bloom_filter_fpp(session_col.clone(), BLOOM_FPP)
        // Sized for the worst case; the writer folds the filter down to what was inserted.
        .set_column_bloom_filter_max_ndv(session_col, MAX_ROW_GROUP_ROWS as u64)
        // Pages make the page index useful: a reader after one session fetches the pages
        // whose session_id range holds it, not the whole row group.
        .set_data_page_row_count_limit(page_rows)
        .set_sorting_columns(Some(sorting))
        .set_key_value_metadata(Some(meta.to_key_values(table_version)));
    for col in no_stats {
        // Raw terminal bytes: min/max are useless for pruning and would bloat the footer,
        // and a dictionary of unique blobs only costs (see `bytes_encoding` for the rest).
        builder = builder
            .set_column_statistics_enabled(ColumnPath::from(*col), EnabledStatistics::None)
            .set_column_dictionary_enabled(ColumnPath::from(*col), false)
            .set_column_encoding(ColumnPath::from(*col), bytes_encoding)
            .set_column_compression(
                ColumnPath::from(*col),
                Compression::ZSTD(ZstdLevel::try_new(DATA_ZSTD_LEVEL).map_err(arrow_err)?),
            );
    }
    for col in delta {
        // Sequence numbers and times grow by small steps: as deltas they take a few bits
        // per row instead of 8 bytes (the dictionary would only get in the way).
        builder = builder
            .set_column_dictionary_enabled(ColumnPath::from(*col), false)
            .set_column_encoding(ColumnPath::from(*col), Encoding::DELTA_BINARY_PACKED);
    }
    Ok(builder.build())
}

fn write_batches<T>(
    schema: arrow_schema::SchemaRef,
    props: WriterProperties,
    rows: &[T],
    mut batch_of: impl FnMut(&[T]) -> Result<RecordBatch, StoreError>,
) -> Result<Vec<u8>, StoreError> {
    // No embedded Arrow schema: the Parquet types say everything our columns need (UTC
    // timestamps, unsigned integers, strings), and the base64 Arrow schema was a third of
    // a small object's footer.
    let options = ArrowWriterOptions::new()
        .with_properties(props)
        .with_skip_arrow_metadata(true);
    let mut writer =
        ArrowWriter::try_new_with_options(Vec::new(), schema, options).map_err(arrow_err)?;
    for chunk in rows.chunks(MAX_ROW_GROUP_ROWS) {
        writer.write(&batch_of(chunk)?).map_err(arrow_err)?;
    }
    writer.into_inner().map_err(arrow_err)
}

fn time_array(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from_iter_values(values).with_timezone("UTC"))
}

fn event_time_array(values_ns: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(
        TimestampMillisecondArray::from_iter_values(values_ns.map(|t| t.div_euclid(1_000_000)))
            .with_timezone("UTC"),
    )
}

/// The `time` column of an `events` batch: milliseconds (table version 2) or nanoseconds
/// (version 1 objects, still read).
enum EventTimes<'a> {
    Millis(&'a TimestampMillisecondArray),
    Nanos(&'a TimestampNanosecondArray),
}

impl EventTimes<'_> {
    fn read<'a>(key: &str, batch: &'a RecordBatch) -> Result<EventTimes<'a>, StoreError> {
        match required::<TimestampMillisecondArray>(key, batch, ev::TIME) {
            Ok(a) => Ok(EventTimes::Millis(a)),
            Err(e) => match required::<TimestampNanosecondArray>(key, batch, ev::TIME) {
                Ok(a) => Ok(EventTimes::Nanos(a)),
                Err(_) => Err(e),
            },
        }
    }

    fn ns(&self, i: usize) -> i64 {
        match self {
            EventTimes::Millis(a) => a.value(i).saturating_mul(1_000_000),
            EventTimes::Nanos(a) => a.value(i),
        }
    }
}

/// Rows at most this long on average are stored with [`Encoding::PLAIN`] `data`.
const KEYSTROKE_ROW_BYTES: usize = 64;

/// How to encode the `data` column of `rows` rows holding `bytes` bytes. Measured on the
/// bench's sessions (bench/README.md), zstd 9 after the encoding: output of a few KiB per
/// row compresses better with the lengths apart from the bytes (DELTA_LENGTH_BYTE_ARRAY),
/// keystrokes and their echoes better with each length next to its byte (PLAIN, where
/// the bit-packed length deltas of DELTA_LENGTH would cost more than the bytes).
/// The mean row decides, since it follows where the bytes are.
fn data_encoding(bytes: usize, rows: usize) -> Encoding {
    if bytes <= rows.saturating_mul(KEYSTROKE_ROW_BYTES) {
        Encoding::PLAIN
    } else {
        Encoding::DELTA_LENGTH_BYTE_ARRAY
    }
}

/// Most rows in one page of an `events` object whose `rows` rows hold `bytes` bytes of
/// `data`: about [`PAGE_DATA_BYTES`] of data per page, at least [`PAGE_ROWS`] rows, at
/// most a row group. Each page is compressed on its own, so pages of 4096 keystrokes
/// (~30 KB) left zstd little to work with: on the bench's interactive session, one page
/// per column instead of three made `data` clearly smaller (bench/README.md). Pruning loses
/// nothing that matters there, since a page of keystrokes is a few KB at rest; objects of
/// bulk output keep 4096-row pages (their `data` pages are cut at 1 MiB anyway).
fn page_rows(bytes: usize, rows: usize) -> usize {
    let mean = bytes.div_ceil(rows.max(1)).max(1);
    (PAGE_DATA_BYTES / mean).clamp(PAGE_ROWS, MAX_ROW_GROUP_ROWS)
}

/// The elapsed-time column of an `events` batch: microseconds (table version 3) or
/// nanoseconds (earlier versions, and events not recorded to whole microseconds).
enum Elapsed<'a> {
    Micros(&'a UInt64Array),
    Nanos(&'a UInt64Array),
}

impl Elapsed<'_> {
    fn read<'a>(key: &str, batch: &'a RecordBatch) -> Result<Elapsed<'a>, StoreError> {
        match required::<UInt64Array>(key, batch, ev::ELAPSED_US) {
            Ok(a) => Ok(Elapsed::Micros(a)),
            Err(e) => match required::<UInt64Array>(key, batch, ev::ELAPSED_NS) {
                Ok(a) => Ok(Elapsed::Nanos(a)),
                Err(_) => Err(e),
            },
        }
    }

    fn ns(&self, i: usize) -> u64 {
        match self {
            Elapsed::Micros(a) => a.value(i).saturating_mul(1000),
            Elapsed::Nanos(a) => a.value(i),
        }
    }
}

/// Sorts `rows` by (session id, seq) and encodes them as an `events` object: zstd, page
/// statistics, a bloom filter on `session_id`, row groups of at most
/// [`MAX_ROW_GROUP_ROWS`] rows, footer metadata from `meta`.
pub fn encode_events(rows: &mut [EventRow], meta: &ObjectMeta) -> Result<Vec<u8>, StoreError> {
    // SessionId orders like its hyphenated lowercase text (fixed-width hex, '0'-'9' < 'a'-'f'),
    // so this is the order of the session_id column without formatting every id.
    rows.sort_by_key(|r| (r.session_id, r.seq));
    // Microseconds unless that would round a recorded time (schemas::arrow::TABLE_VERSION).
    let elapsed_ns = rows.iter().any(|r| r.elapsed_ns % 1000 != 0);
    let (version, elapsed_col) = if elapsed_ns {
        (schemas::arrow::TABLE_VERSION_ELAPSED_NS, ev::ELAPSED_NS)
    } else {
        (schemas::arrow::TABLE_VERSION, ev::ELAPSED_US)
    };
    let schema = schemas::arrow::events_schema(elapsed_ns);
    let data_bytes: usize = rows.iter().map(|r| r.data.len()).sum();
    let props = writer_properties(
        meta,
        version,
        Layout {
            statistics: EnabledStatistics::Page,
            sorted_by: &[0, 1],
            no_stats: &[ev::DATA],
            bytes_encoding: data_encoding(data_bytes, rows.len()),
            delta: &[ev::SEQ, ev::SEQ_LAST, elapsed_col, ev::TIME],
            page_rows: page_rows(data_bytes, rows.len()),
        },
    )?;
    write_batches(schema.clone(), props, rows, |chunk| {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|r| r.session_id.to_string()),
            )),
            Arc::new(UInt64Array::from_iter_values(chunk.iter().map(|r| r.seq))),
            Arc::new(UInt64Array::from_iter_values(
                chunk.iter().map(|r| r.seq_last),
            )),
            Arc::new(UInt64Array::from_iter_values(chunk.iter().map(|r| {
                if elapsed_ns {
                    r.elapsed_ns
                } else {
                    r.elapsed_ns / 1000
                }
            }))),
            event_time_array(chunk.iter().map(|r| r.time_ns)),
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|r| r.kind.as_str()),
            )),
            Arc::new(BinaryArray::from_iter_values(
                chunk.iter().map(|r| r.data.as_slice()),
            )),
        ];
        RecordBatch::try_new(schema.clone(), columns).map_err(arrow_err)
    })
}

/// The flattened columns of a sessions row, parsed from its metadata; all `None` when the
/// metadata does not parse, since a reader still has the raw JSON.
#[derive(Default)]
struct Flat {
    user: Option<String>,
    host: Option<String>,
    command: Option<String>,
    exit_status: Option<i32>,
    end_reason: Option<&'static str>,
    event_count: Option<u64>,
}

fn flatten(row: &SessionRow) -> Flat {
    match row.kind {
        EventKind::Start => match SessionStart::from_bytes(&row.metadata) {
            Ok(s) => Flat {
                command: Some(s.command_line()),
                user: Some(s.user),
                host: Some(s.host),
                ..Flat::default()
            },
            Err(_) => Flat::default(),
        },
        EventKind::End => match SessionEnd::from_bytes(&row.metadata) {
            Ok(e) => Flat {
                exit_status: e.exit_status,
                end_reason: Some(e.reason.as_str()),
                event_count: Some(e.event_count),
                ..Flat::default()
            },
            Err(_) => Flat::default(),
        },
        _ => Flat::default(),
    }
}

/// Sorts `rows` by (session id, seq) and encodes them as a `sessions` object, with the
/// same properties as [`encode_events`]. `user`, `host`, `command`, `exit_status`,
/// `end_reason` and `event_count` are parsed from the metadata (null when it does not
/// parse); the `metadata` column is the JSON text.
pub fn encode_sessions(rows: &mut [SessionRow], meta: &ObjectMeta) -> Result<Vec<u8>, StoreError> {
    rows.sort_by_key(|r| (r.session_id, r.seq));
    let schema = schemas::arrow::sessions_schema();
    let props = writer_properties(
        meta,
        schemas::arrow::TABLE_VERSION,
        Layout {
            // Two rows per session: a page index would mostly repeat the chunk
            // statistics (a third of a one-session object).
            statistics: EnabledStatistics::Chunk,
            sorted_by: &[0, 2],
            no_stats: &[ss::METADATA],
            bytes_encoding: Encoding::DELTA_LENGTH_BYTE_ARRAY,
            delta: &[ss::SEQ, ss::TIME, ss::ELAPSED_NS],
            page_rows: PAGE_ROWS,
        },
    )?;
    write_batches(schema.clone(), props, rows, |chunk| {
        let flat: Vec<Flat> = chunk.iter().map(flatten).collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|r| r.session_id.to_string()),
            )),
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|r| r.kind.as_str()),
            )),
            Arc::new(UInt64Array::from_iter_values(chunk.iter().map(|r| r.seq))),
            time_array(chunk.iter().map(|r| r.time_ns)),
            Arc::new(UInt64Array::from_iter_values(
                chunk.iter().map(|r| r.elapsed_ns),
            )),
            Arc::new(StringArray::from_iter(
                flat.iter().map(|f| f.user.as_deref()),
            )),
            Arc::new(StringArray::from_iter(
                flat.iter().map(|f| f.host.as_deref()),
            )),
            Arc::new(StringArray::from_iter(
                flat.iter().map(|f| f.command.as_deref()),
            )),
            Arc::new(Int32Array::from_iter(flat.iter().map(|f| f.exit_status))),
            Arc::new(StringArray::from_iter(flat.iter().map(|f| f.end_reason))),
            Arc::new(UInt64Array::from_iter(flat.iter().map(|f| f.event_count))),
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|r| String::from_utf8_lossy(&r.metadata)),
            )),
        ];
        RecordBatch::try_new(schema.clone(), columns).map_err(arrow_err)
    })
}

/// Runs a decoder, turning a panic inside the Parquet reader into an error: the reader
/// parses untrusted bytes and its robustness on damaged input is not guaranteed.
pub(crate) fn guarded<T>(
    key: &str,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown cause".to_string());
            Err(StoreError::parquet(
                key,
                format!("the Parquet reader failed: {what}"),
            ))
        }
    }
}

fn column<'a, T: 'static>(
    key: &str,
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a T, StoreError> {
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| StoreError::parquet(key, format!("column '{name}' is missing")))?;
    array.as_any().downcast_ref::<T>().ok_or_else(|| {
        StoreError::parquet(
            key,
            format!(
                "column '{name}' has type {}, not the one auditty writes",
                array.data_type()
            ),
        )
    })
}

/// A required column: present, of the expected type, without nulls.
fn required<'a, T: Array + 'static>(
    key: &str,
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a T, StoreError> {
    let array = column::<T>(key, batch, name)?;
    if array.null_count() > 0 {
        return Err(StoreError::parquet(
            key,
            format!("column '{name}' has nulls"),
        ));
    }
    Ok(array)
}

/// Parses session id texts, remembering the last one: rows are sorted by session, so
/// consecutive rows nearly always repeat it.
struct IdCache {
    text: String,
    id: Option<SessionId>,
}

impl IdCache {
    fn new() -> Self {
        IdCache {
            text: String::new(),
            id: None,
        }
    }

    fn parse(&mut self, key: &str, text: &str) -> Result<SessionId, StoreError> {
        if let Some(id) = self.id.filter(|_| self.text == text) {
            return Ok(id);
        }
        let id = SessionId::from_str(text).map_err(|_| {
            StoreError::parquet(
                key,
                format!("session_id '{}' is not a UUID", text.escape_debug()),
            )
        })?;
        self.text.clear();
        self.text.push_str(text);
        self.id = Some(id);
        Ok(id)
    }
}

fn open(key: &str, bytes: &[u8]) -> Result<ParquetRecordBatchReaderBuilder<Bytes>, StoreError> {
    ParquetRecordBatchReaderBuilder::try_new(Bytes::copy_from_slice(bytes))
        .map_err(|e| StoreError::parquet(key, e))
}

/// Row groups that may hold `id`: not excluded by the `session_id` min/max statistics nor
/// by its bloom filter.
fn candidate_row_groups(
    key: &str,
    builder: &ParquetRecordBatchReaderBuilder<Bytes>,
    id: SessionId,
) -> Result<Vec<usize>, StoreError> {
    let target = id.to_string();
    let col = builder
        .parquet_schema()
        .columns()
        .iter()
        .position(|c| c.path().parts() == [ev::SESSION_ID])
        .ok_or_else(|| StoreError::parquet(key, "column 'session_id' is missing"))?;
    let mut keep = Vec::new();
    for (i, rg) in builder.metadata().row_groups().iter().enumerate() {
        let Some(chunk) = rg.columns().get(col) else {
            return Err(StoreError::parquet(
                key,
                format!("row group {i} lacks column session_id"),
            ));
        };
        let bounds = chunk
            .statistics()
            .and_then(|s| Some((s.min_bytes_opt()?, s.max_bytes_opt()?)));
        if bounds.is_some_and(|(min, max)| target.as_bytes() < min || target.as_bytes() > max) {
            continue;
        }
        let bloom = builder
            .get_row_group_column_bloom_filter(i, col)
            .map_err(|e| StoreError::parquet(key, e))?;
        if bloom.is_some_and(|b| !b.check(target.as_str())) {
            continue;
        }
        keep.push(i);
    }
    Ok(keep)
}

/// A borrowed events row, so that scans over many objects need not copy every payload.
/// The fields mean what they mean in [`EventRow`].
#[derive(Debug)]
pub struct EventRef<'a> {
    /// The session the row belongs to.
    pub session_id: SessionId,
    /// Sequence number (first of the chunk for sealed rows).
    pub seq: u64,
    /// Last sequence number covered (= `seq` for plaintext rows).
    pub seq_last: u64,
    /// Nanoseconds since session start.
    pub elapsed_ns: u64,
    /// Wall-clock time, UTC nanoseconds, to the millisecond.
    pub time_ns: i64,
    /// What the row holds.
    pub kind: RowKind,
    /// The row's bytes, borrowed from the decoded batch.
    pub data: &'a [u8],
}

impl EventRef<'_> {
    /// The row with its own copy of the bytes.
    pub fn to_row(&self) -> EventRow {
        EventRow {
            session_id: self.session_id,
            seq: self.seq,
            seq_last: self.seq_last,
            elapsed_ns: self.elapsed_ns,
            time_ns: self.time_ns,
            kind: self.kind.clone(),
            data: self.data.to_vec(),
        }
    }
}

/// Calls `f` for every row of an events object (of one session with `Some(id)`), without
/// copying payloads: the whole-store scans of the catalog use it. `key` is for error
/// messages.
pub fn scan_events(
    key: &str,
    bytes: &[u8],
    session: Option<SessionId>,
    f: impl FnMut(EventRef<'_>),
) -> Result<(), StoreError> {
    guarded(key, || {
        let mut builder = open(key, bytes)?;
        if let Some(id) = session {
            let groups = candidate_row_groups(key, &builder, id)?;
            if groups.is_empty() {
                return Ok(());
            }
            builder = builder.with_row_groups(groups);
        }
        scan_event_batches(key, builder, session, f)
    })
}

/// Calls `f` for every row (of one session with `Some(id)`) that `builder` yields. The
/// caller chooses the row groups; this is shared by whole-object and ranged reads.
pub(crate) fn scan_event_batches<T: ChunkReader + 'static>(
    key: &str,
    builder: ParquetRecordBatchReaderBuilder<T>,
    session: Option<SessionId>,
    mut f: impl FnMut(EventRef<'_>),
) -> Result<(), StoreError> {
    guarded(key, || {
        let target = session.map(|id| id.to_string());
        let reader = builder.build().map_err(|e| StoreError::parquet(key, e))?;
        let mut ids = IdCache::new();
        for batch in reader {
            let batch = batch.map_err(|e| StoreError::parquet(key, e))?;
            let session_id = required::<StringArray>(key, &batch, ev::SESSION_ID)?;
            let seq = required::<UInt64Array>(key, &batch, ev::SEQ)?;
            let seq_last = required::<UInt64Array>(key, &batch, ev::SEQ_LAST)?;
            let elapsed = Elapsed::read(key, &batch)?;
            let time = EventTimes::read(key, &batch)?;
            let kind = required::<StringArray>(key, &batch, ev::KIND)?;
            let data = required::<BinaryArray>(key, &batch, ev::DATA)?;
            for i in 0..batch.num_rows() {
                let text = session_id.value(i);
                if target.as_deref().is_some_and(|t| t != text) {
                    continue;
                }
                f(EventRef {
                    session_id: ids.parse(key, text)?,
                    seq: seq.value(i),
                    seq_last: seq_last.value(i),
                    elapsed_ns: elapsed.ns(i),
                    time_ns: time.ns(i),
                    kind: RowKind::from_name(kind.value(i)),
                    data: data.value(i),
                });
            }
        }
        Ok(())
    })
}

/// Reads the rows of an `events` object. With `Some(id)`, skips row groups whose
/// `session_id` statistics or bloom filter exclude it and returns only its rows. `key` is
/// for error messages.
pub fn decode_events(
    key: &str,
    bytes: &[u8],
    session: Option<SessionId>,
) -> Result<Vec<EventRow>, StoreError> {
    let mut rows = Vec::new();
    scan_events(key, bytes, session, |r| rows.push(r.to_row()))?;
    Ok(rows)
}

/// Reads the rows of a `sessions` object. Rows of a kind this build does not know are
/// skipped (and logged), so that a newer writer's extra rows do not hide a whole object.
pub fn decode_sessions(key: &str, bytes: &[u8]) -> Result<Vec<SessionRow>, StoreError> {
    guarded(key, || decode_session_batches(key, open(key, bytes)?, None))
}

/// The `sessions` rows (of one session with `Some(id)`) that `builder` yields; shared by
/// whole-object and ranged reads.
pub(crate) fn decode_session_batches<T: ChunkReader + 'static>(
    key: &str,
    builder: ParquetRecordBatchReaderBuilder<T>,
    session: Option<SessionId>,
) -> Result<Vec<SessionRow>, StoreError> {
    guarded(key, || {
        let target = session.map(|id| id.to_string());
        let reader = builder.build().map_err(|e| StoreError::parquet(key, e))?;
        let mut rows = Vec::new();
        let mut ids = IdCache::new();
        let mut unknown = 0usize;
        for batch in reader {
            let batch = batch.map_err(|e| StoreError::parquet(key, e))?;
            let session_id = required::<StringArray>(key, &batch, ss::SESSION_ID)?;
            let kind = required::<StringArray>(key, &batch, ss::KIND)?;
            let seq = required::<UInt64Array>(key, &batch, ss::SEQ)?;
            let time = required::<TimestampNanosecondArray>(key, &batch, ss::TIME)?;
            let elapsed = required::<UInt64Array>(key, &batch, ss::ELAPSED_NS)?;
            let metadata = required::<StringArray>(key, &batch, ss::METADATA)?;
            for i in 0..batch.num_rows() {
                if target.as_deref().is_some_and(|t| t != session_id.value(i)) {
                    continue;
                }
                let Some(k) = EventKind::from_name(kind.value(i)) else {
                    unknown += 1;
                    continue;
                };
                rows.push(SessionRow {
                    session_id: ids.parse(key, session_id.value(i))?,
                    kind: k,
                    seq: seq.value(i),
                    time_ns: time.value(i),
                    elapsed_ns: elapsed.value(i),
                    metadata: metadata.value(i).as_bytes().to_vec(),
                });
            }
        }
        if unknown > 0 {
            tracing::warn!(
                key,
                rows = unknown,
                "skipped sessions rows of an unknown kind"
            );
        }
        Ok(rows)
    })
}

/// The footer metadata of an object we wrote.
pub fn read_object_meta(key: &str, bytes: &[u8]) -> Result<ObjectMeta, StoreError> {
    guarded(key, || {
        let metadata = ParquetMetaDataReader::new()
            .parse_and_finish(&Bytes::copy_from_slice(bytes))
            .map_err(|e| StoreError::parquet(key, e))?;
        ObjectMeta::from_key_values(key, metadata.file_metadata().key_value_metadata())
    })
}

/// Length of the Parquet footer tail: metadata length (4 bytes) and magic (4 bytes).
const FOOTER_TAIL: u64 = 8;
/// Length of the magic at the start of a Parquet file.
const HEAD_MAGIC: u64 = 4;

/// [`read_object_meta`] fetching only the footer, so that an ingester taking over a
/// partition can inspect many objects without downloading them (which matters on S3).
pub fn read_object_meta_at(store: &dyn ObjectStore, key: &str) -> Result<ObjectMeta, StoreError> {
    let size = store.size(key)?;
    if size < HEAD_MAGIC + FOOTER_TAIL {
        return Err(StoreError::parquet(
            key,
            format!("{size} bytes is too short for Parquet"),
        ));
    }
    let tail = store.get_range(key, size - FOOTER_TAIL..size)?;
    let footer = FooterTail::try_from(tail.as_slice()).map_err(|e| StoreError::parquet(key, e))?;
    let len = footer.metadata_length() as u64;
    if footer.is_encrypted_footer() || len > size - HEAD_MAGIC - FOOTER_TAIL {
        return Err(StoreError::parquet(
            key,
            "the footer length does not fit the file",
        ));
    }
    let buf = store.get_range(key, size - FOOTER_TAIL - len..size - FOOTER_TAIL)?;
    guarded(key, || {
        let metadata = ParquetMetaDataReader::decode_metadata(&buf)
            .map_err(|e| StoreError::parquet(key, e))?;
        ObjectMeta::from_key_values(key, metadata.file_metadata().key_value_metadata())
    })
}

#[cfg(test)]
pub(crate) mod tests;
