//! `replay verify`: is each session complete and untampered?

use std::collections::HashMap;
use std::io::Write;

use anyhow::Context;
use integrity::ledger::{HeadError, LedgerEntry, check_head};
use integrity::{Problem, Report, TrustSet, Unit};
use lifecycle::{CheckedTombstone, TombstoneState};
use schemas::SessionId;
use schemas::ledger::LedgerHead;
use search::SessionInfo;
use serde_json::json;
use store::ObjectStore;

use crate::cli::VerifyArgs;
use crate::cmd::Failure;
use crate::open::{StoreArgs, find, operator_trust, sessions, trust};
use crate::verdict::{Units, describe, report, unit};

/// One session to verify: what the catalog read of it, its rows' units, and the objects
/// that may hold its rows but could not be read.
struct Checked {
    info: SessionInfo,
    units: Vec<Unit>,
    unreadable: Vec<String>,
}

/// The tombstones of the store by session, judged against the operators' trust file,
/// and the tombstone objects that could not be read.
struct Tombstones {
    by_id: HashMap<SessionId, CheckedTombstone>,
    unreadable: Vec<String>,
}

impl Tombstones {
    fn read(store: &dyn ObjectStore, operators: &TrustSet) -> anyhow::Result<Tombstones> {
        let (all, problems) = lifecycle::read_tombstones(store, operators)
            .with_context(|| format!("cannot read the tombstones in {}", store.describe()))?;
        Ok(Tombstones {
            by_id: all
                .into_iter()
                .map(|t| (t.tombstone.session_id, t))
                .collect(),
            unreadable: problems.iter().map(ToString::to_string).collect(),
        })
    }

    /// The tombstone matching what the user typed, when exactly one does.
    fn matching(&self, query: &str) -> Option<&CheckedTombstone> {
        let q = query.trim().to_ascii_lowercase().replace('-', "");
        let mut found = self
            .by_id
            .iter()
            .filter(|(id, _)| !q.is_empty() && id.0.simple().to_string().starts_with(&q));
        match (found.next(), found.next()) {
            (Some((_, t)), None) => Some(t),
            _ => None,
        }
    }
}

/// One thing `verify` reports on: a session with rows, or a session whose rows are gone
/// and whose tombstone says it was purged.
enum Item {
    Rows(Box<Checked>),
    Purged(Box<CheckedTombstone>),
}

/// The sessions `args` asks for, and (with `--all`) the objects that could not be read.
/// A session without rows that a tombstone names is an [`Item::Purged`].
fn collect(
    store: &dyn ObjectStore,
    args: &VerifyArgs,
    tombstones: &Tombstones,
) -> anyhow::Result<(Vec<Item>, Vec<String>)> {
    if args.all {
        let (checked, unreadable) = collect_rows(store, args)?;
        let with_rows: std::collections::HashSet<SessionId> =
            checked.iter().map(|c| c.info.id).collect();
        let mut items: Vec<Item> = checked
            .into_iter()
            .map(|c| Item::Rows(Box::new(c)))
            .collect();
        let mut gone: Vec<&CheckedTombstone> = tombstones
            .by_id
            .values()
            .filter(|t| !with_rows.contains(&t.tombstone.session_id))
            .collect();
        gone.sort_by_key(|t| (t.tombstone.start_time_ns, t.tombstone.session_id));
        items.extend(gone.into_iter().map(|t| Item::Purged(Box::new(t.clone()))));
        return Ok((items, unreadable));
    }
    let mut items = Vec::new();
    for q in &args.sessions {
        let mut units = Vec::new();
        match find(store, q, |r| units.push(unit(r))) {
            Ok(opened) => items.push(Item::Rows(Box::new(Checked {
                info: opened.info,
                units,
                unreadable: opened.warnings.iter().map(ToString::to_string).collect(),
            }))),
            Err(e) => match (e.downcast_ref::<Failure>(), tombstones.matching(q)) {
                (Some(Failure::NotFound(_)), Some(t)) => {
                    items.push(Item::Purged(Box::new(t.clone())))
                }
                _ => return Err(e),
            },
        }
    }
    Ok((items, Vec::new()))
}

/// The sessions with rows that `args` asks for, and (with `--all`) the objects that could
/// not be read.
fn collect_rows(
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
///
/// A session whose rows are gone and whose tombstone is signed by a key in the operators'
/// trust file is reported as purged (not a failure) and keeps its place in the ledger
/// check; with any other tombstone it is missing. A trusted tombstone of a session that
/// still has rows is an incomplete purge, a failure.
pub fn run(store_args: &StoreArgs, args: VerifyArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.bundle {
        return bundle(store_args, path, args.json);
    }
    let (_, store) = store_args.open()?;
    let (trust_path, trust) = trust(store_args)?;
    let (operators_path, operators) = operator_trust(store_args)?;
    let tombstones = Tombstones::read(store.as_ref(), &operators)?;
    let (items, unreadable) = collect(store.as_ref(), &args, &tombstones)?;
    let mut out = Lines {
        out: std::io::stdout().lock(),
        json: args.json,
        failed: 0,
        total: 0,
    };
    let mut ledger = Vec::new();
    let mut untrusted_tombstones = 0usize;
    for item in items {
        let Checked {
            info,
            units,
            unreadable,
        } = match item {
            Item::Rows(checked) => *checked,
            Item::Purged(t) => {
                untrusted_tombstones += usize::from(!gone(&mut out, &t, &trust, &mut ledger)?);
                continue;
            }
        };
        if let Some(t) = tombstones.by_id.get(&info.id) {
            if t.state.is_trusted() {
                // The tombstone was written first: the rows still there are what an
                // interrupted purge left. Its ledger place stands for the session, whose
                // `start` row may already be gone.
                ledger.extend(t.tombstone.ledger_entry(&trust));
                out.failure(
                    Some(info.id),
                    &format!(
                        "purge incomplete: its tombstone ({}, {}) is there but rows remain; re-run `replay purge {}`",
                        t.key,
                        t.state.describe(),
                        info.id
                    ),
                )?;
                continue;
            }
            untrusted_tombstones += 1;
        }
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
        for problem in &tombstones.unreadable {
            out.failure(None, &format!("unreadable tombstone: {problem}"))?;
        }
    }
    if untrusted_tombstones > 0 {
        eprintln!(
            "replay: {untrusted_tombstones} tombstone(s) are not signed by a key in the operators' trust file {} and were not taken as a record of a purge",
            operators_path.display()
        );
    }
    if args.all {
        for (session, problem) in ledger_problems(store.as_ref(), &trust, &ledger)? {
            out.failure(session, &problem)?;
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

/// Everything the nodes' ledgers say is wrong, given the verified places of the sessions
/// read (`entries`): sessions a ledger numbers but the store lacks (with the session after
/// the gap, when one names it), and ledger objects that cannot be read or heads that are
/// malformed or badly signed (forged). Heads by keys outside the trust file say nothing;
/// their count is noted on stderr.
pub fn ledger_problems(
    store: &dyn ObjectStore,
    trust: &TrustSet,
    entries: &[LedgerEntry],
) -> anyhow::Result<Vec<(Option<SessionId>, String)>> {
    let keys = store
        .list(&format!("{}/", store::layout::LEDGER))
        .with_context(|| format!("cannot list the ledger heads in {}", store.describe()))?;
    let mut problems = Vec::new();
    let mut heads = Vec::new();
    let mut untrusted = 0usize;
    for key in keys {
        let bytes = match store.get(&key) {
            Ok(b) => b,
            Err(e) => {
                problems.push((None, format!("unreadable object: {e}")));
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
                    problems.push((None, format!("{at}: {e}")));
                    continue;
                }
            };
            match check_head(&head, trust) {
                Ok(v) => heads.push(v),
                Err(HeadError::Untrusted(_)) => untrusted += 1,
                Err(e) => problems.push((None, format!("{at}: {e}"))),
            }
        }
    }
    if untrusted > 0 {
        eprintln!(
            "replay: {untrusted} ledger head(s) are signed by keys outside the trust file and were not used"
        );
    }
    problems.extend(
        integrity::ledger::check(entries, &heads)
            .into_iter()
            .map(|p| (p.session(), p.to_string())),
    );
    Ok(problems)
}

/// The ledger places of the sessions that trusted tombstones (under `operators`) say were
/// purged, for a caller that checks the ledger from its own listing (the report), so that
/// a purged session is not reported missing there either. Tombstones that cannot be read
/// are left out: `replay verify --all` names them.
pub fn purged_ledger_entries(
    store: &dyn ObjectStore,
    operators: &TrustSet,
    node_trust: &TrustSet,
) -> anyhow::Result<Vec<LedgerEntry>> {
    let (tombstones, _) = lifecycle::read_tombstones(store, operators)
        .with_context(|| format!("cannot read the tombstones in {}", store.describe()))?;
    Ok(tombstones
        .iter()
        .filter(|t| t.state.is_trusted())
        .filter_map(|t| t.tombstone.ledger_entry(node_trust))
        .collect())
}

/// The session's place in its node's ledger, when its `start` is numbered and verified
/// under one trusted key (the node).
pub fn ledger_entry(info: &SessionInfo, report: &Report) -> Option<LedgerEntry> {
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

/// Reports a session whose rows are gone and that a tombstone names: purged, keeping its
/// place in the ledger check, when the tombstone is trusted (returns true); else missing,
/// a failure.
fn gone<W: Write>(
    out: &mut Lines<W>,
    t: &CheckedTombstone,
    trust: &TrustSet,
    ledger: &mut Vec<LedgerEntry>,
) -> std::io::Result<bool> {
    if t.state.is_trusted() {
        ledger.extend(t.tombstone.ledger_entry(trust));
        out.purged(t)?;
        return Ok(true);
    }
    out.failure(
        Some(t.tombstone.session_id),
        &format!(
            "missing from the store, and its tombstone does not count: {}",
            t.state.describe()
        ),
    )?;
    Ok(false)
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

    /// A session purged as a trusted tombstone says: not a failure.
    fn purged(&mut self, t: &CheckedTombstone) -> std::io::Result<()> {
        self.total += 1;
        let ts = &t.tombstone;
        if self.json {
            let line = json!({
                "session": ts.session_id.to_string(),
                "state": "purged",
                "complete": false,
                "purged": {
                    "by": ts.purged_by,
                    "os_user": ts.os_user,
                    "host": ts.host,
                    "time": schemas::time::rfc3339(ts.time_ns),
                    "time_ns": ts.time_ns,
                    "reason": ts.reason,
                    "operator": match &t.state {
                        TombstoneState::Trusted { operator } => Some(operator.as_str()),
                        _ => None,
                    },
                    "key": ts.key,
                    "tombstone": t.key,
                    "node_seq": ts.ledger.as_ref().map(|l| l.node_seq),
                },
                "problems": [],
            });
            serde_json::to_writer(&mut self.out, &line)?;
            return writeln!(self.out);
        }
        let line = format!(
            "{}  purged on {} by {} (OS user {} on {}), {}: {}",
            ts.session_id,
            schemas::time::rfc3339(ts.time_ns),
            ts.purged_by,
            ts.os_user,
            ts.host,
            t.state.describe(),
            ts.reason
        );
        writeln!(self.out, "{}", schemas::text::escape_controls(&line))
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

/// `verify --bundle FILE`: checks an evidence bundle offline. Reads the file and the trust
/// file (`--trust`, else `<data dir>/trusted-keys` when there is one), nothing else.
fn bundle(store_args: &StoreArgs, path: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let bytes = crate::bundle::read_file(path)?;
    let trust = bundle_trust(store_args)?;
    let verdict = crate::bundle::check(&bytes, trust.as_ref().map(|(_, t)| t));
    let trust_path = trust.as_ref().map(|(p, _)| p.as_path());
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, &bundle_json(path, &verdict))?;
        writeln!(out)?;
    } else {
        print_bundle(&mut out, path, &verdict, trust_path)?;
    }
    if verdict.ok() {
        return Ok(());
    }
    let why = if !verdict.intact() {
        format!(
            "bundle {} was altered or does not verify: {}",
            path.display(),
            verdict.blamed().join(", ")
        )
    } else if trust.is_none() {
        format!(
            "bundle {} is intact as signed, but there is no trust file to tell whose key signed it; give --trust FILE with the node's key",
            path.display()
        )
    } else {
        format!(
            "bundle {} is intact as signed, but not by a key in the trust file",
            path.display()
        )
    };
    Err(Failure::NotVerified(schemas::text::escape_controls(&why)).into())
}

/// The trust file for `verify --bundle`: `--trust` (must exist), else the data
/// directory's when it exists; `None` when there is none at all.
fn bundle_trust(store_args: &StoreArgs) -> anyhow::Result<Option<(std::path::PathBuf, TrustSet)>> {
    if store_args.trust.is_some() {
        return trust(store_args).map(Some);
    }
    let Ok(dir) = schemas::data_dir::DataDir::resolve(store_args.data_dir.as_deref()) else {
        return Ok(None);
    };
    let path = dir.trusted_keys();
    match TrustSet::load(&path) {
        Ok(set) => Ok(Some((path, set))),
        Err(integrity::KeyError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

fn print_bundle<W: Write>(
    out: &mut W,
    path: &std::path::Path,
    v: &crate::bundle::Verdict,
    trust_path: Option<&std::path::Path>,
) -> std::io::Result<()> {
    use crate::bundle::Trust;
    let esc = |s: &str| schemas::text::escape_controls(s);
    let session = v.session.map_or("(unknown)".to_string(), |s| s.to_string());
    writeln!(
        out,
        "bundle {}: session {session}, {} members{}",
        esc(&path.display().to_string()),
        v.members,
        match (v.sealed, v.contents) {
            (false, _) => "",
            (true, true) => ", sealed (contents included, opened with its data key)",
            (true, false) => ", sealed (contents not included)",
        }
    )?;
    if let Some(report) = &v.report {
        writeln!(out, "  rows: {}", describe(report))?;
    }
    for k in &v.keys {
        let standing = match (&k.trust, trust_path) {
            (Trust::Trusted(c), Some(p)) => format!("trusted: in {} as {:?}", p.display(), c),
            (Trust::Trusted(c), None) => format!("trusted as {c:?}"),
            (Trust::Untrusted, Some(p)) => format!("NOT TRUSTED: not in {}", p.display()),
            (Trust::Untrusted, None) | (Trust::NoTrustFile, _) => {
                "NOT CHECKED: no trust file (give --trust FILE with the node's key)".to_string()
            }
        };
        writeln!(out, "  signed by {}: {}", k.key, esc(&standing))?;
    }
    for f in &v.findings {
        writeln!(out, "  {}: {}", esc(&f.member), esc(&f.problem))?;
    }
    let last = if v.ok() {
        "intact: every member is what the signed rows give, signed by a trusted key".to_string()
    } else if v.intact() {
        "UNTRUSTED: intact as signed, but the signing key is not trusted".to_string()
    } else {
        format!("FAILED: {}", esc(&v.blamed().join(", ")))
    };
    writeln!(out, "{last}")
}

fn bundle_json(path: &std::path::Path, v: &crate::bundle::Verdict) -> serde_json::Value {
    use crate::bundle::Trust;
    json!({
        "bundle": path.display().to_string(),
        "session": v.session.map(|s| s.to_string()),
        "state": if v.ok() { "intact" } else if v.intact() { "untrusted" } else { "FAILED" },
        "intact": v.intact(),
        "trusted": v.trusted(),
        "sealed": v.sealed,
        "contents_included": v.contents,
        "rows": v.report.as_ref().map(to_json),
        "keys": v.keys.iter().map(|k| json!({
            "key": k.key.to_string(),
            "trust": match &k.trust {
                Trust::Trusted(_) => "trusted",
                Trust::Untrusted => "untrusted",
                Trust::NoTrustFile => "no-trust-file",
            },
            "trusted_as": match &k.trust { Trust::Trusted(c) => Some(c.as_str()), _ => None },
        })).collect::<Vec<_>>(),
        "problems": v.findings.iter().map(|f| json!({"member": f.member, "problem": f.problem})).collect::<Vec<_>>(),
    })
}
