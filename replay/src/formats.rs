//! A session in each export format but the bundle: asciicast v2 and v3, JSON lines,
//! plain text. Each is a function of a [`View`] of the session (its id, its signed
//! `start`/`end` metadata and its events), so that `replay export`, `replay serve` and
//! [`crate::bundle`] (which derives the asciicast and the transcript it holds, and whose
//! verifier derives them again from the bundled rows) all use these very functions.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use schemas::asciicast::{Encoder, EncoderV3, HeaderV2, HeaderV3, TermV3};
use schemas::{Event, EventKind, SessionEnd, SessionId, SessionStart};
use search::render::Screen;

use crate::open::OpenSession;
use crate::stream::{Timed, cap_idle, timed};

/// What the exports read of a session.
pub struct View<'a> {
    /// The session.
    pub id: SessionId,
    /// Its `start` metadata, if it has a readable one.
    pub start: Option<&'a SessionStart>,
    /// Wall-clock start, UTC nanoseconds since the epoch.
    pub start_time_ns: i64,
    /// Its events in seq order (opened, for a sealed session).
    pub events: &'a [Event],
}

impl<'a> From<&'a OpenSession> for View<'a> {
    fn from(s: &'a OpenSession) -> View<'a> {
        View {
            id: s.info.id,
            start: s.info.start.as_ref(),
            start_time_ns: s.info.start_time_ns,
            events: &s.events,
        }
    }
}

/// The asciicast code and data of an event, or `None` for events asciicast has no place
/// for (`start`, `end`, `checkpoint`). Input left out of the recording (`redacted`)
/// becomes a marker that says how much.
fn cast_code(e: &Event) -> Option<(char, std::borrow::Cow<'_, [u8]>)> {
    let borrowed = |c: char| Some((c, std::borrow::Cow::Borrowed(e.data.as_slice())));
    match e.kind {
        EventKind::Output => borrowed('o'),
        EventKind::Input => borrowed('i'),
        EventKind::Resize => borrowed('r'),
        EventKind::Marker => borrowed('m'),
        EventKind::Redacted => Some((
            'm',
            std::borrow::Cow::Owned(redacted_label(&e.data).into_bytes()),
        )),
        EventKind::Start | EventKind::End | EventKind::Checkpoint => None,
    }
}

/// The events at their recorded times, pauses capped at `idle_limit`.
fn timeline(view: &View<'_>, idle_limit: Option<std::time::Duration>) -> Vec<Timed> {
    let events = timed(view.events.iter().cloned());
    match idle_limit {
        Some(limit) => cap_idle(events, limit).collect(),
        None => events.collect(),
    }
}

/// The initial size of the session's terminal, 80x24 when unknown.
fn size(start: &SessionStart) -> (u16, u16) {
    (
        if start.cols > 0 { start.cols } else { 80 },
        if start.rows > 0 { start.rows } else { 24 },
    )
}

/// asciicast v2 of a session: output as `o`, input as `i`, resizes as `r`, markers as `m`,
/// and input left out of the recording (`redacted`) as a marker that says how much.
pub fn asciicast(view: &View<'_>, idle_limit: Option<std::time::Duration>) -> Vec<u8> {
    let start = view.start.cloned().unwrap_or_default();
    let mut env = std::collections::BTreeMap::new();
    env.insert("TERM".to_string(), start.term.clone());
    let (width, height) = size(&start);
    let header = HeaderV2 {
        version: 2,
        width,
        height,
        timestamp: Some(view.start_time_ns.div_euclid(1_000_000_000)),
        duration: None,
        idle_time_limit: idle_limit.map(|d| d.as_secs_f64()),
        command: (!start.command.is_empty()).then(|| start.command_line()),
        title: Some(format!("auditty session {}", view.id)),
        env,
    };
    let mut enc = Encoder::default();
    let mut out = enc.header(&header);
    for t in timeline(view, idle_limit) {
        let Some((code, data)) = cast_code(&t.event) else {
            continue;
        };
        if let Some(line) = enc.event(duration_ns(t.at), code, &data) {
            out.push_str(&line);
        }
    }
    out.into_bytes()
}

/// asciicast v3 of a session: the events of [`asciicast`] (with intervals instead of
/// absolute times), and the exit status as an `x` event at the end, when the program
/// exited with one.
pub fn asciicast_v3(view: &View<'_>, idle_limit: Option<std::time::Duration>) -> Vec<u8> {
    let start = view.start.cloned().unwrap_or_default();
    let (cols, rows) = size(&start);
    let mut env = std::collections::BTreeMap::new();
    env.insert("TERM".to_string(), start.term.clone());
    let header = HeaderV3 {
        version: 3,
        term: TermV3 {
            cols,
            rows,
            term_type: start.term.clone(),
            ..Default::default()
        },
        timestamp: Some(view.start_time_ns.div_euclid(1_000_000_000)),
        idle_time_limit: idle_limit.map(|d| d.as_secs_f64()),
        command: (!start.command.is_empty()).then(|| start.command_line()),
        title: Some(format!("auditty session {}", view.id)),
        env,
        tags: Vec::new(),
    };
    let mut enc = EncoderV3::default();
    let mut out = enc.header(&header);
    for t in timeline(view, idle_limit) {
        let at = duration_ns(t.at);
        let line = match cast_code(&t.event) {
            Some((code, data)) => enc.event(at, code, &data),
            None if t.event.kind == EventKind::End => SessionEnd::from_bytes(&t.event.data)
                .ok()
                .and_then(|end| end.exit_status)
                .and_then(|status| enc.event(at, 'x', status.to_string().as_bytes())),
            None => None,
        };
        if let Some(line) = line {
            out.push_str(&line);
        }
    }
    out.into_bytes()
}

fn duration_ns(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The marker label for a `redacted` event, whose data is a byte count in ASCII decimal.
fn redacted_label(data: &[u8]) -> String {
    match std::str::from_utf8(data)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        Some(1) => "[1 byte of hidden input not recorded]".to_string(),
        Some(n) => format!("[{n} bytes of hidden input not recorded]"),
        None => "[hidden input not recorded]".to_string(),
    }
}

/// What the user saw, line by line.
pub fn text(view: &View<'_>) -> Vec<u8> {
    let start = view.start.cloned().unwrap_or_default();
    let mut screen = Screen::new(start.cols.max(1), start.rows.max(1));
    for e in view.events {
        screen.apply(e);
    }
    screen.transcript().into_bytes()
}

/// One JSON object per event and line (`schemas/export-events.schema.json`): session,
/// seq, kind, offset into the session and wall time, and the data as text when it is
/// UTF-8, else as base64.
pub fn jsonl(view: &View<'_>) -> Vec<u8> {
    /// One line, its fields in this order.
    #[derive(serde::Serialize)]
    struct Line<'a> {
        session: &'a str,
        seq: u64,
        kind: &'static str,
        elapsed_ns: u64,
        time: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        data_base64: Option<String>,
    }
    let mut out = Vec::new();
    let session = view.id.to_string();
    for e in view.events {
        let text = std::str::from_utf8(&e.data).ok();
        let line = Line {
            session: &session,
            seq: e.seq,
            kind: e.kind.as_str(),
            elapsed_ns: e.elapsed_ns,
            time: rfc3339_ns(view.start_time_ns.saturating_add_unsigned(e.elapsed_ns)),
            data: text,
            data_base64: text.is_none().then(|| B64.encode(&e.data)),
        };
        // Strings and numbers always serialize.
        out.extend(serde_json::to_vec(&line).unwrap_or_default());
        out.push(b'\n');
    }
    out
}

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
fn rfc3339_ns(unix_ns: i64) -> String {
    let secs = schemas::time::rfc3339(unix_ns);
    let nanos = unix_ns.rem_euclid(1_000_000_000);
    format!("{}.{nanos:09}Z", secs.trim_end_matches('Z'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_labels_say_how_much_was_left_out() {
        assert_eq!(
            redacted_label(b"20"),
            "[20 bytes of hidden input not recorded]"
        );
        assert_eq!(
            redacted_label(b"1"),
            "[1 byte of hidden input not recorded]"
        );
        assert_eq!(redacted_label(b"x\xff"), "[hidden input not recorded]");
    }

    fn ev(seq: u64, ms: u64, kind: EventKind, data: &[u8]) -> Event {
        Event {
            seq,
            elapsed_ns: ms * 1_000_000,
            kind,
            data: data.to_vec(),
        }
    }

    /// The view of [`sample`]'s session.
    fn sample_view<'a>(start: &'a SessionStart, events: &'a [Event]) -> View<'a> {
        View {
            id: SessionId::from_bytes([1; 16]),
            start: Some(start),
            start_time_ns: 1_700_000_000_123_000_000,
            events,
        }
    }

    fn sample() -> (SessionStart, Vec<Event>) {
        let start = SessionStart {
            cols: 80,
            rows: 24,
            term: Some("xterm".into()),
            command: vec!["bash".into()],
            ..Default::default()
        };
        let end = SessionEnd {
            exit_status: Some(3),
            ..Default::default()
        };
        let events = vec![
            ev(0, 0, EventKind::Start, &start.to_bytes()),
            ev(1, 10, EventKind::Output, b"$ "),
            ev(2, 1500, EventKind::Input, b"l"),
            ev(3, 1501, EventKind::Output, b"l\xff"),
            ev(4, 2000, EventKind::Redacted, b"8"),
            ev(5, 2500, EventKind::Resize, b"100x30"),
            ev(6, 3000, EventKind::End, &end.to_bytes()),
            ev(7, 3000, EventKind::Checkpoint, b"{}"),
        ];
        (start, events)
    }

    #[test]
    fn v3_has_the_events_of_v2_and_the_exit_status() {
        let (start, events) = sample();
        let view = sample_view(&start, &events);
        let v2 = String::from_utf8(asciicast(&view, None)).unwrap();
        let v3 = String::from_utf8(asciicast_v3(&view, None)).unwrap();
        let (h2, e2) = schemas::asciicast::parse_v2(&v2).unwrap();
        let (h3, e3) = schemas::asciicast::parse_v3(&v3).unwrap();
        assert_eq!((h2.width, h2.height), (h3.term.cols, h3.term.rows));
        assert_eq!(h3.term.term_type.as_deref(), Some("xterm"));
        assert_eq!(
            (h2.timestamp, h3.timestamp),
            (Some(1_700_000_000), Some(1_700_000_000))
        );
        assert_eq!(h2.command, h3.command);
        let (x, e3) = e3.split_last().unwrap();
        assert_eq!((x.code.as_str(), x.data.as_str(), x.time), ("x", "3", 3.0));
        assert_eq!(e2.len(), e3.len());
        for (a, b) in e2.iter().zip(e3) {
            assert_eq!((&a.code, &a.data), (&b.code, &b.data));
            assert!((a.time - b.time).abs() < 2e-6, "{a:?} {b:?}");
        }
        // Idle capping applies to v3 too.
        let capped = String::from_utf8(asciicast_v3(
            &view,
            Some(std::time::Duration::from_millis(100)),
        ))
        .unwrap();
        let (h, e) = schemas::asciicast::parse_v3(&capped).unwrap();
        assert_eq!(h.idle_time_limit, Some(0.1));
        assert!(e.last().unwrap().time <= 0.5 + 1e-9, "{e:?}");
    }

    #[test]
    fn jsonl_has_one_line_per_event_with_text_or_base64() {
        let (start, events) = sample();
        let view = sample_view(&start, &events);
        let out = String::from_utf8(jsonl(&view)).unwrap();
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), events.len());
        assert_eq!(lines[2]["kind"], "input");
        assert_eq!(lines[2]["data"], "l");
        assert_eq!(lines[2]["elapsed_ns"], 1_500_000_000u64);
        assert_eq!(lines[2]["time"], "2023-11-14T22:13:21.623000000Z");
        assert_eq!(lines[3]["data_base64"], B64.encode(b"l\xff"));
        assert!(lines[3].get("data").is_none());
        assert_eq!(
            lines[0]["session"],
            SessionId::from_bytes([1; 16]).to_string()
        );
        assert!(out.starts_with("{\"session\":"), "{out}");
    }
}
