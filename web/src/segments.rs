//! Long sessions in pieces, so that the player starts before the whole session arrived.
//!
//! asciinema-player (3.18, vendored in `web/assets/`) plays a *segmented recording*: an
//! index (`{"version": 1, "duration", "term": {"cols", "rows"}, "markers", "segments":
//! [{"start", "url"}]}`) and segments fetched as the playhead needs them (the one holding
//! the start, then the next ones ahead), each with a *snapshot*: escape sequences that
//! redraw the terminal as it was at the segment's start. A seek into the last hour of an
//! eight-hour session then costs one segment, not the eight hours.
//!
//! The snapshot comes from rendering the session's output through a terminal emulator
//! (`vt100`, as the command extraction does), so the screen at a segment's start is the
//! one the user saw. The player checks the shape strictly (segment g > 0 starts with an
//! event at exactly its start, the last event is at exactly the duration, markers in
//! order): [`build`] keeps to it by construction, and marker events (`m`) move from the
//! event stream into the index, where the player wants them.

use std::num::NonZeroU16;
use std::sync::Mutex;

use serde_json::{Value, json};

/// Casts larger than this are played segmented; smaller ones in one piece (one request,
/// and the player's idle-time and marker options stay available).
pub const SEGMENTED_ABOVE_BYTES: usize = 1 << 20;
/// A segment is cut once it holds this many bytes of event data …
const SEGMENT_BYTES: usize = 256 << 10;
/// … or spans this many seconds.
const SEGMENT_SECONDS: f64 = 120.0;
/// Marker labels are cut to this many characters.
const LABEL_CHARS: usize = 80;

/// A session as segments: the index at once, each segment's snapshot when first asked for.
///
/// Cutting needs only sizes and times; a snapshot needs the terminal as every earlier
/// output left it. So [`build`] only cuts, and [`Segmented::segment`] renders the
/// snapshots up to the one asked for, keeping the emulator where it stopped: the index
/// (what the player fetches first) costs no rendering, playing from the start renders
/// one segment at a time as the player moves on, and each output byte is rendered at most
/// once however the viewers seek.
#[derive(Debug)]
pub struct Segmented {
    /// The index, with the segment URLs under `base`.
    pub index: Vec<u8>,
    cuts: Vec<Cut>,
    render: Mutex<Render>,
    /// Bytes held (for the cache's budget), counting the snapshots yet to be rendered.
    pub bytes: usize,
}

/// One segment as cut: where it starts, the terminal size there, its events as a JSON
/// array.
#[derive(Debug)]
struct Cut {
    start: f64,
    cols: u16,
    rows: u16,
    events: String,
}

/// The emulator after the segments before `snapshots.len()`, and their snapshots.
struct Render {
    parser: vt100::Parser,
    /// Snapshot `n` redraws the screen at segment `n`'s start.
    snapshots: Vec<String>,
}

impl std::fmt::Debug for Render {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Render")
            .field("snapshots", &self.snapshots.len())
            .finish_non_exhaustive()
    }
}

impl Segmented {
    /// How many segments there are.
    pub fn len(&self) -> usize {
        self.cuts.len()
    }

    /// Whether there are none ([`build`] never makes such a one).
    pub fn is_empty(&self) -> bool {
        self.cuts.is_empty()
    }

    /// Segment `n`'s JSON (`{"snapshot": {"cols", "rows", "init"}, "events"}`), or `None`
    /// past the last.
    pub fn segment(&self, n: usize) -> Option<Vec<u8>> {
        let cut = self.cuts.get(n)?;
        let init = {
            let mut r = self.render.lock().unwrap_or_else(|p| p.into_inner());
            while r.snapshots.len() <= n {
                let before = &self.cuts[r.snapshots.len() - 1];
                r.advance(before);
                let snapshot = r.parser.screen().state_formatted();
                r.snapshots.push(snapshot);
            }
            r.snapshots[n].clone()
        };
        let snapshot = json!({"cols": cut.cols, "rows": cut.rows, "init": init});
        Some(format!("{{\"snapshot\":{snapshot},\"events\":{}}}", cut.events).into_bytes())
    }
}

impl Render {
    /// Feeds one segment's events through the emulator.
    fn advance(&mut self, cut: &Cut) {
        // Written by `build` from valid events: never fails.
        let events: Vec<(f64, String, String)> =
            serde_json::from_str(&cut.events).unwrap_or_default();
        for (_, code, data) in events {
            match code.as_str() {
                "o" => self.parser.process(data.as_bytes()),
                "r" => {
                    if let Some((c, r)) = resize(&data) {
                        self.parser.set_size(dim(r), dim(c));
                    }
                }
                _ => {}
            }
        }
    }
}

/// A resize event's `COLSxROWS`, when both are positive.
fn resize(data: &str) -> Option<(u16, u16)> {
    let (c, r) = data.split_once('x')?;
    let (c, r) = (c.trim().parse::<u16>().ok()?, r.trim().parse::<u16>().ok()?);
    (c > 0 && r > 0).then_some((c, r))
}

/// Why a cast could not be cut into segments.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// A line is not asciicast v2.
    #[error("line {line} of the cast is not asciicast v2: {reason}")]
    Cast {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Nothing to play.
    #[error("the cast has no events")]
    Empty,
}

/// Cuts `cast` (asciicast v2, as `replay export` writes it) into segments whose URLs are
/// `base/N`; `markers` (offset in ns, label: the session's commands) go into the index
/// with the cast's own marker events.
pub fn build(cast: &[u8], base: &str, markers: &[(u64, &str)]) -> Result<Segmented, SegmentError> {
    let text = String::from_utf8_lossy(cast);
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (n, header) = lines.next().ok_or(SegmentError::Empty)?;
    let header: Value = serde_json::from_str(header).map_err(|e| bad(n, &e.to_string()))?;
    let size = |k: &str| {
        header[k]
            .as_u64()
            .and_then(|v| u16::try_from(v).ok())
            .filter(|v| *v > 0)
    };
    let (Some(cols), Some(rows)) = (size("width"), size("height")) else {
        return Err(bad(n, "the header has no positive width and height"));
    };
    let mut cutter = Cutter::new(cols, rows);
    let mut markers: Vec<(f64, String)> = markers
        .iter()
        .map(|(ns, l)| (*ns as f64 / 1e9, label(l)))
        .collect();
    let mut last = 0.0f64;
    for (n, line) in lines {
        let event: Value = serde_json::from_str(line).map_err(|e| bad(n, &e.to_string()))?;
        let (Some(t), Some(code), Some(data)) = (
            event[0].as_f64().filter(|t| t.is_finite() && *t >= 0.0),
            event[1].as_str(),
            event[2].as_str(),
        ) else {
            return Err(bad(n, "an event is [time, code, data]"));
        };
        if t < last {
            return Err(bad(n, "event times go backwards"));
        }
        last = t;
        if code == "m" {
            markers.push((t, label(data)));
        } else {
            cutter.add(t, code, data);
        }
    }
    let (duration, cuts) = cutter.finish()?;
    Ok(encode(cuts, duration, markers, base, (cols, rows)))
}

fn bad(line: usize, reason: &str) -> SegmentError {
    SegmentError::Cast {
        line: line + 1,
        reason: reason.to_string(),
    }
}

/// Cuts segments by size and time, following the terminal's size through resizes.
struct Cutter {
    cols: u16,
    rows: u16,
    done: Vec<Cut>,
    current: Cut,
    bytes: usize,
    count: usize,
    last: f64,
}

impl Cutter {
    fn new(cols: u16, rows: u16) -> Cutter {
        Cutter {
            cols,
            rows,
            done: Vec::new(),
            current: Cut {
                start: 0.0,
                cols,
                rows,
                events: String::from("["),
            },
            bytes: 0,
            count: 0,
            last: 0.0,
        }
    }

    fn add(&mut self, t: f64, code: &str, data: &str) {
        let full = self.bytes >= SEGMENT_BYTES || t - self.current.start >= SEGMENT_SECONDS;
        // Starts must be strictly increasing: events at the segment's instant stay in it.
        if full && self.count > 0 && t > self.current.start {
            let next = Cut {
                start: t,
                cols: self.cols,
                rows: self.rows,
                events: String::from("["),
            };
            let mut done = std::mem::replace(&mut self.current, next);
            done.events.push(']');
            self.done.push(done);
            (self.bytes, self.count) = (0, 0);
        }
        if code == "r"
            && let Some((c, r)) = resize(data)
        {
            (self.cols, self.rows) = (c, r);
        }
        if self.count > 0 {
            self.current.events.push(',');
        }
        self.current
            .events
            .push_str(&json!([t, code, data]).to_string());
        self.bytes += data.len();
        self.count += 1;
        self.last = t;
    }

    /// The duration (the last event's time) and the segments.
    fn finish(mut self) -> Result<(f64, Vec<Cut>), SegmentError> {
        if self.count > 0 {
            self.current.events.push(']');
            self.done.push(self.current);
        }
        if self.done.is_empty() {
            return Err(SegmentError::Empty);
        }
        Ok((self.last, self.done))
    }
}

/// The index, and the segments ready to render.
fn encode(
    cuts: Vec<Cut>,
    duration: f64,
    mut markers: Vec<(f64, String)>,
    base: &str,
    (cols, rows): (u16, u16),
) -> Segmented {
    // The player wants the last event at exactly the duration.
    markers.retain(|(t, _)| *t <= duration);
    markers.sort_by(|a, b| a.0.total_cmp(&b.0));
    markers.dedup_by(|b, a| a.0 == b.0);
    let index = json!({
        "version": 1,
        "duration": duration,
        "term": {"cols": cols, "rows": rows},
        "markers": markers.iter().map(|(t, l)| json!([t, l])).collect::<Vec<_>>(),
        "segments": cuts.iter().enumerate()
            .map(|(i, s)| json!({"start": s.start, "url": format!("{base}/{i}")}))
            .collect::<Vec<_>>(),
    })
    .to_string()
    .into_bytes();
    // A snapshot is at most a screenful of cells with their attributes.
    let snapshots: usize = cuts
        .iter()
        .map(|c| usize::from(c.cols) * usize::from(c.rows) * 8)
        .sum();
    let bytes = index.len() + cuts.iter().map(|c| c.events.len()).sum::<usize>() + snapshots;
    Segmented {
        index,
        cuts,
        render: Mutex::new(Render {
            parser: vt100::Parser::new(dim(rows), dim(cols), 0),
            // Segment 0 starts on a blank screen.
            snapshots: vec![String::new()],
        }),
        bytes,
    }
}

fn dim(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap_or(NonZeroU16::MIN)
}

fn label(text: &str) -> String {
    text.chars().take(LABEL_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cast(events: &[(f64, &str, &str)]) -> Vec<u8> {
        let mut out = json!({"version": 2, "width": 20, "height": 5}).to_string();
        for (t, c, d) in events {
            out.push('\n');
            out.push_str(&json!([t, c, d]).to_string());
        }
        out.into_bytes()
    }

    #[test]
    fn segments_follow_the_players_rules_and_snapshots_redraw_the_screen() {
        let big = "x".repeat(SEGMENT_BYTES) + "\r\nbig-done\r\n";
        let events = [
            (0.5, "o", "hello\r\n"),
            (1.0, "o", big.as_str()),
            (1.0, "o", "same instant"),
            (2.0, "m", "a marker"),
            (2.5, "o", "\x1b[2J\x1b[Hsecond screen"),
            (200.0, "r", "30x6"),
            (201.0, "o", "third"),
        ];
        let s = build(
            &cast(&events),
            "/api/sessions/x/cast/segments",
            &[(500_000_000, "echo hello")],
        )
        .unwrap();
        let index: Value = serde_json::from_slice(&s.index).unwrap();
        assert_eq!(index["duration"], json!(201.0));
        assert_eq!(
            index["markers"],
            json!([[0.5, "echo hello"], [2.0, "a marker"]])
        );
        let starts: Vec<f64> = index["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["start"].as_f64().unwrap())
            .collect();
        // Cut once the big output filled a segment (the next event, at the same instant,
        // starts one of its own: starts are strictly increasing), and after 120 s.
        assert_eq!(starts, vec![0.0, 1.0, 200.0]);
        assert_eq!(s.len(), 3);
        assert!(s.segment(3).is_none());
        // Asked for out of order: the emulator runs ahead to segment 2 first.
        let third: Value = serde_json::from_slice(&s.segment(2).unwrap()).unwrap();
        for (i, start) in starts.iter().enumerate() {
            let v: Value = serde_json::from_slice(&s.segment(i).unwrap()).unwrap();
            let first = v["events"][0][0].as_f64().unwrap();
            if i > 0 {
                assert_eq!(first, *start, "segment {i} starts with its first event");
            }
            assert!(v["events"].as_array().unwrap().iter().all(|e| e[1] != "m"));
        }
        let second: Value = serde_json::from_slice(&s.segment(1).unwrap()).unwrap();
        let init = second["snapshot"]["init"].as_str().unwrap();
        // The snapshot redraws what the first segment left on the screen.
        let mut p = vt100::Parser::new(dim(5), dim(20), 0);
        p.process(init.as_bytes());
        assert!(p.screen().contents().contains("big-done"), "{init:?}");
        assert_eq!(
            third["snapshot"]["cols"],
            json!(20),
            "resized by its own event"
        );
        let mut p = vt100::Parser::new(dim(5), dim(20), 0);
        p.process(third["snapshot"]["init"].as_str().unwrap().as_bytes());
        assert!(p.screen().contents().contains("second screen"));
    }

    #[test]
    fn bad_casts_are_errors() {
        assert!(matches!(build(b"", "/b", &[]), Err(SegmentError::Empty)));
        assert!(matches!(
            build(&cast(&[]), "/b", &[]),
            Err(SegmentError::Empty)
        ));
        assert!(build(b"{\"version\":2}\n[1,\"o\",\"x\"]", "/b", &[]).is_err());
        let backwards = cast(&[(2.0, "o", "a"), (1.0, "o", "b")]);
        assert!(build(&backwards, "/b", &[]).is_err());
        assert!(build(&cast(&[(f64::NAN, "o", "a")]), "/b", &[]).is_err());
    }
}
