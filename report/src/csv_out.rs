//! The report as CSV: one table per file in a directory (layout in `schemas/report.md`).
//! Every row carries stable ids (session id, `SESSION#INDEX` for commands,
//! `SESSION#INDEX/RULE` for findings), so that tables join and runs compare.

use std::path::Path;

use crate::model::Report;

/// Why the CSV files could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct CsvError {
    path: String,
    source: std::io::Error,
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// One CSV file: its name, columns and rows.
pub type Table = (&'static str, Vec<&'static str>, Vec<Vec<String>>);

const SUMMARY_COLUMNS: [&str; 6] = [
    "name",
    "sessions",
    "commands",
    "findings",
    "highest_score",
    "not_complete",
];

/// Every table of `report`, in the order `schemas/report.md` lists them.
pub fn tables(report: &Report) -> Vec<Table> {
    vec![
        table_header(report),
        table_sessions(report),
        table_commands(report),
        table_findings(report),
        table_summary_users(report),
        table_summary_hosts(report),
        table_summary_rules(report),
        table_baseline(report),
        table_missing_sessions(report),
        table_reviews(report),
        table_review_overdue(report),
        table_access(report),
    ]
}

fn summary_rows(rows: &[crate::model::Summary]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.sessions.to_string(),
                s.commands.to_string(),
                s.findings.to_string(),
                s.highest_score.to_string(),
                s.not_complete.to_string(),
            ]
        })
        .collect::<Vec<_>>()
}

fn table_header(report: &Report) -> Table {
    let h = &report.header;
    let mut header_rows = vec![
        vec!["since".into(), opt(&h.since)],
        vec!["until".into(), opt(&h.until)],
        vec!["filter_user".into(), opt(&h.filters.user)],
        vec!["filter_host".into(), opt(&h.filters.host)],
        vec!["filter_flagged".into(), h.filters.flagged.to_string()],
        vec!["generated_at".into(), h.generated_at.clone()],
        vec!["generator".into(), h.generator.clone()],
        vec!["schema_version".into(), h.schema_version.to_string()],
        vec!["store".into(), h.store.clone()],
        vec!["objects_read".into(), h.objects.count.to_string()],
        vec!["objects_bytes".into(), h.objects.bytes.to_string()],
        vec!["objects_digest".into(), h.objects.digest.clone()],
        vec!["unreadable_objects".into(), h.unreadable_objects.join(" ")],
        vec!["sessions".into(), h.sessions.to_string()],
    ];
    header_rows.extend(
        h.verdicts
            .iter()
            .map(|(k, v)| vec![format!("verdict_{}", k.replace('-', "_")), v.to_string()]),
    );
    header_rows.extend([
        vec!["sealed_sessions".into(), h.sealed_sessions.to_string()],
        vec!["sealed_unopened".into(), h.sealed_unopened.to_string()],
        vec![
            "missing_from_ledger".into(),
            h.missing_from_ledger.to_string(),
        ],
        vec!["oldest_record".into(), opt(&h.oldest_record)],
        vec!["rules".into(), h.rules.clone()],
        vec!["rules_enabled".into(), h.rules_enabled.to_string()],
        vec!["commands".into(), h.commands.to_string()],
        vec!["findings".into(), h.findings.to_string()],
    ]);
    header_rows.extend(
        h.findings_by_severity
            .iter()
            .map(|(k, v)| vec![format!("findings_{k}"), v.to_string()]),
    );
    header_rows.extend([
        vec!["reviewed_sessions".into(), h.reviewed_sessions.to_string()],
        vec![
            "review_max_age_days".into(),
            h.review_max_age_days.to_string(),
        ],
    ]);
    ("header.csv", vec!["key", "value"], header_rows)
}

fn table_sessions(report: &Report) -> Table {
    (
        "sessions.csv",
        vec![
            "session_id",
            "user",
            "run_as",
            "source_address",
            "host",
            "start",
            "end",
            "duration_s",
            "ended",
            "exit_status",
            "commands",
            "input",
            "sealed",
            "readable",
            "integrity",
            "integrity_detail",
            "imported",
            "findings",
            "highest_finding",
            "highest_score",
            "highest_severity",
            "reviewed_by",
            "reviewed_at",
            "review_decision",
        ],
        report
            .sessions
            .iter()
            .map(|s| {
                vec![
                    s.id.clone(),
                    s.user.clone(),
                    opt(&s.run_as),
                    opt(&s.source_address),
                    s.host.clone(),
                    s.start.clone(),
                    opt(&s.end),
                    format!("{:.3}", s.duration_s),
                    s.ended.clone(),
                    opt(&s.exit_status),
                    opt(&s.commands),
                    s.input.clone(),
                    s.sealed.to_string(),
                    s.readable.to_string(),
                    s.integrity.as_str().to_string(),
                    s.integrity_detail.clone(),
                    opt(&s.imported),
                    s.findings.to_string(),
                    opt(&s.highest_finding),
                    opt(&s.highest_score),
                    s.highest_severity
                        .map(|v| v.as_str().to_string())
                        .unwrap_or_default(),
                    opt(&s.reviewed_by),
                    opt(&s.reviewed_at),
                    opt(&s.review_decision),
                ]
            })
            .collect(),
    )
}

fn table_commands(report: &Report) -> Table {
    (
        "commands.csv",
        vec![
            "command_id",
            "session_id",
            "index",
            "offset_ns",
            "offset",
            "time",
            "command",
            "exit_status",
            "rule_hits",
            "open",
        ],
        report
            .commands
            .iter()
            .map(|c| {
                vec![
                    c.id.clone(),
                    c.session_id.clone(),
                    c.index.to_string(),
                    c.offset_ns.to_string(),
                    c.offset.clone(),
                    c.time.clone(),
                    c.command.clone(),
                    opt(&c.exit_status),
                    c.rule_hits.join(" "),
                    c.open.clone(),
                ]
            })
            .collect(),
    )
}

fn table_findings(report: &Report) -> Table {
    (
        "findings.csv",
        vec![
            "finding_id",
            "session_id",
            "rule",
            "category",
            "score",
            "severity",
            "offset_ns",
            "offset",
            "time",
            "command_index",
            "command",
            "evidence",
            "description",
            "heuristic",
            "open",
        ],
        report
            .findings
            .iter()
            .map(|f| {
                vec![
                    f.id.clone(),
                    f.session_id.clone(),
                    f.rule.clone(),
                    f.category.clone(),
                    f.score.to_string(),
                    f.severity.as_str().to_string(),
                    f.offset.to_string(),
                    f.offset_text.clone(),
                    f.time.clone(),
                    opt(&f.command_index),
                    f.command.clone(),
                    f.evidence.clone(),
                    f.description.clone(),
                    f.heuristic.to_string(),
                    f.open.clone(),
                ]
            })
            .collect(),
    )
}

fn table_summary_users(report: &Report) -> Table {
    (
        "summary_users.csv",
        SUMMARY_COLUMNS.to_vec(),
        summary_rows(&report.summaries.users),
    )
}

fn table_summary_hosts(report: &Report) -> Table {
    (
        "summary_hosts.csv",
        SUMMARY_COLUMNS.to_vec(),
        summary_rows(&report.summaries.hosts),
    )
}

fn table_summary_rules(report: &Report) -> Table {
    (
        "summary_rules.csv",
        vec!["rule", "category", "score", "findings", "sessions"],
        report
            .summaries
            .rules
            .iter()
            .map(|r| {
                vec![
                    r.rule.clone(),
                    r.category.clone(),
                    r.score.to_string(),
                    r.findings.to_string(),
                    r.sessions.to_string(),
                ]
            })
            .collect(),
    )
}

fn table_baseline(report: &Report) -> Table {
    (
        "baseline.csv",
        vec!["session_id", "kind", "detail"],
        report
            .baseline
            .iter()
            .map(|d| {
                let kind = d.kind.as_str().to_string();
                vec![d.session_id.clone(), kind, d.detail.clone()]
            })
            .collect(),
    )
}

fn table_missing_sessions(report: &Report) -> Table {
    (
        "missing_sessions.csv",
        vec!["session_id", "detail"],
        report
            .missing_sessions
            .iter()
            .map(|m| vec![opt(&m.session_id), m.detail.clone()])
            .collect(),
    )
}

fn table_reviews(report: &Report) -> Table {
    (
        "reviews.csv",
        vec![
            "session_id",
            "reviewer",
            "decision",
            "comment",
            "time",
            "signature",
        ],
        report
            .reviews
            .iter()
            .map(|r| {
                vec![
                    r.review.session_id.clone(),
                    r.review.reviewer.clone(),
                    r.review.decision.clone(),
                    opt(&r.review.comment),
                    r.time.clone(),
                    r.review.signature.clone(),
                ]
            })
            .collect(),
    )
}

fn table_review_overdue(report: &Report) -> Table {
    (
        "review_overdue.csv",
        vec!["session_id", "since", "days_waiting"],
        report
            .review_overdue
            .iter()
            .map(|o| {
                vec![
                    o.session_id.clone(),
                    o.since.clone(),
                    o.days_waiting.to_string(),
                ]
            })
            .collect(),
    )
}

fn table_access(report: &Report) -> Table {
    (
        "access.csv",
        vec!["time", "user", "host", "action", "sessions", "detail"],
        report
            .access
            .iter()
            .map(|a| {
                vec![
                    a.time.clone(),
                    a.access.user.clone(),
                    a.access.host.clone(),
                    a.access.action.clone(),
                    a.access.sessions.join(" "),
                    a.access.detail.clone(),
                ]
            })
            .collect(),
    )
}

/// Writes every table into `dir` (created if missing).
pub fn write_dir(report: &Report, dir: &Path) -> Result<Vec<String>, CsvError> {
    let fail = |path: &Path, source| CsvError {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
    let mut written = Vec::new();
    for (name, header, rows) in tables(report) {
        let path = dir.join(name);
        let mut w = csv::Writer::from_path(&path).map_err(|e| fail(&path, e.into()))?;
        w.write_record(&header).map_err(|e| fail(&path, e.into()))?;
        for row in rows {
            w.write_record(&row).map_err(|e| fail(&path, e.into()))?;
        }
        w.flush().map_err(|e| fail(&path, e))?;
        written.push(name.to_string());
    }
    Ok(written)
}
