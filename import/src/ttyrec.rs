//! ttyrec: records of a 12-byte header (seconds, microseconds and length, each a
//! little-endian u32) followed by that many bytes of output.
//!
//! Times are absolute (the recording's wall clock), so the first record dates the
//! recording. ttyrec keeps no terminal size, user or host.

use schemas::EventKind;

use crate::{Format, ImportError, Recording};

const HEADER: usize = 12;
/// ttyrec writes what one read of the terminal returned; a record larger than this is
/// damage, not output.
const MAX_RECORD: u32 = 64 << 20;

fn header(bytes: &[u8], at: usize) -> Option<(u32, u32, u32)> {
    let h = bytes.get(at..at + HEADER)?;
    let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    Some((word(0), word(4), word(8)))
}

/// Whether `bytes` starts like a ttyrec file: a first header with microseconds below one
/// million, a plausible length, and a time after 1990 (ttyrec's own era). Damage after
/// the first header is for [`decode`] to report, with its offset.
pub fn sniff(bytes: &[u8]) -> bool {
    match header(bytes, 0) {
        Some((sec, usec, len)) => {
            usec < 1_000_000 && len <= MAX_RECORD && sec >= 631_152_000 && len > 0
        }
        None => false,
    }
}

/// Decodes a whole ttyrec file.
pub fn decode(bytes: &[u8]) -> Result<Recording, ImportError> {
    let mut rec = Recording::new(Format::Ttyrec);
    let mut at = 0usize;
    let mut first: Option<u64> = None;
    while at < bytes.len() {
        let Some((sec, usec, len)) = header(bytes, at) else {
            return Err(ImportError::offset(
                at as u64,
                format!(
                    "a record header needs {HEADER} bytes, but the file ends {} bytes later (cut off?)",
                    bytes.len() - at
                ),
            ));
        };
        if usec >= 1_000_000 {
            return Err(ImportError::offset(
                at as u64 + 4,
                format!("microseconds {usec} are not below 1000000 (not a ttyrec record)"),
            ));
        }
        if len > MAX_RECORD {
            return Err(ImportError::offset(
                at as u64 + 8,
                format!("record length {len} is implausible (over {MAX_RECORD} bytes)"),
            ));
        }
        let start = at + HEADER;
        let end = start.saturating_add(len as usize);
        if end > bytes.len() {
            return Err(ImportError::offset(
                at as u64,
                format!(
                    "the record claims {len} bytes, but the file ends {} bytes after its header (cut off?)",
                    bytes.len() - start
                ),
            ));
        }
        let t = u64::from(sec) * 1_000_000_000 + u64::from(usec) * 1000;
        let t0 = *first.get_or_insert(t);
        rec.push(
            t.saturating_sub(t0),
            EventKind::Output,
            bytes[start..end].to_vec(),
        );
        at = end;
    }
    match first {
        Some(t0) => rec.start_time_ns = i64::try_from(t0).ok(),
        None => return Err(ImportError::offset(0, "empty file: no ttyrec records")),
    }
    Ok(rec)
}

/// Encodes frames as ttyrec records from `start_us` (microseconds since the epoch); the
/// inverse of [`decode`] for output frames, for tests and tools.
pub fn encode(start_us: u64, frames: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (elapsed_us, data) in frames {
        let t = start_us + elapsed_us;
        out.extend_from_slice(&((t / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((t % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damage_names_its_offset() {
        let start = 1_700_000_000_000_000;
        let bytes = encode(start, &[(0, b"ab".to_vec()), (1500, b"c".to_vec())]);
        assert!(sniff(&bytes));
        let rec = decode(&bytes).unwrap();
        assert_eq!(rec.start_time_ns, Some(1_700_000_000_000_000_000));
        assert_eq!(rec.frames[1].elapsed_ns, 1_500_000);
        assert_eq!(rec.frames[1].data, b"c");
        let e = decode(&bytes[..bytes.len() - 1]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "byte offset 14: the record claims 1 bytes, but the file ends 0 bytes after its header (cut off?)"
        );
        let e = decode(&bytes[..20]).unwrap_err();
        assert!(
            e.to_string().starts_with("byte offset 14: a record header"),
            "{e}"
        );
    }
}
