//! `replay ls`: the sessions in the store.

use std::io::Write;

use schemas::text::escape_controls;
use schemas::time::{human_duration, rfc3339};
use search::SessionInfo;
use serde_json::json;

use crate::cli::LsArgs;
use crate::cmd::verify;
use crate::open::{StoreArgs, sessions, trust};

/// Lists sessions as a table or JSON.
pub fn run(store_args: &StoreArgs, args: LsArgs) -> anyhow::Result<()> {
    let (_, store) = store_args.open()?;
    let mut units = verify::Units::default();
    let sessions = sessions(store.as_ref(), |r| units.observe(r))?;
    let (_, trust) = trust(store_args)?;
    let states: Vec<&str> = sessions
        .iter()
        .map(|s| verify::report(s, units.take(s.id), &trust).state())
        .collect();
    let mut out = std::io::stdout().lock();
    if args.json {
        let list: Vec<_> = sessions
            .iter()
            .zip(&states)
            .map(|(s, state)| to_json(s, state))
            .collect();
        serde_json::to_writer_pretty(&mut out, &list)?;
        writeln!(out)?;
        return Ok(());
    }
    if sessions.is_empty() {
        eprintln!(
            "replay: no sessions in {} yet (record one with `auditty-agent record`, then run `auditty-ingest run --once`)",
            store.describe()
        );
        return Ok(());
    }
    writeln!(
        out,
        "{:<36}  {:<12} {:<16} {:<20} {:>9} {:>5} {:>9} {:<6} {:<9}  COMMAND",
        "SESSION", "USER", "HOST", "START (UTC)", "DURATION", "EXIT", "SIZE", "SEALED", "INTEGRITY"
    )?;
    for (s, state) in sessions.iter().zip(&states) {
        let start = s.start.as_ref();
        writeln!(
            out,
            "{:<36}  {:<12} {:<16} {:<20} {:>9} {:>5} {:>9} {:<6} {:<9}  {}",
            s.id,
            escape_controls(start.map_or("?", |m| m.user.as_str())),
            escape_controls(start.map_or("?", |m| m.host.as_str())),
            rfc3339(s.start_time_ns),
            human_duration(s.duration_ns),
            exit_text(s),
            human_bytes(s.bytes),
            if s.sealed { "yes" } else { "no" },
            state,
            escape_controls(&start.map(|m| m.command_line()).unwrap_or_default()),
        )?;
    }
    Ok(())
}

/// The exit column: the status, `sig N`, or `-` for a session with no end.
fn exit_text(s: &SessionInfo) -> String {
    match &s.end {
        None => "-".into(),
        Some(e) => match (e.exit_status, e.signal) {
            (Some(c), _) => c.to_string(),
            (None, Some(sig)) => format!("sig{sig}"),
            (None, None) => "?".into(),
        },
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

fn to_json(s: &SessionInfo, integrity: &str) -> serde_json::Value {
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
    })
}
