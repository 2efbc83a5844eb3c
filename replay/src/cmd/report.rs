//! `replay report`: a compliance report over the sessions of a period, in HTML, CSV or
//! JSON (`report` crate). Everything comes from one pass over the store (the catalog and
//! verification, as `verify --all`), one read of the sessions' rows (commands, as
//! `replay commands`), and the `reviews/` and `access/` folders.

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use integrity::{Problem, TrustSet};
use report::{
    AccessInput, CommandInput, Filters, HistoryEntry, Inputs, MissingSession, ObjectsRead,
    ReviewInput, RuleSet, SessionInput, Verdict,
};
use schemas::SessionId;
use search::{OpenedSession, SessionInfo};
use store::ObjectStore;

use crate::cli::{ReportArgs, ReportFormat};
use crate::cmd::reviews::{reviewer_trust, signature_text};
use crate::cmd::search::time_bound;
use crate::cmd::verify;
use crate::open::{StoreArgs, trust, unseal};
use crate::verdict::Units;

/// Fewer sessions than this are read without a progress bar.
const PROGRESS_MIN_SESSIONS: usize = 8;

/// Makes the report and writes it.
pub fn run(store_args: &StoreArgs, args: ReportArgs) -> anyhow::Result<()> {
    if args.print_rules {
        print!("{}", report::rules::DEFAULT_RULES);
        return Ok(());
    }
    let rules = rules(&args)?;
    let out = Output::check(&args)?;
    let filters = Filters {
        since_ns: time_bound(args.since.as_deref(), false)?,
        until_ns: time_bound(args.until.as_deref(), true)?,
        user: args.user.clone(),
        host: args.host.clone(),
        flagged: args.flagged,
    };
    let (_, store) = store_args.open()?;
    let (_, trust) = trust(store_args)?;
    let inputs = gather(
        store.as_ref(),
        store_args,
        &trust,
        filters,
        &args,
        &|_, _| true,
    )?;
    let ids: Vec<&str> = inputs.sessions.iter().map(|s| s.id.as_str()).collect();
    crate::access::record(store.as_ref(), "report", &ids, &detail(&args))?;
    let report = report::build(inputs, &rules);
    out.write(&report)?;
    eprintln!(
        "replay: report of {} session(s), {} command(s), {} finding(s), {} not complete, {} missing from a ledger{}",
        report.header.sessions,
        report.header.commands,
        report.header.findings,
        report.header.sessions - report.header.verdicts.get("complete").copied().unwrap_or(0),
        report.header.missing_from_ledger,
        out.place()
    );
    Ok(())
}

/// What the access log says this report was.
fn detail(args: &ReportArgs) -> String {
    let mut parts = vec![format!("format={}", args.format.as_str())];
    for (k, v) in [
        ("since", &args.since),
        ("until", &args.until),
        ("user", &args.user),
        ("host", &args.host),
    ] {
        if let Some(v) = v {
            parts.push(format!("{k}={v}"));
        }
    }
    if args.flagged {
        parts.push("flagged".into());
    }
    parts.join(" ")
}

fn rules(args: &ReportArgs) -> anyhow::Result<RuleSet> {
    let base = if args.no_default_rules {
        RuleSet::empty()
    } else {
        RuleSet::builtin()
    };
    Ok(match &args.rules {
        Some(path) => base.overlay(RuleSet::load(path)?),
        None => base,
    })
}

/// Where the report goes, checked before the store is read.
enum Output<'a> {
    Stdout(ReportFormat),
    File(ReportFormat, &'a Path),
    CsvDir(&'a Path),
}

impl<'a> Output<'a> {
    fn check(args: &'a ReportArgs) -> anyhow::Result<Output<'a>> {
        let out = match (args.format, args.out.as_deref()) {
            (ReportFormat::Csv, None) => {
                bail!("--format csv writes one file per table: give --out DIR")
            }
            (ReportFormat::Csv, Some(dir)) => {
                if dir.is_file() {
                    bail!(
                        "{} is a file; --format csv writes a directory of tables",
                        dir.display()
                    );
                }
                if dir.join("sessions.csv").exists() && !args.force {
                    bail!(
                        "{} already holds a report; pass --force to overwrite it",
                        dir.display()
                    );
                }
                Output::CsvDir(dir)
            }
            (f, Some(path)) => {
                if path.exists() && !args.force {
                    bail!(
                        "{} already exists; pass --force to overwrite it, or choose another --out FILE",
                        path.display()
                    );
                }
                Output::File(f, path)
            }
            (f, None) => Output::Stdout(f),
        };
        Ok(out)
    }

    fn write(&self, report: &report::Report) -> anyhow::Result<()> {
        let text = |f: ReportFormat| -> anyhow::Result<String> {
            Ok(match f {
                ReportFormat::Html => report::html::render(report),
                _ => serde_json::to_string_pretty(report)? + "\n",
            })
        };
        match self {
            Output::Stdout(f) => {
                let mut out = std::io::stdout().lock();
                out.write_all(text(*f)?.as_bytes())?;
                out.flush()?;
            }
            Output::File(f, path) => write_atomically(path, text(*f)?.as_bytes())?,
            Output::CsvDir(dir) => {
                report::csv_out::write_dir(report, dir)?;
            }
        }
        Ok(())
    }

    fn place(&self) -> String {
        match self {
            Output::Stdout(_) => String::new(),
            Output::File(_, p) | Output::CsvDir(p) => format!(", written to {}", p.display()),
        }
    }
}

/// Writes beside `path` and renames, so that a report is never half there.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// What the store says of each session's integrity: the report's verdict and
/// verification's words.
type Verdicts = HashMap<SessionId, (Verdict, String)>;

/// Reads the store into the report's inputs: only the sessions for which
/// `visible(user, host)` holds (`replay serve` passes the caller's roles; the command
/// line, everything), and nothing of any other (baselines, reviews, access events,
/// ledger problems).
pub(crate) fn gather(
    store: &dyn ObjectStore,
    store_args: &StoreArgs,
    trust: &TrustSet,
    filters: Filters,
    args: &ReportArgs,
    visible: &(dyn Fn(&str, &str) -> bool + Sync),
) -> anyhow::Result<Inputs> {
    let mut units = Units::default();
    let mut digests: Vec<(String, u64, [u8; 32])> = Vec::new();
    let (all, unreadable) =
        search::list_sessions_observing_objects(store, |r| units.observe(r), &mut |key, bytes| {
            digests.push((
                key.to_string(),
                bytes.len() as u64,
                *blake3::hash(bytes).as_bytes(),
            ))
        })
        .with_context(|| format!("cannot list the sessions in {}", store.describe()))?;
    let unreadable: Vec<String> = unreadable.iter().map(ToString::to_string).collect();
    for u in &unreadable {
        eprintln!("replay: could not read {u}");
    }
    let chosen: Vec<SessionId> = all
        .iter()
        .filter(|i| wanted(i, &filters) && visible(&user_of(i), &host_of(i)))
        .map(|i| i.id)
        .collect();
    let (_, operators) = crate::open::operator_trust(store_args)?;
    let purged = verify::purged_ledger_entries(store, &operators, trust)?;
    let (verdicts, missing) = verify_all(store, trust, &all, units, &chosen, purged)?;
    let sessions = read_sessions(store, &chosen, &verdicts, store_args)?;
    let now_ns = schemas::time::now_ns();
    let max_age = Duration::from_secs_f64(args.review_max_age_days * 86_400.0);
    let (reviews, access, overdue) = reviews_and_access(
        store, store_args, args, &filters, &sessions, max_age, now_ns,
    )?;
    let mut inputs = Inputs {
        generator: format!("replay {}", env!("CARGO_PKG_VERSION")),
        store: store.describe(),
        now_ns,
        overdue,
        objects: objects_read(digests),
        unreadable_objects: unreadable,
        oldest_record_ns: all.iter().map(|i| i.start_time_ns).min(),
        history: all
            .iter()
            .map(|i| HistoryEntry {
                id: i.id.to_string(),
                user: user_of(i),
                host: host_of(i),
                source: i.start.as_ref().and_then(|s| s.remote_addr.clone()),
                start_ns: i.start_time_ns,
            })
            .collect(),
        filters,
        missing,
        sessions,
        reviews,
        access,
        review_max_age_ns: u64::try_from(max_age.as_nanos()).unwrap_or(u64::MAX),
    };
    restrict(&mut inputs, &all, visible);
    Ok(inputs)
}

/// Leaves out of `inputs` everything about sessions for which `visible(user, host)`
/// does not hold: their baselines, reviews, ledger problems, and the access events that
/// name any of them (or none). Nothing is left out when every session is visible.
fn restrict(
    inputs: &mut Inputs,
    all: &[SessionInfo],
    visible: &(dyn Fn(&str, &str) -> bool + Sync),
) {
    let seen: HashSet<String> = all
        .iter()
        .filter(|i| visible(&user_of(i), &host_of(i)))
        .map(|i| i.id.to_string())
        .collect();
    if seen.len() == all.len() {
        return;
    }
    inputs.history.retain(|h| seen.contains(&h.id));
    inputs.oldest_record_ns = inputs.history.iter().map(|h| h.start_ns).min();
    inputs.reviews.retain(|r| seen.contains(&r.session_id));
    // Events that name no session (a search or listing that found none) are left out
    // too: their queries may name hosts and users outside the caller's roles.
    inputs
        .access
        .retain(|a| !a.sessions.is_empty() && a.sessions.iter().all(|s| seen.contains(s)));
    inputs
        .missing
        .retain(|m| m.session_id.as_ref().is_some_and(|s| seen.contains(s)));
    inputs.overdue.retain(|s| seen.contains(s));
}

/// Verifies every session (the ledger check needs each node's whole sequence), and checks
/// the nodes' ledgers. A session missing from the store has no time, user or host that
/// the store could tell, so every report shows it; problems about sessions that are in
/// the store are shown with those sessions' reports.
fn verify_all(
    store: &dyn ObjectStore,
    trust: &TrustSet,
    all: &[SessionInfo],
    mut units: Units,
    chosen: &[SessionId],
    purged: Vec<integrity::ledger::LedgerEntry>,
) -> anyhow::Result<(Verdicts, Vec<MissingSession>)> {
    // Sessions purged under a trusted tombstone keep their place in the ledger, as in
    // `replay verify --all`.
    let mut ledger = purged;
    let mut verdicts = HashMap::new();
    for info in all {
        // As `verify --all`: an object that could not be read is a failure of its own (in
        // the header), not of every session it might have held.
        let r = crate::verdict::report(info, units.take(info.id), trust);
        ledger.extend(verify::ledger_entry(info, &r));
        verdicts.insert(
            info.id,
            (verdict(&r.problems), crate::verdict::describe(&r)),
        );
    }
    let chosen: HashSet<SessionId> = chosen.iter().copied().collect();
    let stored: HashSet<SessionId> = all.iter().map(|i| i.id).collect();
    let missing = verify::ledger_problems(store, trust, &ledger)?
        .into_iter()
        .filter(|(s, _)| s.is_none_or(|s| chosen.contains(&s) || !stored.contains(&s)))
        .map(|(s, detail)| MissingSession {
            session_id: s.map(|s| s.to_string()),
            detail,
        })
        .collect();
    Ok((verdicts, missing))
}

/// Reads the chosen sessions' rows (each object once) into their inputs, with a progress
/// bar on a terminal.
fn read_sessions(
    store: &dyn ObjectStore,
    ids: &[SessionId],
    verdicts: &Verdicts,
    store_args: &StoreArgs,
) -> anyhow::Result<Vec<SessionInput>> {
    let mut sessions = Vec::with_capacity(ids.len());
    let bar = (ids.len() >= PROGRESS_MIN_SESSIONS && std::io::stderr().is_terminal())
        .then(|| new_bar(ids.len()));
    search::open_sessions_observing(store, ids, &mut |_| {}, &mut |opened: OpenedSession| {
        let (verdict, detail) = verdicts
            .get(&opened.info.id)
            .cloned()
            .unwrap_or((Verdict::Unreadable, "not read".into()));
        sessions.push(session_input(&opened, verdict, detail, store_args));
        if let Some(b) = &bar {
            b.inc(1);
        }
        Ok::<(), anyhow::Error>(())
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(sessions)
}

/// The reviews (with their signatures checked against the reviewers' trust file), the
/// access events of the period, and the sessions whose review is overdue.
fn reviews_and_access(
    store: &dyn ObjectStore,
    store_args: &StoreArgs,
    args: &ReportArgs,
    filters: &Filters,
    sessions: &[SessionInput],
    max_age: Duration,
    now_ns: i64,
) -> anyhow::Result<(Vec<ReviewInput>, Vec<AccessInput>, Vec<String>)> {
    let (_, reviewers) = reviewer_trust(store_args, args.reviewer_trust.as_deref())?;
    let (reviews, problems) = review::read_reviews(store, &reviewers)
        .with_context(|| format!("cannot read the reviews in {}", store.describe()))?;
    let (access, access_problems) = review::read_access(store, filters.since_ns, filters.until_ns)
        .with_context(|| format!("cannot read the access log in {}", store.describe()))?;
    for p in problems.iter().chain(&access_problems) {
        eprintln!("replay: {}: {}", p.key, p.reason);
    }
    let overdue = review::overdue(
        &reviews,
        sessions
            .iter()
            .map(|s| (s.id.clone(), s.end_ns.unwrap_or(s.start_ns))),
        max_age,
        now_ns,
    );
    let reviews = reviews
        .into_iter()
        .map(|r| ReviewInput {
            session_id: r.session_id,
            reviewer: r.reviewer,
            decision: r.decision.to_string(),
            comment: r.comment,
            time_ns: r.time_ns,
            signature: signature_text(&r.signature, &reviewers),
        })
        .collect();
    let access = access
        .into_iter()
        .map(|a| AccessInput {
            user: a.user,
            action: a.action,
            sessions: a.sessions,
            detail: a.detail,
            host: a.host,
            time_ns: a.time_ns,
        })
        .collect();
    Ok((reviews, access, overdue))
}

/// Count, bytes and digest of the objects read: BLAKE3 over each object's key, length
/// and BLAKE3, in key order.
fn objects_read(mut digests: Vec<(String, u64, [u8; 32])>) -> ObjectsRead {
    digests.sort_by(|a, b| a.0.cmp(&b.0));
    let mut hasher = blake3::Hasher::new();
    for (key, len, digest) in &digests {
        hasher.update(key.as_bytes());
        hasher.update(&[0]);
        hasher.update(&len.to_le_bytes());
        hasher.update(digest);
    }
    ObjectsRead {
        count: digests.len(),
        bytes: digests.iter().map(|d| d.1).sum(),
        digest: hasher.finalize().to_hex().to_string(),
    }
}

fn new_bar(total: usize) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    if let Ok(style) = ProgressStyle::with_template("reading {bar:40} {pos}/{len} sessions {eta}") {
        bar.set_style(style);
    }
    bar
}

fn user_of(i: &SessionInfo) -> String {
    i.start.as_ref().map(|s| s.user.clone()).unwrap_or_default()
}

fn host_of(i: &SessionInfo) -> String {
    i.start.as_ref().map(|s| s.host.clone()).unwrap_or_default()
}

/// In the period (by start) and filters.
fn wanted(i: &SessionInfo, f: &Filters) -> bool {
    f.since_ns.is_none_or(|t| i.start_time_ns >= t)
        && f.until_ns.is_none_or(|t| i.start_time_ns <= t)
        && f.user.as_ref().is_none_or(|u| *u == user_of(i))
        && f.host.as_ref().is_none_or(|h| *h == host_of(i))
}

/// The report's verdict of verification's problems: the worst one decides.
pub fn verdict(problems: &[Problem]) -> Verdict {
    let any = |f: fn(&Problem) -> bool| problems.iter().any(f);
    if any(|p| {
        matches!(
            p,
            Problem::Altered { .. }
                | Problem::AlteredBetween { .. }
                | Problem::Conflict { .. }
                | Problem::BadSignature { .. }
                | Problem::MalformedCheckpoint { .. }
                | Problem::SessionsTableDiffers
        )
    }) {
        Verdict::Altered
    } else if any(|p| {
        matches!(
            p,
            Problem::Gap { .. } | Problem::Truncated { .. } | Problem::Empty
        )
    }) {
        Verdict::Gap
    } else if any(|p| matches!(p, Problem::Unreadable { .. })) {
        Verdict::Unreadable
    } else if any(|p| matches!(p, Problem::NeverEnded { .. })) {
        Verdict::NeverEnded
    } else if any(|p| matches!(p, Problem::NotSignedAtCapture { .. })) {
        Verdict::Imported
    } else if any(|p| matches!(p, Problem::Unsigned | Problem::UnsignedTail { .. })) {
        Verdict::Unsigned
    } else if any(|p| matches!(p, Problem::UnknownKey { .. })) {
        Verdict::Untrusted
    } else {
        Verdict::Complete
    }
}

/// One session's row input: metadata, and its commands when its text can be read.
fn session_input(
    opened: &OpenedSession,
    verdict: Verdict,
    integrity_detail: String,
    store_args: &StoreArgs,
) -> SessionInput {
    let info = &opened.info;
    let start = info.start.as_ref();
    let events = if info.sealed {
        match unseal(info, &opened.rows, &store_args.keys) {
            Ok(e) => Some(e),
            Err(e) => {
                tracing::debug!(session = %info.id, error = %e, "sealed session not opened");
                None
            }
        }
    } else {
        Some(opened.rows.iter().filter_map(|r| r.to_event()).collect())
    };
    let size = start
        .filter(|s| s.cols > 0 && s.rows > 0)
        .map_or((80, 24), |s| (s.cols, s.rows));
    let extracted = events
        .as_deref()
        .map(|e| search::commands::extract(e, size));
    let (ended, exit_status) = match &info.end {
        Some(end) => (
            match (end.reason, end.exit_status, end.signal) {
                (_, _, Some(sig)) => format!("signal {sig}"),
                (schemas::EndReason::Exit, Some(code), None) => format!("exit {code}"),
                (reason, code, None) => {
                    let why = reason.as_str().replace('_', " ");
                    code.map_or(why.clone(), |c| format!("{why} (exit {c})"))
                }
            },
            end.exit_status,
        ),
        None => ("never ended".into(), None),
    };
    let import = start.and_then(|s| s.import.as_ref());
    SessionInput {
        id: info.id.to_string(),
        user: user_of(info),
        run_as: import.and_then(|i| {
            i.details
                .get("runas_user")
                .or_else(|| i.details.get("run_as"))
                .cloned()
        }),
        host: host_of(info),
        source: start.and_then(|s| s.remote_addr.clone()),
        start_ns: info.start_time_ns,
        end_ns: info.end.as_ref().map(|_| {
            info.start_time_ns
                .saturating_add(i64::try_from(info.duration_ns).unwrap_or(i64::MAX))
        }),
        duration_ns: info.duration_ns,
        ended,
        exit_status,
        input: match start {
            Some(s) if s.redacts_hidden_input => "recorded, hidden input left out".into(),
            Some(_) => "recorded".into(),
            None => "unknown".into(),
        },
        sealed: info.sealed,
        readable: extracted.is_some(),
        verdict,
        integrity_detail,
        imported: import.map(crate::verdict::describe_source),
        commands: extracted
            .as_ref()
            .map(|x| {
                x.commands
                    .iter()
                    .map(|c| CommandInput {
                        index: c.index,
                        offset_ns: c.elapsed_ns,
                        line: c.line.clone(),
                        output: c.output.clone(),
                        exit_status: c.exit_status,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        leading_output: extracted.map(|x| x.leading_output).unwrap_or_default(),
    }
}
