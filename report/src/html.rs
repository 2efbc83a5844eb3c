//! The report as one self-contained HTML file: inline CSS and SVG charts, no script and
//! nothing fetched, readable on screen and printed to PDF (tables repeat their headers and
//! rows do not split across pages).

use std::fmt::Write;

use crate::model::{Report, Verdict};

/// HTML-escapes text for element content and quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters from a terminal would show as nothing, or break the page.
            c if c.is_control() && c != '\n' && c != '\t' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { --fg:#1b1f24; --muted:#57606a; --line:#d0d7de; --bad:#b42318; --warn:#b54708; --ok:#067647; --bar:#2f6fb0; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); margin: 2rem auto; max-width: 1200px; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; } h2 { font-size: 1.2rem; margin: 2rem 0 .5rem; border-bottom: 1px solid var(--line); padding-bottom: .25rem; }
.sub { color: var(--muted); margin: 0 0 1rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } thead { display: table-header-group; } tr { break-inside: avoid; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; word-break: break-all; }
.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 1rem; }
.kv dt { color: var(--muted); } .kv dd { margin: 0; }
.cards { display: flex; flex-wrap: wrap; gap: .5rem; margin: .5rem 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .4rem .8rem; min-width: 7.5rem; }
.card b { display: block; font-size: 1.4rem; } .card span { color: var(--muted); font-size: 12px; }
.bad { color: var(--bad); font-weight: 600; } .warn { color: var(--warn); } .ok { color: var(--ok); }
.sev-critical { color: #fff; background: var(--bad); } .sev-high { color: #fff; background: var(--warn); }
.sev-medium { background: #fdf0c4; } .sev-low { background: #eef2f6; }
.pill { border-radius: 3px; padding: 0 4px; font-size: 12px; white-space: nowrap; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5rem; } .chart h3 { font-size: 13px; margin: 0 0 .25rem; color: var(--muted); }
.note { color: var(--muted); font-size: 12px; }
@media print { body { margin: 0; max-width: none; font-size: 11px; } h2 { break-after: avoid; } .charts { break-inside: avoid; } }
"#;

fn pill(severity: &str) -> String {
    format!("<span class=\"pill sev-{0}\">{0}</span>", escape(severity))
}

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Complete => "ok",
        Verdict::Altered | Verdict::Gap | Verdict::Unreadable => "bad",
        _ => "warn",
    }
}

/// A horizontal bar chart as inline SVG.
fn bars(title: &str, id: &str, data: &[(String, usize)]) -> String {
    let max = data.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let (label_w, bar_w, row_h) = (150.0, 260.0, 18.0);
    let height = (data.len().max(1) as f64) * row_h + 4.0;
    let mut svg = format!(
        "<div class=\"chart\" id=\"{id}\"><h3>{}</h3><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"{}\">",
        escape(title),
        label_w + bar_w + 50.0,
        escape(title)
    );
    if data.is_empty() {
        svg.push_str("<text x=\"0\" y=\"14\" font-size=\"12\" fill=\"#57606a\">none</text>");
    }
    for (i, (label, v)) in data.iter().enumerate() {
        let y = i as f64 * row_h;
        let w = (*v as f64 / max as f64) * bar_w;
        let short: String = label.chars().take(22).collect();
        let _ = write!(
            svg,
            "<text x=\"{x}\" y=\"{ty}\" font-size=\"12\" text-anchor=\"end\">{l}</text><rect x=\"{bx}\" y=\"{ry}\" width=\"{w:.1}\" height=\"{h}\" fill=\"#2f6fb0\"/><text x=\"{vx:.1}\" y=\"{ty}\" font-size=\"12\">{v}</text>",
            x = label_w - 6.0,
            ty = y + 13.0,
            l = escape(&short),
            bx = label_w,
            ry = y + 3.0,
            h = row_h - 5.0,
            vx = label_w + w + 4.0,
        );
    }
    svg.push_str("</svg></div>");
    svg
}

fn table(out: &mut String, id: &str, head: &[&str], numeric: &[usize], rows: &[Vec<String>]) {
    let _ = write!(out, "<table id=\"{id}\"><thead><tr>");
    for (i, h) in head.iter().enumerate() {
        let class = if numeric.contains(&i) {
            " class=\"num\""
        } else {
            ""
        };
        let _ = write!(out, "<th{class}>{}</th>", escape(h));
    }
    out.push_str("</tr></thead><tbody>");
    if rows.is_empty() {
        let _ = write!(
            out,
            "<tr><td colspan=\"{}\" class=\"note\">none</td></tr>",
            head.len()
        );
    }
    for row in rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let class = if numeric.contains(&i) {
                " class=\"num\""
            } else {
                ""
            };
            // Cells are escaped by the caller (some hold markup of ours).
            let _ = write!(out, "<td{class}>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

fn e_opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map(|v| escape(&v.to_string()))
        .unwrap_or_else(|| "–".into())
}

/// The report as an HTML page.
pub fn render(r: &Report) -> String {
    let h = &r.header;
    let mut o = String::with_capacity(64 * 1024 + r.commands.len() * 200);
    let period = format!(
        "{} – {}",
        h.since.as_deref().unwrap_or("beginning of the store"),
        h.until.as_deref().unwrap_or("now")
    );
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\"><title>auditty session report {}</title><style>{STYLE}</style></head><body>",
        escape(&period)
    );
    let _ = write!(
        o,
        "<h1>Terminal session audit report</h1><p class=\"sub\">Period <b id=\"period\">{}</b> · generated {} by {} · report schema v{}</p>",
        escape(&period),
        escape(&h.generated_at),
        escape(&h.generator),
        h.schema_version
    );

    section_cards(&mut o, r);
    section_evidence(&mut o, r);
    section_integrity(&mut o, r);
    section_charts(&mut o, r);
    section_sessions(&mut o, r);
    section_findings(&mut o, r);
    section_summaries(&mut o, r);
    section_baseline(&mut o, r);
    section_reviews(&mut o, r);
    section_access(&mut o, r);
    section_commands(&mut o, r);
    o.push_str("</body></html>\n");
    o
}

fn section_cards(o: &mut String, r: &Report) {
    let h = &r.header;
    // Cards: the numbers an assessor looks for first.
    let not_complete = h.sessions - h.verdicts.get("complete").copied().unwrap_or(0);
    let cards = [
        ("sessions", h.sessions.to_string(), "sessions", ""),
        ("commands", h.commands.to_string(), "commands", ""),
        (
            "findings",
            h.findings.to_string(),
            "findings",
            if h.findings > 0 { "warn" } else { "" },
        ),
        (
            "not-complete",
            not_complete.to_string(),
            "not complete",
            if not_complete > 0 { "bad" } else { "ok" },
        ),
        (
            "missing",
            h.missing_from_ledger.to_string(),
            "missing from a ledger",
            if h.missing_from_ledger > 0 {
                "bad"
            } else {
                "ok"
            },
        ),
        ("sealed", h.sealed_sessions.to_string(), "sealed", ""),
        (
            "overdue",
            r.review_overdue.len().to_string(),
            "awaiting review too long",
            if r.review_overdue.is_empty() {
                "ok"
            } else {
                "warn"
            },
        ),
    ];
    o.push_str("<div class=\"cards\">");
    for (id, n, label, class) in cards {
        let _ = write!(
            o,
            "<div class=\"card\"><b id=\"n-{id}\" class=\"{class}\">{n}</b><span>{label}</span></div>"
        );
    }
    o.push_str("</div>");
}

fn section_evidence(o: &mut String, r: &Report) {
    let h = &r.header;
    o.push_str("<h2>Evidence</h2><dl class=\"kv\" id=\"evidence\">");
    let filters = format!(
        "user {}, host {}{}",
        h.filters.user.as_deref().unwrap_or("any"),
        h.filters.host.as_deref().unwrap_or("any"),
        if h.filters.flagged {
            ", flagged sessions only"
        } else {
            ""
        }
    );
    let unreadable = if h.unreadable_objects.is_empty() {
        "none".to_string()
    } else {
        h.unreadable_objects.join(", ")
    };
    for (k, v) in [
        ("Filters", filters),
        ("Store", h.store.clone()),
        (
            "Objects read",
            format!("{} ({} bytes)", h.objects.count, h.objects.bytes),
        ),
        ("Digest of the objects (BLAKE3)", h.objects.digest.clone()),
        ("Unreadable objects", unreadable),
        (
            "Oldest record in the store",
            h.oldest_record.clone().unwrap_or_else(|| "–".into()),
        ),
        (
            "Sealed sessions",
            format!(
                "{} ({} not opened by this reader)",
                h.sealed_sessions, h.sealed_unopened
            ),
        ),
        (
            "Rules",
            format!("{} ({} enabled; heuristics)", h.rules, h.rules_enabled),
        ),
        (
            "Review cadence",
            format!(
                "at most {} days after a session ends; {} sessions reviewed",
                h.review_max_age_days, h.reviewed_sessions
            ),
        ),
    ] {
        let _ = write!(
            o,
            "<dt>{}</dt><dd class=\"mono\">{}</dd>",
            escape(k),
            escape(&v)
        );
    }
    o.push_str("</dl>");
}

fn section_integrity(o: &mut String, r: &Report) {
    let h = &r.header;
    o.push_str("<h2>Integrity</h2>");
    let rows: Vec<Vec<String>> = Verdict::ALL
        .iter()
        .map(|v| {
            let n = h.verdicts.get(v.as_str()).copied().unwrap_or(0);
            vec![
                format!(
                    "<span class=\"{}\">{}</span>",
                    verdict_class(*v),
                    v.as_str()
                ),
                n.to_string(),
            ]
        })
        .collect();
    table(o, "verdicts", &["verdict", "sessions"], &[1], &rows);
    o.push_str("<p class=\"note\">complete: every event present and signed by a trusted key · altered: a row differs from what was signed · gap: events missing · never-ended: no end (agent killed, still running or tail removed) · unsigned / untrusted: no signature, or one by a key outside the trust file · imported: brought in from another recorder, never signed at capture · unreadable: a store object could not be read.</p>");
    if !r.missing_sessions.is_empty() {
        o.push_str("<h3 class=\"bad\">Sessions missing from their node's ledger</h3>");
        let rows: Vec<Vec<String>> = r
            .missing_sessions
            .iter()
            .map(|m| vec![e_opt(&m.session_id), escape(&m.detail)])
            .collect();
        table(
            o,
            "missing",
            &["next session found", "what the ledger says"],
            &[],
            &rows,
        );
    }
}

fn section_charts(o: &mut String, r: &Report) {
    let h = &r.header;
    o.push_str("<h2>Charts</h2><div class=\"charts\">");
    let per_day: Vec<(String, usize)> = r
        .summaries
        .sessions_per_day
        .iter()
        .map(|(d, n)| (d.clone(), *n))
        .collect();
    o.push_str(&bars("Sessions per day (UTC)", "chart-days", &per_day));
    let per_user: Vec<(String, usize)> = r
        .summaries
        .users
        .iter()
        .map(|u| (u.name.clone(), u.sessions))
        .collect();
    o.push_str(&bars("Sessions per user", "chart-users", &per_user));
    let by_sev: Vec<(String, usize)> = crate::Severity::ALL
        .iter()
        .map(|s| {
            (
                s.as_str().to_string(),
                h.findings_by_severity.get(s.as_str()).copied().unwrap_or(0),
            )
        })
        .collect();
    o.push_str(&bars("Findings by severity", "chart-severity", &by_sev));
    o.push_str("</div>");
}

fn section_sessions(o: &mut String, r: &Report) {
    o.push_str("<h2>Sessions</h2>");
    let rows: Vec<Vec<String>> = r
        .sessions
        .iter()
        .map(|s| {
            vec![
                format!("<code>{}</code>", escape(&s.id)),
                escape(&s.user)
                    + &s.run_as
                        .as_ref()
                        .map(|u| format!(" → {}", escape(u)))
                        .unwrap_or_default(),
                e_opt(&s.source_address),
                escape(&s.host),
                escape(&s.start),
                e_opt(&s.end),
                format!("{:.0}", s.duration_s),
                escape(&s.ended),
                s.commands.map_or_else(|| "–".into(), |n| n.to_string()),
                escape(&s.input),
                if s.sealed {
                    "sealed".into()
                } else {
                    String::new()
                },
                format!(
                    "<span class=\"{}\">{}</span>",
                    verdict_class(s.integrity),
                    s.integrity.as_str()
                ),
                match (&s.highest_finding, s.highest_severity) {
                    (Some(rule), Some(sev)) => format!("{} {}", pill(sev.as_str()), escape(rule)),
                    _ => String::new(),
                },
                match (&s.reviewed_by, &s.reviewed_at) {
                    (Some(by), Some(at)) => format!(
                        "{} {} ({})",
                        escape(by),
                        escape(at),
                        e_opt(&s.review_decision)
                    ),
                    _ => String::new(),
                },
            ]
        })
        .collect();
    table(
        o,
        "sessions",
        &[
            "session",
            "user",
            "from",
            "host",
            "start (UTC)",
            "end (UTC)",
            "secs",
            "ended",
            "cmds",
            "input",
            "sealed",
            "integrity",
            "highest finding",
            "reviewed",
        ],
        &[6, 8],
        &rows,
    );
}

fn section_findings(o: &mut String, r: &Report) {
    o.push_str("<h2>Findings</h2><p class=\"note\">Every finding is a heuristic: a lead for a reviewer, not a verdict. Open one with the command shown.</p>");
    let rows: Vec<Vec<String>> = r
        .findings
        .iter()
        .map(|f| {
            vec![
                pill(f.severity.as_str()),
                f.score.to_string(),
                escape(&f.rule),
                format!("<code>{}</code>", escape(&f.session_id)),
                escape(&f.offset_text),
                escape(&f.time),
                format!("<code>{}</code>", escape(&f.command)),
                format!("<code>{}</code>", escape(&f.evidence)),
                format!("<code>{}</code>", escape(&f.open)),
            ]
        })
        .collect();
    table(
        o,
        "findings",
        &[
            "severity",
            "score",
            "rule",
            "session",
            "offset",
            "time (UTC)",
            "command",
            "evidence",
            "open with",
        ],
        &[1],
        &rows,
    );
}

fn section_summaries(o: &mut String, r: &Report) {
    o.push_str("<h2>Summaries</h2>");
    for (title, id, list) in [
        ("By user", "sum-users", &r.summaries.users),
        ("By host", "sum-hosts", &r.summaries.hosts),
    ] {
        let _ = write!(o, "<h3>{title}</h3>");
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|s| {
                vec![
                    escape(&s.name),
                    s.sessions.to_string(),
                    s.commands.to_string(),
                    s.findings.to_string(),
                    s.highest_score.to_string(),
                    s.not_complete.to_string(),
                ]
            })
            .collect();
        table(
            o,
            id,
            &[
                "name",
                "sessions",
                "commands",
                "findings",
                "highest score",
                "not complete",
            ],
            &[1, 2, 3, 4, 5],
            &rows,
        );
    }
    o.push_str("<h3>By rule</h3>");
    let rows: Vec<Vec<String>> = r
        .summaries
        .rules
        .iter()
        .map(|s| {
            vec![
                escape(&s.rule),
                escape(&s.category),
                s.score.to_string(),
                s.findings.to_string(),
                s.sessions.to_string(),
            ]
        })
        .collect();
    table(
        o,
        "sum-rules",
        &["rule", "category", "score", "findings", "sessions"],
        &[2, 3, 4],
        &rows,
    );
}

fn section_baseline(o: &mut String, r: &Report) {
    o.push_str("<h2>Baseline deviations</h2><p class=\"note\">Against the user's earlier sessions in the store: a first session on a host, a new source address, a start outside their usual hours (UTC).</p>");
    let rows: Vec<Vec<String>> = r
        .baseline
        .iter()
        .map(|d| {
            let kind = d.kind.as_str().to_string();
            vec![
                format!("<code>{}</code>", escape(&d.session_id)),
                escape(&kind),
                escape(&d.detail),
            ]
        })
        .collect();
    table(
        o,
        "baseline",
        &["session", "deviation", "detail"],
        &[],
        &rows,
    );
}

fn section_reviews(o: &mut String, r: &Report) {
    let h = &r.header;
    o.push_str("<h2>Reviews</h2>");
    let rows: Vec<Vec<String>> = r
        .reviews
        .iter()
        .map(|v| {
            vec![
                format!("<code>{}</code>", escape(&v.review.session_id)),
                escape(&v.review.reviewer),
                escape(&v.review.decision),
                e_opt(&v.review.comment),
                escape(&v.time),
                escape(&v.review.signature),
            ]
        })
        .collect();
    table(
        o,
        "reviews",
        &[
            "session",
            "reviewer",
            "decision",
            "comment",
            "time (UTC)",
            "signature",
        ],
        &[],
        &rows,
    );
    let _ = write!(
        o,
        "<h3>Not reviewed within {} days</h3>",
        h.review_max_age_days
    );
    let rows: Vec<Vec<String>> = r
        .review_overdue
        .iter()
        .map(|v| {
            vec![
                format!("<code>{}</code>", escape(&v.session_id)),
                escape(&v.since),
                format!("{:.1}", v.days_waiting),
            ]
        })
        .collect();
    table(
        o,
        "overdue",
        &["session", "ended", "days waiting"],
        &[2],
        &rows,
    );
}

fn section_access(o: &mut String, r: &Report) {
    o.push_str("<h2>Access to recordings</h2>");
    let rows: Vec<Vec<String>> = r
        .access
        .iter()
        .map(|a| {
            vec![
                escape(&a.time),
                escape(&a.access.user),
                escape(&a.access.host),
                escape(&a.access.action),
                format!("<code>{}</code>", escape(&a.access.sessions.join(" "))),
                escape(&a.access.detail),
            ]
        })
        .collect();
    table(
        o,
        "access",
        &[
            "time (UTC)",
            "user",
            "from host",
            "action",
            "sessions",
            "detail",
        ],
        &[],
        &rows,
    );
}

fn section_commands(o: &mut String, r: &Report) {
    o.push_str("<h2>Commands</h2>");
    let rows: Vec<Vec<String>> = r
        .commands
        .iter()
        .map(|c| {
            vec![
                format!("<code>{}</code>", escape(&c.session_id)),
                c.index.to_string(),
                escape(&c.offset),
                escape(&c.time),
                format!("<code>{}</code>", escape(&c.command)),
                e_opt(&c.exit_status),
                escape(&c.rule_hits.join(" ")),
            ]
        })
        .collect();
    table(
        o,
        "commands",
        &[
            "session",
            "#",
            "offset",
            "time (UTC)",
            "command",
            "exit",
            "rules",
        ],
        &[1],
        &rows,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_controls_are_shown() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(escape("a\x1b[2Jb"), "a\\u{1b}[2Jb");
    }
}
