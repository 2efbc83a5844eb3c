//! `spool::scan_segment` on any file contents, from offset 0 and from the middle: never a
//! panic, and the scan accounts for every byte. Entries, damaged stretches and the tail
//! follow each other without gap or overlap from `from` to the end of the file, and an
//! entry is only ever bytes whose checksum holds (`spool/FORMAT.md`).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use spool::{ENTRY_HEADER_LEN, ENTRY_MAGIC, ScanItem, scan_segment};

/// One file per fuzzing process, rewritten for every input.
fn segment_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("auditty-fuzz-spool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the fuzz temp dir");
        dir.join("fuzz-000000.seg")
    })
}

fuzz_target!(|data: &[u8]| {
    let path = segment_path();
    std::fs::write(path, data).expect("write the segment");
    for from in [0, data.len() as u64 / 2] {
        let scan = scan_segment(path, from).expect("scan a readable file");
        let mut at = from;
        for item in &scan.items {
            match item {
                ScanItem::Entry {
                    offset,
                    end,
                    payload,
                } => {
                    assert_eq!(
                        *offset, at,
                        "entry does not start where the last item ended"
                    );
                    assert!(
                        end > offset,
                        "entry ends at {end}, before its start {offset}"
                    );
                    let bytes = &data[*offset as usize..*end as usize];
                    assert_eq!(bytes.len(), ENTRY_HEADER_LEN + payload.len());
                    assert_eq!(bytes[..4], ENTRY_MAGIC);
                    assert_eq!(&bytes[ENTRY_HEADER_LEN..], &payload[..]);
                    let len = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
                    assert_eq!(len as usize, payload.len());
                    let mut crc = crc32fast::Hasher::new();
                    crc.update(&bytes[4..8]);
                    crc.update(payload);
                    let stored = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
                    assert_eq!(crc.finalize(), stored, "entry returned with a bad checksum");
                    at = *end;
                }
                ScanItem::Damaged {
                    offset, end, bytes, ..
                } => {
                    assert_eq!(
                        *offset, at,
                        "damage does not start where the last item ended"
                    );
                    assert!(
                        end > offset,
                        "damage ends at {end}, before its start {offset}"
                    );
                    assert_eq!(&data[*offset as usize..*end as usize], &bytes[..]);
                    at = *end;
                }
            }
        }
        assert_eq!(scan.end, at, "scan end is not the end of the last item");
        let file_len = (data.len() as u64).max(from);
        match &scan.tail {
            Some(tail) => {
                assert_eq!(tail.offset, scan.end);
                assert!(tail.len > 0);
                assert_eq!(
                    tail.offset + tail.len,
                    file_len,
                    "tail does not reach the end"
                );
            }
            None => assert_eq!(scan.end, file_len, "scan stopped before the end, no tail"),
        }
    }
});
