//! util-linux `script`: a timing file and the typescript(s) it times.
//!
//! - Classic (`script -t 2>TIMING`, `--log-timing` with `-m classic`): timing lines
//!   `DELAY BYTES`, the delay in seconds since the previous line, the bytes taken in order
//!   from the typescript.
//! - Advanced (`-m advanced`, the default of `--log-timing` with `--log-in`/`--log-io`):
//!   lines `O DELAY BYTES` (output), `I DELAY BYTES` (input), `S DELAY SIGWINCH ROWS=R
//!   COLS=C` (a resize; other signals become markers) and `H DELAY NAME VALUE` (header:
//!   `START_TIME`, `TERM`, `COLUMNS`, `LINES`, `COMMAND`, `OUTPUT_LOG`, `INPUT_LOG`,
//!   `DURATION`, `EXIT_CODE`…). Input and output may be one file (`-B`) or two.
//!
//! Each typescript begins with a `Script started on …` line and ends with a `Script done
//! on …` line; the timing counts only the bytes between them. Bytes the timing does not
//! account for (other than that last line) mean one of the two files was cut off, and are
//! an error naming the offset.

use std::collections::BTreeMap;

use schemas::EventKind;

use crate::{Format, ImportError, Recording, parse_decimal_seconds};

/// What the first line of the typescript says it is.
pub const TYPESCRIPT_MAGIC: &[u8] = b"Script started on ";
const DONE: &[u8] = b"Script done on ";

/// Which kind of timing file `bytes` starts as, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimingKind {
    /// `DELAY BYTES` lines.
    Classic,
    /// `O|I|S|H DELAY …` lines.
    Advanced,
}

/// Sniffs the first line of a possible timing file.
pub fn sniff_timing(bytes: &[u8]) -> Option<TimingKind> {
    let end = bytes.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&bytes[..end]).ok()?;
    let fields: Vec<&str> = line.split(' ').collect();
    match fields.as_slice() {
        [delay, n] if parse_decimal_seconds(delay).is_some() && n.parse::<u64>().is_ok() => {
            delay.contains('.').then_some(TimingKind::Classic)
        }
        [kind, delay, ..]
            if matches!(*kind, "O" | "I" | "S" | "H") && parse_decimal_seconds(delay).is_some() =>
        {
            Some(TimingKind::Advanced)
        }
        _ => None,
    }
}

/// Whether `bytes` starts as a typescript.
pub fn sniff_typescript(bytes: &[u8]) -> bool {
    bytes.starts_with(TYPESCRIPT_MAGIC)
}

/// The log files an advanced timing file names (`OUTPUT_LOG`, `INPUT_LOG`), as written.
pub fn named_logs(timing: &[u8]) -> (Option<String>, Option<String>) {
    let text = String::from_utf8_lossy(timing);
    let mut out = (None, None);
    for line in text.lines() {
        let mut f = line.splitn(4, ' ');
        if f.next() != Some("H") {
            continue;
        }
        let (_, name, value) = (f.next(), f.next(), f.next());
        match (name, value) {
            (Some("OUTPUT_LOG"), Some(v)) => out.0 = Some(v.to_string()),
            (Some("INPUT_LOG"), Some(v)) => out.1 = Some(v.to_string()),
            _ => {}
        }
    }
    out
}

/// The files of one `script` recording.
#[derive(Clone, Copy, Debug)]
pub struct Files<'a> {
    /// The timing file.
    pub timing: &'a [u8],
    /// The typescript holding output (with `-B`, input too).
    pub output: &'a [u8],
    /// A separate input log (`--log-in`), when there is one.
    pub input: Option<&'a [u8]>,
}

/// One typescript being read: its bytes and how far the timing got.
struct Log<'a> {
    name: &'static str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Log<'a> {
    /// Skips the `Script started on …` line, keeping what its brackets say.
    fn open(name: &'static str, bytes: &'a [u8], header: &mut BTreeMap<String, String>) -> Log<'a> {
        let mut at = 0;
        if bytes.starts_with(TYPESCRIPT_MAGIC) {
            let end = bytes
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |p| p + 1);
            let line = String::from_utf8_lossy(&bytes[..end]);
            parse_started_line(line.trim_end(), header);
            at = end;
        }
        Log { name, bytes, at }
    }

    fn take(&mut self, n: u64, line: usize) -> Result<&'a [u8], ImportError> {
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.at.checked_add(n))
            .filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(ImportError::line(
                line,
                format!(
                    "takes {n} bytes from the {} at offset {}, but it ends at {} (cut off?)",
                    self.name,
                    self.at,
                    self.bytes.len()
                ),
            )
            .in_part("timing"));
        };
        let data = &self.bytes[self.at..end];
        self.at = end;
        Ok(data)
    }

    /// What the timing did not cover must be the `Script done on …` line (or nothing).
    fn finish(&self, header: &mut BTreeMap<String, String>) -> Result<(), ImportError> {
        let rest = &self.bytes[self.at..];
        let trailer = rest.strip_prefix(b"\n").unwrap_or(rest);
        if rest.is_empty() || trailer.starts_with(DONE) {
            let line = String::from_utf8_lossy(trailer);
            if let Some(code) = bracket_fields(line.trim_end()).get("COMMAND_EXIT_CODE") {
                header
                    .entry("EXIT_CODE".into())
                    .or_insert_with(|| code.clone());
            }
            return Ok(());
        }
        Err(ImportError::offset(
            self.at as u64,
            format!(
                "{} bytes here are not in the timing file (the timing file was cut off, or belongs to another typescript)",
                rest.len()
            ),
        )
        .in_part(self.name))
    }
}

/// `KEY="value"` pairs inside the last `[…]` of a typescript's first or last line.
fn bracket_fields(line: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(open) = line.find('[') else {
        return out;
    };
    let mut rest = &line[open + 1..];
    while let Some(eq) = rest.find("=\"") {
        let key = rest[..eq].trim().to_string();
        let value_start = &rest[eq + 2..];
        // Values may hold quotes (a command); a value ends at `" ` before the next KEY= or at `"]`.
        let end = value_start
            .match_indices('"')
            .map(|(i, _)| i)
            .find(|&i| {
                let after = &value_start[i + 1..];
                after.starts_with(']')
                    // `[COMMAND="…" <not executed on terminal>]`
                    || (after.starts_with(" <") && after.trim_end().ends_with(">]"))
                    || after
                        .strip_prefix(' ')
                        .and_then(|a| a.split_once("=\""))
                        .is_some_and(|(k, _)| {
                            !k.is_empty() && k.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
                        })
            })
            .unwrap_or(value_start.len());
        out.insert(key, value_start[..end].to_string());
        rest = value_start.get(end + 1..).unwrap_or("");
    }
    out
}

fn parse_started_line(line: &str, header: &mut BTreeMap<String, String>) {
    let after = line.strip_prefix("Script started on ").unwrap_or("");
    let date = after.split(" [").next().unwrap_or("").trim();
    header
        .entry("START_TIME".into())
        .or_insert(date.to_string());
    for (k, v) in bracket_fields(line) {
        header.entry(k).or_insert(v);
    }
}

/// `2026-11-30 07:55:28+00:00` (what util-linux writes) to UTC nanoseconds.
pub fn parse_start_time(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, rest) = text.split_once(' ').or_else(|| text.split_once('T'))?;
    let mut d = date.split('-');
    let (y, m, day): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    if rest.len() < 8 {
        return None;
    }
    let (clock, zone) = rest.split_at(8);
    let mut c = clock.split(':');
    let (hh, mm, ss): (i64, i64, i64) = (
        c.next()?.parse().ok()?,
        c.next()?.parse().ok()?,
        c.next()?.parse().ok()?,
    );
    let offset = match zone {
        "" | "Z" => 0,
        z => {
            let sign = match z.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = z[1..].chars().filter(|c| c.is_ascii_digit()).collect();
            if digits.len() != 4 {
                return None;
            }
            let h: i64 = digits[..2].parse().ok()?;
            let mi: i64 = digits[2..].parse().ok()?;
            sign * (h * 3600 + mi * 60)
        }
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let secs = days_from_civil(y, m, day) * 86_400 + hh * 3600 + mm * 60 + ss - offset;
    secs.checked_mul(1_000_000_000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Decodes a timing file with its typescript(s).
pub fn decode(files: Files<'_>) -> Result<Recording, ImportError> {
    let timing = std::str::from_utf8(files.timing).map_err(|e| {
        ImportError::offset(e.valid_up_to() as u64, "the timing file is not text").in_part("timing")
    })?;
    let kind = sniff_timing(files.timing).unwrap_or(TimingKind::Classic);
    let mut header = BTreeMap::new();
    let mut output = Log::open("typescript", files.output, &mut header);
    let mut input = files
        .input
        .map(|b| Log::open("input log", b, &mut BTreeMap::new()));
    let mut rec = Recording::new(Format::Script);
    let mut at = 0u64;
    for (i, line) in timing.split('\n').enumerate() {
        let n = i + 1;
        if line.is_empty() {
            continue;
        }
        let bad = |m: String| ImportError::line(n, m).in_part("timing");
        let fields: Vec<&str> = line.split(' ').collect();
        let (tag, delay, args) = match kind {
            TimingKind::Classic => ("O", fields.first().copied(), fields.get(1..).unwrap_or(&[])),
            TimingKind::Advanced => (
                fields.first().copied().unwrap_or(""),
                fields.get(1).copied(),
                fields.get(2..).unwrap_or(&[]),
            ),
        };
        let delay = delay
            .and_then(parse_decimal_seconds)
            .ok_or_else(|| bad(format!("{line:?} does not start with a delay in seconds")))?;
        at = at.saturating_add(delay);
        match tag {
            "O" | "I" => {
                let count = match args {
                    [c] => c.parse::<u64>().ok(),
                    _ => None,
                }
                .ok_or_else(|| bad(format!("{line:?} does not end with a byte count")))?;
                let (log, kind) = match (tag, input.as_mut()) {
                    ("I", Some(log)) => (log, EventKind::Input),
                    ("I", None) => (&mut output, EventKind::Input),
                    _ => (&mut output, EventKind::Output),
                };
                let data = log.take(count, n)?;
                rec.push(at, kind, data.to_vec());
            }
            "S" => signal(&mut rec, at, args),
            "H" => {
                if let [name, value @ ..] = args {
                    header.insert((*name).to_string(), value.join(" "));
                }
            }
            other => return Err(bad(format!("unknown entry type {other:?}"))),
        }
    }
    output.finish(&mut header)?;
    if let Some(input) = &input {
        input.finish(&mut BTreeMap::new())?;
    }
    apply_header(&mut rec, header);
    Ok(rec)
}

fn signal(rec: &mut Recording, at: u64, args: &[&str]) {
    let field = |name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(name))
            .and_then(|v| v.parse::<u16>().ok())
    };
    match (args.first(), field("COLS="), field("ROWS=")) {
        (Some(&"SIGWINCH"), Some(cols), Some(rows)) => rec.resize(at, cols, rows),
        _ => rec.push(
            at,
            EventKind::Marker,
            format!("signal {}", args.join(" ")).into_bytes(),
        ),
    }
}

fn apply_header(rec: &mut Recording, mut header: BTreeMap<String, String>) {
    rec.start_time_ns = header.get("START_TIME").and_then(|t| parse_start_time(t));
    let dim = |v: Option<&String>| v.and_then(|v| v.parse::<u16>().ok()).filter(|&n| n > 0);
    if let (Some(c), Some(r)) = (dim(header.get("COLUMNS")), dim(header.get("LINES"))) {
        rec.size = Some((c, r));
    }
    rec.term = header.remove("TERM").filter(|t| !t.is_empty());
    if let Some(cmd) = header.remove("COMMAND") {
        rec.command = vec![cmd];
    } else if let Some(shell) = header.get("SHELL") {
        rec.command = vec![shell.clone()];
    }
    rec.exit_status = header.get("EXIT_CODE").and_then(|c| c.parse().ok());
    if let Some(d) = header
        .get("DURATION")
        .and_then(|d| parse_decimal_seconds(d))
    {
        rec.duration_ns = Some(d);
    }
    for (k, v) in header {
        if matches!(k.as_str(), "SHELL" | "TTY" | "START_TIME") {
            rec.details.insert(format!("script.{k}"), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: &[u8] = b"Script started on 2026-11-30 07:58:28+00:00 [COMMAND=\"echo \"hi\"\" TERM=\"xterm\" TTY=\"/dev/pts/0\" COLUMNS=\"100\" LINES=\"30\"]\nhello\r\nbye\r\n\nScript done on 2026-11-30 07:58:29+00:00 [COMMAND_EXIT_CODE=\"3\"]\n";

    #[test]
    fn classic_timing_takes_typescript_bytes_in_order() {
        let timing = b"0.5 7\n0.25 5\n";
        assert_eq!(sniff_timing(timing), Some(TimingKind::Classic));
        let rec = decode(Files {
            timing,
            output: TS,
            input: None,
        })
        .unwrap();
        assert_eq!(rec.frames.len(), 2);
        assert_eq!(rec.frames[0].data, b"hello\r\n");
        assert_eq!(rec.frames[1].elapsed_ns, 750_000_000);
        assert_eq!(rec.size, Some((100, 30)));
        assert_eq!(rec.command, vec!["echo \"hi\"".to_string()]);
        assert_eq!(rec.exit_status, Some(3));
        assert_eq!(rec.term.as_deref(), Some("xterm"));
        assert_eq!(
            rec.start_time_ns,
            Some(parse_start_time("2026-11-30 07:58:28Z").unwrap())
        );
        // A timing file cut off at a line boundary leaves typescript bytes uncovered.
        let e = decode(Files {
            timing: b"0.5 7\n",
            output: TS,
            input: None,
        })
        .unwrap_err();
        assert!(e.to_string().starts_with("typescript: byte offset "), "{e}");
        // A typescript cut off: the timing asks for more than there is.
        let cut = TS.iter().position(|&b| b == b'\n').unwrap() + 1 + 9;
        let e = decode(Files {
            timing,
            output: &TS[..cut],
            input: None,
        })
        .unwrap_err();
        assert!(
            e.to_string().starts_with("timing: line 2: takes 5 bytes"),
            "{e}"
        );
    }

    #[test]
    fn advanced_timing_reads_input_resizes_and_header() {
        let timing = b"H 0.000000 START_TIME 2026-11-30 07:58:28+00:00\nH 0.000000 COLUMNS 100\nH 0.000000 LINES 30\nI 0.1 1\nO 0.1 7\nS 0.1 SIGWINCH ROWS=40 COLS=120\nO 0.1 5\nH 0.000000 EXIT_CODE 0\n";
        assert_eq!(sniff_timing(timing), Some(TimingKind::Advanced));
        let input = b"Script started on 2026-11-30 07:58:28+00:00 []\nx\nScript done on x\n";
        let rec = decode(Files {
            timing,
            output: TS,
            input: Some(input),
        })
        .unwrap();
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
        assert_eq!(rec.frames[2].data, b"120x40");
        assert_eq!(rec.exit_status, Some(0));
        assert_eq!(
            parse_start_time("1970-01-02 00:00:00+01:00"),
            Some(82_800_000_000_000)
        );
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        let fields = bracket_fields(
            "Script started on x [COMMAND=\"printf \"a\"; echo b\" <not executed on terminal>]",
        );
        assert_eq!(fields["COMMAND"], "printf \"a\"; echo b");
    }
}
