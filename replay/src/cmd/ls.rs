//! `replay ls`: the sessions in the store, from the index when there is one.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use schemas::text::escape_controls;
use schemas::time::{human_duration, rfc3339};
use search::SessionInfo;
use search::index::{IndexError, ListQuery};
use serde_json::{Value, json};

use crate::cli::LsArgs;
use crate::cmd::search::{note_if_stale, time_bound};
use crate::open::{StoreArgs, sessions, trust};

/// Lists sessions as a table or JSON.
pub fn run(store_args: &StoreArgs, args: LsArgs) -> anyhow::Result<()> {
    let query = ListQuery {
        user: args.user.clone(),
        host: args.host.clone(),
        since_ns: time_bound(args.since.as_deref(), false)?,
        until_ns: time_bound(args.until.as_deref(), true)?,
        limit: args.limit,
    };
    let list = if args.scan {
        scan(store_args, &query)?
    } else {
        let dir = store_args.index_dir(args.index.as_deref())?;
        match from_index(&dir, &query) {
            Ok(mut list) => {
                note_if_stale(store_args, &dir);
                // What the rules flag is the web list's filter, kept in the listing by
                // `replay index`; a scan does not run the rules, and `ls` prints the
                // same objects either way (the report says what is flagged, and why).
                for v in &mut list {
                    if let Some(o) = v.as_object_mut() {
                        o.remove("findings");
                    }
                }
                list
            }
            Err(e @ (IndexError::Missing { .. } | IndexError::Outdated { .. })) => {
                let why = match e {
                    IndexError::Missing { .. } => format!("no index at {}", dir.display()),
                    _ => format!("the index at {} is of an older version", dir.display()),
                };
                eprintln!(
                    "replay: {why}; listing by reading the store (run `replay index` for fast listings and search)"
                );
                scan(store_args, &query)?
            }
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("cannot list from the index at {}", dir.display())));
            }
        }
    };
    print(store_args, &list, &args)
}

/// The listings stored in the index, parsed.
pub(crate) fn from_index(dir: &Path, query: &ListQuery) -> Result<Vec<Value>, IndexError> {
    search::index::list_sessions(dir, query)?
        .into_iter()
        .map(|l| {
            serde_json::from_str(&l.listing)
                .map_err(|e| IndexError::Query(format!("session {}: bad listing: {e}", l.session)))
        })
        .collect()
}

/// Every session read from the store and verified now, filtered as the index would be.
pub(crate) fn scan(store_args: &StoreArgs, query: &ListQuery) -> anyhow::Result<Vec<Value>> {
    let (_, store) = store_args.open()?;
    let mut units = crate::verdict::Units::default();
    // Unreadable objects are named on stderr by `sessions`; ls lists what it could read.
    let (sessions, _) = sessions(store.as_ref(), |r| units.observe(r))?;
    let (_, trust) = trust(store_args)?;
    let mut list: Vec<Value> = sessions
        .iter()
        .map(|s| {
            to_json(
                s,
                crate::verdict::report(s, units.take(s.id), &trust).state(),
            )
        })
        .filter(|v| matches(v, query))
        .collect();
    if let Some(limit) = query.limit {
        list.drain(..list.len().saturating_sub(limit));
    }
    Ok(list)
}

/// Whether a listing passes the filters of `query` (as [`search::index::list_sessions`]
/// applies them: exact user and host, start within the range).
fn matches(v: &Value, q: &ListQuery) -> bool {
    let start = v["start_time_ns"].as_i64().unwrap_or(0);
    q.user
        .as_deref()
        .is_none_or(|u| v["user"].as_str() == Some(u))
        && q.host
            .as_deref()
            .is_none_or(|h| v["host"].as_str() == Some(h))
        && q.since_ns.is_none_or(|t| start >= t)
        && q.until_ns.is_none_or(|t| start <= t)
}

fn print(store_args: &StoreArgs, list: &[Value], args: &LsArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, list)?;
        writeln!(out)?;
        return Ok(());
    }
    if list.is_empty() {
        let filtered = args.user.is_some()
            || args.host.is_some()
            || args.since.is_some()
            || args.until.is_some();
        if filtered {
            eprintln!("replay: no sessions match");
        } else {
            let (_, store) = store_args.open()?;
            eprintln!(
                "replay: no sessions in {} yet (record one with `auditty-agent record`, then run `auditty-ingest run --once`)",
                store.describe()
            );
        }
        return Ok(());
    }
    writeln!(
        out,
        "{:<36}  {:<12} {:<16} {:<20} {:>9} {:>5} {:>9} {:<6} {:<9}  COMMAND",
        "SESSION", "USER", "HOST", "START (UTC)", "DURATION", "EXIT", "SIZE", "SEALED", "INTEGRITY"
    )?;
    for v in list {
        writeln!(out, "{}", table_line(v)).context("cannot write the listing")?;
    }
    Ok(())
}

/// One row of the table, from the listing object (the same from the index or the store).
fn table_line(v: &Value) -> String {
    let text = |k: &str| v[k].as_str().unwrap_or("?");
    let command: Vec<&str> = v["command"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    format!(
        "{:<36}  {:<12} {:<16} {:<20} {:>9} {:>5} {:>9} {:<6} {:<9}  {}",
        text("id"),
        escape_controls(text("user")),
        escape_controls(text("host")),
        text("start"),
        human_duration(v["duration_ns"].as_u64().unwrap_or(0)),
        exit_text(v),
        human_bytes(v["bytes"].as_u64().unwrap_or(0)),
        if v["sealed"].as_bool().unwrap_or(false) {
            "yes"
        } else {
            "no"
        },
        text("integrity"),
        escape_controls(&command.join(" ")),
    )
}

/// The exit column: the status, `sig N`, or `-` for a session with no end.
fn exit_text(v: &Value) -> String {
    if !v["ended"].as_bool().unwrap_or(false) {
        return "-".into();
    }
    match (v["exit_status"].as_i64(), v["signal"].as_i64()) {
        (Some(c), _) => c.to_string(),
        (None, Some(sig)) => format!("sig{sig}"),
        (None, None) => "?".into(),
    }
}
fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1}G", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1}M", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1}K", n as f64 / 1024.0),
        n => format!("{n}B"),
    }
}

/// The listing of a session: what `ls --json` prints for it, and what `replay index`
/// stores so that `ls` can print it without reading the store.
pub fn to_json(s: &SessionInfo, integrity: &str) -> serde_json::Value {
    let start = s.start.as_ref();
    let end = s.end.as_ref();
    json!({
        "id": s.id.to_string(),
        "user": start.map(|m| &m.user),
        "uid": start.map(|m| m.uid),
        "host": start.map(|m| &m.host),
        "machine_id": start.and_then(|m| m.machine_id.as_ref()),
        "remote_addr": start.and_then(|m| m.remote_addr.as_ref()),
        "command": start.map(|m| &m.command),
        "term": start.and_then(|m| m.term.as_ref()),
        "cols": start.map(|m| m.cols),
        "rows": start.map(|m| m.rows),
        "start": rfc3339(s.start_time_ns),
        "start_time_ns": s.start_time_ns,
        "duration_ns": s.duration_ns,
        "ended": end.is_some(),
        "exit_status": end.and_then(|e| e.exit_status),
        "signal": end.and_then(|e| e.signal),
        "end_reason": end.map(|e| e.reason.as_str()),
        "events": s.event_count,
        "bytes": s.bytes,
        "sealed": s.sealed,
        "sealed_for": start.and_then(|m| m.envelope.as_ref()).map(|e| &e.recipients),
        "integrity": integrity,
        // Set for sessions brought in by `replay import`: format, sha256, bytes.
        "import": start.and_then(|m| m.import.as_ref()),
        "metadata": s.provenance.as_str(),
    })
}
