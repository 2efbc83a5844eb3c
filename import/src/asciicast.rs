//! asciicast v1, v2 and v3 (<https://docs.asciinema.org/manual/asciicast/v2/>).
//!
//! v2 goes through the project's own parser ([`schemas::asciicast::parse_v2`]); v1 (one
//! JSON document of delays) and v3 (intervals, `#` comments, `x` exit events) are read
//! here. Errors name the 1-based line.

use std::collections::BTreeMap;

use schemas::EventKind;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::{Format, ImportError, Recording, json_seconds};

/// Which asciicast version `bytes` holds, judged from the start of its first line (a JSON
/// object with `"version": 1`, `2` or `3`); `None` if it does not look like asciicast.
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
    let first = text.trim_start();
    if !first.starts_with('{') {
        return None;
    }
    // v1 spreads its object over lines; v2 and v3 keep the header on the first line.
    let compact: String = first.chars().filter(|c| !c.is_whitespace()).collect();
    for (marker, format) in [
        ("\"version\":1", Format::AsciicastV1),
        ("\"version\":2", Format::AsciicastV2),
        ("\"version\":3", Format::AsciicastV3),
    ] {
        if let Some(at) = compact.find(marker) {
            let after = compact[at + marker.len()..].chars().next();
            if !after.is_some_and(|c| c.is_ascii_digit() || c == '.') {
                return Some(format);
            }
        }
    }
    None
}

/// Decodes an asciicast file of any version (the version its header states).
pub fn decode(bytes: &[u8]) -> Result<Recording, ImportError> {
    let text = utf8(bytes)?;
    match sniff(bytes) {
        Some(Format::AsciicastV1) => decode_v1(text),
        Some(Format::AsciicastV3) => decode_v3(text),
        Some(_) => decode_v2(text),
        None => Err(ImportError::line(
            1,
            "not an asciicast header: expected a JSON object with \"version\": 1, 2 or 3",
        )),
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, ImportError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        ImportError::line(line, format!("not UTF-8 (byte offset {at})"))
    })
}

/// The 1-based line of `part`, a slice of `text`.
fn line_of(text: &str, part: &str) -> usize {
    let offset = (part.as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn json_error(e: &serde_json::Error) -> ImportError {
    ImportError::line(e.line().max(1), format!("not valid JSON: {e}"))
}

/// A positive terminal dimension.
fn dimension(v: Option<&Value>, name: &str, line: usize) -> Result<u16, ImportError> {
    let v = v.ok_or_else(|| ImportError::line(line, format!("the header has no {name}")))?;
    v.as_u64()
        .and_then(|n| u16::try_from(n).ok())
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            ImportError::line(line, format!("{name} {v} is not a positive whole number"))
        })
}

/// Header fields shared by all versions: command, title, env, timestamp.
fn header_fields(
    rec: &mut Recording,
    h: &serde_json::Map<String, Value>,
    line: usize,
) -> Result<(), ImportError> {
    if let Some(ts) = h.get("timestamp").filter(|v| !v.is_null()) {
        let secs = ts.as_i64().ok_or_else(|| {
            ImportError::line(line, format!("timestamp {ts} is not whole seconds"))
        })?;
        rec.start_time_ns = secs.checked_mul(1_000_000_000);
    }
    if let Some(cmd) = h.get("command").and_then(Value::as_str) {
        rec.command = vec![cmd.to_string()];
    }
    if let Some(title) = h.get("title").and_then(Value::as_str) {
        rec.details.insert("title".into(), title.to_string());
    }
    if let Some(limit) = h.get("idle_time_limit").filter(|v| !v.is_null()) {
        rec.details
            .insert("idle_time_limit".into(), limit.to_string());
    }
    if let Some(env) = h.get("env").filter(|v| !v.is_null()) {
        let env = env
            .as_object()
            .ok_or_else(|| ImportError::line(line, "env is not an object"))?;
        for (k, v) in env {
            let Some(v) = v.as_str() else { continue };
            match k.as_str() {
                "TERM" => rec.term = Some(v.to_string()),
                "USER" => rec.user = Some(v.to_string()),
                _ => {
                    rec.details.insert(format!("env.{k}"), v.to_string());
                }
            }
        }
    }
    if let Some(theme) = h.get("theme") {
        check_theme(theme, line)?;
    }
    Ok(())
}

/// A theme, when given, has `#rrggbb` colours and a palette of 8 or 16 of them.
fn check_theme(theme: &Value, line: usize) -> Result<(), ImportError> {
    if theme.is_null() {
        return Ok(());
    }
    let bad = |m: String| ImportError::line(line, format!("bad theme: {m}"));
    let obj = theme
        .as_object()
        .ok_or_else(|| bad("not an object".into()))?;
    let colour = |s: &str| {
        s.len() == 7 && s.starts_with('#') && s[1..].bytes().all(|b| b.is_ascii_hexdigit())
    };
    for key in ["fg", "bg"] {
        if let Some(v) = obj.get(key) {
            match v.as_str() {
                Some(s) if colour(s) => {}
                _ => return Err(bad(format!("{key} {v} is not a #rrggbb colour"))),
            }
        }
    }
    if let Some(v) = obj.get("palette") {
        let ok = v.as_str().is_some_and(|p| {
            let colours: Vec<&str> = p.split(':').collect();
            matches!(colours.len(), 8 | 16) && colours.iter().all(|c| colour(c))
        });
        if !ok {
            return Err(bad(format!(
                "palette {v} is not 8 or 16 #rrggbb colours separated by ':'"
            )));
        }
    }
    Ok(())
}

fn decode_v1(text: &str) -> Result<Recording, ImportError> {
    let top: BTreeMap<String, &RawValue> =
        serde_json::from_str(text).map_err(|e| json_error(&e))?;
    let header: serde_json::Map<String, Value> = top
        .iter()
        .filter(|(k, _)| k.as_str() != "stdout")
        .map(|(k, v)| Ok((k.clone(), serde_json::from_str(v.get())?)))
        .collect::<Result<_, serde_json::Error>>()
        .map_err(|e| json_error(&e))?;
    let mut rec = Recording::new(Format::AsciicastV1);
    let cols = dimension(header.get("width"), "width", 1)?;
    let rows = dimension(header.get("height"), "height", 1)?;
    rec.size = Some((cols, rows));
    header_fields(&mut rec, &header, 1)?;
    if let Some(d) = header.get("duration").filter(|v| !v.is_null()) {
        rec.duration_ns = Some(
            json_seconds(d)
                .ok_or_else(|| ImportError::line(1, format!("duration {d} is not seconds")))?,
        );
    }
    let stdout = top
        .get("stdout")
        .ok_or_else(|| ImportError::line(1, "no stdout frames"))?;
    let frames: Vec<&RawValue> = serde_json::from_str(stdout.get()).map_err(|_| {
        ImportError::line(
            line_of(text, stdout.get()),
            "stdout is not an array of frames",
        )
    })?;
    let mut at = 0u64;
    for raw in frames {
        let line = line_of(text, raw.get());
        let bad = |m: &str| ImportError::line(line, m.to_string());
        let frame: Value = serde_json::from_str(raw.get()).map_err(|e| json_error(&e))?;
        let arr = frame
            .as_array()
            .ok_or_else(|| bad("a frame must be a [delay, data] array"))?;
        if arr.len() != 2 {
            return Err(bad(&format!(
                "a frame has 2 elements, this one has {}",
                arr.len()
            )));
        }
        let delay = json_seconds(&arr[0]).ok_or_else(|| {
            bad(&format!(
                "frame delay {} is not a non-negative number",
                arr[0]
            ))
        })?;
        let data = arr[1]
            .as_str()
            .ok_or_else(|| bad("frame data is not a string"))?;
        at = at.saturating_add(delay);
        rec.push(at, EventKind::Output, data.as_bytes().to_vec());
    }
    Ok(rec)
}

fn decode_v2(text: &str) -> Result<Recording, ImportError> {
    let (header, events) =
        schemas::asciicast::parse_v2(text).map_err(|e| ImportError::line(e.line, e.message))?;
    let (header_line, first) = text
        .lines()
        .enumerate()
        .find(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l))
        .unwrap_or((1, ""));
    let raw: serde_json::Map<String, Value> =
        serde_json::from_str(first).map_err(|e| json_error(&e))?;
    let mut rec = Recording::new(Format::AsciicastV2);
    let cols = dimension(raw.get("width"), "width", header_line)?;
    let rows = dimension(raw.get("height"), "height", header_line)?;
    rec.size = Some((cols, rows));
    header_fields(&mut rec, &raw, header_line)?;
    if let Some(d) = header.duration {
        rec.duration_ns = json_seconds(&Value::from(d));
    }
    for e in events {
        let at = json_seconds(&Value::from(e.time)).unwrap_or(u64::MAX);
        add_event(&mut rec, at, &e.code, &e.data);
    }
    Ok(rec)
}

/// Adds one `o`, `i`, `r`, `m` or `x` event; other codes are counted and skipped, as
/// players do.
fn add_event(rec: &mut Recording, at: u64, code: &str, data: &str) {
    let bytes = data.as_bytes().to_vec();
    match code {
        "o" => rec.push(at, EventKind::Output, bytes),
        "i" => rec.push(at, EventKind::Input, bytes),
        "m" => rec.push(at, EventKind::Marker, bytes),
        "r" => {
            if let Some((c, r)) = schemas::event::parse_size(data.as_bytes()) {
                rec.push(at, EventKind::Resize, schemas::event::format_size(c, r));
            }
        }
        "x" => {
            rec.exit_status = data.trim().parse().ok();
            rec.duration_ns = Some(rec.duration_ns.unwrap_or(0).max(at));
        }
        _ => {
            let n = rec
                .details
                .get("skipped_events")
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
            rec.details
                .insert("skipped_events".into(), (n + 1).to_string());
        }
    }
}

fn decode_v3(text: &str) -> Result<Recording, ImportError> {
    // The events (and every line's checks) as schemas reads v3; the header again as a
    // map, for the fields a session keeps that `HeaderV3` has no place for.
    let (_, events) =
        schemas::asciicast::v3::parse_v3(text).map_err(|e| ImportError::line(e.line, e.message))?;
    let (hline, first) = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .find(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .ok_or_else(|| ImportError::line(1, "empty file"))?;
    let header: serde_json::Map<String, Value> = serde_json::from_str(first)
        .map_err(|e| ImportError::line(hline, format!("bad header: {e}")))?;
    let term = header
        .get("term")
        .and_then(Value::as_object)
        .ok_or_else(|| ImportError::line(hline, "the header has no term object"))?;
    let mut rec = Recording::new(Format::AsciicastV3);
    let cols = dimension(term.get("cols"), "term.cols", hline)?;
    let rows = dimension(term.get("rows"), "term.rows", hline)?;
    rec.size = Some((cols, rows));
    header_fields(&mut rec, &header, hline)?;
    if let Some(t) = term.get("type").and_then(Value::as_str) {
        rec.term = Some(t.to_string());
    }
    if let Some(v) = term.get("version").and_then(Value::as_str) {
        rec.details.insert("term.version".into(), v.to_string());
    }
    if let Some(theme) = term.get("theme") {
        check_theme(theme, hline)?;
    }
    for e in events {
        let at = json_seconds(&Value::from(e.time)).unwrap_or(u64::MAX);
        add_event(&mut rec, at, &e.code, &e.data);
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_intervals_add_up_and_exit_codes_are_kept() {
        let text = "{\"version\": 3, \"term\": {\"cols\": 80, \"rows\": 24, \"type\": \"xterm\"}, \"timestamp\": 1700000000}\n# a comment\n[0.5, \"o\", \"a\"]\n\n[0.25, \"r\", \"100x30\"]\n[1, \"x\", \"3\"]\n";
        let rec = decode(text.as_bytes()).unwrap();
        assert_eq!(rec.format, Format::AsciicastV3);
        assert_eq!(rec.size, Some((80, 24)));
        assert_eq!(rec.term.as_deref(), Some("xterm"));
        assert_eq!(rec.start_time_ns, Some(1_700_000_000_000_000_000));
        assert_eq!(rec.frames.len(), 2);
        assert_eq!(rec.frames[1].elapsed_ns, 750_000_000);
        assert_eq!(rec.frames[1].data, b"100x30");
        assert_eq!(rec.exit_status, Some(3));
        assert_eq!(rec.duration_ns, Some(1_750_000_000));
    }

    #[test]
    fn v1_errors_name_the_frame_line() {
        let text = "{\n \"version\": 1, \"width\": 80, \"height\": 24,\n \"stdout\": [\n  [0.5, \"a\"],\n  [1, true]\n ]\n}\n";
        let e = decode(text.as_bytes()).unwrap_err();
        assert_eq!(e.to_string(), "line 5: frame data is not a string");
        let ok = text.replace("true", "\"b\"");
        let rec = decode(ok.as_bytes()).unwrap();
        assert_eq!(rec.frames[1].elapsed_ns, 1_500_000_000);
    }

    #[test]
    fn bad_themes_and_sizes_are_rejected_at_the_header() {
        let e = decode(b"{\"version\": 2, \"width\": 0, \"height\": 24}\n").unwrap_err();
        assert!(e.to_string().starts_with("line 1: width 0"), "{e}");
        let e = decode(
            b"{\"version\": 2, \"width\": 8, \"height\": 2, \"theme\": {\"fg\": \"white\"}}\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("bad theme"), "{e}");
        let e = decode(b"\xff{}").unwrap_err();
        assert!(e.to_string().contains("not UTF-8"), "{e}");
    }
}
