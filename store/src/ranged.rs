//! Reading Parquet objects piecewise: the footer, then only the column chunks (and bloom
//! filters) of the row groups a reader needs, with ranged GETs. On S3 this is the
//! difference between a few kilobytes and the whole object per lookup.
//!
//! [`footer`] fetches the last [`SUFFIX_GUESS`] bytes in one request (which usually holds
//! the whole footer, and all of a small object) and caches the decoded metadata per
//! process. [`Fetched`] is a sparse in-memory copy of an object, made of the ranges fetched
//! so far, that the Parquet reader reads from; asking it for bytes that were not fetched
//! is an error, never a hidden request.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use arrow_array::{Array, StringArray};
use bytes::Bytes;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
    RowSelectionPolicy, RowSelector,
};
use parquet::bloom_filter::Sbbf;
use parquet::errors::ParquetError;

use parquet::file::metadata::{
    FooterTail, PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader,
};
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::reader::{ChunkReader, Length};
use schemas::SessionId;

use crate::{ObjectStore, StoreError};

/// Bytes read from the end of an object to find its footer and page index (which sits
/// right before it). Both are a few KiB per row group for our objects, so this covers
/// most in one request; a larger footer costs one more.
const SUFFIX_GUESS: u64 = 32 << 10;
/// Footers kept per process.
const CACHE_MAX: usize = 1024;
/// Two wanted ranges closer than this are fetched as one: a request costs more than
/// this many bytes of transfer.
const COALESCE_GAP: u64 = 64 << 10;
/// Parquet footer tail (metadata length + magic) and head magic.
const FOOTER_TAIL: u64 = 8;
const HEAD_MAGIC: u64 = 4;

/// An object's decoded footer and the bytes fetched to read it.
pub(crate) struct Footer {
    metadata: Arc<ParquetMetaData>,
    size: u64,
    tail_start: u64,
    tail: Bytes,
}

type Cache = Mutex<Option<HashMap<String, Arc<Footer>>>>;
static CACHE: Cache = Mutex::new(None);

/// The footer of `key`, from the cache or with one (rarely two) ranged reads.
pub(crate) fn footer(store: &dyn ObjectStore, key: &str) -> Result<Arc<Footer>, StoreError> {
    let cache_key = format!("{}\u{0}{key}", store.describe());
    if let Ok(guard) = CACHE.lock()
        && let Some(found) = guard.as_ref().and_then(|m| m.get(&cache_key))
    {
        return Ok(Arc::clone(found));
    }
    let (tail, size) = store.get_suffix(key, SUFFIX_GUESS)?;
    let tail = Bytes::from(tail);
    let tail_len = tail.len() as u64;
    if size < HEAD_MAGIC + FOOTER_TAIL || tail_len < FOOTER_TAIL {
        return Err(StoreError::parquet(
            key,
            format!("{size} bytes is too short for Parquet"),
        ));
    }
    let end = &tail[tail.len() - FOOTER_TAIL as usize..];
    let footer_tail = FooterTail::try_from(end).map_err(|e| StoreError::parquet(key, e))?;
    let len = footer_tail.metadata_length() as u64;
    if footer_tail.is_encrypted_footer() || len > size - HEAD_MAGIC - FOOTER_TAIL {
        return Err(StoreError::parquet(
            key,
            "the footer length does not fit the file",
        ));
    }
    let tail_start = size - tail_len;
    let meta_start = size - FOOTER_TAIL - len;
    let buf = if meta_start >= tail_start {
        tail.slice((meta_start - tail_start) as usize..(tail.len() - FOOTER_TAIL as usize))
    } else {
        // A footer larger than the guess: fetch the part before what we have.
        let mut head = store.get_range(key, meta_start..tail_start)?;
        head.extend_from_slice(&tail[..tail.len() - FOOTER_TAIL as usize]);
        Bytes::from(head)
    };
    let metadata = crate::parquet_io::guarded(key, || {
        ParquetMetaDataReader::decode_metadata(&buf).map_err(|e| StoreError::parquet(key, e))
    })?;
    let (metadata, tail_start, tail) =
        with_page_index(store, key, metadata, size, tail_start, tail)?;
    let footer = Arc::new(Footer {
        metadata: Arc::new(metadata),
        size,
        tail_start,
        tail,
    });
    if let Ok(mut guard) = CACHE.lock() {
        let map = guard.get_or_insert_with(HashMap::new);
        if map.len() >= CACHE_MAX {
            map.clear();
        }
        map.insert(cache_key, Arc::clone(&footer));
    }
    Ok(footer)
}

/// Adds the page index (per-page `session_id` min/max and page locations, written before
/// the footer) to `metadata`, fetching the bytes before `tail` if it is not all there.
/// An object without one is read by row groups only.
fn with_page_index(
    store: &dyn ObjectStore,
    key: &str,
    metadata: ParquetMetaData,
    size: u64,
    tail_start: u64,
    tail: Bytes,
) -> Result<(ParquetMetaData, u64, Bytes), StoreError> {
    let parse = |metadata: ParquetMetaData, tail: &Bytes| {
        crate::parquet_io::guarded(key, || {
            let mut reader = ParquetMetaDataReader::new_with_metadata(metadata)
                .with_page_index_policy(PageIndexPolicy::Optional);
            match reader.read_page_indexes_sized(tail, size) {
                Ok(()) => reader
                    .finish()
                    .map(Ok)
                    .map_err(|e| StoreError::parquet(key, e)),
                Err(ParquetError::NeedMoreData(n)) => Ok(Err(n as u64)),
                Err(e) => Err(StoreError::parquet(key, e)),
            }
        })
    };
    match parse(metadata.clone(), &tail)? {
        Ok(with) => Ok((with, tail_start, tail)),
        Err(needed) => {
            let start = size.saturating_sub(needed);
            if start >= tail_start {
                return Ok((metadata, tail_start, tail));
            }
            let mut bytes = store.get_range(key, start..tail_start)?;
            bytes.extend_from_slice(&tail);
            let tail = Bytes::from(bytes);
            match parse(metadata.clone(), &tail)? {
                Ok(with) => Ok((with, start, tail)),
                Err(_) => Ok((metadata, tail_start, tail)),
            }
        }
    }
}

/// The parts of an object fetched so far, as a [`ChunkReader`].
pub(crate) struct Fetched {
    size: u64,
    pieces: Vec<(u64, Bytes)>,
}

impl Fetched {
    fn piece(&self, start: u64, len: u64) -> Option<Bytes> {
        self.pieces.iter().find_map(|(at, bytes)| {
            let end = at + bytes.len() as u64;
            (start >= *at && start + len <= end)
                .then(|| bytes.slice((start - at) as usize..(start - at + len) as usize))
        })
    }
}

impl Length for Fetched {
    fn len(&self) -> u64 {
        self.size
    }
}

impl ChunkReader for Fetched {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        use bytes::Buf;
        // The rest of the piece holding `start`: page headers are read from here.
        self.pieces
            .iter()
            .find(|(at, b)| start >= *at && start < at + b.len() as u64)
            .map(|(at, b)| b.slice((start - at) as usize..).reader())
            .ok_or_else(|| ParquetError::General(format!("byte {start} was not fetched")))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.piece(start, length as u64).ok_or_else(|| {
            ParquetError::General(format!(
                "bytes {start}..{} were not fetched",
                start + length as u64
            ))
        })
    }
}

/// Fetches `ranges` of `key` (those not already in the footer's tail), coalescing close
/// ones, and returns everything as one sparse object.
fn fetch(
    store: &dyn ObjectStore,
    key: &str,
    footer: &Footer,
    mut ranges: Vec<Range<u64>>,
) -> Result<Fetched, StoreError> {
    ranges.retain(|r| r.start < r.end && r.start < footer.tail_start);
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<u64>> = Vec::new();
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start <= last.end + COALESCE_GAP => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    let mut pieces = vec![(footer.tail_start, footer.tail.clone())];
    for r in merged {
        let end = r.end.min(footer.size);
        pieces.push((r.start, Bytes::from(store.get_range(key, r.start..end)?)));
    }
    Ok(Fetched {
        size: footer.size,
        pieces,
    })
}

fn session_column(key: &str, metadata: &ParquetMetaData) -> Result<usize, StoreError> {
    metadata
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.path().parts() == [schemas::arrow::events::SESSION_ID])
        .ok_or_else(|| StoreError::parquet(key, "column 'session_id' is missing"))
}

/// Which session ids a row-group search is after.
#[derive(Clone, Copy)]
pub(crate) enum Wanted<'a> {
    /// Exactly this id (statistics and bloom filter prune).
    Id(&'a str),
    /// Ids starting with this text (statistics prune).
    Prefix(&'a str),
}

/// Row groups whose `session_id` statistics (and, for one id, bloom filter) do not rule
/// out what is wanted. Bloom filters are fetched only where they can save more than they
/// cost: when the group's data is much larger than its filter.
fn candidate_groups(
    store: &dyn ObjectStore,
    key: &str,
    footer: &Footer,
    wanted: Wanted<'_>,
    projected: &dyn Fn(usize) -> Vec<Range<u64>>,
) -> Result<Vec<usize>, StoreError> {
    let col = session_column(key, &footer.metadata)?;
    let mut keep = Vec::new();
    let mut blooms = Vec::new();
    for (i, rg) in footer.metadata.row_groups().iter().enumerate() {
        let chunk = rg
            .columns()
            .get(col)
            .ok_or_else(|| StoreError::parquet(key, format!("row group {i} lacks session_id")))?;
        let bounds = chunk
            .statistics()
            .and_then(|s| Some((s.min_bytes_opt()?, s.max_bytes_opt()?)));
        if let Some((min, max)) = bounds {
            let out = match wanted {
                Wanted::Id(t) => t.as_bytes() < min || t.as_bytes() > max,
                Wanted::Prefix(p) => {
                    // Every id with prefix p lies in [p, p + anything]; min beyond p that
                    // does not itself start with p is beyond all of them.
                    max < p.as_bytes() || (min > p.as_bytes() && !min.starts_with(p.as_bytes()))
                }
            };
            if out {
                continue;
            }
        }
        if let (Wanted::Id(_), Some(off), Some(len)) = (
            wanted,
            chunk.bloom_filter_offset(),
            chunk.bloom_filter_length(),
        ) {
            let data: u64 = projected(i).iter().map(|r| r.end - r.start).sum();
            if let (Ok(off), Ok(len)) = (u64::try_from(off), u64::try_from(len))
                && data > 4 * len
            {
                blooms.push((i, off..off + len));
                continue;
            }
        }
        keep.push(i);
    }
    if !blooms.is_empty() {
        let fetched = fetch(
            store,
            key,
            footer,
            blooms.iter().map(|(_, r)| r.clone()).collect(),
        )?;
        for (i, r) in blooms {
            let bytes = fetched
                .get_bytes(r.start, (r.end - r.start) as usize)
                .map_err(|e| StoreError::parquet(key, e))?;
            let Wanted::Id(t) = wanted else { continue };
            match Sbbf::from_bytes(&bytes) {
                Ok(bloom) if !bloom.check(t) => {}
                // A damaged filter must not hide rows: read the group.
                _ => keep.push(i),
            }
        }
        keep.sort_unstable();
    }
    Ok(keep)
}

/// Byte ranges of the column chunks `columns` (all when `None`) of row group `i`.
fn chunk_ranges(
    metadata: &ParquetMetaData,
    i: usize,
    columns: Option<&[usize]>,
) -> Vec<Range<u64>> {
    let rg = metadata.row_group(i);
    rg.columns()
        .iter()
        .enumerate()
        .filter(|(c, _)| columns.is_none_or(|cols| cols.contains(c)))
        .map(|(_, c)| {
            let (start, len) = c.byte_range();
            start..start + len
        })
        .collect()
}

/// Rows of row group `rg` (relative to it) in pages whose `session_id` min/max admit
/// `id`, as sorted disjoint ranges; `None` when the object has no page index for it.
fn pages_for_id(
    metadata: &ParquetMetaData,
    rg: usize,
    col: usize,
    id: &str,
) -> Option<Vec<Range<u64>>> {
    let index = metadata.page_index_for_row_group(rg);
    let ColumnIndexMetaData::BYTE_ARRAY(ci) = index.column_index(col)? else {
        return None;
    };
    let pages = index.offset_index(col)?.page_locations();
    let rows = u64::try_from(metadata.row_group(rg).num_rows()).ok()?;
    let mut out: Vec<Range<u64>> = Vec::new();
    for (p, loc) in pages.iter().enumerate() {
        let admits = match (ci.min_value(p), ci.max_value(p)) {
            (Some(min), Some(max)) => min <= id.as_bytes() && id.as_bytes() <= max,
            _ => true,
        };
        if !admits {
            continue;
        }
        let start = u64::try_from(loc.first_row_index).ok()?;
        let end = match pages.get(p + 1) {
            Some(next) => u64::try_from(next.first_row_index).ok()?,
            None => rows,
        };
        match out.last_mut() {
            Some(last) if last.end == start => last.end = end,
            _ => out.push(start..end),
        }
    }
    Some(out)
}

/// Byte ranges of column `c` of row group `rg` that hold the rows `rows`: its dictionary
/// page and the data pages overlapping them (the whole chunk without an offset index).
fn column_pages(
    metadata: &ParquetMetaData,
    rg: usize,
    c: usize,
    rows: &[Range<u64>],
) -> Vec<Range<u64>> {
    let chunk = metadata.row_group(rg).column(c);
    let (start, len) = chunk.byte_range();
    let whole = std::iter::once(start..start + len).collect::<Vec<_>>();
    let index = metadata.page_index_for_row_group(rg);
    let Some(offsets) = index.offset_index(c) else {
        return whole;
    };
    let pages = offsets.page_locations();
    let Ok(total) = u64::try_from(metadata.row_group(rg).num_rows()) else {
        return whole;
    };
    let mut out = Vec::new();
    if let Some(first) = pages.first().and_then(|p| u64::try_from(p.offset).ok())
        && first > start
    {
        out.push(start..first); // dictionary page
    }
    for (p, loc) in pages.iter().enumerate() {
        let (Ok(first_row), Ok(offset), Ok(size)) = (
            u64::try_from(loc.first_row_index),
            u64::try_from(loc.offset),
            u64::try_from(loc.compressed_page_size),
        ) else {
            return whole;
        };
        let end_row = pages
            .get(p + 1)
            .and_then(|n| u64::try_from(n.first_row_index).ok())
            .unwrap_or(total);
        if rows.iter().any(|r| r.start < end_row && first_row < r.end) {
            out.push(offset..offset + size);
        }
    }
    out
}

/// A reader over the chosen row groups (and columns) of `key`, everything it needs
/// fetched up front. `None` when no row group can hold what is wanted. For one id, and
/// when the object has a page index, only the pages whose `session_id` range admits the
/// id are fetched and read (a row selection), not whole row groups.
fn reader_for(
    store: &dyn ObjectStore,
    key: &str,
    wanted: Wanted<'_>,
    columns: Option<&[usize]>,
) -> Result<Option<ParquetRecordBatchReaderBuilder<Fetched>>, StoreError> {
    let footer = footer(store, key)?;
    let metadata = &footer.metadata;
    let col = session_column(key, metadata)?;
    let all_columns: Vec<usize> =
        (0..metadata.file_metadata().schema_descr().num_columns()).collect();
    let wanted_columns = columns.unwrap_or(&all_columns);
    // Per row group: the rows to read (None = all of them).
    let rows_of = |i: usize| match wanted {
        Wanted::Id(id) => pages_for_id(metadata, i, col, id),
        Wanted::Prefix(_) => None,
    };
    let projected = |i: usize| -> Vec<Range<u64>> {
        match rows_of(i) {
            Some(rows) => wanted_columns
                .iter()
                .flat_map(|&c| column_pages(metadata, i, c, &rows))
                .collect(),
            None => chunk_ranges(metadata, i, columns),
        }
    };
    let groups = candidate_groups(store, key, &footer, wanted, &projected)?;
    let mut selectors = Vec::new();
    let mut ranges = Vec::new();
    let mut kept = Vec::new();
    for &i in &groups {
        let total = u64::try_from(metadata.row_group(i).num_rows()).unwrap_or(0);
        let rows = rows_of(i).unwrap_or_else(|| std::iter::once(0..total).collect());
        if rows.is_empty() {
            continue;
        }
        kept.push(i);
        ranges.extend(projected(i));
        let mut at = 0u64;
        for r in rows {
            if r.start > at {
                selectors.push(RowSelector::skip((r.start - at) as usize));
            }
            selectors.push(RowSelector::select((r.end - r.start) as usize));
            at = r.end;
        }
        if total > at {
            selectors.push(RowSelector::skip((total - at) as usize));
        }
    }
    if kept.is_empty() {
        return Ok(None);
    }
    let fetched = fetch(store, key, &footer, ranges)?;
    let arrow_meta = ArrowReaderMetadata::try_new(Arc::clone(metadata), ArrowReaderOptions::new())
        .map_err(|e| StoreError::parquet(key, e))?;
    let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(fetched, arrow_meta)
        .with_row_groups(kept)
        // Skipped pages were not fetched: they must be skipped, never decoded and masked.
        .with_row_selection_policy(RowSelectionPolicy::Selectors)
        .with_row_selection(RowSelection::from(selectors));
    if let Some(cols) = columns {
        let mask = ProjectionMask::leaves(metadata.file_metadata().schema_descr(), cols.to_vec());
        builder = builder.with_projection(mask);
    }
    Ok(Some(builder))
}

/// Calls `f` for each row of session `id` in the `events` object `key`, fetching only the
/// footer and the row groups (and, with a page index, pages) whose statistics and bloom
/// filter allow the id. The footer is cached per process, so a later read of the same
/// object costs only the row groups.
pub fn session_event_rows(
    store: &dyn ObjectStore,
    key: &str,
    id: SessionId,
    f: impl FnMut(crate::parquet_io::EventRef<'_>),
) -> Result<(), StoreError> {
    let text = id.to_string();
    match reader_for(store, key, Wanted::Id(&text), None)? {
        Some(builder) => crate::parquet_io::scan_event_batches(key, builder, Some(id), f),
        None => Ok(()),
    }
}

/// The rows of session `id` in the `sessions` object `key`, read as [`session_event_rows`]
/// does.
pub fn session_rows(
    store: &dyn ObjectStore,
    key: &str,
    id: SessionId,
) -> Result<Vec<crate::SessionRow>, StoreError> {
    let text = id.to_string();
    match reader_for(store, key, Wanted::Id(&text), None)? {
        Some(builder) => crate::parquet_io::decode_session_batches(key, builder, Some(id)),
        None => Ok(Vec::new()),
    }
}

/// Distinct session ids starting with `prefix` (hyphenated, lowercase) in a table object,
/// sorted, reading only the `session_id` column of row groups whose statistics allow a
/// match.
pub fn ids_with_prefix(
    store: &dyn ObjectStore,
    key: &str,
    prefix: &str,
) -> Result<Vec<String>, StoreError> {
    let footer = footer(store, key)?;
    let col = session_column(key, &footer.metadata)?;
    let Some(builder) = reader_for(store, key, Wanted::Prefix(prefix), Some(&[col]))? else {
        return Ok(Vec::new());
    };
    crate::parquet_io::guarded(key, || {
        let reader = builder.build().map_err(|e| StoreError::parquet(key, e))?;
        let mut ids: Vec<String> = Vec::new();
        for batch in reader {
            let batch = batch.map_err(|e| StoreError::parquet(key, e))?;
            let column = batch
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| StoreError::parquet(key, "session_id is not a string column"))?;
            for v in column.iter().flatten() {
                if v.starts_with(prefix) && ids.last().is_none_or(|l| l != v) {
                    ids.push(v.to_string());
                }
            }
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    })
}
