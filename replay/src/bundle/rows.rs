//! `rows.jsonl`: a session's `events` rows as stored, one JSON object per line, lossless.
//!
//! ```text
//! {"seq":0,"seq_last":0,"elapsed_ns":0,"kind":"start","data":"<base64>"}
//! ```
//!
//! These are exactly the columns the hash chain covers (`integrity/FORMAT.md`): a
//! plaintext row's seq, elapsed time, kind and data; a sealed row's whole chunk, which
//! holds its seqs. The table's `time` column is left out: it is derived (session start +
//! elapsed) and nothing signs it. The text is canonical (this field order, no spaces,
//! standard base64 with padding), and [`decode`] checks that it reads back to the same
//! text, so one changed byte anywhere is either a different row, which the chain names,
//! or a line that is not in the form [`encode`] writes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use schemas::RowKind;
use serde::Deserialize;

/// One stored row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleRow {
    /// First seq.
    pub seq: u64,
    /// Last seq (= `seq` but for sealed chunks).
    pub seq_last: u64,
    /// Nanoseconds since the session start.
    pub elapsed_ns: u64,
    /// What the row holds.
    pub kind: RowKind,
    /// Its bytes.
    pub data: Vec<u8>,
}

impl BundleRow {
    /// The row as [`crate::open::open_rows`] takes it.
    pub fn as_row(&self) -> crate::open::Row<'_> {
        crate::open::Row {
            seq: self.seq,
            seq_last: self.seq_last,
            elapsed_ns: self.elapsed_ns,
            kind: &self.kind,
            data: &self.data,
        }
    }

    /// The integrity unit of the row.
    pub fn unit(&self) -> integrity::Unit {
        integrity::unit_of_row(
            &self.kind,
            self.seq,
            self.seq_last,
            self.elapsed_ns,
            &self.data,
        )
    }
}

impl From<&store::EventRow> for BundleRow {
    fn from(r: &store::EventRow) -> BundleRow {
        BundleRow {
            seq: r.seq,
            seq_last: r.seq_last,
            elapsed_ns: r.elapsed_ns,
            kind: r.kind.clone(),
            data: r.data.clone(),
        }
    }
}

/// Why `rows.jsonl` does not read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct RowsError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// One line, with its newline.
fn line(r: &BundleRow) -> String {
    // A string always serializes.
    let kind = serde_json::to_string(r.kind.as_str()).unwrap_or_default();
    format!(
        "{{\"seq\":{},\"seq_last\":{},\"elapsed_ns\":{},\"kind\":{kind},\"data\":\"{}\"}}\n",
        r.seq,
        r.seq_last,
        r.elapsed_ns,
        B64.encode(&r.data)
    )
}

/// The rows as `rows.jsonl`.
pub fn encode(rows: &[BundleRow]) -> Vec<u8> {
    rows.iter().flat_map(|r| line(r).into_bytes()).collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    seq: u64,
    seq_last: u64,
    elapsed_ns: u64,
    kind: String,
    data: String,
}

/// Reads `rows.jsonl`: every line must be a row in the canonical form of [`encode`], the
/// last one ended by a newline, and the rows in strictly increasing seq order.
pub fn decode(bytes: &[u8]) -> Result<Vec<BundleRow>, RowsError> {
    let mut rows: Vec<BundleRow> = Vec::new();
    if bytes.is_empty() {
        return Err(RowsError {
            line: 1,
            reason: "no rows".into(),
        });
    }
    let body = bytes.strip_suffix(b"\n").ok_or_else(|| RowsError {
        line: bytes.split(|&b| b == b'\n').count(),
        reason: "the last line has no newline (cut short?)".into(),
    })?;
    for (i, text) in body.split(|&b| b == b'\n').enumerate() {
        let n = i + 1;
        let bad = |reason: String| RowsError { line: n, reason };
        let l: Line = serde_json::from_slice(text).map_err(|e| bad(format!("not a row: {e}")))?;
        let data = B64
            .decode(&l.data)
            .map_err(|e| bad(format!("data is not base64: {e}")))?;
        let row = BundleRow {
            seq: l.seq,
            seq_last: l.seq_last,
            elapsed_ns: l.elapsed_ns,
            kind: RowKind::from_name(&l.kind),
            data,
        };
        let mut canonical = line(&row).into_bytes();
        canonical.pop();
        if canonical != text {
            return Err(bad(
                "not in the canonical form replay writes (field order, spacing or base64 differ)"
                    .into(),
            ));
        }
        check_seqs(&row).map_err(bad)?;
        if let Some(prev) = rows.last()
            && prev.seq >= row.seq
        {
            return Err(bad(format!(
                "seq {} does not follow seq {} (rows are in seq order, once each)",
                row.seq, prev.seq
            )));
        }
        rows.push(row);
    }
    Ok(rows)
}

/// The seqs and time of a row that the chain does not hash must agree with what it does:
/// a plaintext row covers its own seq; a sealed row the seqs of its chunk's header, from
/// the time in its authenticated clear prefix (as the ingester stores it).
fn check_seqs(row: &BundleRow) -> Result<(), String> {
    if row.kind != RowKind::Sealed {
        return if row.seq_last == row.seq {
            Ok(())
        } else {
            Err(format!(
                "seq_last {} of a plaintext row is not its seq {}",
                row.seq_last, row.seq
            ))
        };
    }
    // A chunk that does not parse is judged by the chain, which hashes it as stored.
    let Ok(chunk) = schemas::chunk::seal::SealedChunk::parse(&row.data) else {
        return Ok(());
    };
    let stored = (row.seq, row.seq_last, row.elapsed_ns);
    let header = (
        chunk.header.first_seq,
        chunk.last_seq(),
        chunk.first_elapsed_ns,
    );
    if stored == header {
        Ok(())
    } else {
        Err(format!(
            "seq {}, seq_last {}, elapsed_ns {} differ from its sealed chunk's {}, {}, {}",
            stored.0, stored.1, stored.2, header.0, header.1, header.2
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::EventKind;

    fn rows() -> Vec<BundleRow> {
        vec![
            BundleRow {
                seq: 0,
                seq_last: 0,
                elapsed_ns: 0,
                kind: RowKind::Event(EventKind::Start),
                data: b"{}".to_vec(),
            },
            BundleRow {
                seq: 1,
                seq_last: 9,
                elapsed_ns: 5,
                kind: RowKind::Sealed,
                // Not a chunk: left to the chain.
                data: vec![0, 255, 1],
            },
            BundleRow {
                seq: 10,
                seq_last: 10,
                elapsed_ns: 6,
                kind: RowKind::Unknown("hologram\"x".into()),
                data: Vec::new(),
            },
        ]
    }

    #[test]
    fn rows_round_trip_canonically() {
        let text = encode(&rows());
        assert_eq!(
            String::from_utf8_lossy(&text).lines().next().unwrap(),
            r#"{"seq":0,"seq_last":0,"elapsed_ns":0,"kind":"start","data":"e30="}"#
        );
        assert_eq!(decode(&text).unwrap(), rows());
    }

    #[test]
    fn anything_else_is_refused_with_its_line() {
        let good = String::from_utf8(encode(&rows())).unwrap();
        let cases = [
            (
                good.replacen("\"seq\":0,", "\"seq\": 0,", 1),
                1,
                "canonical",
            ),
            (good.replacen("e30=", "e30", 1), 1, "base64"),
            (
                good.replacen(
                    "\"seq\":10,\"seq_last\":10,",
                    "\"seq\":1,\"seq_last\":1,",
                    1,
                ),
                3,
                "does not follow",
            ),
            (good.trim_end().to_string(), 3, "no newline"),
            (good.replacen("}\n", ",\"x\":1}\n", 1), 1, "not a row"),
            (format!("{good}\n"), 4, "not a row"),
            (String::new(), 1, "no rows"),
            (
                good.replacen("\"seq_last\":0", "\"seq_last\":1", 1),
                1,
                "not its seq",
            ),
        ];
        for (text, line, reason) in cases {
            let e = decode(text.as_bytes()).unwrap_err();
            assert_eq!(e.line, line, "{text}: {e}");
            assert!(e.reason.contains(reason), "{text}: {e}");
        }
    }
}
