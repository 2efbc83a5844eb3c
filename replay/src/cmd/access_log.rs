//! `replay access-log`: who looked at which recordings, when, from where.

use std::io::Write;

use anyhow::Context;
use review::Access;
use schemas::text::escape_controls;
use schemas::time::rfc3339;
use serde_json::json;

use crate::cli::AccessLogArgs;
use crate::cmd::Failure;
use crate::cmd::search::time_bound;
use crate::open::StoreArgs;

/// Lists the access events of a period.
pub fn run(store_args: &StoreArgs, args: AccessLogArgs) -> anyhow::Result<()> {
    let since = time_bound(args.since.as_deref(), false)?;
    let until = time_bound(args.until.as_deref(), true)?;
    let (_, store) = store_args.open()?;
    let (events, problems) = review::read_access(store.as_ref(), since, until)
        .with_context(|| format!("cannot read the access log in {}", store.describe()))?;
    let prefix = args
        .session
        .as_deref()
        .map(|s| s.trim().to_ascii_lowercase());
    let shown: Vec<&Access> = events
        .iter()
        .filter(|a| {
            prefix
                .as_deref()
                .is_none_or(|p| a.sessions.iter().any(|s| s.starts_with(p)))
                && args.user.as_deref().is_none_or(|u| a.user == u)
                && args.action.as_deref().is_none_or(|x| a.action == x)
        })
        .collect();
    let mut out = std::io::stdout().lock();
    for a in &shown {
        if args.json {
            serde_json::to_writer(&mut out, &to_json(a))?;
            writeln!(out)?;
        } else {
            writeln!(out, "{}", text_line(a))?;
        }
    }
    out.flush()?;
    for p in &problems {
        eprintln!("replay: {}", escape_controls(&p.to_string()));
    }
    if !problems.is_empty() {
        return Err(Failure::NotVerified(format!(
            "{} access log objects unreadable or changed",
            problems.len()
        ))
        .into());
    }
    if shown.is_empty() {
        return Err(Failure::NotFound("no access events match".into()).into());
    }
    Ok(())
}

fn text_line(a: &Access) -> String {
    format!(
        "{}  {}@{}  {:<8}  {}  {}",
        rfc3339(a.time_ns),
        escape_controls(&a.user),
        escape_controls(&a.host),
        escape_controls(&a.action),
        if a.sessions.is_empty() {
            "-".to_string()
        } else {
            escape_controls(&a.sessions.join(","))
        },
        escape_controls(&a.detail),
    )
}

fn to_json(a: &Access) -> serde_json::Value {
    json!({
        "time": rfc3339(a.time_ns),
        "time_ns": a.time_ns,
        "user": a.user,
        "host": a.host,
        "action": a.action,
        "sessions": a.sessions,
        "detail": a.detail,
        "key": a.key,
    })
}
