//! Queries over the day indexes.

use std::ops::{Bound, Range};
use std::path::Path;

use store::ObjectStore;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, RangeQuery, RegexQuery, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::snippet::SnippetGenerator;
use tantivy::{Index, Order, Searcher, TantivyDocument, Term};

use super::{Fields, INDEX_VERSION, IndexError, Manifest, day_dir, store_objects};

/// Characters of output around the match a snippet shows.
const SNIPPET_CHARS: usize = 160;
/// Most words a prefix (`word*`) is expanded to for marking snippets.
const PREFIX_TERMS: usize = 64;

/// A search, as `replay search` takes it.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// tantivy query syntax over `cmd` and `output` (all terms required), plus `word*`
    /// for a prefix.
    pub text: String,
    /// Only this user (exact).
    pub user: Option<String>,
    /// Only this host (exact).
    pub host: Option<String>,
    /// Commands run at or after this wall time, UTC ns.
    pub since_ns: Option<i64>,
    /// Commands run at or before this wall time, UTC ns.
    pub until_ns: Option<i64>,
    /// Most hits returned.
    pub limit: usize,
}

/// A listing of sessions, as `replay ls` takes it.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only this user (exact).
    pub user: Option<String>,
    /// Only this host (exact).
    pub host: Option<String>,
    /// Sessions started at or after this time, UTC ns.
    pub since_ns: Option<i64>,
    /// Sessions started at or before this time, UTC ns.
    pub until_ns: Option<i64>,
    /// At most this many: the latest started.
    pub limit: Option<usize>,
}

/// One session listed from the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its start, UTC ns.
    pub start_ns: i64,
    /// Session id, hyphenated.
    pub session: String,
    /// The listing stored at index time ([`super::Hooks::listing`]).
    pub listing: String,
}

/// One command that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Session id, hyphenated.
    pub session: String,
    /// The session's user.
    pub user: String,
    /// The session's host.
    pub host: String,
    /// Wall time of the command, UTC ns.
    pub time_ns: i64,
    /// Offset of the command into the session.
    pub offset_ns: u64,
    /// Its index among the session's commands; `None` for output that no command
    /// precedes (`command` is then empty).
    pub index: Option<u64>,
    /// The command line.
    pub command: String,
    /// Exit status, if the shell reported it.
    pub exit_status: Option<i64>,
    /// A piece of the output (or of the command) around the match.
    pub snippet: String,
    /// Byte ranges of `snippet` that matched.
    pub highlighted: Vec<Range<usize>>,
}

/// The days (`YYYY-MM-DD`) a query bounded by `since`/`until` (UTC ns) opens: those
/// starting on or before `until` whose latest document is at or after `since`. Fails
/// with [`IndexError::Missing`] if there is no index in `dir`.
pub fn days_to_open(
    dir: &Path,
    since_ns: Option<i64>,
    until_ns: Option<i64>,
) -> Result<Vec<String>, IndexError> {
    let manifest = Manifest::load(dir)?.ok_or_else(|| IndexError::Missing {
        dir: dir.to_path_buf(),
    })?;
    if manifest.version < INDEX_VERSION {
        return Err(IndexError::Outdated {
            dir: dir.to_path_buf(),
        });
    }
    let last_day = until_ns.map(schemas::time::date);
    Ok(manifest
        .days
        .iter()
        .filter(|(day, latest)| {
            last_day.as_ref().is_none_or(|l| *day <= l) && since_ns.is_none_or(|s| **latest >= s)
        })
        .filter(|(day, _)| day_dir(dir, day).is_dir())
        .map(|(day, _)| day.clone())
        .collect())
}

/// How many objects the store holds that the index in `dir` has not taken in (a LIST of
/// the store, no reads).
pub fn stale_objects(store: &dyn ObjectStore, dir: &Path) -> Result<usize, IndexError> {
    let manifest = Manifest::load(dir)?.ok_or_else(|| IndexError::Missing {
        dir: dir.to_path_buf(),
    })?;
    Ok(store_objects(store)?
        .iter()
        .filter(|k| !manifest.objects.contains(*k))
        .count())
}

/// The commands matching `q`, newest first, at most `q.limit`.
pub fn search(dir: &Path, q: &SearchQuery) -> Result<Vec<Hit>, IndexError> {
    let mut hits = Vec::new();
    for day in days_to_open(dir, q.since_ns, q.until_ns)? {
        let index = Index::open_in_dir(day_dir(dir, &day))?;
        hits.extend(search_day(&index, q)?);
    }
    hits.sort_by(|a, b| b.time_ns.cmp(&a.time_ns).then(a.session.cmp(&b.session)));
    hits.truncate(q.limit);
    Ok(hits)
}

/// The sessions matching `q` from their session documents, oldest first (by start, then
/// id); with a limit, the latest `limit` of them. Only the days that can hold a start in
/// range are opened, and the store is not read.
pub fn list_sessions(dir: &Path, q: &ListQuery) -> Result<Vec<Listed>, IndexError> {
    let mut listed = Vec::new();
    for day in days_to_open(dir, q.since_ns, q.until_ns)? {
        let index = Index::open_in_dir(day_dir(dir, &day))?;
        listed.extend(list_day(&index, q)?);
    }
    listed.sort_by(|a, b| {
        a.start_ns
            .cmp(&b.start_ns)
            .then_with(|| a.session.cmp(&b.session))
    });
    if let Some(limit) = q.limit {
        listed.drain(..listed.len().saturating_sub(limit));
    }
    Ok(listed)
}

fn list_day(index: &Index, q: &ListQuery) -> Result<Vec<Listed>, IndexError> {
    let f = Fields::of(&index.schema())?;
    let mut clauses = vec![(Occur::Must, term_query(f.doc_type, "session"))];
    clauses.extend(filter_clauses(
        &f,
        q.user.as_deref(),
        q.host.as_deref(),
        q.since_ns,
        q.until_ns,
    ));
    let query = BooleanQuery::new(clauses);
    let searcher = index.reader()?.searcher();
    // Newest first so that a limit keeps the latest; all of them without one, counted
    // first so that the collector is sized by the sessions, not by every document.
    let n = match q.limit {
        Some(l) => l,
        None => searcher.search(&query, &Count)?,
    }
    .max(1);
    let top = TopDocs::with_limit(n).order_by_fast_field::<i64>("time", Order::Desc);
    let mut out = Vec::new();
    for (start_ns, addr) in searcher.search(&query, &top)? {
        let doc: TantivyDocument = searcher.doc(addr)?;
        let text = |field: Field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        // A session indexed without a listing (a caller that gave none) is left out.
        let Some(listing) = text(f.listing) else {
            continue;
        };
        out.push(Listed {
            start_ns,
            session: text(f.session).unwrap_or_default(),
            listing,
        });
    }
    Ok(out)
}

/// The `--user`, `--host` and time-range clauses shared by searches and listings.
fn filter_clauses(
    f: &Fields,
    user: Option<&str>,
    host: Option<&str>,
    since_ns: Option<i64>,
    until_ns: Option<i64>,
) -> Vec<(Occur, Box<dyn Query>)> {
    let mut clauses = Vec::new();
    if let Some(u) = user {
        clauses.push((Occur::Must, term_query(f.user, u)));
    }
    if let Some(h) = host {
        clauses.push((Occur::Must, term_query(f.host, h)));
    }
    if since_ns.is_some() || until_ns.is_some() {
        let bound = |t: Option<i64>| {
            t.map_or(Bound::Unbounded, |t| {
                Bound::Included(Term::from_field_i64(f.time, t))
            })
        };
        clauses.push((
            Occur::Must,
            Box::new(RangeQuery::new(bound(since_ns), bound(until_ns))) as Box<dyn Query>,
        ));
    }
    clauses
}

fn search_day(index: &Index, q: &SearchQuery) -> Result<Vec<Hit>, IndexError> {
    let f = Fields::of(&index.schema())?;
    let query = build_query(index, &f, q)?;
    let searcher = index.reader()?.searcher();
    let top = TopDocs::with_limit(q.limit.max(1)).order_by_fast_field::<i64>("time", Order::Desc);
    let found = searcher.search(&query, &top)?;
    // tantivy highlights the terms a query names, and a prefix's regex names none: the
    // snippets are made from the query and the words the prefixes stand for here.
    let (_, prefixes) = split_prefixes(&q.text);
    let mut marked: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Should, query.box_clone())];
    for (_, word) in &prefixes {
        for field in [f.cmd, f.output] {
            for term in prefix_terms(&searcher, field, word)? {
                marked.push((
                    Occur::Should,
                    Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)),
                ));
            }
        }
    }
    let marked = BooleanQuery::new(marked);
    let snippets = Snippets::new(&searcher, &marked, &f)?;
    let mut hits = Vec::with_capacity(found.len());
    for (_, addr) in found {
        let doc: TantivyDocument = searcher.doc(addr)?;
        hits.push(to_hit(&f, &doc, &snippets));
    }
    Ok(hits)
}

/// The words of `field` in this day's index that start with `prefix`, at most
/// [`PREFIX_TERMS`] of them (a short prefix stands for many words; enough to mark them).
fn prefix_terms(searcher: &Searcher, field: Field, prefix: &str) -> Result<Vec<Term>, IndexError> {
    let mut words = std::collections::BTreeSet::new();
    for segment in searcher.segment_readers() {
        let inverted = segment.inverted_index(field)?;
        let mut stream = inverted
            .terms()
            .range()
            .ge(prefix.as_bytes())
            .into_stream()
            .map_err(|e| IndexError::Tantivy(e.into()))?;
        while words.len() < PREFIX_TERMS && stream.advance() {
            let Some(word) = std::str::from_utf8(stream.key())
                .ok()
                .filter(|w| w.starts_with(prefix))
            else {
                break;
            };
            words.insert(word.to_string());
        }
    }
    Ok(words
        .iter()
        .map(|w| Term::from_field_text(field, w))
        .collect())
}

/// Snippet generators for the output and, when the match is in the command, the command.
struct Snippets {
    output: SnippetGenerator,
    cmd: SnippetGenerator,
}

impl Snippets {
    fn new(searcher: &Searcher, query: &dyn Query, f: &Fields) -> Result<Snippets, IndexError> {
        let mut output = SnippetGenerator::create(searcher, query, f.output)?;
        output.set_max_num_chars(SNIPPET_CHARS);
        let mut cmd = SnippetGenerator::create(searcher, query, f.cmd)?;
        cmd.set_max_num_chars(SNIPPET_CHARS);
        Ok(Snippets { output, cmd })
    }
}

fn to_hit(f: &Fields, doc: &TantivyDocument, snippets: &Snippets) -> Hit {
    let text = |field: Field| {
        doc.get_first(field)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let mut snippet = snippets.output.snippet_from_doc(doc);
    if snippet.highlighted().is_empty() {
        let in_cmd = snippets.cmd.snippet_from_doc(doc);
        if !in_cmd.highlighted().is_empty() {
            snippet = in_cmd;
        }
    }
    Hit {
        session: text(f.session),
        user: text(f.user),
        host: text(f.host),
        time_ns: doc.get_first(f.time).and_then(|v| v.as_i64()).unwrap_or(0),
        offset_ns: doc
            .get_first(f.offset)
            .and_then(|v| v.as_u64())
            .unwrap_or(0),
        index: doc.get_first(f.index).and_then(|v| v.as_u64()),
        command: text(f.cmd),
        exit_status: doc.get_first(f.exit_status).and_then(|v| v.as_i64()),
        snippet: snippet.fragment().to_string(),
        highlighted: snippet.highlighted().to_vec(),
    }
}

fn term_query(field: Field, text: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, text),
        IndexRecordOption::Basic,
    ))
}

fn build_query(index: &Index, f: &Fields, q: &SearchQuery) -> Result<Box<dyn Query>, IndexError> {
    let (rest, prefixes) = split_prefixes(&q.text);
    let mut clauses = vec![(Occur::Must, term_query(f.doc_type, "command"))];
    if !rest.trim().is_empty() {
        let mut parser = QueryParser::for_index(index, vec![f.cmd, f.output]);
        parser.set_conjunction_by_default();
        let parsed = parser
            .parse_query(&rest)
            .map_err(|e| IndexError::Query(e.to_string()))?;
        clauses.push((Occur::Must, parsed));
    }
    for (field, word) in prefixes {
        let fields = match field.as_deref() {
            Some("cmd") => vec![f.cmd],
            Some("output") => vec![f.output],
            _ => vec![f.cmd, f.output],
        };
        let mut any = Vec::new();
        for field in fields {
            let re = RegexQuery::from_pattern(&format!("{word}.*"), field)?;
            any.push((Occur::Should, Box::new(re) as Box<dyn Query>));
        }
        clauses.push((Occur::Must, Box::new(BooleanQuery::new(any))));
    }
    clauses.extend(filter_clauses(
        f,
        q.user.as_deref(),
        q.host.as_deref(),
        q.since_ns,
        q.until_ns,
    ));
    Ok(Box::new(BooleanQuery::new(clauses)))
}

/// Takes the `word*` and `cmd:word*`/`output:word*` terms (outside quotes) out of a query:
/// tantivy's parser has no term prefixes, so they become regex queries on the lowercased
/// word. Only letters, digits and `_` make a prefix word, which keeps the regex literal.
fn split_prefixes(text: &str) -> (String, Vec<(Option<String>, String)>) {
    let mut rest = String::new();
    let mut prefixes = Vec::new();
    for token in tokens(text) {
        let prefix = token.strip_suffix('*').and_then(|t| {
            let (field, word) = match t.split_once(':') {
                Some((field, word)) => (Some(field.to_string()), word),
                None => (None, t),
            };
            let ok = !word.is_empty() && word.chars().all(|c| c.is_alphanumeric() || c == '_');
            let field_ok = field.as_deref().is_none_or(|f| f == "cmd" || f == "output");
            (ok && field_ok).then(|| (field, word.to_lowercase()))
        });
        match prefix {
            Some(p) => prefixes.push(p),
            None => {
                rest.push_str(&token);
                rest.push(' ');
            }
        }
    }
    (rest, prefixes)
}

/// Whitespace-separated tokens, a quoted phrase (with what is glued to it) being one.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in text.chars() {
        if c == '"' {
            quoted = !quoted;
        }
        if c.is_whitespace() && !quoted {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_taken_out_of_the_query_outside_quotes() {
        let (rest, p) = split_prefixes(r#"user:alice Passw* "rm -rf*" cmd:ssh*"#);
        assert_eq!(rest, r#"user:alice "rm -rf*" "#);
        assert_eq!(
            p,
            vec![
                (None, "passw".to_string()),
                (Some("cmd".into()), "ssh".into())
            ]
        );
        let (rest, p) = split_prefixes("a.b* host:x*");
        assert_eq!(rest, "a.b* host:x* ");
        assert!(p.is_empty());
    }
}
