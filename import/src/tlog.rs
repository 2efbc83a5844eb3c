//! tlog-rec's JSON messages, one per line (tlog's `doc/log_format.md`).
//!
//! Each message carries `host`, `user`, `term`, `session`, `rec` (the recording),
//! `id` (1, 2, … within the recording), `pos` (milliseconds since the recording
//! started), `time` (wall clock, seconds; format 2.3), and `timing`, which tells how the
//! message's text is spread in time: `+MS` a delay, `<N`/`>N` N characters of input/output
//! text, `[T/B`/`]T/B` T replacement characters to skip in the text and B bytes to take from
//! `in_bin`/`out_bin`, `=WxH` a window size.
//!
//! A file may hold several recordings (a file writer appends): each becomes a session. A
//! missing message (ids not consecutive) is an error naming the line.

use schemas::EventKind;
use serde_json::Value;

use crate::{Format, ImportError, Recording};

/// Whether the first line looks like a tlog message.
pub fn sniff(bytes: &[u8]) -> bool {
    let end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let first = String::from_utf8_lossy(&bytes[..end.min(1 << 20)]);
    let first = first.trim_start();
    first.starts_with('{') && first.contains("\"timing\"") && first.contains("\"ver\"")
}

/// One recording being assembled.
struct Open {
    key: String,
    next_id: u64,
    rec: Recording,
}

/// Decodes every recording in a tlog JSON file, in order of their first message.
pub fn decode(bytes: &[u8]) -> Result<Vec<Recording>, ImportError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        ImportError::line(line, format!("not UTF-8 (byte offset {at})"))
    })?;
    let mut open: Vec<Open> = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |m: String| ImportError::line(n, m);
        let msg: Value =
            serde_json::from_str(line).map_err(|e| bad(format!("not a JSON message: {e}")))?;
        let text_of = |k: &str| msg.get(k).and_then(Value::as_str);
        let key = match text_of("rec") {
            Some(r) => r.to_string(),
            None => format!(
                "{}/{}",
                text_of("host").unwrap_or(""),
                msg.get("session").map(Value::to_string).unwrap_or_default()
            ),
        };
        let id = msg
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad("the message has no id".into()))?;
        let idx = match open.iter().position(|o| o.key == key) {
            Some(i) => i,
            None => {
                open.push(Open {
                    key: key.clone(),
                    next_id: 1,
                    rec: start(&msg, &key),
                });
                open.len() - 1
            }
        };
        let o = &mut open[idx];
        if id != o.next_id {
            return Err(bad(format!(
                "message id {id} of recording {key}, expected {} (a message is missing or repeated)",
                o.next_id
            )));
        }
        o.next_id += 1;
        let pos = msg
            .get("pos")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad("the message has no pos".into()))?;
        message(&mut o.rec, &msg, pos).map_err(bad)?;
    }
    if open.is_empty() {
        return Err(ImportError::line(1, "no tlog messages"));
    }
    Ok(open.into_iter().map(|o| o.rec).collect())
}

fn start(msg: &Value, key: &str) -> Recording {
    let mut rec = Recording::new(Format::Tlog);
    let text = |k: &str| msg.get(k).and_then(Value::as_str).map(str::to_string);
    rec.user = text("user");
    rec.host = text("host");
    rec.term = text("term");
    rec.details.insert("tlog.rec".into(), key.to_string());
    if let Some(s) = msg.get("session") {
        rec.details.insert("tlog.session".into(), s.to_string());
    }
    if let Some(v) = text("ver") {
        rec.details.insert("tlog.ver".into(), v);
    }
    if let Some(t) = msg.get("time").and_then(Value::as_f64)
        && t.is_finite()
        && t >= 0.0
    {
        let pos = msg.get("pos").and_then(Value::as_u64).unwrap_or(0);
        let ns = (t * 1e3).round() as i64 - pos as i64;
        rec.start_time_ns = ns.checked_mul(1_000_000);
    }
    rec
}

/// The characters and bytes of one direction of a message.
struct Stream<'a> {
    name: &'static str,
    txt: std::str::Chars<'a>,
    bin: &'a [Value],
    bin_at: usize,
}

impl Stream<'_> {
    fn chars(&mut self, n: u64, out: &mut Vec<u8>) -> Result<(), String> {
        for _ in 0..n {
            let c = self.txt.next().ok_or_else(|| {
                format!("timing takes more characters than {}_txt holds", self.name)
            })?;
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
        Ok(())
    }

    fn binary(&mut self, skip: u64, n: u64, out: &mut Vec<u8>) -> Result<(), String> {
        for _ in 0..skip {
            self.txt.next().ok_or_else(|| {
                format!("timing skips more characters than {}_txt holds", self.name)
            })?;
        }
        for _ in 0..n {
            let b = self
                .bin
                .get(self.bin_at)
                .and_then(Value::as_u64)
                .and_then(|b| u8::try_from(b).ok())
                .ok_or_else(|| {
                    format!(
                        "timing takes byte {} of {}_bin, which is missing or not a byte",
                        self.bin_at, self.name
                    )
                })?;
            out.push(b);
            self.bin_at += 1;
        }
        Ok(())
    }

    fn check_used(&mut self) -> Result<(), String> {
        if self.txt.next().is_some() || self.bin_at != self.bin.len() {
            return Err(format!(
                "{}_txt or {}_bin holds more than the timing accounts for",
                self.name, self.name
            ));
        }
        Ok(())
    }
}

/// Reads a decimal number at the start of `s`, returning it and the rest.
fn number(s: &str) -> Option<(u64, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    Some((s[..end].parse().ok()?, &s[end..]))
}

fn message(rec: &mut Recording, msg: &Value, pos_ms: u64) -> Result<(), String> {
    let empty = Vec::new();
    let field = |k: &str| msg.get(k).and_then(Value::as_str).unwrap_or("");
    let bin = |k: &str| msg.get(k).and_then(Value::as_array).unwrap_or(&empty);
    let mut input = Stream {
        name: "in",
        txt: field("in_txt").chars(),
        bin: bin("in_bin"),
        bin_at: 0,
    };
    let mut output = Stream {
        name: "out",
        txt: field("out_txt").chars(),
        bin: bin("out_bin"),
        bin_at: 0,
    };
    let timing = msg
        .get("timing")
        .and_then(Value::as_str)
        .ok_or("the message has no timing")?;
    let mut at_ms = pos_ms;
    let mut rest = timing;
    // Consecutive records of one direction with no delay between them make one frame.
    let mut pending: Option<(EventKind, Vec<u8>)> = None;
    let flush = |rec: &mut Recording, pending: &mut Option<(EventKind, Vec<u8>)>, at_ms: u64| {
        if let Some((kind, data)) = pending.take() {
            rec.push(at_ms.saturating_mul(1_000_000), kind, data);
        }
    };
    while let Some(tag) = rest.chars().next() {
        let here = rest;
        let bad = || format!("bad timing {timing:?} at {here:?}");
        let (n, after) = number(&rest[1..]).ok_or_else(bad)?;
        rest = after;
        match tag {
            '+' => {
                flush(rec, &mut pending, at_ms);
                at_ms = at_ms.saturating_add(n);
            }
            '<' | '>' | '[' | ']' => {
                let kind = if matches!(tag, '<' | '[') {
                    EventKind::Input
                } else {
                    EventKind::Output
                };
                if pending.as_ref().is_some_and(|(k, _)| *k != kind) {
                    flush(rec, &mut pending, at_ms);
                }
                let stream = if kind == EventKind::Input {
                    &mut input
                } else {
                    &mut output
                };
                let buf = &mut pending.get_or_insert_with(|| (kind, Vec::new())).1;
                if matches!(tag, '<' | '>') {
                    stream.chars(n, buf)?;
                } else {
                    let (b, after) = rest.strip_prefix('/').and_then(number).ok_or_else(bad)?;
                    rest = after;
                    stream.binary(n, b, buf)?;
                }
            }
            '=' => {
                let (rows, after) = rest.strip_prefix('x').and_then(number).ok_or_else(bad)?;
                rest = after;
                flush(rec, &mut pending, at_ms);
                let (Ok(cols), Ok(rows)) = (u16::try_from(n), u16::try_from(rows)) else {
                    return Err(format!("window size {n}x{rows} is too large"));
                };
                rec.resize(at_ms.saturating_mul(1_000_000), cols, rows);
            }
            _ => return Err(bad()),
        }
    }
    flush(rec, &mut pending, at_ms);
    input.check_used()?;
    output.check_used()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_spreads_text_and_bytes() {
        let file = concat!(
            r#"{"ver":"2.3","host":"vm","rec":"r1","user":"root","term":"xterm","session":7,"id":1,"pos":0,"time":1796025340.611,"timing":"=80x24+7>8]1/1>3+202<1>5","in_txt":"x","in_bin":[],"out_txt":"hello\r\n\u0001�abcbye\r\n","out_bin":[255]}"#,
            "\n",
            r#"{"ver":"2.3","host":"vm","rec":"r1","user":"root","term":"xterm","session":7,"id":2,"pos":1000,"timing":"=100x30>1","in_txt":"","in_bin":[],"out_txt":"z","out_bin":[]}"#,
            "\n"
        );
        let recs = decode(file.as_bytes()).unwrap();
        assert_eq!(recs.len(), 1);
        let rec = &recs[0];
        assert_eq!(rec.size, Some((80, 24)));
        assert_eq!(rec.user.as_deref(), Some("root"));
        assert_eq!(rec.start_time_ns, Some(1_796_025_340_611_000_000));
        assert_eq!(rec.frames[0].elapsed_ns, 7_000_000);
        assert_eq!(rec.frames[0].data, b"hello\r\n\x01\xffabc");
        assert_eq!(rec.frames[1].kind, EventKind::Input);
        assert_eq!(rec.frames[2].data, b"bye\r\n");
        assert_eq!(rec.frames[3].data, b"100x30");
        assert_eq!(rec.frames[4].elapsed_ns, 1_000_000_000);

        let skipped = file.replace("\"id\":2", "\"id\":3");
        let e = decode(skipped.as_bytes()).unwrap_err();
        assert!(e.to_string().starts_with("line 2: message id 3"), "{e}");
        let short = file.replace(">3+202", ">2+202");
        let e = decode(short.as_bytes()).unwrap_err();
        assert!(e.to_string().starts_with("line 1: "), "{e}");
    }
}
