//! `replay search`: commands matching a query, from the index `replay index` builds.

use std::io::{IsTerminal, Write};
use std::ops::Range;

use anyhow::Context;
use schemas::text::escape_controls;
use schemas::time::rfc3339;
use search::index::{Hit, IndexError, SearchQuery};
use serde_json::json;

use crate::cli::SearchArgs;
use crate::cmd::Failure;
use crate::open::StoreArgs;
use schemas::time::offset_text;

const NS_PER_DAY: i64 = 86_400 * 1_000_000_000;

/// Runs one search and prints the hits.
pub fn run(store_args: &StoreArgs, args: SearchArgs) -> anyhow::Result<()> {
    let dir = store_args.index_dir(args.index.as_deref())?;
    let query = SearchQuery {
        text: args.query.clone(),
        user: args.user.clone(),
        host: args.host.clone(),
        since_ns: time_bound(args.since.as_deref(), false)?,
        until_ns: time_bound(args.until.as_deref(), true)?,
        limit: args.limit,
    };
    let hits = match search::index::search(&dir, &query) {
        Ok(h) => h,
        Err(e @ IndexError::Missing { .. }) => anyhow::bail!("{e}"),
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("cannot search the index at {}", dir.display())));
        }
    };
    note_if_stale(store_args, &dir);
    crate::access::record_search(store_args, &args, &hits)?;
    print_hits(&hits, args.json)?;
    if hits.is_empty() {
        return Err(Failure::NotFound(format!("nothing matches {:?}", args.query)).into());
    }
    Ok(())
}

/// Says on stderr when the store holds objects the index has not taken in. A store that
/// cannot be listed only loses the note: the search itself does not need the store.
pub fn note_if_stale(store_args: &StoreArgs, dir: &std::path::Path) {
    let Ok((_, store)) = store_args.open() else {
        return;
    };
    if let Ok(n) = search::index::stale_objects(store.as_ref(), dir)
        && n > 0
    {
        eprintln!("replay: index is behind the store by {n} objects; run `replay index`");
    }
}

fn print_hits(hits: &[Hit], as_json: bool) -> anyhow::Result<()> {
    let bold = std::io::stdout().is_terminal();
    let mut out = std::io::stdout().lock();
    for h in hits {
        if as_json {
            serde_json::to_writer(&mut out, &to_json(h))?;
            writeln!(out)?;
        } else {
            writeln!(out, "{}", text_line(h))?;
            if !h.snippet.trim().is_empty() {
                writeln!(out, "    {}", marked(&h.snippet, &h.highlighted, bold))?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn text_line(h: &Hit) -> String {
    format!(
        "{}  {}  {}  {}  {:>9}  {}",
        h.session.get(..8).unwrap_or(&h.session),
        escape_controls(&h.user),
        escape_controls(&h.host),
        rfc3339(h.time_ns),
        offset_text(h.offset_ns),
        match h.index {
            Some(_) => escape_controls(&h.command),
            None => "(output before any command)".to_string(),
        },
    )
}

/// The snippet on one line, its matches between `[` `]` (or in bold on a terminal), every
/// piece escaped: the snippet is the session's output, untrusted.
fn marked(snippet: &str, highlighted: &[Range<usize>], bold: bool) -> String {
    let (open, close) = if bold {
        ("\x1b[1m", "\x1b[0m")
    } else {
        ("[", "]")
    };
    let flat = |s: &str| escape_controls(&s.replace(['\n', '\r'], " "));
    let mut out = String::new();
    let mut at = 0;
    for r in highlighted {
        let (Some(before), Some(hit)) = (snippet.get(at..r.start), snippet.get(r.clone())) else {
            continue;
        };
        out.push_str(&flat(before));
        out.push_str(open);
        out.push_str(&flat(hit));
        out.push_str(close);
        at = r.end;
    }
    out.push_str(&flat(snippet.get(at..).unwrap_or_default()));
    out
}

fn to_json(h: &Hit) -> serde_json::Value {
    json!({
        "id": h.session,
        "user": h.user,
        "host": h.host,
        "time": rfc3339(h.time_ns),
        "offset_ns": h.offset_ns,
        "index": h.index,
        "command": h.command,
        "exit_status": h.exit_status,
        "snippet": h.snippet,
    })
}

/// `--since`/`--until`: RFC 3339 (`2026-11-27T10:00:00Z`, `…+02:00`, fractions allowed)
/// or a UTC date, which means its first (`end` false) or last (`end` true) nanosecond.
pub fn parse_time(text: &str, end: bool) -> anyhow::Result<i64> {
    parse_time_opt(text.trim(), end).with_context(|| {
        format!("{text:?} is not a time: expected RFC 3339 (2026-11-27T10:00:00Z) or a date (2026-11-27)")
    })
}

/// An optional `--since` (`end` false) or `--until` (`end` true), parsed.
pub fn time_bound(text: Option<&str>, end: bool) -> anyhow::Result<Option<i64>> {
    text.map(|t| parse_time(t, end)).transpose()
}

fn parse_time_opt(t: &str, end: bool) -> Option<i64> {
    let date = t.get(..10)?;
    let day = parse_date(date)?;
    let start = day.checked_mul(NS_PER_DAY)?;
    let rest = &t[10..];
    if rest.is_empty() {
        return if end {
            start.checked_add(NS_PER_DAY - 1)
        } else {
            Some(start)
        };
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let (clock, offset_s) = split_zone(rest)?;
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut parts = hms
        .split(':')
        .map(|p| p.parse::<i64>().ok().filter(|_| p.len() == 2));
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    if parts.next().is_some()
        || h > 23
        || m > 59
        || s > 60
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let frac_ns: i64 = format!("{frac:0<9}").get(..9)?.parse().ok()?;
    let secs = h * 3600 + m * 60 + s - offset_s;
    start
        .checked_add(secs.checked_mul(1_000_000_000)?)?
        .checked_add(frac_ns)
}

/// Splits `HH:MM:SS[.f]` from its zone (`Z` or `±HH:MM`); the zone as seconds east.
fn split_zone(t: &str) -> Option<(&str, i64)> {
    if let Some(c) = t.strip_suffix(['Z', 'z']) {
        return Some((c, 0));
    }
    let at = t.rfind(['+', '-'])?;
    let (clock, zone) = t.split_at(at);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let (zh, zm) = zone[1..].split_once(':')?;
    let (zh, zm): (i64, i64) = (zh.parse().ok()?, zm.parse().ok()?);
    (zh <= 23 && zm <= 59).then_some((clock, sign * (zh * 3600 + zm * 60)))
}

/// Days since 1970-01-01 of `YYYY-MM-DD` (Howard Hinnant's `days_from_civil`).
fn parse_date(d: &str) -> Option<i64> {
    let b = d.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i64 = d[..4].parse().ok()?;
    let m: i64 = d[5..7].parse().ok()?;
    let day: i64 = d[8..10].parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_rfc3339_or_dates() {
        let t = parse_time("2026-11-27T10:00:00Z", false).unwrap();
        assert_eq!(rfc3339(t), "2026-11-27T10:00:00Z");
        assert_eq!(
            parse_time("2026-11-27T12:00:00.5+02:00", false).unwrap(),
            t + 500_000_000
        );
        let day = parse_time("2026-11-27", false).unwrap();
        assert_eq!(rfc3339(day), "2026-11-27T00:00:00Z");
        assert_eq!(
            parse_time("2026-11-27", true).unwrap(),
            day + NS_PER_DAY - 1
        );
        assert_eq!(
            rfc3339(parse_time("1970-01-01", false).unwrap()),
            "1970-01-01T00:00:00Z"
        );
        for bad in [
            "yesterday",
            "2026-13-01",
            "2026-11-27T25:00:00Z",
            "2026-11-27T10:00",
        ] {
            let e = parse_time(bad, false).unwrap_err().to_string();
            assert!(e.contains("expected RFC 3339"), "{e}");
        }
    }

    #[test]
    fn snippets_mark_matches_and_escape_the_rest() {
        let s = "a\x1b[2J unique123\nb";
        assert_eq!(
            marked(s, &[Range { start: 6, end: 15 }], false),
            "a\\e[2J [unique123] b"
        );
        assert_eq!(
            marked(s, &[Range { start: 6, end: 15 }], true),
            "a\\e[2J \x1b[1munique123\x1b[0m b"
        );
    }
}
