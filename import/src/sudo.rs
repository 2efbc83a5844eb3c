//! sudo I/O log directories (sudo's `log_output`/`log_input`; sudoreplay reads them).
//!
//! A directory holds `log` (first line `TIME:USER:RUNAS_USER:RUNAS_GROUP:TTY[:LINES:COLS]`,
//! then the working directory and the command line), since sudo 1.9.4 `log.json` (the
//! same with the submitting host), `timing`, and one file per stream: `ttyout`, `ttyin`,
//! `stdout`, `stderr`, `stdin`. Any of them may be gzip-compressed (sudo's `compress_io`,
//! on by default).
//!
//! `timing` lines are `EVENT DELAY BYTES`, the delay in seconds since the previous line:
//! event 0 stdin, 1 stdout, 2 stderr, 3 ttyin, 4 ttyout take BYTES from that stream's
//! file; 5 is a window change (`5 DELAY LINES COLS`), 7 a suspend or resume (`7 DELAY
//! SIGNAL`).

use std::collections::BTreeMap;
use std::io::Read;

use schemas::EventKind;
use serde_json::Value;

use crate::{Format, ImportError, Recording, parse_decimal_seconds};

/// The stream files, in timing-event order 0–4.
pub const STREAMS: [&str; 5] = ["stdin", "stdout", "stderr", "ttyin", "ttyout"];
/// Most bytes one decompressed file may hold: a gzip bomb is refused, not expanded.
const MAX_INFLATED: u64 = 4 << 30;

/// Whether a directory with these file names is a sudo I/O log: a `timing` file and a
/// `log` or `log.json`.
pub fn is_iolog_dir(names: &[String]) -> bool {
    let has = |n: &str| names.iter().any(|x| x == n);
    has("timing") && (has("log") || has("log.json"))
}

/// A file's bytes, inflated if they are gzip.
pub fn inflate(name: &str, bytes: &[u8]) -> Result<Vec<u8>, ImportError> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes.to_vec());
    }
    let mut out = Vec::new();
    let mut reader = flate2::read::MultiGzDecoder::new(bytes).take(MAX_INFLATED + 1);
    reader.read_to_end(&mut out).map_err(|e| {
        ImportError::offset(
            bytes.len() as u64,
            format!(
                "the gzip data is damaged or cut off ({e}; {} bytes inflated before that)",
                out.len()
            ),
        )
        .in_part(name)
    })?;
    if out.len() as u64 > MAX_INFLATED {
        return Err(ImportError::offset(0, "inflates to more than 4 GiB; refused").in_part(name));
    }
    Ok(out)
}

/// The (already inflated) files of one I/O log directory, by name.
pub type Files = BTreeMap<String, Vec<u8>>;

/// Decodes a directory's files (see [`inflate`]).
pub fn decode(files: &Files) -> Result<Recording, ImportError> {
    let mut rec = Recording::new(Format::SudoIolog);
    if let Some(json) = files.get("log.json") {
        log_json(&mut rec, json)?;
    }
    if let Some(log) = files.get("log") {
        log_text(&mut rec, log)?;
    }
    let timing = files
        .get("timing")
        .ok_or_else(|| ImportError::Unrecognized("no timing file".into()))?;
    let timing = std::str::from_utf8(timing)
        .map_err(|e| ImportError::offset(e.valid_up_to() as u64, "not text").in_part("timing"))?;
    let mut cursors = [0usize; 5];
    let mut at = 0u64;
    for (i, line) in timing.split('\n').enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |m: String| ImportError::line(n, m).in_part("timing");
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (event, delay) = match fields.as_slice() {
            [e, d, ..] => (e.parse::<u8>().ok(), parse_decimal_seconds(d)),
            _ => (None, None),
        };
        let (Some(event), Some(delay)) = (event, delay) else {
            return Err(bad(format!("{line:?} is not EVENT DELAY …")));
        };
        at = at.saturating_add(delay);
        let arg = |k: usize| fields.get(k).and_then(|v| v.parse::<u64>().ok());
        match event {
            0..=4 => {
                let count = arg(2).ok_or_else(|| bad(format!("{line:?} has no byte count")))?;
                let stream = STREAMS[usize::from(event)];
                let bytes = files.get(stream).map_or(&[][..], Vec::as_slice);
                let from = cursors[usize::from(event)];
                let end = usize::try_from(count)
                    .ok()
                    .and_then(|c| from.checked_add(c))
                    .filter(|&e| e <= bytes.len())
                    .ok_or_else(|| {
                        bad(format!(
                            "takes {count} bytes from {stream} at offset {from}, but it holds {} (cut off?)",
                            bytes.len()
                        ))
                    })?;
                cursors[usize::from(event)] = end;
                let kind = if matches!(event, 0 | 3) {
                    EventKind::Input
                } else {
                    EventKind::Output
                };
                rec.push(at, kind, bytes[from..end].to_vec());
            }
            5 => {
                let (Some(lines), Some(cols)) = (arg(2), arg(3)) else {
                    return Err(bad(format!("{line:?} is not 5 DELAY LINES COLS")));
                };
                let (Ok(cols), Ok(lines)) = (u16::try_from(cols), u16::try_from(lines)) else {
                    return Err(bad(format!("window size {cols}x{lines} is too large")));
                };
                rec.resize(at, cols, lines);
            }
            7 => {
                let sig = fields.get(2).copied().unwrap_or("?");
                rec.push(at, EventKind::Marker, format!("sudo: {sig}").into_bytes());
            }
            other => return Err(bad(format!("unknown event type {other}"))),
        }
    }
    for (i, stream) in STREAMS.iter().enumerate() {
        let len = files.get(*stream).map_or(0, Vec::len);
        if cursors[i] < len {
            return Err(ImportError::offset(
                cursors[i] as u64,
                format!(
                    "{} bytes here are not in the timing file (timing cut off?)",
                    len - cursors[i]
                ),
            )
            .in_part(*stream));
        }
    }
    Ok(rec)
}

fn log_json(rec: &mut Recording, bytes: &[u8]) -> Result<(), ImportError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| {
        ImportError::line(e.line().max(1), format!("not valid JSON: {e}")).in_part("log.json")
    })?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    rec.user = text("submituser");
    rec.host = text("submithost");
    if let Some(secs) = v.pointer("/timestamp/seconds").and_then(Value::as_i64) {
        let nanos = v
            .pointer("/timestamp/nanoseconds")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        rec.start_time_ns = secs
            .checked_mul(1_000_000_000)
            .and_then(|s| s.checked_add(nanos));
    }
    if let Some(argv) = v.get("runargv").and_then(Value::as_array) {
        rec.command = argv
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect();
    }
    let dim = |k: &str| {
        v.get(k)
            .and_then(Value::as_u64)
            .and_then(|n| u16::try_from(n).ok())
            .filter(|&n| n > 0)
    };
    if let (Some(c), Some(r)) = (dim("columns"), dim("lines")) {
        rec.size = Some((c, r));
    }
    if let Some(env) = v.get("runenv").and_then(Value::as_array) {
        rec.term = env
            .iter()
            .filter_map(Value::as_str)
            .find_map(|e| e.strip_prefix("TERM="))
            .map(str::to_string);
    }
    for (key, name) in [
        ("runuser", "sudo.runuser"),
        ("rungroup", "sudo.rungroup"),
        ("submitcwd", "sudo.cwd"),
        ("ttyname", "sudo.tty"),
        ("command", "sudo.command"),
    ] {
        if let Some(t) = text(key) {
            rec.details.insert(name.into(), t);
        }
    }
    Ok(())
}

/// The legacy `log` file; fills what `log.json` did not.
fn log_text(rec: &mut Recording, bytes: &[u8]) -> Result<(), ImportError> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    let f: Vec<&str> = first.split(':').collect();
    if f.len() < 5 {
        return Err(ImportError::line(
            1,
            format!("{first:?} is not TIME:USER:RUNAS_USER:RUNAS_GROUP:TTY"),
        )
        .in_part("log"));
    }
    let secs: i64 = f[0]
        .parse()
        .map_err(|_| ImportError::line(1, format!("{:?} is not a time", f[0])).in_part("log"))?;
    rec.start_time_ns = rec.start_time_ns.or(secs.checked_mul(1_000_000_000));
    rec.user = rec.user.take().or(Some(f[1].to_string()));
    rec.details
        .entry("sudo.runuser".into())
        .or_insert(f[2].to_string());
    rec.details
        .entry("sudo.tty".into())
        .or_insert(f[4].to_string());
    let dim = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<u16>().ok())
            .filter(|&n| n > 0)
    };
    if rec.size.is_none()
        && let (Some(r), Some(c)) = (dim(5), dim(6))
    {
        rec.size = Some((c, r));
    }
    if let Some(cwd) = lines.next() {
        rec.details
            .entry("sudo.cwd".into())
            .or_insert(cwd.to_string());
    }
    if rec.command.is_empty()
        && let Some(cmd) = lines.next()
    {
        rec.command = vec![cmd.to_string()];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(timing: &str, ttyout: &[u8]) -> Files {
        let mut f = Files::new();
        f.insert(
            "log".into(),
            b"1796025347:alice:root::/dev/pts/0:24:80\n/home/alice\n/usr/bin/id -u\n".to_vec(),
        );
        f.insert("timing".into(), timing.as_bytes().to_vec());
        f.insert("ttyout".into(), ttyout.to_vec());
        f.insert("ttyin".into(), b"x".to_vec());
        f
    }

    #[test]
    fn timing_takes_each_stream_in_order() {
        let rec = decode(&files(
            "3 0.5 1\n4 0.25 3\n5 0.1 30 100\n4 0.1 2\n",
            b"abcde",
        ))
        .unwrap();
        assert_eq!(rec.user.as_deref(), Some("alice"));
        assert_eq!(rec.size, Some((80, 24)));
        assert_eq!(rec.command, vec!["/usr/bin/id -u".to_string()]);
        assert_eq!(rec.start_time_ns, Some(1_796_025_347_000_000_000));
        let kinds: Vec<EventKind> = rec.frames.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::Input,
                EventKind::Output,
                EventKind::Resize,
                EventKind::Output
            ]
        );
        assert_eq!(rec.frames[2].data, b"100x30");
        assert_eq!(rec.frames[3].elapsed_ns, 950_000_000);
        let e = decode(&files("4 0.5 9\n", b"abcde")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("timing: line 1: takes 9 bytes from ttyout"),
            "{e}"
        );
        let e = decode(&files("3 0.5 1\n4 0.25 3\n", b"abcde")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ttyout: byte offset 3: 2 bytes here are not in the timing file (timing cut off?)"
        );
    }

    #[test]
    fn gzip_is_inflated_and_damage_is_reported() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"hello").unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(inflate("ttyout", &gz).unwrap(), b"hello");
        let e = inflate("ttyout", &gz[..gz.len() - 4]).unwrap_err();
        assert!(e.to_string().starts_with("ttyout: byte offset"), "{e}");
    }
}
