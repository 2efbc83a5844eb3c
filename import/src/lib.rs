//! Decoders for other recorders' session files, for `replay import` (DESIGN.md §8).
//!
//! - [`asciicast`]: asciinema's asciicast v1, v2 and v3.
//! - [`ttyrec`]: ttyrec's binary records.
//! - [`script`]: util-linux `script` timing files (classic `-t` and advanced
//!   `--log-timing` multi-stream) with their typescripts.
//! - [`sudo`]: sudo I/O log directories (`log`, `log.json`, `timing`, `ttyout`, `ttyin`,
//!   `stdout`…, each possibly gzip-compressed).
//! - [`tlog`]: tlog-rec's JSON messages.
//! - [`detect`]: which of these a file holds, from its content (never its name), and the
//!   walk that finds sudo I/O log directories and pairs script timing files with their
//!   typescripts ([`plan`]).
//! - [`session`]: a decoded [`Recording`] as the events of an ordinary auditty session,
//!   with an id derived from the [`Digest`] of what was imported.
//!
//! Every decoder takes untrusted bytes and returns an [`ImportError`] naming the line or
//! byte offset of the first problem; none panics on any input (property tests in
//! `tests/`). A decoder reads a whole file before it returns, so a caller that writes only
//! after a successful decode never leaves half a recording behind.
#![warn(missing_docs)]

pub mod asciicast;
pub mod detect;
mod error;
pub mod script;
pub mod session;
pub mod sudo;
pub mod tlog;
pub mod ttyrec;

use std::collections::BTreeMap;

pub use detect::{Source, plan};
pub use error::ImportError;
use schemas::EventKind;
pub use session::{Defaults, Digest, ImportedSession};

/// The formats we import.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// asciicast v1 (one JSON document, frames of delays).
    AsciicastV1,
    /// asciicast v2 (a header line, then `[time, code, data]` lines).
    AsciicastV2,
    /// asciicast v3 (like v2, with intervals instead of times, and `#` comments).
    AsciicastV3,
    /// ttyrec.
    Ttyrec,
    /// util-linux `script`: a timing file and its typescript(s).
    Script,
    /// A sudo I/O log directory.
    SudoIolog,
    /// tlog-rec's JSON messages.
    Tlog,
}

impl Format {
    /// The name recorded in the session's metadata (`import.format`) and used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::AsciicastV1 => "asciicast-v1",
            Format::AsciicastV2 => "asciicast-v2",
            Format::AsciicastV3 => "asciicast-v3",
            Format::Ttyrec => "ttyrec",
            Format::Script => "script",
            Format::SudoIolog => "sudo-iolog",
            Format::Tlog => "tlog",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing that happened in a recording: output, input, a resize (`COLSxROWS`) or a
/// marker, at `elapsed_ns` since it started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Nanoseconds since the recording started; never decreases from one frame to the next.
    pub elapsed_ns: u64,
    /// [`EventKind::Output`], [`EventKind::Input`], [`EventKind::Resize`] or
    /// [`EventKind::Marker`].
    pub kind: EventKind,
    /// The bytes, as recorded.
    pub data: Vec<u8>,
}

/// A decoded recording: what the other tool wrote, before it becomes a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recording {
    /// What it was read from.
    pub format: Format,
    /// Wall-clock start, UTC nanoseconds since the epoch, when the file says.
    pub start_time_ns: Option<i64>,
    /// Initial terminal size (columns, rows), when the file says.
    pub size: Option<(u16, u16)>,
    /// The recorded user, when the file says.
    pub user: Option<String>,
    /// The host it was recorded on, when the file says.
    pub host: Option<String>,
    /// The program that ran, when the file says.
    pub command: Vec<String>,
    /// `TERM`, when the file says.
    pub term: Option<String>,
    /// Exit status of the program, when the file says.
    pub exit_status: Option<i32>,
    /// Total duration, when the file says (the end is the later of this and the last
    /// frame).
    pub duration_ns: Option<u64>,
    /// Output, input, resizes and markers, in order.
    pub frames: Vec<Frame>,
    /// What else the file said (title, run-as user, working directory…).
    pub details: BTreeMap<String, String>,
}

impl Recording {
    /// An empty recording of `format`.
    pub fn new(format: Format) -> Recording {
        Recording {
            format,
            start_time_ns: None,
            size: None,
            user: None,
            host: None,
            command: Vec::new(),
            term: None,
            exit_status: None,
            duration_ns: None,
            frames: Vec::new(),
            details: BTreeMap::new(),
        }
    }

    /// Adds a frame; `elapsed_ns` is raised to the previous frame's if it is earlier, so
    /// that frames stay in order.
    pub fn push(&mut self, elapsed_ns: u64, kind: EventKind, data: Vec<u8>) {
        let floor = self.frames.last().map_or(0, |f| f.elapsed_ns);
        self.frames.push(Frame {
            elapsed_ns: elapsed_ns.max(floor),
            kind,
            data,
        });
    }

    /// Adds a resize frame, or sets the initial size when nothing was shown yet. Sizes
    /// with a zero side (no terminal) are dropped.
    pub fn resize(&mut self, elapsed_ns: u64, cols: u16, rows: u16) {
        if cols == 0 || rows == 0 {
            return;
        }
        if self.frames.is_empty() && elapsed_ns == 0 && self.size.is_none() {
            self.size = Some((cols, rows));
            return;
        }
        self.push(
            elapsed_ns,
            EventKind::Resize,
            schemas::event::format_size(cols, rows),
        );
    }
}

/// Seconds as a decimal string (`1.234567`, `4`, `0.000001`) to nanoseconds, exactly
/// (no float rounding), or `None` if it is not a non-negative decimal number that fits.
pub fn parse_decimal_seconds(text: &str) -> Option<u64> {
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos = 0u64;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nanos += u64::from(b - b'0') * 10u64.pow(8 - i as u32);
    }
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Seconds as a JSON number to nanoseconds: exact for the decimal text serde_json keeps
/// for floats, rounded to the nanosecond otherwise. `None` if negative or too large.
pub fn json_seconds(v: &serde_json::Value) -> Option<u64> {
    if let Some(n) = v.as_u64() {
        return n.checked_mul(1_000_000_000);
    }
    let f = v.as_f64()?;
    if !(f >= 0.0 && f.is_finite()) {
        return None;
    }
    // Through the shortest decimal form, so `1.234567` is 1_234_567_000 ns, not …999.
    parse_decimal_seconds(&format_float(f))
}

fn format_float(f: f64) -> String {
    let s = format!("{f}");
    if s.contains('e') || s.contains('E') {
        format!("{f:.9}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_seconds_are_exact() {
        assert_eq!(parse_decimal_seconds("1.234567"), Some(1_234_567_000));
        assert_eq!(parse_decimal_seconds("4"), Some(4_000_000_000));
        assert_eq!(parse_decimal_seconds("0.002114995"), Some(2_114_995));
        assert_eq!(parse_decimal_seconds(".5"), Some(500_000_000));
        assert_eq!(parse_decimal_seconds("0.1234567891"), Some(123_456_789));
        for bad in ["", ".", "-1", "1e3", "1.2.3", " 1", "99999999999999999999"] {
            assert_eq!(parse_decimal_seconds(bad), None, "{bad:?}");
        }
        assert_eq!(
            json_seconds(&serde_json::json!(1.234567)),
            Some(1_234_567_000)
        );
        assert_eq!(json_seconds(&serde_json::json!(2)), Some(2_000_000_000));
        assert_eq!(json_seconds(&serde_json::json!(1e-7)), Some(100));
        assert_eq!(json_seconds(&serde_json::json!(-1.0)), None);
        assert_eq!(json_seconds(&serde_json::json!("1")), None);
    }
}
