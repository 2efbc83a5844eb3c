//! The server-rendered pages. No inline script or style: the Content-Security-Policy
//! allows only `/static/` files; behaviour lives in `/static/app.js`.

use std::fmt::Write as _;

use schemas::time::{human_duration, rfc3339};
use search::index::Hit;

use crate::backend::{CommandRow, Content, Opened, SessionSummary};

/// Escapes text for HTML element content and quoted attribute values; control characters
/// are shown escaped, as in listings.
pub fn esc(s: &str) -> String {
    let s = schemas::text::escape_controls(s);
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Percent-encodes a query-string value.
pub fn url_enc(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

/// Who is looking, for the header of every page.
pub struct Viewer<'a> {
    /// Caller name.
    pub name: &'a str,
    /// CSRF token of the browser session (`None` for a token caller).
    pub csrf: Option<&'a str>,
}

/// A whole page around `body`.
pub fn page(title: &str, viewer: Option<&Viewer<'_>>, player: bool, body: &str) -> String {
    let mut o = String::from(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
    );
    let _ = write!(o, "<title>{} · auditty</title>", esc(title));
    o.push_str("<link rel=\"stylesheet\" href=\"/static/app.css\">");
    if player {
        o.push_str("<link rel=\"stylesheet\" href=\"/static/asciinema-player.css\">");
    }
    o.push_str("</head><body>");
    if let Some(v) = viewer {
        let _ = write!(
            o,
            "<header id=\"top\"><nav><a href=\"/\">Sessions</a> <a href=\"/report\">Report</a></nav>\
             <form id=\"search\" action=\"/search\" method=\"get\"><input type=\"search\" name=\"q\" placeholder=\"Search commands and output\"><button type=\"submit\">Search</button></form>\
             <span id=\"whoami\">{}</span>",
            esc(v.name)
        );
        if let Some(csrf) = v.csrf {
            let _ = write!(
                o,
                "<form id=\"logout\" method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Log out</button></form>",
                esc(csrf)
            );
        }
        o.push_str("</header>");
    }
    let _ = write!(o, "<main>{body}</main>");
    if player {
        o.push_str("<script src=\"/static/asciinema-player.min.js\"></script>");
    }
    o.push_str("<script src=\"/static/app.js\"></script></body></html>");
    o
}

/// The login form.
pub fn login(csrf: &str, next: &str, message: Option<&str>) -> String {
    let mut body = String::from("<h1>auditty</h1>");
    if let Some(m) = message {
        let _ = write!(body, "<p id=\"login-error\" class=\"error\">{}</p>", esc(m));
    }
    let _ = write!(
        body,
        "<form id=\"login\" method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\
         <label>User <input name=\"user\" autocomplete=\"username\" required></label>\
         <label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\" required></label>\
         <button type=\"submit\">Log in</button></form>",
        esc(csrf),
        esc(next)
    );
    page("Log in", None, false, &body)
}

/// The filters of the list page, as given (for the form and the paging links).
#[derive(Default)]
pub struct ListForm<'a> {
    /// (name, value) of each filter given.
    pub params: Vec<(&'a str, &'a str)>,
    /// Page, 1-based.
    pub page: usize,
    /// Sessions per page.
    pub per_page: usize,
    /// Whether a next page follows.
    pub more: bool,
    /// Sessions on this page.
    pub shown: usize,
}

/// The session list with filters and paging.
pub fn list(rows: &[SessionSummary], form: &ListForm<'_>) -> String {
    let value = |k: &str| {
        form.params
            .iter()
            .find(|(n, _)| *n == k)
            .map_or(String::new(), |(_, v)| esc(v))
    };
    let mut o = String::from("<h1>Sessions</h1><form id=\"filters\" action=\"/\" method=\"get\">");
    for (name, label) in [
        ("user", "User"),
        ("host", "Host"),
        ("since", "Since"),
        ("until", "Until"),
        ("integrity", "Integrity"),
    ] {
        let _ = write!(
            o,
            "<label>{label} <input name=\"{name}\" value=\"{}\"></label>",
            value(name)
        );
    }
    let sealed = value("sealed");
    o.push_str("<label>Sealed <select name=\"sealed\">");
    for (v, l) in [("", "any"), ("yes", "sealed"), ("no", "not sealed")] {
        let sel = if sealed == v { " selected" } else { "" };
        let _ = write!(o, "<option value=\"{v}\"{sel}>{l}</option>");
    }
    let flagged = value("flagged");
    o.push_str("</select></label><label>Findings <select name=\"flagged\">");
    for (v, l) in [("", "any"), ("yes", "flagged"), ("no", "none")] {
        let sel = if flagged == v { " selected" } else { "" };
        let _ = write!(o, "<option value=\"{v}\"{sel}>{l}</option>");
    }
    o.push_str(
        "</select></label><button type=\"submit\">Filter</button></form>\
         <p><a id=\"flagged\" href=\"/report?flagged=1\">Findings in detail (report)</a></p>",
    );
    let _ = write!(
        o,
        "<p id=\"count\">{} session(s) on this page, newest first</p><table id=\"sessions\"><thead><tr><th>Session</th><th>User</th><th>Host</th><th>Start (UTC)</th><th>Duration</th><th>Sealed</th><th>Integrity</th><th>Findings</th></tr></thead><tbody>",
        form.shown
    );
    for s in rows {
        let _ = write!(
            o,
            "<tr><td><a class=\"session\" href=\"/sessions/{id}\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"findings\">{}</td></tr>",
            esc(&s.user),
            esc(&s.host),
            rfc3339(s.start_time_ns),
            human_duration(s.duration_ns),
            if s.sealed { "yes" } else { "no" },
            esc(&s.integrity),
            esc(&s.findings().join(", ")),
            id = esc(&s.id),
        );
    }
    o.push_str("</tbody></table>");
    o.push_str(&pager(form));
    o
}

fn pager(form: &ListForm<'_>) -> String {
    let link = |p: usize| {
        let mut q: Vec<String> = form
            .params
            .iter()
            .map(|(k, v)| format!("{k}={}", url_enc(v)))
            .collect();
        q.push(format!("page={p}"));
        q.push(format!("per_page={}", form.per_page));
        format!("/?{}", q.join("&amp;"))
    };
    let mut o = format!("<nav id=\"pages\">Page {}", form.page);
    if form.page > 1 {
        let _ = write!(
            o,
            " <a rel=\"prev\" href=\"{}\">Previous</a>",
            link(form.page - 1)
        );
    }
    if form.more {
        let _ = write!(
            o,
            " <a rel=\"next\" href=\"{}\">Next</a>",
            link(form.page + 1)
        );
    }
    o.push_str("</nav>");
    o
}

/// Search hits, each opening the player at its moment.
pub fn hits(query: &str, hits: &[Hit]) -> String {
    let mut o = format!(
        "<h1>Search</h1><p id=\"count\">{} hit(s) for <q>{}</q></p><ol id=\"hits\">",
        hits.len(),
        esc(query)
    );
    for h in hits {
        let secs = h.offset_ns as f64 / 1e9;
        let _ = write!(
            o,
            "<li><a class=\"hit\" href=\"/sessions/{id}?t={secs}\">{} · {}@{} · {}</a><pre class=\"snippet\">{}</pre></li>",
            esc(&h.command),
            esc(&h.user),
            esc(&h.host),
            rfc3339(h.time_ns),
            esc(&h.snippet),
            id = esc(&h.session),
        );
    }
    o.push_str("</ol>");
    o
}

/// The player page of a session: the player and its commands, or whom it is sealed for.
pub fn player(opened: &Opened, start: f64) -> String {
    let s = &opened.summary;
    let mut o = format!(
        "<h1>Session <code id=\"session-id\">{}</code></h1><p id=\"meta\">{}@{} · {} · {} · integrity {}</p>",
        esc(&s.id),
        esc(&s.user),
        esc(&s.host),
        rfc3339(s.start_time_ns),
        human_duration(s.duration_ns),
        esc(&s.integrity)
    );
    match &opened.content {
        Content::Sealed { sealed_for } => {
            let _ = write!(
                o,
                "<p id=\"sealed\">Session {} is sealed for {}; this server was not started with an identity that opens it (replay serve --identity FILE, or --kms).</p>",
                esc(&s.id),
                esc(sealed_for)
            );
        }
        Content::Clear { commands, cast } => {
            // Long sessions play segmented: the player fetches what the playhead needs.
            let segmented = if cast.len() > crate::segments::SEGMENTED_ABOVE_BYTES {
                format!(
                    " data-segments=\"/api/sessions/{}/cast/segments\"",
                    esc(&s.id)
                )
            } else {
                String::new()
            };
            let _ = write!(
                o,
                "<div id=\"layout\"><div id=\"player\" data-cast=\"/api/sessions/{id}/cast\"{segmented} data-start=\"{start}\"></div><aside><h2>Commands</h2>{}<button id=\"next-command\" type=\"button\">Next command</button></aside></div>",
                command_list(&s.id, commands),
                id = esc(&s.id)
            );
        }
    }
    o
}

fn command_list(id: &str, commands: &[CommandRow]) -> String {
    let mut o = String::from("<ol id=\"commands\">");
    for c in commands {
        let _ = write!(
            o,
            "<li><a class=\"command\" href=\"/sessions/{id}?t={t}\" data-offset=\"{t}\">{}</a></li>",
            esc(&c.command),
            id = esc(id),
            t = c.offset,
        );
    }
    o.push_str("</ol>");
    o
}

/// The report's filter form, above the report.
pub fn report_form(params: &[(&str, &str)]) -> String {
    let value = |k: &str| {
        params
            .iter()
            .find(|(n, _)| *n == k)
            .map_or(String::new(), |(_, v)| esc(v))
    };
    let mut o = String::from("<form id=\"report-filters\" action=\"/report\" method=\"get\">");
    for name in ["since", "until", "user", "host"] {
        let _ = write!(
            o,
            "<label>{name} <input name=\"{name}\" value=\"{}\"></label>",
            value(name)
        );
    }
    o.push_str("<button type=\"submit\">Report</button></form>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_quotes_and_controls() {
        assert_eq!(
            esc("<a href=\"x\">'&"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
        assert!(!esc("a\u{1b}[31mb").contains('\u{1b}'));
        assert_eq!(url_enc("a b&c=é"), "a%20b%26c%3D%C3%A9");
    }
}
