//! What a report is made of ([`Inputs`], gathered from the store by `replay report`) and
//! what it says ([`Report`], the JSON document of `schemas/report.schema.json`; the HTML
//! and CSV forms are views of it).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use schemas::time::{offset_text, rfc3339};
use serde::Serialize;

use crate::baseline::{self, HistoryEntry};
use crate::rules::{RuleSet, Severity};

/// Name of the JSON document.
pub const SCHEMA: &str = "auditty-report";
/// Version of the JSON document; bumped on any change a reader could trip over.
pub const SCHEMA_VERSION: u32 = 1;

/// What verification said of a session, in the report's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every event there, signed by a trusted key.
    Complete,
    /// A row differs from what was signed, a signature is bad, or the unsigned copy of the
    /// metadata contradicts the signed one.
    Altered,
    /// Events are missing.
    Gap,
    /// No end: the agent was killed, the session still runs, or its tail was removed.
    NeverEnded,
    /// No checkpoint signs it.
    Unsigned,
    /// Signed by a key outside the trust file.
    Untrusted,
    /// Brought in from another recorder's file: never signed at capture.
    Imported,
    /// An object that may hold its rows could not be read.
    Unreadable,
}

impl Verdict {
    /// Every verdict, in the order reports show them.
    pub const ALL: [Verdict; 8] = [
        Verdict::Complete,
        Verdict::Altered,
        Verdict::Gap,
        Verdict::NeverEnded,
        Verdict::Unsigned,
        Verdict::Untrusted,
        Verdict::Imported,
        Verdict::Unreadable,
    ];

    /// The kebab-case name used in every format.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Complete => "complete",
            Verdict::Altered => "altered",
            Verdict::Gap => "gap",
            Verdict::NeverEnded => "never-ended",
            Verdict::Unsigned => "unsigned",
            Verdict::Untrusted => "untrusted",
            Verdict::Imported => "imported",
            Verdict::Unreadable => "unreadable",
        }
    }
}

/// One command of a session, as the reader of the session saw it.
#[derive(Clone, Debug, Default)]
pub struct CommandInput {
    /// 0-based position in the session.
    pub index: usize,
    /// Offset of the Enter that ran it.
    pub offset_ns: u64,
    /// The command line.
    pub line: String,
    /// What it printed (rendered, capped).
    pub output: String,
    /// Exit status, when the shell reported it.
    pub exit_status: Option<i32>,
}

/// One session in the period and filters.
#[derive(Clone, Debug)]
pub struct SessionInput {
    /// Full session id.
    pub id: String,
    /// The recorded user.
    pub user: String,
    /// Who the user ran as, when the recording says (sudo's run-as user of an import).
    pub run_as: Option<String>,
    /// Host name.
    pub host: String,
    /// Client address (SSH), when known.
    pub source: Option<String>,
    /// Start, UTC ns.
    pub start_ns: i64,
    /// End, UTC ns, when the session ended.
    pub end_ns: Option<i64>,
    /// Duration.
    pub duration_ns: u64,
    /// How it ended: `exit 0`, `signal 9`, `never ended`, …
    pub ended: String,
    /// Exit status, when it exited.
    pub exit_status: Option<i32>,
    /// `recorded`, `recorded, passwords left out` or `not recorded`.
    pub input: String,
    /// Sealed for recipients.
    pub sealed: bool,
    /// Its commands and output could be read (a sealed session needs the reader's key).
    pub readable: bool,
    /// Verification's verdict.
    pub verdict: Verdict,
    /// Verification's own words.
    pub integrity_detail: String,
    /// `FORMAT sha256:HEX` of an imported session.
    pub imported: Option<String>,
    /// Its commands (empty when not readable).
    pub commands: Vec<CommandInput>,
    /// Output before the first command.
    pub leading_output: String,
}

/// A review recorded with `replay review`.
#[derive(Clone, Debug, Serialize)]
pub struct ReviewInput {
    /// The session reviewed.
    pub session_id: String,
    /// Who.
    pub reviewer: String,
    /// `ok` or `escalate`.
    pub decision: String,
    /// Their comment.
    pub comment: Option<String>,
    /// When, UTC ns.
    #[serde(skip)]
    pub time_ns: i64,
    /// `verified by KEY`, `untrusted key KEY`, `BAD signature` or `unsigned`.
    pub signature: String,
}

/// One access to recordings (a `play`, `export`, `report`, `search`, … run).
#[derive(Clone, Debug, Serialize)]
pub struct AccessInput {
    /// Who.
    pub user: String,
    /// What they ran.
    pub action: String,
    /// Sessions it concerned.
    pub sessions: Vec<String>,
    /// The query, format or filters.
    pub detail: String,
    /// From which host.
    pub host: String,
    /// When, UTC ns.
    #[serde(skip)]
    pub time_ns: i64,
}

/// A session a node's ledger numbers but the store lacks (or another ledger problem).
#[derive(Clone, Debug, Serialize)]
pub struct MissingSession {
    /// The missing session, when the session after it (or a ledger head) names it.
    pub session_id: Option<String>,
    /// What the ledger check says.
    pub detail: String,
}

/// Which sessions the report covers.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Filters {
    /// Sessions starting at or after (UTC ns).
    #[serde(skip)]
    pub since_ns: Option<i64>,
    /// Sessions starting before (UTC ns).
    #[serde(skip)]
    pub until_ns: Option<i64>,
    /// Only this user.
    pub user: Option<String>,
    /// Only this host.
    pub host: Option<String>,
    /// Only sessions with findings.
    pub flagged: bool,
}

/// The store objects read for the report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ObjectsRead {
    /// How many.
    pub count: usize,
    /// Their bytes.
    pub bytes: u64,
    /// BLAKE3 over each object's key, length and BLAKE3 of its bytes, in key order: the same
    /// store gives the same digest.
    pub digest: String,
}

/// Everything a report is built from.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// `replay 0.1.0`.
    pub generator: String,
    /// The store read.
    pub store: String,
    /// When the report was made, UTC ns.
    pub now_ns: i64,
    /// Which sessions.
    pub filters: Filters,
    /// Objects read.
    pub objects: ObjectsRead,
    /// Objects that could not be read.
    pub unreadable_objects: Vec<String>,
    /// The oldest event in the store (retention actually held), UTC ns.
    pub oldest_record_ns: Option<i64>,
    /// Sessions in the period and filters (before `flagged`), any order.
    pub sessions: Vec<SessionInput>,
    /// Every session of the store, for baselines.
    pub history: Vec<HistoryEntry>,
    /// Gaps in nodes' ledgers.
    pub missing: Vec<MissingSession>,
    /// Reviews of any session.
    pub reviews: Vec<ReviewInput>,
    /// Accesses within the period.
    pub access: Vec<AccessInput>,
    /// Longest a session may wait for a review after its end.
    pub review_max_age_ns: u64,
    /// Sessions (ids) whose review is overdue: not reviewed within the maximum age of
    /// their end (the rule of `review::overdue`).
    pub overdue: Vec<String>,
}

/// The report: header, sessions, commands, findings, summaries.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Evidence about the report itself.
    pub header: Header,
    /// One row per session, by start.
    pub sessions: Vec<SessionRow>,
    /// One row per command of the sessions that could be read.
    pub commands: Vec<CommandRow>,
    /// Rule hits, by session and offset.
    pub findings: Vec<Finding>,
    /// Counts per user, host and rule.
    pub summaries: Summaries,
    /// Sessions unlike the user's past ones.
    pub baseline: Vec<baseline::Deviation>,
    /// Reviews of the sessions in the report.
    pub reviews: Vec<ReviewRow>,
    /// Sessions not reviewed within the maximum age.
    pub review_overdue: Vec<Overdue>,
    /// Who accessed which recordings in the period.
    pub access: Vec<AccessRow>,
    /// Sessions missing from their node's ledger.
    pub missing_sessions: Vec<MissingSession>,
}

/// The report's header of evidence.
#[derive(Clone, Debug, Serialize)]
pub struct Header {
    /// Sessions starting at or after (RFC 3339), or null for the beginning.
    pub since: Option<String>,
    /// Sessions starting before, or null for now.
    pub until: Option<String>,
    /// User, host, flagged.
    pub filters: Filters,
    /// When the report was made.
    pub generated_at: String,
    /// Program and version.
    pub generator: String,
    /// Schema of this document.
    pub schema_version: u32,
    /// The store.
    pub store: String,
    /// Objects read and their digest.
    pub objects: ObjectsRead,
    /// Objects that could not be read (every one is also an integrity failure).
    pub unreadable_objects: Vec<String>,
    /// Sessions in the report.
    pub sessions: usize,
    /// Sessions per verdict (every verdict present, zeros included).
    pub verdicts: BTreeMap<&'static str, usize>,
    /// Sealed sessions.
    pub sealed_sessions: usize,
    /// Sealed sessions the reader could not open (no commands or findings for them).
    pub sealed_unopened: usize,
    /// Sessions missing from their node's ledger.
    pub missing_from_ledger: usize,
    /// The oldest record in the store.
    pub oldest_record: Option<String>,
    /// Where the rules came from.
    pub rules: String,
    /// Rules enabled.
    pub rules_enabled: usize,
    /// Commands in the report.
    pub commands: usize,
    /// Findings.
    pub findings: usize,
    /// Findings per severity (every severity present).
    pub findings_by_severity: BTreeMap<&'static str, usize>,
    /// Sessions reviewed at least once.
    pub reviewed_sessions: usize,
    /// Longest a session may wait for review, in days.
    pub review_max_age_days: f64,
}

/// One session row.
#[derive(Clone, Debug, Serialize)]
pub struct SessionRow {
    /// Full id (stable).
    pub id: String,
    /// Recorded user.
    pub user: String,
    /// Run-as user, when known.
    pub run_as: Option<String>,
    /// Client address.
    pub source_address: Option<String>,
    /// Host.
    pub host: String,
    /// Start (RFC 3339 UTC).
    pub start: String,
    /// End, or null.
    pub end: Option<String>,
    /// Seconds.
    pub duration_s: f64,
    /// How it ended.
    pub ended: String,
    /// Exit status.
    pub exit_status: Option<i32>,
    /// Commands run (null when the session could not be read).
    pub commands: Option<usize>,
    /// Input recorded or redacted.
    pub input: String,
    /// Sealed.
    pub sealed: bool,
    /// Commands and output read.
    pub readable: bool,
    /// Verdict.
    pub integrity: Verdict,
    /// Verification's words.
    pub integrity_detail: String,
    /// Format and digest of an imported session.
    pub imported: Option<String>,
    /// Findings in the session.
    pub findings: usize,
    /// Rule of the highest-scored finding.
    pub highest_finding: Option<String>,
    /// Its score.
    pub highest_score: Option<u8>,
    /// Its severity.
    pub highest_severity: Option<Severity>,
    /// Latest reviewer.
    pub reviewed_by: Option<String>,
    /// Latest review time.
    pub reviewed_at: Option<String>,
    /// Latest decision.
    pub review_decision: Option<String>,
}

/// One command row.
#[derive(Clone, Debug, Serialize)]
pub struct CommandRow {
    /// `SESSION#INDEX` (stable).
    pub id: String,
    /// Session.
    pub session_id: String,
    /// 0-based index, as `replay commands` numbers them.
    pub index: usize,
    /// Offset, ns.
    pub offset_ns: u64,
    /// Offset, `MM:SS.mmm`.
    pub offset: String,
    /// Wall time.
    pub time: String,
    /// The command as it ran.
    pub command: String,
    /// Exit status, when reported.
    pub exit_status: Option<i32>,
    /// Names of the rules it hit.
    pub rule_hits: Vec<String>,
    /// How to watch it.
    pub open: String,
}

/// One rule hit.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// `SESSION#INDEX/RULE`, or `SESSION#-/RULE` for output before any command (stable).
    pub id: String,
    /// Session.
    pub session_id: String,
    /// Rule name.
    pub rule: String,
    /// Rule category.
    pub category: String,
    /// Score.
    pub score: u8,
    /// Severity.
    pub severity: Severity,
    /// Offset of the evidence, ns.
    pub offset: u64,
    /// The same as `MM:SS.mmm`.
    pub offset_text: String,
    /// Wall time.
    pub time: String,
    /// The command's index, or null for output before any command.
    pub command_index: Option<usize>,
    /// The command line.
    pub command: String,
    /// The text that matched.
    pub evidence: String,
    /// The rule's description.
    pub description: String,
    /// Always true: rules are heuristics.
    pub heuristic: bool,
    /// How to watch it.
    pub open: String,
}

/// Counts for one user, host or rule.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// The user, host or rule.
    pub name: String,
    /// Sessions.
    pub sessions: usize,
    /// Commands.
    pub commands: usize,
    /// Findings.
    pub findings: usize,
    /// Highest score.
    pub highest_score: u8,
    /// Sessions not complete.
    pub not_complete: usize,
}

/// Per-user, per-host and per-rule counts.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summaries {
    /// By user.
    pub users: Vec<Summary>,
    /// By host.
    pub hosts: Vec<Summary>,
    /// By rule (every enabled rule, hit or not).
    pub rules: Vec<RuleSummary>,
    /// Sessions started per UTC day.
    pub sessions_per_day: BTreeMap<String, usize>,
}

/// Hits of one rule.
#[derive(Clone, Debug, Serialize)]
pub struct RuleSummary {
    /// Rule.
    pub rule: String,
    /// Category.
    pub category: String,
    /// Score.
    pub score: u8,
    /// Findings.
    pub findings: usize,
    /// Sessions with at least one.
    pub sessions: usize,
}

/// A review row.
#[derive(Clone, Debug, Serialize)]
pub struct ReviewRow {
    /// The review.
    #[serde(flatten)]
    pub review: ReviewInput,
    /// When.
    pub time: String,
}

/// A session waiting too long for review.
#[derive(Clone, Debug, Serialize)]
pub struct Overdue {
    /// Session.
    pub session_id: String,
    /// Its end (or start, if it never ended).
    pub since: String,
    /// Days waited so far without a review.
    pub days_waiting: f64,
}

/// An access row.
#[derive(Clone, Debug, Serialize)]
pub struct AccessRow {
    /// The access.
    #[serde(flatten)]
    pub access: AccessInput,
    /// When.
    pub time: String,
}

const NS_PER_DAY: f64 = 86_400e9;

fn wall(start_ns: i64, offset_ns: u64) -> String {
    rfc3339(start_ns.saturating_add(i64::try_from(offset_ns).unwrap_or(i64::MAX)))
}

/// `replay play ID --at OFFSET`, at the second before the moment so it is seen coming.
fn open_at(id: &str, offset_ns: u64) -> String {
    format!(
        "replay play {id} --at {}",
        offset_text(offset_ns.saturating_sub(1_000_000_000))
    )
}

/// Builds the report of `inputs` with `rules`.
pub fn build(mut inputs: Inputs, rules: &RuleSet) -> Report {
    inputs
        .sessions
        .sort_by(|a, b| (a.start_ns, &a.id).cmp(&(b.start_ns, &b.id)));
    let mut commands = Vec::new();
    let mut findings = Vec::new();
    let mut sessions = Vec::new();
    let latest_review = latest_reviews(&inputs.reviews);
    for s in &inputs.sessions {
        let (s_commands, s_findings) = scan_session(s, rules);
        if inputs.filters.flagged && s_findings.is_empty() {
            continue;
        }
        let top = s_findings.iter().max_by_key(|f| f.score);
        let review = latest_review.get(s.id.as_str());
        sessions.push(SessionRow {
            id: s.id.clone(),
            user: s.user.clone(),
            run_as: s.run_as.clone(),
            source_address: s.source.clone(),
            host: s.host.clone(),
            start: rfc3339(s.start_ns),
            end: s.end_ns.map(rfc3339),
            duration_s: s.duration_ns as f64 / 1e9,
            ended: s.ended.clone(),
            exit_status: s.exit_status,
            commands: s.readable.then_some(s.commands.len()),
            input: s.input.clone(),
            sealed: s.sealed,
            readable: s.readable,
            integrity: s.verdict,
            integrity_detail: s.integrity_detail.clone(),
            imported: s.imported.clone(),
            findings: s_findings.len(),
            highest_finding: top.map(|f| f.rule.clone()),
            highest_score: top.map(|f| f.score),
            highest_severity: top.map(|f| f.severity),
            reviewed_by: review.map(|r| r.reviewer.clone()),
            reviewed_at: review.map(|r| rfc3339(r.time_ns)),
            review_decision: review.map(|r| r.decision.clone()),
        });
        commands.extend(s_commands);
        findings.extend(s_findings);
    }
    let kept: BTreeSet<&str> = sessions.iter().map(|s| s.id.as_str()).collect();
    let kept_inputs: Vec<&SessionInput> = inputs
        .sessions
        .iter()
        .filter(|s| kept.contains(s.id.as_str()))
        .collect();
    let summaries = summarize(&sessions, &findings, rules);
    let baseline = baseline::deviations(
        kept_inputs.iter().map(|s| HistoryEntry {
            id: s.id.clone(),
            user: s.user.clone(),
            host: s.host.clone(),
            source: s.source.clone(),
            start_ns: s.start_ns,
        }),
        &inputs.history,
    );
    let reviews: Vec<ReviewRow> = inputs
        .reviews
        .iter()
        .filter(|r| kept.contains(r.session_id.as_str()))
        .map(|r| ReviewRow {
            review: r.clone(),
            time: rfc3339(r.time_ns),
        })
        .collect();
    let review_overdue = overdue(&kept_inputs, &inputs);
    let mut access: Vec<AccessRow> = inputs
        .access
        .iter()
        .map(|a| AccessRow {
            access: a.clone(),
            time: rfc3339(a.time_ns),
        })
        .collect();
    access.sort_by_key(|a| a.access.time_ns);
    let header = header(&inputs, rules, &sessions, &commands, &findings, &reviews);
    Report {
        schema: SCHEMA,
        schema_version: SCHEMA_VERSION,
        header,
        sessions,
        commands,
        findings,
        summaries,
        baseline,
        reviews,
        review_overdue,
        access,
        missing_sessions: inputs.missing.clone(),
    }
}

/// The command rows and findings of one session.
fn scan_session(s: &SessionInput, rules: &RuleSet) -> (Vec<CommandRow>, Vec<Finding>) {
    let mut commands = Vec::new();
    let mut findings = Vec::new();
    if !s.readable {
        return (commands, findings);
    }
    let finding =
        |index: Option<usize>, offset_ns: u64, line: &str, rule: &crate::Rule, ev: &str| {
            let at = index.map_or_else(|| "-".to_string(), |i| i.to_string());
            Finding {
                id: format!("{}#{at}/{}", s.id, rule.name),
                session_id: s.id.clone(),
                rule: rule.name.clone(),
                category: rule.category.clone(),
                score: rule.score,
                severity: rule.severity(),
                offset: offset_ns,
                offset_text: offset_text(offset_ns),
                time: wall(s.start_ns, offset_ns),
                command_index: index,
                command: line.to_string(),
                evidence: ev.chars().take(200).collect(),
                description: rule.description.clone(),
                heuristic: true,
                open: open_at(&s.id, offset_ns),
            }
        };
    // Output no command precedes (a program's whole session, a banner) is checked by the
    // output patterns of rules with no command pattern.
    if !s.leading_output.is_empty() {
        for (rule, ev) in rules.hits("", &s.leading_output) {
            if rule.command.is_none() {
                findings.push(finding(None, 0, "", rule, ev));
            }
        }
    }
    for c in &s.commands {
        let mut hits = Vec::new();
        for (rule, ev) in rules.hits(&c.line, &c.output) {
            hits.push(rule.name.clone());
            findings.push(finding(Some(c.index), c.offset_ns, &c.line, rule, ev));
        }
        commands.push(CommandRow {
            id: format!("{}#{}", s.id, c.index),
            session_id: s.id.clone(),
            index: c.index,
            offset_ns: c.offset_ns,
            offset: offset_text(c.offset_ns),
            time: wall(s.start_ns, c.offset_ns),
            command: c.line.clone(),
            exit_status: c.exit_status,
            rule_hits: hits,
            open: open_at(&s.id, c.offset_ns),
        });
    }
    (commands, findings)
}

/// The latest review of each session.
fn latest_reviews(reviews: &[ReviewInput]) -> HashMap<&str, &ReviewInput> {
    let mut latest: HashMap<&str, &ReviewInput> = HashMap::new();
    for r in reviews {
        let slot = latest.entry(r.session_id.as_str()).or_insert(r);
        if r.time_ns > slot.time_ns {
            *slot = r;
        }
    }
    latest
}

/// The overdue sessions among those reported, with how long each has waited.
fn overdue(sessions: &[&SessionInput], inputs: &Inputs) -> Vec<Overdue> {
    let overdue: BTreeSet<&str> = inputs.overdue.iter().map(String::as_str).collect();
    sessions
        .iter()
        .filter(|s| overdue.contains(s.id.as_str()))
        .map(|s| {
            let since = s.end_ns.unwrap_or(s.start_ns);
            let waited = inputs.now_ns.saturating_sub(since);
            Overdue {
                session_id: s.id.clone(),
                since: rfc3339(since),
                days_waiting: (waited as f64 / NS_PER_DAY * 10.0).floor() / 10.0,
            }
        })
        .collect()
}

fn summarize(sessions: &[SessionRow], findings: &[Finding], rules: &RuleSet) -> Summaries {
    let by_id: HashMap<&str, &SessionRow> = sessions.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut users: BTreeMap<String, Summary> = BTreeMap::new();
    let mut hosts: BTreeMap<String, Summary> = BTreeMap::new();
    let mut per_day = BTreeMap::new();
    for s in sessions {
        for (map, key) in [(&mut users, &s.user), (&mut hosts, &s.host)] {
            let e = map.entry(key.clone()).or_insert_with(|| Summary {
                name: key.clone(),
                ..Summary::default()
            });
            e.sessions += 1;
            e.commands += s.commands.unwrap_or(0);
            e.findings += s.findings;
            e.highest_score = e.highest_score.max(s.highest_score.unwrap_or(0));
            e.not_complete += usize::from(s.integrity != Verdict::Complete);
        }
        *per_day
            .entry(s.start.get(..10).unwrap_or("").to_string())
            .or_insert(0) += 1;
    }
    let rules = rules
        .rules()
        .iter()
        .filter(|r| r.enabled)
        .map(|r| {
            let hits: Vec<&Finding> = findings.iter().filter(|f| f.rule == r.name).collect();
            let sessions: BTreeSet<&str> = hits
                .iter()
                .map(|f| f.session_id.as_str())
                .filter(|id| by_id.contains_key(id))
                .collect();
            RuleSummary {
                rule: r.name.clone(),
                category: r.category.clone(),
                score: r.score,
                findings: hits.len(),
                sessions: sessions.len(),
            }
        })
        .collect();
    Summaries {
        users: users.into_values().collect(),
        hosts: hosts.into_values().collect(),
        rules,
        sessions_per_day: per_day,
    }
}

fn header(
    inputs: &Inputs,
    rules: &RuleSet,
    sessions: &[SessionRow],
    commands: &[CommandRow],
    findings: &[Finding],
    reviews: &[ReviewRow],
) -> Header {
    let mut verdicts: BTreeMap<&'static str, usize> =
        Verdict::ALL.iter().map(|v| (v.as_str(), 0)).collect();
    for s in sessions {
        *verdicts.entry(s.integrity.as_str()).or_insert(0) += 1;
    }
    let mut by_severity: BTreeMap<&'static str, usize> =
        Severity::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    for f in findings {
        *by_severity.entry(f.severity.as_str()).or_insert(0) += 1;
    }
    let reviewed: BTreeSet<&str> = reviews
        .iter()
        .map(|r| r.review.session_id.as_str())
        .collect();
    Header {
        since: inputs.filters.since_ns.map(rfc3339),
        until: inputs.filters.until_ns.map(rfc3339),
        filters: inputs.filters.clone(),
        generated_at: rfc3339(inputs.now_ns),
        generator: inputs.generator.clone(),
        schema_version: SCHEMA_VERSION,
        store: inputs.store.clone(),
        objects: inputs.objects.clone(),
        unreadable_objects: inputs.unreadable_objects.clone(),
        sessions: sessions.len(),
        verdicts,
        sealed_sessions: sessions.iter().filter(|s| s.sealed).count(),
        sealed_unopened: sessions.iter().filter(|s| s.sealed && !s.readable).count(),
        missing_from_ledger: inputs.missing.len(),
        oldest_record: inputs.oldest_record_ns.map(rfc3339),
        rules: rules.origin.clone(),
        rules_enabled: rules.rules().iter().filter(|r| r.enabled).count(),
        commands: commands.len(),
        findings: findings.len(),
        findings_by_severity: by_severity,
        reviewed_sessions: reviewed.len(),
        review_max_age_days: inputs.review_max_age_ns as f64 / NS_PER_DAY,
    }
}
