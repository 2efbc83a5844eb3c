//! asciicast v3, the format of asciinema 3 (<https://docs.asciinema.org/manual/asciicast/v3>).
//!
//! The differences from v2 that matter here: the header keeps the terminal in `term`
//! (`cols`, `rows`, `type`, …) instead of `width`/`height`; an event's time is the
//! interval since the previous event, not since the start; lines starting with `#` are
//! comments; and an `x` event carries the program's exit status.
//!
//! [`EncoderV3`] writes intervals from whole microseconds, so the times of a v3 export add
//! up to the times of the v2 export of the same events. [`parse_v3`] returns the
//! version-free [`CastEvent`]s of [`super`], with each event's absolute time (the running
//! sum of the intervals).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{CastEvent, EventText, ParseError, check_event, header_line};

/// The terminal of an asciicast v3 header.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TermV3 {
    /// Initial width in columns.
    pub cols: u16,
    /// Initial height in rows.
    pub rows: u16,
    /// `TERM`, e.g. `xterm-256color`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub term_type: Option<String>,
    /// The terminal's own version string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Colours; kept as read, not judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<serde_json::Value>,
}

/// The header line of an asciicast v3 file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HeaderV3 {
    /// Always 3.
    pub version: u32,
    /// The terminal.
    pub term: TermV3,
    /// Start time, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// Idle time cap used by players.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_time_limit: Option<f64>,
    /// The recorded command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// A title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Selected environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, Option<String>>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// Writes asciicast v3 lines: the header first, then one line per event, each timed by
/// the interval since the line before it.
#[derive(Default)]
pub struct EncoderV3 {
    text: EventText,
    /// Time of the last event written, whole microseconds since the start.
    last_us: u64,
}

impl EncoderV3 {
    /// The header line, with its newline.
    pub fn header(&self, header: &HeaderV3) -> String {
        header_line(header)
    }

    /// The line for an event at `elapsed_ns`, or nothing while a character is incomplete.
    /// `code` is `o`, `i`, `r`, `m` or `x` (exit status, in decimal).
    ///
    /// Times are rounded to the microsecond first and the interval taken between rounded
    /// times, so rounding never accumulates; an event earlier than the one before it gets
    /// an interval of 0.
    pub fn event(&mut self, elapsed_ns: u64, code: char, data: &[u8]) -> Option<String> {
        let text = self.text.of(code, data)?;
        let at_us = elapsed_ns.saturating_add(500) / 1000;
        let interval = at_us.saturating_sub(self.last_us);
        self.last_us = self.last_us.max(at_us);
        let data = serde_json::to_string(&text).expect("string serializes");
        Some(format!(
            "[{}.{:06}, \"{code}\", {data}]\n",
            interval / 1_000_000,
            interval % 1_000_000
        ))
    }
}

/// Parses an asciicast v3 file. Blank lines and `#` comment lines are skipped; any other
/// malformed line is an error naming it. Event times in the result are absolute (the sum
/// of the intervals so far).
pub fn parse_v3(text: &str) -> Result<(HeaderV3, Vec<CastEvent>), ParseError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (i, first) = lines.next().ok_or(ParseError {
        line: 1,
        message: "empty file".into(),
    })?;
    let header: HeaderV3 = serde_json::from_str(first).map_err(|e| ParseError {
        line: i + 1,
        message: format!("bad header: {e}"),
    })?;
    if header.version != 3 {
        return Err(ParseError {
            line: i + 1,
            message: format!("version {} is not 3", header.version),
        });
    }
    let mut events = Vec::new();
    let mut now = 0f64;
    for (i, l) in lines {
        if l.trim_start().starts_with('#') {
            continue;
        }
        let line = i + 1;
        let (interval, code, data) = check_event(l, line)?;
        if code == "x" && data.trim().parse::<i64>().is_err() {
            return Err(ParseError {
                line,
                message: format!("exit status {data:?} is not an integer"),
            });
        }
        now += interval;
        events.push(CastEvent {
            time: now,
            code,
            data,
        });
    }
    Ok((header, events))
}

#[cfg(test)]
mod tests {
    use super::super::{Encoder, HeaderV2, parse_v2};
    use super::*;

    #[test]
    fn intervals_are_relative_to_the_event_before() {
        let mut enc = EncoderV3::default();
        let mut text = enc.header(&HeaderV3 {
            version: 3,
            term: TermV3 {
                cols: 80,
                rows: 24,
                term_type: Some("xterm".into()),
                ..Default::default()
            },
            ..Default::default()
        });
        assert_eq!(
            text,
            "{\"version\":3,\"term\":{\"cols\":80,\"rows\":24,\"type\":\"xterm\"}}\n"
        );
        let lines = [
            enc.event(1_000_000_000, 'o', b"a").unwrap(),
            enc.event(1_250_000_400, 'o', b"b").unwrap(),
            enc.event(1_250_000_600, 'r', b"100x30").unwrap(),
            enc.event(3_000_000_000, 'x', b"3").unwrap(),
        ];
        assert_eq!(lines[0], "[1.000000, \"o\", \"a\"]\n");
        assert_eq!(lines[1], "[0.250000, \"o\", \"b\"]\n");
        assert_eq!(lines[2], "[0.000001, \"r\", \"100x30\"]\n");
        assert_eq!(lines[3], "[1.749999, \"x\", \"3\"]\n");
        text.extend(lines);
        let (h, ev) = parse_v3(&text).unwrap();
        assert_eq!((h.term.cols, h.term.rows), (80, 24));
        let times: Vec<f64> = ev.iter().map(|e| e.time).collect();
        for (got, want) in times.iter().zip([1.0, 1.25, 1.250001, 3.0]) {
            assert!((got - want).abs() < 1e-9, "{times:?}");
        }
        assert_eq!(ev[3].code, "x");
    }

    #[test]
    fn a_character_split_across_events_is_carried_and_timed_when_written() {
        let crab = "🦀".as_bytes();
        let mut enc = EncoderV3::default();
        assert_eq!(enc.event(1_000_000, 'o', &crab[..2]), None);
        assert_eq!(
            enc.event(3_000_000, 'o', &crab[2..]).unwrap(),
            "[0.003000, \"o\", \"🦀\"]\n"
        );
    }

    /// The same events through both encoders parse back to the same times (to the
    /// microsecond), codes and data.
    #[test]
    fn v3_and_v2_encodings_of_the_same_events_agree() {
        let events: Vec<(u64, char, &[u8])> = vec![
            (0, 'o', b"$ "),
            (1_234_567_891, 'i', b"l"),
            (1_234_999_999, 'o', "ż".as_bytes()),
            (7_000_000_001, 'r', b"90x30"),
            (7_000_000_002, 'm', b"mark"),
            (86_400_123_456_789, 'o', b"late"),
        ];
        let mut v2 = Encoder::default();
        let mut t2 = v2.header(&HeaderV2 {
            version: 2,
            width: 80,
            height: 24,
            ..Default::default()
        });
        let mut v3 = EncoderV3::default();
        let mut t3 = v3.header(&HeaderV3 {
            version: 3,
            term: TermV3 {
                cols: 80,
                rows: 24,
                ..Default::default()
            },
            ..Default::default()
        });
        for (ns, code, data) in events {
            t2 += &v2.event(ns, code, data).unwrap();
            t3 += &v3.event(ns, code, data).unwrap();
        }
        let (_, e2) = parse_v2(&t2).unwrap();
        let (_, e3) = parse_v3(&t3).unwrap();
        assert_eq!(e2.len(), e3.len());
        for (a, b) in e2.iter().zip(&e3) {
            assert_eq!((&a.code, &a.data), (&b.code, &b.data));
            assert!((a.time - b.time).abs() <= 1.5e-6, "{a:?} {b:?}");
        }
    }

    #[test]
    fn malformed_lines_are_named() {
        let h = "{\"version\": 3, \"term\": {\"cols\": 80, \"rows\": 24}}\n";
        let cases = [
            ("", 1, "empty file"),
            (
                "{\"version\": 2, \"width\": 80, \"height\": 24}\n",
                1,
                "bad header",
            ),
            (
                "{\"version\": 3, \"term\": {\"cols\": 80, \"rows\": 24}, \"version\": 3}\n",
                1,
                "bad header",
            ),
            (
                "{\"version\": 4, \"term\": {\"cols\": 80, \"rows\": 24}}\n",
                1,
                "is not 3",
            ),
        ];
        for (text, line, message) in cases {
            let e = parse_v3(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(message), "{text:?}: {e}");
        }
        let events = [
            ("# c\n[1.0, \"o\", \"a\"]\n\nlol\n", 5, "not JSON"),
            ("[1.0, \"o\"]\n", 2, "this one has 2"),
            ("[-1.0, \"o\", \"a\"]\n", 2, "negative"),
            ("[\"1\", \"o\", \"a\"]\n", 2, "not a number"),
            ("[1.0, 5, \"a\"]\n", 2, "code is not a string"),
            ("[1.0, \"o\", true]\n", 2, "data is not a string"),
            ("[1.0, \"r\", \"-1x0\"]\n", 2, "COLSxROWS"),
            ("[1.0, \"x\", \"zero\"]\n", 2, "exit status"),
        ];
        for (body, line, message) in events {
            let text = format!("{h}{body}");
            let e = parse_v3(&text).unwrap_err();
            assert_eq!(e.line, line, "{body:?}: {e}");
            assert!(e.message.contains(message), "{body:?}: {e}");
        }
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let text = "{\"version\": 3, \"term\": {\"cols\": 96, \"rows\": 26}}\n# stuff\n[1.5, \"o\", \"a\"]\n\n  # more\n[2, \"o\", \"b\"]\n\n";
        let (_, ev) = parse_v3(text).unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!((ev[0].time, ev[1].time), (1.5, 3.5));
    }

    /// The v3 files of the format's authors in the team's shared folder (see the v2 suite
    /// in [`super::super`] for how it is found and when it may be absent).
    #[test]
    fn upstream_v3_files_parse_or_fail_with_a_line() {
        let Some(files) = super::super::tests::conformance_files("v3") else {
            return;
        };
        for (name, text, invalid) in files {
            let result = parse_v3(&text);
            if invalid {
                let e = result.expect_err(&name);
                assert!(e.line >= 2, "{name}: {e}");
            } else {
                let (h, ev) = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(h.term.cols > 0 && h.term.rows > 0, "{name}");
                if name.contains("full-v3") {
                    let times: Vec<f64> = ev.iter().map(|e| e.time).collect();
                    let want = [0.000001, 1.000001, 1.300001, 2.900002, 13.400002];
                    for (got, want) in times.iter().zip(want) {
                        assert!((got - want).abs() < 1e-9, "{name}: {times:?}");
                    }
                    assert_eq!(ev[3].data, "80x40");
                }
                if name.contains("server__test-fixtures-3__full.") {
                    assert_eq!(h.term.term_type.as_deref(), Some("xterm-ghostty"));
                    assert_eq!(h.title.as_deref(), Some("bashing :)"));
                    assert_eq!(ev.len(), 5);
                    assert_eq!(ev[4].data, "żółć jaźń");
                }
                if name.contains("blank-lines-and-comments") {
                    assert_eq!(ev.len(), 4, "{name}");
                }
            }
        }
    }
}
