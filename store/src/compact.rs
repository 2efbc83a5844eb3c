//! Compaction: a day's small `events/` and `sessions/` objects merged into large ones
//! (DESIGN.md §10), so that a fleet of short sessions does not become millions of tiny
//! objects (a request each for S3, a file each for Athena to open).
//!
//! # Names
//!
//! A merged object is `<table>/date=D/compacted-<32 hex>.parquet`, the hex a BLAKE3 digest
//! of its inputs (keys, sizes and digests). The ingester's names always end in
//! `-<20 digits>` (the first offset), so a merged object can neither collide with one nor
//! be taken for one by a restarted ingester looking for its cut points.
//!
//! # Safety, by ordering alone
//!
//! Each merge is four steps, each atomic on its own:
//!
//! 1. put the manifest `compaction/date=D/<output stem>.txt` naming the output and every
//!    input (key, size, BLAKE3 of its bytes);
//! 2. put the merged object (a local put is temp + fsync + rename, an S3 PUT is atomic);
//! 3. delete the inputs;
//! 4. delete the manifest.
//!
//! Until 2 the inputs hold every row; from 2 until 3 ends both do, and every reader drops
//! duplicate `(session_id, seq)` rows (readers that find a listed object gone list again,
//! so they meet the merged object instead of missing the rows). A crash anywhere leaves a
//! readable store; the next run first finishes what a manifest describes: if its output
//! exists, it deletes the inputs still there, but only those whose size and digest are
//! still those recorded (an ingester that re-wrote a name since with other rows keeps
//! them); if the output does not exist, the manifest is dropped and the inputs stay.
//!
//! # What is taken
//!
//! Objects younger than `min_age` are left alone: a restarted ingester looks for the
//! objects it wrote past its committed offset to cut again at the same place, and those
//! are recent. Were one merged away anyway (an ingester down for longer than `min_age`),
//! the ingester would cut anew and write rows the merged object also holds: duplicates,
//! which readers drop and the next compaction removes, never a loss. The empty `events/`
//! objects that carry a batch's end offset are merged away like any other once old: after
//! a restart only the committed offset (Kafka's, or the spool checkpoint) counts, and
//! everything before it is never read again.
//!
//! Rows are merged sorted by `(session_id, seq)`; a row identical to one already taken is
//! dropped, rows that share a `(session_id, seq)` but differ are all kept, so that
//! `replay verify` sees the same conflicting duplicates it saw before. The merged objects
//! are written by the ingester's own encoders ([`crate::parquet_io`]): zstd, statistics,
//! bloom filter on `session_id`, table version in the footer.
//!
//! Memory: at most `memory_bytes` of decoded rows (plus one input) are held at once; a
//! merge is cut early when they would exceed it.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use schemas::SessionId;

use crate::layout::{self, EVENTS, SESSIONS};
use crate::parquet_io::{self, EventRow, ObjectMeta, SessionRow};
use crate::{Listed, ObjectStore, StoreError};

/// Top-level folder of the compaction manifests (never read by readers of sessions).
pub const MANIFESTS: &str = "compaction";
/// Stem prefix of merged objects.
pub const STEM_PREFIX: &str = "compacted-";
/// Source recorded in a merged object's footer ([`ObjectMeta::source`]); its offsets are 0.
pub const SOURCE: &str = "compaction";
/// First line of a manifest.
const MANIFEST_MAGIC: &str = "auditty-compaction 1";

/// Default size of a merged object: large enough that S3 requests and per-file overheads
/// stop mattering, small enough that a reader fetching one session's row groups is not
/// slowed (it reads only the pages that can hold it).
pub const DEFAULT_TARGET_BYTES: u64 = 128 << 20;
/// Default bound on decoded rows held at once.
pub const DEFAULT_MEMORY_BYTES: u64 = 1 << 30;
/// Default minimum age of an object before it may be merged (see the module docs).
pub const DEFAULT_MIN_AGE: Duration = Duration::from_secs(3600);

/// Names of the points between steps, for crash tests (`on_step`).
pub mod step {
    /// The manifest is durable, the merged object not yet written.
    pub const AFTER_MANIFEST: &str = "compact-after-manifest";
    /// The merged object is durable, no input deleted yet.
    pub const AFTER_OUTPUT: &str = "compact-after-output";
    /// One input deleted (reached after each deletion).
    pub const AFTER_DELETE: &str = "compact-after-delete";
    /// Every input deleted, the manifest not yet.
    pub const BEFORE_MANIFEST_DELETE: &str = "compact-before-manifest-delete";
}

/// How to compact.
#[derive(Clone, Debug)]
pub struct Options {
    /// Stop adding inputs to a merge once their sizes reach this.
    pub target_bytes: u64,
    /// Stop adding inputs once their decoded rows hold about this many bytes.
    pub memory_bytes: u64,
    /// Leave objects last written less than this long ago.
    pub min_age: Duration,
    /// "Now", for `min_age`.
    pub now: SystemTime,
    /// Plan only: read nothing but the listing, write and delete nothing.
    pub dry_run: bool,
    /// Sessions whose rows are left out of merged objects: the hook for retention, which
    /// decides what has expired (and is held) elsewhere. Empty: nothing is dropped.
    pub drop_sessions: HashSet<SessionId>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            target_bytes: DEFAULT_TARGET_BYTES,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            min_age: DEFAULT_MIN_AGE,
            now: SystemTime::now(),
            dry_run: false,
            drop_sessions: HashSet::new(),
        }
    }
}

/// One planned merge (`--dry-run` prints these).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedMerge {
    /// `events` or `sessions`.
    pub table: &'static str,
    /// The inputs, in the order they are read.
    pub inputs: Vec<Listed>,
}

/// What a run did (or, dry, would do) for one or more dates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Parquet objects of `events/` and `sessions/` of the dates before the run.
    pub objects_before: u64,
    /// … and after it.
    pub objects_after: u64,
    /// Their bytes before the run.
    pub bytes_before: u64,
    /// … and after it.
    pub bytes_after: u64,
    /// Merged objects written.
    pub merged: u64,
    /// Inputs deleted (including those an interrupted run left).
    pub deleted: u64,
    /// Rows read from inputs.
    pub rows_in: u64,
    /// Rows written to merged objects.
    pub rows_out: u64,
    /// Rows dropped because an identical row had been taken already.
    pub duplicates: u64,
    /// Rows left out because their session is in [`Options::drop_sessions`].
    pub dropped: u64,
    /// Manifests of interrupted runs finished first.
    pub resumed: u64,
    /// Objects left alone because they are younger than `min_age`.
    pub too_young: u64,
    /// Planned merges (the plan, for `--dry-run`).
    pub plan: Vec<PlannedMerge>,
}

impl Summary {
    fn add(&mut self, o: Summary) {
        self.objects_before += o.objects_before;
        self.objects_after += o.objects_after;
        self.bytes_before += o.bytes_before;
        self.bytes_after += o.bytes_after;
        self.merged += o.merged;
        self.deleted += o.deleted;
        self.rows_in += o.rows_in;
        self.rows_out += o.rows_out;
        self.duplicates += o.duplicates;
        self.dropped += o.dropped;
        self.resumed += o.resumed;
        self.too_young += o.too_young;
        self.plan.extend(o.plan);
    }
}

/// The dates (`YYYY-MM-DD`) that have `events/` or `sessions/` objects, oldest first.
pub fn dates(store: &dyn ObjectStore) -> Result<Vec<String>, StoreError> {
    let mut dates = std::collections::BTreeSet::new();
    for table in [EVENTS, SESSIONS] {
        for key in store.list(&format!("{table}/"))? {
            if let Some(d) = layout::key_date(&key) {
                dates.insert(d.to_string());
            }
        }
    }
    Ok(dates.into_iter().collect())
}

/// Whether a key names a merged object.
pub fn is_merged(key: &str) -> bool {
    layout::key_stem(key).is_some_and(|s| s.starts_with(STEM_PREFIX))
}

/// Compacts the given dates, one after the other; `on_step` is called at each
/// [`step`] point (tests kill the process there).
pub fn compact(
    store: &dyn ObjectStore,
    dates: &[String],
    options: &Options,
    on_step: &mut dyn FnMut(&str),
) -> Result<Summary, StoreError> {
    let mut total = Summary::default();
    for date in dates {
        total.add(compact_date(store, date, options, on_step)?);
    }
    Ok(total)
}

/// Compacts one date: finishes what an interrupted run left, then merges.
pub fn compact_date(
    store: &dyn ObjectStore,
    date: &str,
    options: &Options,
    on_step: &mut dyn FnMut(&str),
) -> Result<Summary, StoreError> {
    let mut summary = Summary::default();
    let before = table_objects(store, date)?;
    summary.objects_before = before.len() as u64;
    summary.bytes_before = before.iter().map(|o| o.size).sum();
    if !options.dry_run {
        finish_interrupted(store, date, &mut summary, on_step)?;
    }
    for table in [EVENTS, SESSIONS] {
        let listed = parquet_objects(store, table, date)?;
        let mut candidates = Vec::new();
        for o in listed {
            if o.size >= options.target_bytes {
                continue; // Already large: nothing to gain.
            }
            let old_enough = match o.modified {
                Some(t) => options.now.duration_since(t).unwrap_or_default() >= options.min_age,
                None => options.min_age.is_zero(),
            };
            if old_enough {
                candidates.push(o);
            } else {
                summary.too_young += 1;
            }
        }
        for group in plan(candidates, options.target_bytes) {
            if options.dry_run {
                summary.plan.push(PlannedMerge {
                    table,
                    inputs: group,
                });
            } else {
                merge_group(store, table, date, group, options, &mut summary, on_step)?;
            }
        }
    }
    if options.dry_run {
        summary.objects_after = summary.objects_before;
        summary.bytes_after = summary.bytes_before;
    } else {
        let after = table_objects(store, date)?;
        summary.objects_after = after.len() as u64;
        summary.bytes_after = after.iter().map(|o| o.size).sum();
    }
    Ok(summary)
}

/// Parquet objects of both tables of `date`.
fn table_objects(store: &dyn ObjectStore, date: &str) -> Result<Vec<Listed>, StoreError> {
    let mut all = parquet_objects(store, EVENTS, date)?;
    all.extend(parquet_objects(store, SESSIONS, date)?);
    Ok(all)
}

fn parquet_objects(
    store: &dyn ObjectStore,
    table: &str,
    date: &str,
) -> Result<Vec<Listed>, StoreError> {
    let mut objects = store.list_info(&format!("{table}/date={date}/"))?;
    objects.retain(|o| layout::is_parquet(&o.key));
    Ok(objects)
}

/// Inputs cut, in key order (an ingester's objects of one partition lie together), into
/// groups whose sizes add up to about `target`; a group of one is no merge and is left.
fn plan(candidates: Vec<Listed>, target: u64) -> Vec<Vec<Listed>> {
    let mut groups: Vec<Vec<Listed>> = Vec::new();
    let mut current: Vec<Listed> = Vec::new();
    let mut bytes = 0u64;
    for o in candidates {
        if !current.is_empty() && bytes.saturating_add(o.size) > target {
            groups.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes = bytes.saturating_add(o.size);
        current.push(o);
    }
    groups.push(current);
    groups.retain(|g| g.len() >= 2);
    groups
}

/// An input as recorded in a manifest.
struct Recorded {
    key: String,
    size: u64,
    digest: String,
}

/// Rows of one table being merged.
enum Rows {
    Events(Vec<EventRow>),
    Sessions(Vec<SessionRow>),
}

impl Rows {
    fn len(&self) -> usize {
        match self {
            Rows::Events(r) => r.len(),
            Rows::Sessions(r) => r.len(),
        }
    }
}

/// Reads the inputs of `group` one by one, and writes a merged object whenever the inputs
/// read reach the memory bound (and at the end).
fn merge_group(
    store: &dyn ObjectStore,
    table: &'static str,
    date: &str,
    group: Vec<Listed>,
    options: &Options,
    summary: &mut Summary,
    on_step: &mut dyn FnMut(&str),
) -> Result<(), StoreError> {
    let mut rows = if table == EVENTS {
        Rows::Events(Vec::new())
    } else {
        Rows::Sessions(Vec::new())
    };
    let mut inputs: Vec<Recorded> = Vec::new();
    let mut held = 0u64;
    let count = group.len();
    for (i, o) in group.into_iter().enumerate() {
        let bytes = match store.get(&o.key) {
            Ok(b) => b,
            // Gone since the listing (another compaction, or a purge): nothing to merge.
            Err(StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        match &mut rows {
            Rows::Events(r) => {
                parquet_io::scan_events(&o.key, &bytes, None, |e| {
                    held += 64 + e.data.len() as u64;
                    r.push(e.to_row());
                })?;
            }
            Rows::Sessions(r) => {
                for row in parquet_io::decode_sessions(&o.key, &bytes)? {
                    held += 64 + row.metadata.len() as u64;
                    r.push(row);
                }
            }
        }
        inputs.push(Recorded {
            key: o.key,
            size: bytes.len() as u64,
            digest: blake3::hash(&bytes).to_hex().to_string(),
        });
        let last = i + 1 == count;
        if (held >= options.memory_bytes || last) && inputs.len() >= 2 {
            let empty = match &rows {
                Rows::Events(_) => Rows::Events(Vec::new()),
                Rows::Sessions(_) => Rows::Sessions(Vec::new()),
            };
            let taken = std::mem::replace(&mut rows, empty);
            write_merged(
                store,
                table,
                date,
                std::mem::take(&mut inputs),
                taken,
                options,
                summary,
                on_step,
            )?;
            held = 0;
        }
    }
    Ok(())
}

/// The four steps of one merge (see the module docs).
#[allow(clippy::too_many_arguments)]
fn write_merged(
    store: &dyn ObjectStore,
    table: &str,
    date: &str,
    inputs: Vec<Recorded>,
    rows: Rows,
    options: &Options,
    summary: &mut Summary,
    on_step: &mut dyn FnMut(&str),
) -> Result<(), StoreError> {
    let mut id_hasher = blake3::Hasher::new();
    for i in &inputs {
        id_hasher.update(format!("{}\n{}\n{}\n", i.key, i.size, i.digest).as_bytes());
    }
    let digest = id_hasher.finalize().to_hex();
    let stem = format!("{STEM_PREFIX}{}", &digest.as_str()[..32]);
    let output = if table == EVENTS {
        layout::events_key(date, &stem)
    } else {
        layout::sessions_key(date, &stem)
    };
    let meta = ObjectMeta {
        source: SOURCE.to_string(),
        partition: date.to_string(),
        first_offset: 0,
        end_offset: 0,
    };
    summary.rows_in += rows.len() as u64;
    let (bytes, written) = match rows {
        Rows::Events(mut r) => {
            let before = r.len();
            r.retain(|row| !options.drop_sessions.contains(&row.session_id));
            summary.dropped += (before - r.len()) as u64;
            r.sort_by_key(|row| (row.session_id, row.seq));
            summary.duplicates += dedup_identical(&mut r, |row| (row.session_id, row.seq));
            (parquet_io::encode_events(&mut r, &meta)?, r.len())
        }
        Rows::Sessions(mut r) => {
            let before = r.len();
            r.retain(|row| !options.drop_sessions.contains(&row.session_id));
            summary.dropped += (before - r.len()) as u64;
            r.sort_by_key(|row| (row.session_id, row.seq));
            summary.duplicates += dedup_identical(&mut r, |row| (row.session_id, row.seq));
            (parquet_io::encode_sessions(&mut r, &meta)?, r.len())
        }
    };
    let manifest_key = manifest_key(date, &stem);
    let mut text = format!("{MANIFEST_MAGIC}\noutput {output}\n");
    for i in &inputs {
        text.push_str(&format!("input {} {} {}\n", i.size, i.digest, i.key));
    }
    store.put(&manifest_key, text.as_bytes())?;
    on_step(step::AFTER_MANIFEST);
    store.put(&output, &bytes)?;
    on_step(step::AFTER_OUTPUT);
    summary.merged += 1;
    summary.rows_out += written as u64;
    for i in &inputs {
        // An input that is the output itself (the same inputs merged again) stays.
        if i.key != output {
            store.delete(&i.key)?;
            summary.deleted += 1;
            on_step(step::AFTER_DELETE);
        }
    }
    on_step(step::BEFORE_MANIFEST_DELETE);
    store.delete(&manifest_key)?;
    tracing::info!(
        output = %output,
        inputs = inputs.len(),
        rows = written,
        bytes = bytes.len(),
        "merged"
    );
    Ok(())
}

/// Drops rows equal to an earlier row of the same `key` from `rows` (sorted by `key`);
/// returns how many. Rows of one key that differ all stay.
fn dedup_identical<T: PartialEq, K: PartialEq>(rows: &mut Vec<T>, key: impl Fn(&T) -> K) -> u64 {
    let before = rows.len();
    let mut out: Vec<T> = Vec::with_capacity(before);
    let mut run_start = 0;
    for row in rows.drain(..) {
        if out.last().is_none_or(|last| key(last) != key(&row)) {
            run_start = out.len();
        }
        if !out[run_start..].contains(&row) {
            out.push(row);
        }
    }
    *rows = out;
    (before - rows.len()) as u64
}

/// `compaction/date=D/<stem>.txt`
pub fn manifest_key(date: &str, stem: &str) -> String {
    format!("{MANIFESTS}/date={date}/{stem}.txt")
}

/// Finishes the merges an interrupted run left manifests of (module docs).
fn finish_interrupted(
    store: &dyn ObjectStore,
    date: &str,
    summary: &mut Summary,
    on_step: &mut dyn FnMut(&str),
) -> Result<(), StoreError> {
    for key in store.list(&format!("{MANIFESTS}/date={date}/"))? {
        let text = match store.get(&key) {
            Ok(b) => b,
            Err(StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        let (output, inputs) = parse_manifest(&key, &text)?;
        if store.exists(&output)? {
            for i in inputs.iter().filter(|i| i.key != output) {
                let bytes = match store.get(&i.key) {
                    Ok(b) => b,
                    Err(StoreError::NotFound { .. }) => continue,
                    Err(e) => return Err(e),
                };
                if bytes.len() as u64 == i.size
                    && blake3::hash(&bytes).to_hex().as_str() == i.digest
                {
                    store.delete(&i.key)?;
                    summary.deleted += 1;
                    on_step(step::AFTER_DELETE);
                } else {
                    tracing::warn!(
                        key = %i.key,
                        manifest = %key,
                        "an input of an interrupted merge was written again with other \
                         content since; keeping it (its rows are not all in {output})"
                    );
                }
            }
        }
        store.delete(&key)?;
        summary.resumed += 1;
    }
    Ok(())
}

fn parse_manifest(key: &str, bytes: &[u8]) -> Result<(String, Vec<Recorded>), StoreError> {
    let bad = |why: &str| {
        StoreError::Unsupported(format!(
            "compaction manifest {key} is damaged ({why}); compare it with the objects it \
             names and delete it by hand once its output holds their rows, or keep the \
             inputs and delete the manifest and its output"
        ))
    };
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
    let mut lines = text.lines();
    if lines.next() != Some(MANIFEST_MAGIC) {
        return Err(bad("unknown first line"));
    }
    let output = lines
        .next()
        .and_then(|l| l.strip_prefix("output "))
        .ok_or_else(|| bad("no output line"))?
        .to_string();
    let mut inputs = Vec::new();
    for line in lines {
        let rest = line
            .strip_prefix("input ")
            .ok_or_else(|| bad("a line is not an input"))?;
        let mut parts = rest.splitn(3, ' ');
        let (Some(size), Some(digest), Some(k)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("an input line lacks a field"));
        };
        inputs.push(Recorded {
            key: k.to_string(),
            size: size.parse().map_err(|_| bad("a size is not a number"))?,
            digest: digest.to_string(),
        });
    }
    Ok((output, inputs))
}

#[cfg(test)]
mod tests;
