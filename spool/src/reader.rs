//! Reading segments back, with damage and torn tails reported, never misread.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::{
    ENTRY_HEADER_LEN, ENTRY_MAGIC, MAX_ENTRY_BYTES, SEGMENT_SUFFIX, SpoolError, entry_crc, io_err,
};

/// A segment file found in a spool directory.
#[derive(Clone, Debug)]
pub struct SegmentFile {
    /// Full path.
    pub path: PathBuf,
    /// File name without `.seg`: `<session>-<index>`. Unique in the spool.
    pub stem: String,
}

/// One thing found while scanning a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanItem {
    /// A complete entry whose checksum matches.
    Entry {
        /// Byte offset of the entry header.
        offset: u64,
        /// Offset just past the entry.
        end: u64,
        /// The payload.
        payload: Vec<u8>,
    },
    /// Bytes that are not a valid entry, followed by a valid one: damage in the middle.
    Damaged {
        /// Where the damage starts.
        offset: u64,
        /// Where the next valid entry starts.
        end: u64,
        /// What was wrong at `offset`.
        reason: String,
        /// The damaged bytes, as found.
        bytes: Vec<u8>,
    },
}

/// What follows the last valid entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tail {
    /// Where the invalid or incomplete bytes start.
    pub offset: u64,
    /// How many bytes there are up to the end of the file.
    pub len: u64,
    /// Why they do not form an entry.
    pub reason: String,
}

/// The result of scanning a segment from some offset.
#[derive(Debug, Clone)]
pub struct Scan {
    /// Entries and damaged stretches, in file order.
    pub items: Vec<ScanItem>,
    /// Offset after the last item: where the next scan starts.
    pub end: u64,
    /// Bytes after `end` that are not (yet) an entry.
    pub tail: Option<Tail>,
    /// True while the writer still holds the segment: a tail may still be completed.
    pub in_use: bool,
}

/// Lists the segment files of a spool directory in name order (session, then index).
pub fn list_segments(dir: &Path) -> Result<Vec<SegmentFile>, SpoolError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(dir, "list directory")(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err(dir, "list directory"))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(SEGMENT_SUFFIX) {
            out.push(SegmentFile {
                path: entry.path(),
                stem: stem.to_string(),
            });
        }
    }
    out.sort_by(|a, b| a.stem.cmp(&b.stem));
    Ok(out)
}

/// Why the entry at `pos` is not valid, or its length if it is.
fn check_entry(data: &[u8], pos: usize) -> Result<usize, (bool, String)> {
    // (incomplete, reason): incomplete means the bytes end before the entry does.
    let rest = &data[pos..];
    let magic_len = rest.len().min(4);
    if rest[..magic_len] != ENTRY_MAGIC[..magic_len] {
        return Err((
            false,
            format!("no entry marker (found {:02x?})", &rest[..magic_len]),
        ));
    }
    if rest.len() < ENTRY_HEADER_LEN {
        return Err((
            true,
            format!(
                "entry header cut off after {} of {ENTRY_HEADER_LEN} bytes",
                rest.len()
            ),
        ));
    }
    let len_bytes = [rest[4], rest[5], rest[6], rest[7]];
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len > MAX_ENTRY_BYTES {
        return Err((
            false,
            format!("entry claims {len} bytes, more than the {MAX_ENTRY_BYTES}-byte limit"),
        ));
    }
    if rest.len() < ENTRY_HEADER_LEN + len {
        return Err((
            true,
            format!(
                "entry claims {len} bytes but the file ends {} bytes later (cut off while being written?)",
                rest.len() - ENTRY_HEADER_LEN
            ),
        ));
    }
    let crc = u32::from_le_bytes([rest[8], rest[9], rest[10], rest[11]]);
    let payload = &rest[ENTRY_HEADER_LEN..ENTRY_HEADER_LEN + len];
    if entry_crc(len_bytes, payload) != crc {
        return Err((
            false,
            "entry checksum mismatch (bytes altered on disk)".to_string(),
        ));
    }
    Ok(ENTRY_HEADER_LEN + len)
}

/// Scans a segment from `from` (an offset a previous scan returned as `end`, or 0).
///
/// A damaged stretch followed by a valid entry is reported as [`ScanItem::Damaged`] and
/// skipped; invalid bytes up to the end of the file become the [`Tail`]. The scan never
/// returns bytes that did not pass the checksum.
pub fn scan_segment(path: &Path, from: u64) -> Result<Scan, SpoolError> {
    let mut file = File::open(path).map_err(io_err(path, "open segment"))?;
    let in_use = is_locked(&file);
    file.seek(SeekFrom::Start(from))
        .map_err(io_err(path, "seek"))?;
    let mut data = Vec::new();
    file.read_to_end(&mut data).map_err(io_err(path, "read"))?;
    Ok(scan_bytes(&data, from, in_use))
}

fn scan_bytes(data: &[u8], base: u64, in_use: bool) -> Scan {
    let mut items = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        match check_entry(data, pos) {
            Ok(n) => {
                items.push(ScanItem::Entry {
                    offset: base + pos as u64,
                    end: base + (pos + n) as u64,
                    payload: data[pos + ENTRY_HEADER_LEN..pos + n].to_vec(),
                });
                pos += n;
            }
            Err((_, reason)) => {
                // Resynchronise on the next marker that starts a valid entry.
                let next = (pos + 1..data.len().saturating_sub(3))
                    .filter(|&i| data[i..i + 4] == ENTRY_MAGIC)
                    .find(|&i| check_entry(data, i).is_ok());
                match next {
                    Some(next) => {
                        items.push(ScanItem::Damaged {
                            offset: base + pos as u64,
                            end: base + next as u64,
                            reason,
                            bytes: data[pos..next].to_vec(),
                        });
                        pos = next;
                    }
                    None => {
                        return Scan {
                            items,
                            end: base + pos as u64,
                            tail: Some(Tail {
                                offset: base + pos as u64,
                                len: (data.len() - pos) as u64,
                                reason,
                            }),
                            in_use,
                        };
                    }
                }
            }
        }
    }
    Scan {
        items,
        end: base + pos as u64,
        tail: None,
        in_use,
    }
}

/// True if a writer holds the segment's lock.
fn is_locked(file: &File) -> bool {
    // SAFETY: flock on a descriptor we own.
    let got = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0;
    if got {
        // SAFETY: as above; releases the probe lock at once.
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
    }
    !got
}

/// Cuts a torn tail off a segment no writer holds, so the next open does not trip on it.
/// Returns false (and changes nothing) if a writer holds the segment.
pub fn cut_torn_tail(path: &Path, at: u64) -> Result<bool, SpoolError> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err(path, "open segment"))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Ok(false);
    }
    file.set_len(at).map_err(io_err(path, "truncate"))?;
    file.sync_all().map_err(io_err(path, "fsync"))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SpoolOptions, SpoolWriter};
    use proptest::prelude::*;

    fn write(dir: &Path, payloads: &[&[u8]]) -> PathBuf {
        let mut w = SpoolWriter::create(dir, "s", SpoolOptions::default()).unwrap();
        for p in payloads {
            w.append(p).unwrap();
        }
        let path = w.current_segment().to_path_buf();
        w.finish().unwrap();
        path
    }

    fn payloads(scan: &Scan) -> Vec<Vec<u8>> {
        scan.items
            .iter()
            .filter_map(|i| match i {
                ScanItem::Entry { payload, .. } => Some(payload.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn reads_back_what_was_written_and_resumes_at_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), &[b"one", b"two", b""]);
        let scan = scan_segment(&path, 0).unwrap();
        assert_eq!(
            payloads(&scan),
            vec![b"one".to_vec(), b"two".to_vec(), vec![]]
        );
        assert!(scan.tail.is_none());
        assert!(!scan.in_use);
        let again = scan_segment(&path, scan.end).unwrap();
        assert!(again.items.is_empty());
    }

    #[test]
    fn a_torn_tail_is_reported_and_cut_never_misread() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), &[b"first entry", b"second entry"]);
        let full = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(full - 3)
            .unwrap();
        let scan = scan_segment(&path, 0).unwrap();
        assert_eq!(payloads(&scan), vec![b"first entry".to_vec()]);
        let tail = scan.tail.clone().unwrap();
        assert_eq!(tail.offset, 12 + 11);
        assert!(tail.reason.contains("cut off"), "{}", tail.reason);
        assert!(cut_torn_tail(&path, scan.end).unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), scan.end);
    }

    #[test]
    fn damage_in_the_middle_is_skipped_with_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), &[b"aaaa", b"bbbb", b"cccc"]);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[16 + 12 + 1] ^= 0xff; // inside the payload of the second entry
        std::fs::write(&path, &bytes).unwrap();
        let scan = scan_segment(&path, 0).unwrap();
        assert_eq!(payloads(&scan), vec![b"aaaa".to_vec(), b"cccc".to_vec()]);
        match &scan.items[1] {
            ScanItem::Damaged {
                offset,
                end,
                reason,
                ..
            } => {
                assert_eq!((*offset, *end), (16, 32));
                assert!(reason.contains("checksum"));
            }
            other => panic!("expected damage, got {other:?}"),
        }
    }

    #[test]
    fn a_held_segment_is_in_use_and_cannot_be_cut() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::create(dir.path(), "s", SpoolOptions::default()).unwrap();
        w.append(b"x").unwrap();
        let path = w.current_segment().to_path_buf();
        assert!(scan_segment(&path, 0).unwrap().in_use);
        assert!(!cut_torn_tail(&path, 0).unwrap());
        drop(w);
        assert!(!scan_segment(&path, 0).unwrap().in_use);
    }

    #[test]
    fn rotation_and_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SpoolOptions {
            max_bytes: 250,
            segment_bytes: 100,
        };
        let mut w = SpoolWriter::create(dir.path(), "s", opts).unwrap();
        for _ in 0..3 {
            w.append(&[1u8; 60]).unwrap();
        }
        assert_eq!(list_segments(dir.path()).unwrap().len(), 3);
        let err = w.append(&[1u8; 60]).unwrap_err();
        assert!(matches!(err, SpoolError::Full { .. }));
        assert!(err.to_string().contains("is full"));
        drop(w);
        assert!(matches!(
            SpoolWriter::create(
                dir.path(),
                "t",
                SpoolOptions {
                    max_bytes: 100,
                    segment_bytes: 100
                }
            ),
            Err(SpoolError::Full { .. })
        ));
    }

    proptest! {
        #[test]
        fn scanning_any_bytes_never_panics_and_returns_only_valid_entries(
            data in proptest::collection::vec(any::<u8>(), 0..300),
            with_entry in any::<bool>(),
        ) {
            let mut data = data;
            let garbage_len = data.len() as u64;
            if with_entry {
                let len = 3u32.to_le_bytes();
                data.extend_from_slice(&ENTRY_MAGIC);
                data.extend_from_slice(&len);
                data.extend_from_slice(&entry_crc(len, b"abc").to_le_bytes());
                data.extend_from_slice(b"abc");
            }
            let scan = scan_bytes(&data, 0, false);
            for item in &scan.items {
                if let ScanItem::Entry { offset, end, payload } = item {
                    prop_assert!(check_entry(&data, *offset as usize).is_ok());
                    prop_assert_eq!(*end - *offset, (payload.len() + ENTRY_HEADER_LEN) as u64);
                }
            }
            if with_entry {
                prop_assert!(scan.tail.is_none());
                // Whatever the garbage before it, the valid entry at the end is found.
                let found = scan.items.iter().any(|item| matches!(
                    item,
                    ScanItem::Entry { offset, payload, .. }
                        if *offset == garbage_len && payload.as_slice() == b"abc"
                ));
                prop_assert!(found, "entry at {} not found: {:?}", garbage_len, scan.items);
            }
        }
    }
}
