//! `replay hold` (place or release a legal hold) and `replay holds` (list them).

use std::io::Write;

use anyhow::Context;
use schemas::SessionId;
use schemas::text::escape_controls;
use schemas::time::rfc3339;
use search::CatalogError;
use serde_json::json;
use store::ObjectStore;

use crate::cli::{HoldArgs, HoldsArgs};
use crate::cmd::Failure;
use crate::open::StoreArgs;

/// Places or releases one hold; either is recorded in the access log first.
pub fn run(store_args: &StoreArgs, args: HoldArgs) -> anyhow::Result<()> {
    if args.reason.trim().is_empty() {
        anyhow::bail!(
            "--reason is empty: a hold (and its release) must say why (a case number, a request)"
        );
    }
    let (_, store) = store_args.open()?;
    let id = resolve(store.as_ref(), &args.session, args.release)?;
    let ids = [id.to_string()];
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    if args.release {
        crate::access::record(store.as_ref(), "hold-release", &ids, &args.reason)?;
        match lifecycle::release_hold(store.as_ref(), id)? {
            Some(old) => println!(
                "{id}: hold released (it was placed {} by {}: {}); reason for release: {}",
                rfc3339(old.time_ns),
                escape_controls(&old.who),
                escape_controls(&old.reason),
                escape_controls(&args.reason)
            ),
            None => {
                return Err(Failure::NotFound(format!("session {id} is not on hold")).into());
            }
        }
        return Ok(());
    }
    crate::access::record(store.as_ref(), "hold", &ids, &args.reason)?;
    let hold = lifecycle::Hold::new(
        id,
        &args.who.unwrap_or_else(review::login_user),
        &review::login_user(),
        &review::host_name(),
        &args.reason,
    );
    let key = lifecycle::place_hold(store.as_ref(), &hold)?;
    println!(
        "{id}: on hold ({}); retention and `replay purge` leave it alone; stored as {key}",
        escape_controls(&hold.reason)
    );
    Ok(())
}

/// The session a hold names: resolved in the store; for a release also among the holds,
/// since a held session's rows may be gone by other means.
fn resolve(store: &dyn ObjectStore, query: &str, release: bool) -> anyhow::Result<SessionId> {
    if release && let Ok(id) = query.trim().parse::<SessionId>() {
        return Ok(id);
    }
    // Placing a hold needs the session to exist: a typo must not hold nothing silently.
    match search::find_session(store, query) {
        Ok(id) => Ok(id),
        Err(e @ (CatalogError::SessionNotFound { .. } | CatalogError::AmbiguousSession { .. })) => {
            if release {
                let q = query.trim().to_ascii_lowercase().replace('-', "");
                let (holds, _) = lifecycle::read_holds(store)?;
                let found: Vec<SessionId> = holds
                    .keys()
                    .filter(|id| !q.is_empty() && id.0.simple().to_string().starts_with(&q))
                    .copied()
                    .collect();
                if let [one] = found.as_slice() {
                    return Ok(*one);
                }
            }
            Err(Failure::NotFound(format!("{e}; nothing was recorded")).into())
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "cannot look up session '{}' in {}",
            escape_controls(query),
            store.describe()
        ))),
    }
}

/// Lists the holds.
pub fn list(store_args: &StoreArgs, args: HoldsArgs) -> anyhow::Result<()> {
    let (_, store) = store_args.open()?;
    let (holds, problems) = lifecycle::read_holds(store.as_ref())
        .with_context(|| format!("cannot read the holds in {}", store.describe()))?;
    for p in &problems {
        eprintln!(
            "replay: {}; its session counts as held",
            escape_controls(&p.to_string())
        );
    }
    let mut out = std::io::stdout().lock();
    for h in holds.values() {
        if args.json {
            let line = json!({
                "session_id": h.session_id.to_string(),
                "who": h.who,
                "os_user": h.os_user,
                "host": h.host,
                "time": rfc3339(h.time_ns),
                "time_ns": h.time_ns,
                "reason": h.reason,
            });
            serde_json::to_writer(&mut out, &line)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "{}  {}  {}@{} ({})  {}",
                h.session_id,
                rfc3339(h.time_ns),
                escape_controls(&h.who),
                escape_controls(&h.host),
                escape_controls(&h.os_user),
                escape_controls(&h.reason)
            )?;
        }
    }
    if holds.is_empty() {
        return Err(Failure::NotFound(format!("no holds in {}", store.describe())).into());
    }
    Ok(())
}
