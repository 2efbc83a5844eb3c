//! `replay verify`: is each session complete and untampered?

use std::io::Write;

use anyhow::Context;
use integrity::{Expectations, Report, TrustSet};
use serde_json::json;
use store::{ObjectStore, SessionInfo, StoreError};

use crate::cli::VerifyArgs;
use crate::cmd::Failure;
use crate::open::{StoreArgs, sessions, trust};

/// Verifies the sessions asked for; fails with [`Failure::NotVerified`] unless all are
/// complete.
pub fn run(store_args: &StoreArgs, args: VerifyArgs) -> anyhow::Result<()> {
    let (_, store) = store_args.open()?;
    let (trust_path, trust) = trust(store_args)?;
    let infos = if args.all {
        sessions(store.as_ref())?
    } else {
        let mut infos = Vec::new();
        for q in &args.sessions {
            infos.push(one(store.as_ref(), q)?);
        }
        infos
    };
    let mut out = std::io::stdout().lock();
    let mut failed = 0usize;
    for info in &infos {
        let report = report(info, &trust);
        if !report.is_complete() {
            failed += 1;
        }
        if args.json {
            serde_json::to_writer(&mut out, &to_json(&report))?;
            writeln!(out)?;
        } else {
            writeln!(out, "{}  {}", info.id, describe(&report))?;
        }
    }
    if trust.is_empty() {
        eprintln!(
            "replay: the trust file {} holds no keys, so no signature can be trusted; add each node's `auditty-agent node-key` line to it",
            trust_path.display()
        );
    }
    if args.all && infos.is_empty() {
        return Err(Failure::NotFound(format!("no sessions in {}", store.describe())).into());
    }
    if failed > 0 {
        return Err(Failure::NotVerified(format!(
            "{failed} of {} sessions did not verify as complete",
            infos.len()
        ))
        .into());
    }
    Ok(())
}

fn one(store: &dyn ObjectStore, query: &str) -> anyhow::Result<SessionInfo> {
    match store::find_and_open_session(store, query) {
        Ok((info, _, problems)) => {
            for p in problems {
                eprintln!("replay: skipped an unreadable object: {p}");
            }
            Ok(info)
        }
        Err(e @ (StoreError::SessionNotFound { .. } | StoreError::AmbiguousSession { .. })) => {
            Err(Failure::NotFound(e.to_string()).into())
        }
        Err(e) => Err(anyhow::Error::new(e))
            .with_context(|| format!("cannot read session '{query}' from {}", store.describe())),
    }
}

/// Verifies one session from what the catalog read of it.
pub fn report(info: &SessionInfo, trust: &TrustSet) -> Report {
    integrity::verify(
        info.id,
        info.units.clone(),
        trust,
        Expectations {
            end_event_count: info.end.as_ref().map(|e| e.event_count),
        },
    )
}

/// One line: `complete: …` or `FAILED: problem; problem`.
pub fn describe(r: &Report) -> String {
    if r.is_complete() {
        let by = r.signers.iter().cloned().collect::<Vec<_>>().join(", ");
        return format!("complete: {} events, signed by {by}", r.events);
    }
    let problems: Vec<String> = r.problems.iter().map(ToString::to_string).collect();
    let word = r.state().to_ascii_uppercase();
    schemas::text::escape_controls(&format!("{word}: {}", problems.join("; ")))
}

fn to_json(r: &Report) -> serde_json::Value {
    json!({
        "session": r.session.to_string(),
        "state": r.state(),
        "complete": r.is_complete(),
        "events": r.events,
        "signed_through": r.signed_through,
        "signers": r.signers,
        "ended": r.ended,
        "problems": r.problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}
