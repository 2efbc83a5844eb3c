//! `replay verify`: is each session complete and untampered?

use std::collections::HashMap;
use std::io::Write;

use anyhow::Context;
use integrity::ledger::{HeadError, LedgerEntry, VerifiedHead, check_head};
use integrity::{Expectations, Problem, Report, TrustSet, Unit};
use schemas::SessionId;
use schemas::ledger::LedgerHead;
use search::{Provenance, SessionInfo};
use serde_json::json;
use store::ObjectStore;
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

/// One session to verify: what the catalog read of it, its rows' units, and the objects
/// that may hold its rows but could not be read.
struct Checked {
    info: SessionInfo,
    units: Vec<Unit>,
    unreadable: Vec<String>,
}

/// The sessions `args` asks for, and (with `--all`) the objects that could not be read.
fn collect(
    store: &dyn ObjectStore,
    args: &VerifyArgs,
) -> anyhow::Result<(Vec<Checked>, Vec<String>)> {
    if args.all {
        let mut units = Units::default();
        let (infos, unreadable) = sessions(store, |r| units.observe(r))?;
        let checked = infos
            .into_iter()
            .map(|info| Checked {
                units: units.take(info.id),
                info,
                unreadable: Vec::new(),
            })
            .collect();
        return Ok((
            checked,
            unreadable.iter().map(ToString::to_string).collect(),
        ));
    }
    let mut checked = Vec::new();
    for q in &args.sessions {
        let mut units = Vec::new();
        let opened = find(store, q, |r| units.push(unit(r)))?;
        checked.push(Checked {
            info: opened.info,
            units,
            unreadable: opened.warnings.iter().map(ToString::to_string).collect(),
        });
    }
    Ok((checked, Vec::new()))
}

/// Verifies the sessions asked for; fails with [`Failure::NotVerified`] unless all are
/// complete.
///
/// Besides each session's own chain, two things fail verification (DESIGN.md §6): an
/// object that cannot be read (it may hold rows of any session, so with `--all` each is a
/// failure line of its own), and, with `--all`, a session that a node's ledger numbers
/// but the store lacks (named by the session after it).
pub fn run(store_args: &StoreArgs, args: VerifyArgs) -> anyhow::Result<()> {
    let (_, store) = store_args.open()?;
    let (trust_path, trust) = trust(store_args)?;
    let (checked, unreadable) = collect(store.as_ref(), &args)?;
    let mut out = Lines {
        out: std::io::stdout().lock(),
        json: args.json,
        failed: 0,
        total: 0,
    };
    let mut ledger = Vec::new();
    for Checked {
        info,
        units,
        unreadable,
    } in checked
    {
        let mut report = report(&info, units, &trust);
        report.problems.extend(
            unreadable
                .into_iter()
                .map(|object| Problem::Unreadable { object }),
        );
        ledger.extend(ledger_entry(&info, &report));
        out.session(&info, &report)?;
    }
    for object in &unreadable {
        out.failure(None, &format!("unreadable object: {object}"))?;
    }
    if args.all {
        let heads = ledger_heads(store.as_ref(), &trust, &mut out)?;
        for p in integrity::ledger::check(&ledger, &heads) {
            out.failure(p.session(), &p.to_string())?;
        }
    }
    if trust.is_empty() {
        eprintln!(
            "replay: the trust file {} holds no keys, so no signature can be trusted; add each node's `auditty-agent node-key` line to it",
            trust_path.display()
        );
    }
    if args.all && out.total == 0 {
        return Err(Failure::NotFound(format!("no sessions in {}", store.describe())).into());
    }
    if out.failed > 0 {
        return Err(Failure::NotVerified(format!(
            "{} of {} checks failed (sessions, unreadable objects, missing sessions)",
            out.failed, out.total
        ))
        .into());
    }
    Ok(())
}

/// The ledger heads of the store's `ledger/` objects whose signatures check out under the
/// trust file. An object that cannot be read, or a head that is malformed or badly signed
/// (forged), is a failure line of its own; heads by keys outside the trust file say
/// nothing and are only counted.
fn ledger_heads<W: Write>(
    store: &dyn ObjectStore,
    trust: &TrustSet,
    out: &mut Lines<W>,
) -> anyhow::Result<Vec<VerifiedHead>> {
    let keys = store
        .list(&format!("{}/", store::layout::LEDGER))
        .with_context(|| format!("cannot list the ledger heads in {}", store.describe()))?;
    let mut heads = Vec::new();
    let mut untrusted = 0usize;
    for key in keys {
        let bytes = match store.get(&key) {
            Ok(b) => b,
            Err(e) => {
                out.failure(None, &format!("unreadable object: {e}"))?;
                continue;
            }
        };
        for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let at = format!("{key} line {}", n + 1);
            let head = match LedgerHead::from_json(line) {
                Ok(h) => h,
                Err(e) => {
                    out.failure(None, &format!("{at}: {e}"))?;
                    continue;
                }
            };
            match check_head(&head, trust) {
                Ok(v) => heads.push(v),
                Err(HeadError::Untrusted(_)) => untrusted += 1,
                Err(e) => out.failure(None, &format!("{at}: {e}"))?,
            }
        }
    }
    if untrusted > 0 {
        eprintln!(
            "replay: {untrusted} ledger head(s) are signed by keys outside the trust file and were not used"
        );
    }
    Ok(heads)
}

/// The session's place in its node's ledger, when its `start` is numbered and verified
/// under one trusted key (the node).
fn ledger_entry(info: &SessionInfo, report: &Report) -> Option<LedgerEntry> {
    let start = info.start.as_ref().filter(|s| s.node_seq > 0)?;
    // seq 0 (the start) covered by a good, trusted checkpoint.
    if report.signed_through == 0 || report.signers.len() != 1 {
        return None;
    }
    Some(LedgerEntry {
        session: info.id,
        node: report.signers.first()?.clone(),
        node_seq: start.node_seq,
        prev_session: start.prev_session.as_deref().and_then(|p| p.parse().ok()),
    })
}

/// `verify`'s output: one line (text or JSON) per session and per failure of its own.
struct Lines<W: Write> {
    out: W,
    json: bool,
    failed: usize,
    total: usize,
}

impl<W: Write> Lines<W> {
    fn session(&mut self, info: &SessionInfo, report: &Report) -> std::io::Result<()> {
        self.total += 1;
        if !report.is_complete() {
            self.failed += 1;
        }
        if self.json {
            serde_json::to_writer(&mut self.out, &to_json(report))?;
            writeln!(self.out)
        } else {
            writeln!(self.out, "{}  {}", info.id, describe(report))
        }
    }

    /// A failure that is not one session's chain: `session` is the one it concerns, when
    /// known.
    fn failure(&mut self, session: Option<SessionId>, problem: &str) -> std::io::Result<()> {
        self.total += 1;
        self.failed += 1;
        if self.json {
            let line = json!({
                "session": session.map(|s| s.to_string()),
                "state": "FAILED",
                "complete": false,
                "problems": [problem],
            });
            serde_json::to_writer(&mut self.out, &line)?;
            return writeln!(self.out);
        }
        let line = match session {
            Some(id) => format!("{id}  FAILED: {problem}"),
            None => format!("FAILED: {problem}"),
        };
        writeln!(self.out, "{}", schemas::text::escape_controls(&line))
    }
}

/// Verifies one session from what the catalog read of it and its rows' `units`.
pub fn report(info: &SessionInfo, units: Vec<Unit>, trust: &TrustSet) -> Report {
    let mut report = integrity::verify(
        info.id,
        units,
        trust,
        Expectations {
            end_event_count: info.end.as_ref().map(|e| e.event_count),
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
