//! The embedded source: the agent's spool directory, read in place.
//!
//! Each segment file is a partition; positions are byte offsets. The committed position
//! of a segment lives next to it in `<segment>.ingested`, written (atomically) only after
//! the batch's objects are durable. A segment that no agent holds any more and that is
//! fully ingested is deleted, then its position file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use serde_json::json;
use spool::{ScanItem, SegmentFile};
use store::ObjectStore;

use crate::decode::{Rows, decode_chunk};
use crate::notify::Notifier;
use crate::output::{Batch, DeadLetter, ExistingCuts, Written, dead_letter_location, write_batch};
use crate::telemetry::IngestMetrics;

/// Name of this source in object names.
pub const SOURCE: &str = "spool";
/// Name of the ingester's position files next to each segment.
pub const CONSUMER: &str = "ingested";
/// How the ingester's reports of damaged spool files say what it did.
const WORDING: spool::Wording = spool::Wording {
    done: "ingested",
    around_damage: "were ingested",
};

/// What one pass over the spool did.
#[derive(Debug, Default, Clone, Copy)]
pub struct PassSummary {
    /// Segments that had new entries.
    pub segments: u64,
    /// Rows and objects written.
    pub written: Written,
    /// Damaged stretches found.
    pub damaged: u64,
    /// Torn tails cut off.
    pub torn_tails: u64,
    /// Segments deleted after being fully ingested.
    pub deleted: u64,
    /// Segments that could not be read (reported, retried next pass).
    pub failed: u64,
}

/// The spool directory as a source.
pub struct SpoolSource {
    dir: PathBuf,
}

/// The date that dead letters of a segment are filed under: its session's start date,
/// so that a re-run files them in the same place.
fn segment_date(seg: &SegmentFile) -> String {
    seg.stem
        .get(..36)
        .and_then(|s| s.parse::<schemas::SessionId>().ok())
        .and_then(|id| id.start_time_ns())
        .map(schemas::time::date)
        .unwrap_or_else(|| schemas::time::date(schemas::time::now_ns()))
}

impl SpoolSource {
    /// A source reading `dir`.
    pub fn new(dir: PathBuf) -> SpoolSource {
        SpoolSource { dir }
    }

    /// The directory read.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Ingests everything in the spool now. A segment that cannot be read is reported and
    /// left for the next pass; a store failure ends the pass with an error (nothing is
    /// committed past what is durable). Session starts and ends go to `notifier` once
    /// durable, and the work done to `telemetry`.
    pub fn pass(
        &self,
        store: &dyn ObjectStore,
        stop: &AtomicBool,
        notifier: &Notifier,
        telemetry: &IngestMetrics,
    ) -> anyhow::Result<PassSummary> {
        let mut summary = PassSummary::default();
        let segments = spool::list_segments(&self.dir)
            .with_context(|| format!("cannot list spool {}", self.dir.display()))?;
        if segments.is_empty() {
            return Ok(summary);
        }
        let cuts = ExistingCuts::load(store).context("cannot list the store's events/")?;
        for seg in segments {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let out = Out {
                notifier,
                telemetry,
            };
            match self.ingest_segment(store, &cuts, &seg, &mut summary, &out) {
                Ok(()) => {}
                Err(e) if e.downcast_ref::<store::StoreError>().is_some() => return Err(e),
                Err(e) => {
                    tracing::error!("{e:#}");
                    telemetry.errors.inc();
                    summary.failed += 1;
                }
            }
        }
        Ok(summary)
    }

    fn ingest_segment(
        &self,
        store: &dyn ObjectStore,
        cuts: &ExistingCuts,
        seg: &SegmentFile,
        summary: &mut PassSummary,
        out: &Out<'_>,
    ) -> anyhow::Result<()> {
        // None: deleted by a concurrent ingester between listing and reading.
        let Some((committed, scan)) = spool::scan_from_position(seg, CONSUMER)
            .with_context(|| format!("cannot read spool file {}", seg.path.display()))?
        else {
            return Ok(());
        };
        // A batch already written from this position fixes where this one ends.
        let limit = cuts.end_of(store, SOURCE, &seg.stem, committed)?;
        let items: Vec<&ScanItem> = scan
            .items
            .iter()
            .filter(|i| limit.is_none_or(|l| item_end(i) <= l))
            .collect();
        let mut end = committed;
        if let Some(last) = items.last() {
            end = item_end(last);
            let date = segment_date(seg);
            let (rows, dead_letters) = decode_items(store, seg, &date, &items, summary);
            out.telemetry.records.add(items.len() as u64);
            let sessions = rows.sessions.clone();
            let batch = Batch {
                source: SOURCE.into(),
                partition: seg.stem.clone(),
                first_offset: committed,
                end_offset: end,
                rows,
                dead_letters,
                fallback_date: date,
            };
            let (written, keys) = write_batch(store, batch)?;
            summary.written += written;
            out.telemetry.batch_written(&written);
            out.notifier.send(&sessions, &keys)?;
            crate::failpoint::hit(crate::failpoint::AFTER_WRITE_BEFORE_COMMIT);
            spool::commit_position(seg, &scan, end, CONSUMER)?;
            out.telemetry.committed();
            summary.segments += 1;
        }
        match spool::finish_segment(seg, &scan, end, CONSUMER)? {
            spool::Finish::Kept => {}
            spool::Finish::Removed { torn_tail } => {
                if let Some(tail) = torn_tail {
                    spool::report_torn_tail(&seg.path, &tail, &WORDING);
                    summary.torn_tails += 1;
                }
                summary.deleted += 1;
            }
        }
        Ok(())
    }
}

/// Where a pass reports to.
struct Out<'a> {
    notifier: &'a Notifier,
    telemetry: &'a IngestMetrics,
}

/// Decodes the entries of a segment into rows. Entries that are not chunks and damaged
/// stretches become dead letters, filed under `date`.
fn decode_items(
    store: &dyn ObjectStore,
    seg: &SegmentFile,
    date: &str,
    items: &[&ScanItem],
    summary: &mut PassSummary,
) -> (Rows, Vec<DeadLetter>) {
    let path = seg.path.display().to_string();
    let mut rows = Rows::default();
    let mut dead_letters = Vec::new();
    for item in items {
        match item {
            ScanItem::Entry {
                offset, payload, ..
            } => {
                if let Err(reason) = decode_chunk(payload, &mut rows) {
                    tracing::warn!(
                        file = %path,
                        offset,
                        "spool file {path}: the entry at offset {offset} ({} bytes) is not a valid chunk: {reason}\n  kept: as a dead letter in {}; the other entries were ingested",
                        payload.len(),
                        dead_letter_location(store, date)
                    );
                    dead_letters.push(DeadLetter {
                        offset: *offset,
                        bytes: payload.clone(),
                        info: json!({"source": SOURCE, "file": path, "offset": offset, "error": reason.to_string()}),
                    });
                }
            }
            ScanItem::Damaged {
                offset,
                end,
                reason,
                bytes,
            } => {
                let moved_to = dead_letter_location(store, date);
                spool::report_damage(&seg.path, *offset, *end, reason, moved_to, &WORDING);
                summary.damaged += 1;
                dead_letters.push(DeadLetter {
                    offset: *offset,
                    bytes: bytes.clone(),
                    info: json!({"source": SOURCE, "file": path, "offset": offset, "end": end, "error": reason}),
                });
            }
        }
    }
    (rows, dead_letters)
}

fn item_end(item: &ScanItem) -> u64 {
    match item {
        ScanItem::Entry { end, .. } | ScanItem::Damaged { end, .. } => *end,
    }
}
