//! What readers of the spool share: how far each consumer got in each segment, and
//! when a segment may go.
//!
//! The ingester (`ingested`) and the shipper (`shipped`) each keep their position in a
//! segment in `<segment>.<consumer>`, a decimal byte offset replaced atomically, written
//! only once everything before it is safe elsewhere. Both report damage and torn tails
//! the same way ([`report_damage`], [`report_torn_tail`]), in their own words
//! ([`Wording`]).

use std::fmt::Display;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::reader::{Scan, SegmentFile, Tail, cut_torn_tail, scan_segment};
use crate::{SpoolError, io_err};

fn position_path(segment: &Path, consumer: &str) -> PathBuf {
    let mut p = segment.as_os_str().to_owned();
    p.push(".");
    p.push(consumer);
    PathBuf::from(p)
}

/// How far `consumer` got in `segment` (0 if it never recorded a position).
pub fn read_position(segment: &Path, consumer: &str) -> Result<u64, SpoolError> {
    let path = position_path(segment, consumer);
    match std::fs::read_to_string(&path) {
        Ok(s) => s.trim().parse().map_err(|_| SpoolError::BadPosition {
            path: path.clone(),
            found: s.chars().take(40).collect(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(io_err(&path, "read position")(e)),
    }
}

/// Records that `consumer` is done with `segment` up to `offset`; durable on return.
pub fn write_position(segment: &Path, consumer: &str, offset: u64) -> Result<(), SpoolError> {
    let path = position_path(segment, consumer);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp, "create position"))?;
    f.write_all(offset.to_string().as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io_err(&tmp, "write position"))?;
    std::fs::rename(&tmp, &path).map_err(io_err(&path, "replace position"))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir, "fsync directory"))?;
    }
    Ok(())
}

/// `consumer`'s position in a segment and what follows it, or `None` if the segment was
/// deleted since it was listed (another consumer finished it): nothing to do then.
pub fn scan_from_position(
    segment: &SegmentFile,
    consumer: &str,
) -> Result<Option<(u64, Scan)>, SpoolError> {
    let from = read_position(&segment.path, consumer)?;
    match scan_segment(&segment.path, from) {
        Ok(scan) => Ok(Some((from, scan))),
        Err(SpoolError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// What became of a segment after its consumer caught up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// A writer still holds it, or there is more to consume: it stays.
    Kept,
    /// Finished and fully consumed: deleted. A torn tail, if there was one, was cut off.
    Removed {
        /// The incomplete bytes found after the last entry (agent killed mid-write).
        torn_tail: Option<Tail>,
    },
}

/// Records that `consumer` has taken `segment` (scanned as `scan`) up to `end`, unless
/// [`finish_segment`] will remove it right after (no writer holds it and `end` reaches
/// the last valid entry): removing commits as surely, and a position file would need room
/// in a spool that may be full. A crash in between re-reads the segment, as after any
/// crash before a position is written.
pub fn commit_position(
    segment: &SegmentFile,
    scan: &Scan,
    end: u64,
    consumer: &str,
) -> Result<(), SpoolError> {
    if !scan.in_use && end >= scan.end {
        return Ok(());
    }
    write_position(&segment.path, consumer, end)
}

/// Deletes a segment (and the consumer's position file) if no writer holds it and the
/// consumer has everything up to the last valid entry; a torn tail is cut off first, so
/// it is never misread.
pub fn finish_segment(
    segment: &SegmentFile,
    scan: &Scan,
    consumed_to: u64,
    consumer: &str,
) -> Result<Finish, SpoolError> {
    if scan.in_use || consumed_to < scan.end {
        return Ok(Finish::Kept);
    }
    if let Some(tail) = &scan.tail
        && !cut_torn_tail(&segment.path, tail.offset)?
    {
        // A writer took the lock again: it cannot, segments are never reopened, but if
        // anything holds it we leave it alone.
        return Ok(Finish::Kept);
    }
    match std::fs::remove_file(&segment.path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&segment.path, "delete finished segment")(e)),
    }
    let _ = std::fs::remove_file(position_path(&segment.path, consumer));
    Ok(Finish::Removed {
        torn_tail: scan.tail.clone(),
    })
}

/// How a consumer says what it does with a segment's entries, for the reports below.
#[derive(Clone, Copy, Debug)]
pub struct Wording {
    /// What became of every complete entry before a torn tail: "shipped", "ingested".
    pub done: &'static str,
    /// What becomes of the entries around damage: "are shipped", "were ingested".
    pub around_damage: &'static str,
}

/// Reports damage in the middle of `segment` (a [`ScanItem::Damaged`](crate::ScanItem)
/// from `offset` to `end`), whose bytes the consumer kept in `moved_to`.
pub fn report_damage(
    segment: &Path,
    offset: u64,
    end: u64,
    reason: &str,
    moved_to: impl Display,
    wording: &Wording,
) {
    // The fields repeat what the message says, for log pipelines that index fields.
    tracing::error!(
        file = %segment.display(),
        offset,
        end,
        "spool file {} is damaged: bytes {offset}..{end} ({} bytes) are not a valid entry: {reason}\n  kept: the entries before and after them {}\n  moved: the damaged bytes to {moved_to}",
        segment.display(),
        end - offset,
        wording.around_damage,
    );
}

/// Reports the torn tail that [`finish_segment`] cut off `segment`.
pub fn report_torn_tail(segment: &Path, tail: &Tail, wording: &Wording) {
    tracing::warn!(
        file = %segment.display(),
        offset = tail.offset,
        "spool file {}: cut off a torn tail of {} bytes at offset {}: {} (the agent was stopped mid-write?); every complete entry before it was {}",
        segment.display(),
        tail.len,
        tail.offset,
        tail.reason,
        wording.done,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SpoolOptions, SpoolWriter, list_segments, scan_segment};

    #[test]
    fn positions_round_trip_and_segments_go_when_done() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::create(dir.path(), "s", SpoolOptions::default()).unwrap();
        w.append(b"abc").unwrap();
        let seg = list_segments(dir.path()).unwrap().remove(0);
        assert_eq!(read_position(&seg.path, "shipped").unwrap(), 0);
        let scan = scan_segment(&seg.path, 0).unwrap();
        write_position(&seg.path, "shipped", scan.end).unwrap();
        assert_eq!(read_position(&seg.path, "shipped").unwrap(), scan.end);
        assert_eq!(
            finish_segment(&seg, &scan, scan.end, "shipped").unwrap(),
            Finish::Kept,
            "writer holds it"
        );
        w.finish().unwrap();
        let scan = scan_segment(&seg.path, scan.end).unwrap();
        assert_eq!(
            finish_segment(&seg, &scan, 0, "shipped").unwrap(),
            Finish::Kept,
            "not consumed"
        );
        assert_eq!(
            finish_segment(&seg, &scan, scan.end, "shipped").unwrap(),
            Finish::Removed { torn_tail: None }
        );
        assert!(list_segments(dir.path()).unwrap().is_empty());
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "position file removed too"
        );
    }

    #[test]
    fn a_position_is_written_only_for_a_segment_that_stays() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::create(dir.path(), "s", SpoolOptions::default()).unwrap();
        w.append(b"abc").unwrap();
        w.append(b"defg").unwrap();
        let seg = list_segments(dir.path()).unwrap().remove(0);
        let scan = scan_segment(&seg.path, 0).unwrap();
        commit_position(&seg, &scan, scan.end, "ingested").unwrap();
        assert_eq!(
            read_position(&seg.path, "ingested").unwrap(),
            scan.end,
            "in use"
        );
        w.finish().unwrap();
        let scan = scan_segment(&seg.path, 0).unwrap();
        let first_end = match &scan.items[0] {
            crate::ScanItem::Entry { end, .. } => *end,
            other => panic!("{other:?}"),
        };
        commit_position(&seg, &scan, first_end, "shipped").unwrap();
        assert_eq!(
            read_position(&seg.path, "shipped").unwrap(),
            first_end,
            "partly consumed"
        );
        commit_position(&seg, &scan, scan.end, "shipped").unwrap();
        assert_eq!(
            read_position(&seg.path, "shipped").unwrap(),
            first_end,
            "finished: left to finish_segment"
        );
    }

    #[test]
    fn a_damaged_position_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let seg = dir.path().join("x.seg");
        std::fs::write(position_path(&seg, "ingested"), "12x").unwrap();
        let e = read_position(&seg, "ingested").unwrap_err();
        assert!(e.to_string().contains("x.seg.ingested"), "{e}");
    }
}
