//! A session's integrity as replay judges and words it, for every command that shows
//! it (`verify`, `ls`, `index`, `serve`, `report`) and for the bundle: the units collected
//! while the catalog reads the rows, the verifier's report from them, and its one line.

use std::collections::HashMap;

use integrity::{Expectations, Report, TrustSet, Unit};
use schemas::{ImportSource, SessionId};
use search::{Provenance, SessionInfo};
use store::parquet_io::EventRef;

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
pub fn unit(r: &EventRef<'_>) -> Unit {
    integrity::unit_of_row(&r.kind, r.seq, r.seq_last, r.elapsed_ns, r.data)
}

/// Verifies one session from what the catalog read of it and its rows' `units`.
pub fn report(info: &SessionInfo, units: Vec<Unit>, trust: &TrustSet) -> Report {
    let mut report = integrity::verify(
        info.id,
        units,
        trust,
        Expectations {
            end_event_count: info.end.as_ref().map(|e| e.event_count),
            imported: info
                .start
                .as_ref()
                .and_then(|s| s.import.as_ref())
                .map(describe_source),
        },
    );
    // `info` shows the chained rows, which the chain above judged; a `sessions/` copy that
    // says otherwise is evidence of tampering all the same.
    if info.provenance == Provenance::SessionsTableDiffers {
        report
            .problems
            .push(integrity::Problem::SessionsTableDiffers);
    }
    report
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

/// How an imported session's source reads in `verify` and `ls` messages.
pub fn describe_source(s: &ImportSource) -> String {
    format!("{} (sha256 {})", s.format, s.sha256)
}
