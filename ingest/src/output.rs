//! Writing one batch to the store: `events/`, `sessions/`, `ledger/` and `dead-letter/`
//! objects.
//!
//! Every name derives from (source, partition, first offset) and the UTC date of the
//! rows, so writing the same batch twice writes the same objects. Each batch writes at
//! least one `events/` object (possibly empty) whose footer records the batch's end
//! offset: a restarted ingester finds it with [`ExistingCuts`] and cuts the batch at the
//! same place instead of inventing a new boundary.

use std::collections::{BTreeMap, HashMap};

use store::layout::{self, DEAD_LETTER, EVENTS};
use store::parquet_io::{encode_events, encode_sessions, read_object_meta};
use store::{EventRow, ObjectMeta, ObjectStore, SessionRow, StoreError};

use crate::decode::Rows;

/// A record that could not be decoded, kept as received.
#[derive(Debug)]
pub struct DeadLetter {
    /// Offset of the record in its partition.
    pub offset: u64,
    /// The bytes as received.
    pub bytes: Vec<u8>,
    /// Where it came from and why it failed (written next to it as JSON).
    pub info: serde_json::Value,
}

/// Rows and dead letters covering the offsets `first_offset..end_offset` of a partition.
#[derive(Debug)]
pub struct Batch {
    /// `spool` or `kafka`.
    pub source: String,
    /// Partition within the source (spool: the segment's name).
    pub partition: String,
    /// Offset of the first record covered.
    pub first_offset: u64,
    /// Offset just past the last record covered.
    pub end_offset: u64,
    /// Decoded rows.
    pub rows: Rows,
    /// Undecodable records.
    pub dead_letters: Vec<DeadLetter>,
    /// Date for objects that have no rows to date them by (stable across re-runs).
    pub fallback_date: String,
}

/// What a batch wrote.
#[derive(Debug, Default, Clone, Copy)]
pub struct Written {
    /// Event rows.
    pub events: u64,
    /// Session rows.
    pub sessions: u64,
    /// Dead letters.
    pub dead_letters: u64,
    /// Objects put.
    pub objects: u64,
    /// Bytes of the objects put.
    pub bytes: u64,
}

impl std::ops::AddAssign for Written {
    fn add_assign(&mut self, o: Written) {
        self.events += o.events;
        self.sessions += o.sessions;
        self.dead_letters += o.dead_letters;
        self.objects += o.objects;
        self.bytes += o.bytes;
    }
}

/// Writes a batch; when this returns, every object is durable. Returns the counts and the
/// keys written.
pub fn write_batch(
    store: &dyn ObjectStore,
    batch: Batch,
) -> Result<(Written, Vec<String>), StoreError> {
    let stem = layout::object_stem(&batch.source, &batch.partition, batch.first_offset);
    let meta = ObjectMeta {
        source: batch.source.clone(),
        partition: batch.partition.clone(),
        first_offset: batch.first_offset,
        end_offset: batch.end_offset,
    };
    let mut written = Written::default();
    let mut keys = Vec::new();

    let mut events_by_date: BTreeMap<String, Vec<EventRow>> = BTreeMap::new();
    for row in batch.rows.events {
        events_by_date
            .entry(schemas::time::date(row.time_ns))
            .or_default()
            .push(row);
    }
    if events_by_date.is_empty() {
        events_by_date.insert(batch.fallback_date.clone(), Vec::new());
    }
    for (date, mut rows) in events_by_date {
        let bytes = encode_events(&mut rows, &meta)?;
        let key = layout::events_key(&date, &stem);
        store.put(&key, &bytes)?;
        keys.push(key);
        written.events += rows.len() as u64;
        written.objects += 1;
        written.bytes += bytes.len() as u64;
    }

    let mut sessions_by_date: BTreeMap<String, Vec<SessionRow>> = BTreeMap::new();
    for row in batch.rows.sessions {
        sessions_by_date
            .entry(schemas::time::date(row.time_ns))
            .or_default()
            .push(row);
    }
    for (date, mut rows) in sessions_by_date {
        let bytes = encode_sessions(&mut rows, &meta)?;
        let key = layout::sessions_key(&date, &stem);
        store.put(&key, &bytes)?;
        keys.push(key);
        written.sessions += rows.len() as u64;
        written.objects += 1;
        written.bytes += bytes.len() as u64;
    }

    let mut ledger_by_date: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (time_ns, json) in batch.rows.ledger {
        let lines = ledger_by_date
            .entry(schemas::time::date(time_ns))
            .or_default();
        lines.extend_from_slice(&json);
        lines.push(b'\n');
    }
    for (date, lines) in ledger_by_date {
        let key = layout::ledger_key(&date, &stem);
        store.put(&key, &lines)?;
        keys.push(key);
        written.objects += 1;
        written.bytes += lines.len() as u64;
    }

    for dl in batch.dead_letters {
        let dl_stem = layout::object_stem(&batch.source, &batch.partition, dl.offset);
        let info = serde_json::to_vec_pretty(&dl.info).unwrap_or_default();
        store.put(
            &layout::dead_letter_key(&batch.fallback_date, &dl_stem, "bin"),
            &dl.bytes,
        )?;
        store.put(
            &layout::dead_letter_key(&batch.fallback_date, &dl_stem, "json"),
            &info,
        )?;
        written.dead_letters += 1;
        written.objects += 2;
        written.bytes += (dl.bytes.len() + info.len()) as u64;
    }
    Ok((written, keys))
}

/// Batches already in the store, by object stem: where a re-run must cut again.
pub struct ExistingCuts {
    keys: HashMap<String, String>,
}

impl ExistingCuts {
    /// Lists `events/` once.
    pub fn load(store: &dyn ObjectStore) -> Result<ExistingCuts, StoreError> {
        let mut keys = HashMap::new();
        for key in store.list(&format!("{EVENTS}/"))? {
            if let Some(stem) = layout::key_stem(&key) {
                keys.insert(stem.to_string(), key.clone());
            }
        }
        Ok(ExistingCuts { keys })
    }

    /// The end offset of the batch already written from `first_offset`, if there is one.
    pub fn end_of(
        &self,
        store: &dyn ObjectStore,
        source: &str,
        partition: &str,
        first_offset: u64,
    ) -> Result<Option<u64>, StoreError> {
        let stem = layout::object_stem(source, partition, first_offset);
        let Some(key) = self.keys.get(&stem) else {
            return Ok(None);
        };
        let bytes = store.get(key)?;
        Ok(Some(read_object_meta(key, &bytes)?.end_offset))
    }
}

/// Where dead letters go, for messages.
pub fn dead_letter_location(store: &dyn ObjectStore, date: &str) -> String {
    format!("{}/{DEAD_LETTER}/date={date}/", store.describe())
}
