//! The agent's durable spool: append-only segment files of checksummed entries.
//!
//! The agent writes every chunk here before anything else sees it; the ingester (embedded
//! mode) or the shipper (Kafka mode) reads entries and deletes a segment only once every
//! entry in it is safely elsewhere.
//!
//! - [`SpoolWriter`]: one per recorded session. Appends entries to
//!   `<dir>/<name>-<NNNNNN>.seg`, rotates segments, enforces the size cap and holds an
//!   exclusive `flock` on the segment it is writing so readers can tell "still being
//!   written" from "finished or abandoned".
//! - [`scan_segment`]: reads a segment from an offset and reports good entries, damaged
//!   stretches (with their offsets) and an incomplete tail.
//! - [`list_segments`], [`cut_torn_tail`], [`dir_size`]: the reader's helpers.
//! - [`read_position`], [`write_position`], [`finish_segment`], [`report_damage`],
//!   [`report_torn_tail`]: what consumers (the ingester, the shipper) share: their
//!   position per segment, deleting what is done, and how they report damage.
//!
//! The byte layout is in `spool/FORMAT.md`.

mod consumer;
mod reader;
mod writer;

pub use consumer::{
    Finish, Wording, commit_position, finish_segment, read_position, report_damage,
    report_torn_tail, scan_from_position, write_position,
};
pub use reader::{Scan, ScanItem, SegmentFile, Tail, cut_torn_tail, list_segments, scan_segment};
pub use writer::{SpoolOptions, SpoolWriter, dir_size};

use std::path::PathBuf;

/// First four bytes of every entry; also what a reader resynchronises on after damage.
pub const ENTRY_MAGIC: [u8; 4] = [0xA7, b'S', b'P', b'1'];
/// Bytes before an entry's payload: magic, length, CRC.
pub const ENTRY_HEADER_LEN: usize = 12;
/// Largest payload an entry may hold. Chunks are ~64 KiB; this leaves room for sealed
/// chunks with big metadata and rejects nonsense lengths from damaged headers.
pub const MAX_ENTRY_BYTES: usize = 32 << 20;
/// File name suffix of segment files.
pub const SEGMENT_SUFFIX: &str = ".seg";

/// What can go wrong with the spool.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// An I/O call failed on a spool file.
    #[error("spool file {path}: {op}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The spool reached its size cap.
    #[error(
        "spool {dir} is full: {used} bytes used of the {cap}-byte cap; nothing more can be recorded until the ingester or shipper drains it (is it running?) or the cap is raised"
    )]
    Full {
        /// The spool directory.
        dir: PathBuf,
        /// Bytes in use.
        used: u64,
        /// The configured cap.
        cap: u64,
    },
    /// A consumer's position file does not hold a number.
    #[error(
        "position file {path} is damaged (holds {found:?}); delete it to consume the segment again from its start"
    )]
    BadPosition {
        /// The position file.
        path: PathBuf,
        /// The start of what it holds.
        found: String,
    },
    /// An entry larger than [`MAX_ENTRY_BYTES`] was offered.
    #[error("spool entry of {0} bytes exceeds the {MAX_ENTRY_BYTES}-byte limit")]
    EntryTooLarge(usize),
}

pub(crate) fn io_err(
    path: &std::path::Path,
    op: &'static str,
) -> impl FnOnce(std::io::Error) -> SpoolError {
    let path = path.to_path_buf();
    move |source| SpoolError::Io { path, op, source }
}

/// The checksum of an entry: CRC-32 over its length field and payload.
pub(crate) fn entry_crc(len_bytes: [u8; 4], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len_bytes);
    h.update(payload);
    h.finalize()
}
