//! `replay verify`: is each session complete and untampered?

use std::collections::HashMap;
use std::io::Write;

use integrity::{Expectations, Report, TrustSet, Unit};
use schemas::SessionId;
use search::SessionInfo;
use serde_json::json;
use store::parquet_io::EventRef;

use crate::cli::VerifyArgs;
use crate::cmd::Failure;
use crate::open::{StoreArgs, find, sessions, trust};

/// What the verifier needs of every `events` row of each session (duplicates included),
/// collected while the catalog reads the rows, so that verifying needs no second read of
/// the store.
#[derive(Default)]
pub struct Units(HashMap<SessionId, Vec<Unit>>);

impl Units {
    /// Takes one row as the catalog reads it.
    pub fn observe(&mut self, r: &EventRef<'_>) {
        self.0.entry(r.session_id).or_default().push(unit(r));
    }

    /// The units of session `id`, leaving none behind.
    pub fn take(&mut self, id: SessionId) -> Vec<Unit> {
        self.0.remove(&id).unwrap_or_default()
    }
}

/// The unit of one `events` row.
fn unit(r: &EventRef<'_>) -> Unit {
    integrity::unit_of_row(&r.kind, r.seq, r.seq_last, r.elapsed_ns, r.data)
}

/// Verifies the sessions asked for; fails with [`Failure::NotVerified`] unless all are
/// complete.
pub fn run(store_args: &StoreArgs, args: VerifyArgs) -> anyhow::Result<()> {
    let (_, store) = store_args.open()?;
    let (trust_path, trust) = trust(store_args)?;
    let checked: Vec<(SessionInfo, Vec<Unit>)> = if args.all {
        let mut units = Units::default();
        let infos = sessions(store.as_ref(), |r| units.observe(r))?;
        infos
            .into_iter()
            .map(|info| {
                let units = units.take(info.id);
                (info, units)
            })
            .collect()
    } else {
        let mut checked = Vec::new();
        for q in &args.sessions {
            let mut units = Vec::new();
            let info = find(store.as_ref(), q, |r| units.push(unit(r)))?.info;
            checked.push((info, units));
        }
        checked
    };
    let mut out = std::io::stdout().lock();
    let mut failed = 0usize;
    let total = checked.len();
    for (info, units) in checked {
        let report = report(&info, units, &trust);
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
    if args.all && total == 0 {
        return Err(Failure::NotFound(format!("no sessions in {}", store.describe())).into());
    }
    if failed > 0 {
        return Err(Failure::NotVerified(format!(
            "{failed} of {total} sessions did not verify as complete"
        ))
        .into());
    }
    Ok(())
}

/// Verifies one session from what the catalog read of it and its rows' `units`.
pub fn report(info: &SessionInfo, units: Vec<Unit>, trust: &TrustSet) -> Report {
    integrity::verify(
        info.id,
        units,
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
