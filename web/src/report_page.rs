//! The report page: the report crate's self-contained HTML, with the site's header and
//! filter form added. Its one inline style sheet is allowed by its SHA-256 in this
//! answer's Content-Security-Policy (no `'unsafe-inline'`); its own meta policy, written
//! for a file opened from disk, is taken out so that `/static/` files load.

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::html::{self, Viewer};

/// The report page around `report` (a whole HTML document).
pub fn wrap(report: &str, viewer: &Viewer<'_>, params: &[(&str, &str)]) -> Response {
    let mut doc = strip_meta_csp(report);
    let style_hashes = inline_styles(&doc)
        .iter()
        .map(|s| {
            let d = Sha256::digest(s.as_bytes());
            format!(
                " 'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(d)
            )
        })
        .collect::<String>();
    let top = html::page("Report", Some(viewer), false, &html::report_form(params));
    // The header and form of our page, spliced in after the report's <body>.
    let header_part = between(&top, "<body>", "</main>").unwrap_or_default();
    doc = doc.replacen(
        "</head>",
        "<link rel=\"stylesheet\" href=\"/static/app.css\"></head>",
        1,
    );
    doc = doc.replacen("<body>", &format!("<body>{header_part}</main>"), 1);
    doc = doc.replacen(
        "</body>",
        "<script src=\"/static/app.js\"></script></body>",
        1,
    );
    let csp = crate::state::CSP.replace(
        "style-src 'self'",
        &format!("style-src 'self'{style_hashes}"),
    );
    let mut res = Html(doc).into_response();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    res
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let a = s.find(start)? + start.len();
    let b = s[a..].find(end)? + a;
    Some(&s[a..b])
}

fn strip_meta_csp(doc: &str) -> String {
    const META: &str = "<meta http-equiv=\"Content-Security-Policy\"";
    match doc.find(META) {
        Some(a) => match doc[a..].find('>') {
            Some(b) => format!("{}{}", &doc[..a], &doc[a + b + 1..]),
            None => doc.to_string(),
        },
        None => doc.to_string(),
    }
}

/// The contents of every `<style>` element.
fn inline_styles(doc: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(a) = rest.find("<style>") {
        let from = &rest[a + 7..];
        let Some(b) = from.find("</style>") else {
            break;
        };
        out.push(&from[..b]);
        rest = &from[b..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_keeps_its_style_by_hash_and_loses_its_meta_policy() {
        let doc = "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"x\"><style>b{}</style></head><body><p>r</p></body></html>";
        let v = Viewer {
            name: "alice",
            csrf: Some("t"),
        };
        let res = wrap(doc, &v, &[]);
        let csp = res.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains("style-src 'self' 'sha256-"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert!(!strip_meta_csp(doc).contains("http-equiv"));
        assert_eq!(inline_styles(doc), vec!["b{}"]);
    }
}
