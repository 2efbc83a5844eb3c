//! The pages and the JSON API. Every handler takes an [`Auth`], reaches the store only
//! through [`Scoped`], and records what it shows in the access log before showing it.
//! A session that is missing and one the caller may not see get the same 404.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use schemas::SessionId;
use search::index::{Hit, SearchQuery};
use serde::Deserialize;
use serde_json::json;

use crate::authz::Scoped;
use crate::backend::{Content, ListFilter, Opened, ReportFilter, SessionSummary};
use crate::html::{self, Viewer};
use crate::state::{Auth, Shared};

/// The one answer for a session that is not there or not the caller's to see.
const NOT_FOUND: &str = "not found";
/// Sessions per page unless asked otherwise, and at most.
const PER_PAGE: usize = 50;
const PER_PAGE_MAX: usize = 500;
/// Hits per search unless asked otherwise, and at most.
const HITS: usize = 50;
const HITS_MAX: usize = 500;

/// A failed request, as the answer to give.
pub struct Fail(Box<Response>);

impl Fail {
    fn new(r: Response) -> Fail {
        Fail(Box::new(r))
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        *self.0
    }
}

fn not_found_response(api: bool) -> Response {
    if api {
        (StatusCode::NOT_FOUND, Json(json!({"error": NOT_FOUND}))).into_response()
    } else {
        let body = html::page("Not found", None, false, "<h1>Not found</h1>");
        (StatusCode::NOT_FOUND, Html(body)).into_response()
    }
}

fn bad_request(api: bool, msg: &str) -> Fail {
    Fail::new(if api {
        (StatusCode::BAD_REQUEST, Json(json!({"error": msg}))).into_response()
    } else {
        let body = html::page(
            "Bad request",
            None,
            false,
            &format!("<p class=\"error\">{}</p>", html::esc(msg)),
        );
        (StatusCode::BAD_REQUEST, Html(body)).into_response()
    })
}

fn internal(e: &anyhow::Error) -> Fail {
    // The reason goes to the server's log only: it may name objects or sessions.
    tracing::error!(error = format!("{e:#}"), "A web request failed.");
    Fail::new(
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; see the server's log",
        )
            .into_response(),
    )
}

/// Any path that is not a route: 404 once logged in (the login page before).
pub async fn not_found(_auth: Auth, uri: axum::http::Uri) -> Response {
    not_found_response(uri.path().starts_with("/api/"))
}

/// A full, hyphenated session id; anything else (prefixes, other spellings) is not one.
fn parse_id(text: &str) -> Option<SessionId> {
    let id: SessionId = text.parse().ok()?;
    (text.len() == 36 && id.to_string() == text.to_ascii_lowercase()).then_some(id)
}

/// Runs `f` on the blocking pool with the backend as `auth`'s caller sees it.
async fn scoped<T: Send + 'static>(
    state: &Shared,
    auth: &Auth,
    f: impl FnOnce(&Scoped<'_>) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, Fail> {
    let backend = Arc::clone(&state.backend);
    let caller = auth.caller.clone();
    tokio::task::spawn_blocking(move || f(&Scoped::new(&backend, &caller)))
        .await
        .map_err(|e| internal(&anyhow::anyhow!("task failed: {e}")))?
        .map_err(|e| classify(&e))
}

/// The answer to a failed backend call: a bad query or a missing index say so (neither
/// tells anything of a session); anything else is an internal error.
fn classify(e: &anyhow::Error) -> Fail {
    use search::index::IndexError;
    match e.downcast_ref::<IndexError>() {
        Some(IndexError::Query(m)) => Fail::new(
            (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("bad query: {m}")})),
            )
                .into_response(),
        ),
        Some(IndexError::Missing { .. } | IndexError::Outdated { .. }) => Fail::new(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "no search index: run `replay index` on the server"})),
            )
                .into_response(),
        ),
        _ => internal(e),
    }
}

/// Records an access event (who, from where, what) before anything is shown; fails
/// closed.
async fn record(
    state: &Shared,
    auth: &Auth,
    action: &str,
    sessions: Vec<String>,
    detail: &str,
) -> Result<(), Fail> {
    if !state.access_log {
        return Ok(());
    }
    let access = review::Access {
        user: auth.caller.name.clone(),
        action: action.to_string(),
        sessions,
        detail: format!("web from {}: {detail}", auth.addr),
        time_ns: schemas::time::now_ns(),
        host: review::host_name(),
        key: String::new(),
    };
    let backend = Arc::clone(&state.backend);
    let done = tokio::task::spawn_blocking(move || review::record_access(backend.store(), &access))
        .await
        .map_err(|e| anyhow::anyhow!("task failed: {e}"))
        .and_then(|r| r.map_err(anyhow::Error::new));
    done.map_err(|e| internal(&e.context("cannot record the access event, so nothing is shown")))?;
    Ok(())
}

fn viewer(auth: &Auth) -> Viewer<'_> {
    Viewer {
        name: &auth.caller.name,
        csrf: auth.csrf.as_deref(),
    }
}

/// Filters and paging of a listing.
#[derive(Deserialize, Default, Clone)]
pub struct ListParams {
    user: Option<String>,
    host: Option<String>,
    since: Option<String>,
    until: Option<String>,
    sealed: Option<String>,
    integrity: Option<String>,
    flagged: Option<String>,
    page: Option<usize>,
    per_page: Option<usize>,
}

impl ListParams {
    fn given(&self) -> Vec<(&'static str, &str)> {
        [
            ("user", &self.user),
            ("host", &self.host),
            ("since", &self.since),
            ("until", &self.until),
            ("sealed", &self.sealed),
            ("integrity", &self.integrity),
            ("flagged", &self.flagged),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().filter(|v| !v.is_empty()).map(|v| (k, v)))
        .collect()
    }

    fn detail(&self) -> String {
        let given: Vec<String> = self
            .given()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("page={} {}", self.page.unwrap_or(1), given.join(" "))
    }
}

fn nonempty(v: &Option<String>) -> Option<String> {
    v.clone().filter(|s| !s.trim().is_empty())
}

fn time_param(
    state: &Shared,
    name: &str,
    v: &Option<String>,
    end: bool,
    api: bool,
) -> Result<Option<i64>, Fail> {
    match nonempty(v) {
        None => Ok(None),
        Some(t) => state
            .backend
            .parse_time(t.trim(), end)
            .map(Some)
            .ok_or_else(|| {
                bad_request(
                    api,
                    &format!(
                        "{name}: not a time (RFC 3339, e.g. 2026-11-27T10:00:00Z, or a UTC date)"
                    ),
                )
            }),
    }
}

/// The listing a page or API call asked for: (rows, more, page, per_page).
async fn listing(
    state: &Shared,
    auth: &Auth,
    p: &ListParams,
    api: bool,
) -> Result<(Vec<SessionSummary>, bool, usize, usize), Fail> {
    let filter = ListFilter {
        user: nonempty(&p.user),
        host: nonempty(&p.host),
        since_ns: time_param(state, "since", &p.since, false, api)?,
        until_ns: time_param(state, "until", &p.until, true, api)?,
        limit: None,
    };
    let sealed = match nonempty(&p.sealed).as_deref() {
        None => None,
        Some("yes" | "true" | "1") => Some(true),
        Some("no" | "false" | "0") => Some(false),
        Some(_) => return Err(bad_request(api, "sealed: yes or no")),
    };
    // What the built-in rules flag was computed by `replay index` and stored in each
    // listing, so filtering costs no more than the other filters. A listing without it
    // (no index) matches neither value.
    let flagged = match nonempty(&p.flagged).as_deref() {
        None => None,
        Some("yes" | "true" | "1") => Some(true),
        Some("no" | "false" | "0") => Some(false),
        Some(_) => return Err(bad_request(api, "flagged: yes or no")),
    };
    let integrity = nonempty(&p.integrity);
    let page = p.page.unwrap_or(1).max(1);
    let per_page = p.per_page.unwrap_or(PER_PAGE).clamp(1, PER_PAGE_MAX);
    let (rows, more) = scoped(state, auth, move |s| {
        let keep = |x: &SessionSummary| {
            sealed.is_none_or(|v| x.sealed == v)
                && integrity.as_deref().is_none_or(|i| x.integrity == i)
                && flagged.is_none_or(|v| x.knows_findings() && x.findings().is_empty() != v)
        };
        s.list_page(&filter, &keep, page - 1, per_page)
    })
    .await?;
    let ids = rows.iter().map(|r| r.id.clone()).collect();
    record(state, auth, "list", ids, &p.detail()).await?;
    Ok((rows, more, page, per_page))
}

/// `GET /`: the session list.
pub async fn list_page(
    State(state): State<Shared>,
    auth: Auth,
    Query(p): Query<ListParams>,
) -> Result<Response, Fail> {
    let (rows, more, page, per_page) = listing(&state, &auth, &p, false).await?;
    let form = html::ListForm {
        params: p.given(),
        page,
        per_page,
        more,
        shown: rows.len(),
    };
    let body = html::list(&rows, &form);
    Ok(Html(html::page("Sessions", Some(&viewer(&auth)), false, &body)).into_response())
}

/// `GET /api/sessions`.
pub async fn api_list(
    State(state): State<Shared>,
    auth: Auth,
    Query(p): Query<ListParams>,
) -> Result<Response, Fail> {
    let (rows, more, page, per_page) = listing(&state, &auth, &p, true).await?;
    let sessions: Vec<&serde_json::Value> = rows.iter().map(|r| &r.listing).collect();
    Ok(
        Json(json!({"page": page, "per_page": per_page, "more": more, "sessions": sessions}))
            .into_response(),
    )
}

/// `?q=` and `?limit=` of a search.
#[derive(Deserialize, Default)]
pub struct SearchParams {
    q: Option<String>,
    limit: Option<usize>,
}

async fn searching(
    state: &Shared,
    auth: &Auth,
    p: &SearchParams,
) -> Result<(String, Vec<Hit>), Fail> {
    let text = p.q.clone().unwrap_or_default();
    if text.trim().is_empty() {
        return Ok((text, Vec::new()));
    }
    let q = SearchQuery {
        text: text.clone(),
        limit: p.limit.unwrap_or(HITS).clamp(1, HITS_MAX),
        ..Default::default()
    };
    let hits = scoped(state, auth, move |s| s.search(&q)).await?;
    let ids = Scoped::ids(hits.iter().map(|h| h.session.clone()));
    record(state, auth, "search", ids, &text).await?;
    Ok((text, hits))
}

/// `GET /search?q=`.
pub async fn search_page(
    State(state): State<Shared>,
    auth: Auth,
    Query(p): Query<SearchParams>,
) -> Result<Response, Fail> {
    let (text, hits) = searching(&state, &auth, &p).await?;
    let body = html::hits(&text, &hits);
    Ok(Html(html::page("Search", Some(&viewer(&auth)), false, &body)).into_response())
}

/// `GET /api/search?q=`.
pub async fn api_search(
    State(state): State<Shared>,
    auth: Auth,
    Query(p): Query<SearchParams>,
) -> Result<Response, Fail> {
    let (_, hits) = searching(&state, &auth, &p).await?;
    let hits: Vec<serde_json::Value> = hits
        .iter()
        .map(|h| {
            json!({
                "id": h.session, "user": h.user, "host": h.host,
                "time": schemas::time::rfc3339(h.time_ns), "offset_ns": h.offset_ns,
                "offset": h.offset_ns as f64 / 1e9, "index": h.index, "command": h.command,
                "exit_status": h.exit_status, "snippet": h.snippet,
            })
        })
        .collect();
    Ok(Json(json!({"hits": hits})).into_response())
}

/// Opens session `id` for the caller, or the 404 of a missing session.
async fn open(state: &Shared, auth: &Auth, id: &str, api: bool) -> Result<Opened, Fail> {
    let Some(id) = parse_id(id) else {
        return Err(Fail::new(not_found_response(api)));
    };
    scoped(state, auth, move |s| s.open(id))
        .await?
        .ok_or_else(|| Fail::new(not_found_response(api)))
}

/// `?t=` of the player page.
#[derive(Deserialize, Default)]
pub struct PlayerParams {
    t: Option<f64>,
}

/// `GET /sessions/{id}`: the player and the commands.
pub async fn player_page(
    State(state): State<Shared>,
    auth: Auth,
    Path(id): Path<String>,
    Query(p): Query<PlayerParams>,
) -> Result<Response, Fail> {
    let opened = open(&state, &auth, &id, false).await?;
    record(
        &state,
        &auth,
        "commands",
        vec![opened.summary.id.clone()],
        "player page",
    )
    .await?;
    let t = p.t.filter(|t| t.is_finite() && *t >= 0.0).unwrap_or(0.0);
    let body = html::player(&opened, t);
    let title = format!("Session {}", opened.summary.id);
    Ok(Html(html::page(&title, Some(&viewer(&auth)), true, &body)).into_response())
}

fn sealed_response(sealed_for: &str) -> Response {
    let msg = format!("sealed for {sealed_for}; the server has no identity that opens it");
    (
        StatusCode::FORBIDDEN,
        Json(json!({"error": msg, "sealed_for": sealed_for})),
    )
        .into_response()
}

/// `?download=` of the cast.
#[derive(Deserialize, Default)]
pub struct CastParams {
    download: Option<String>,
}

/// `GET /api/sessions/{id}/cast`: asciicast v2 (`?download=1`: as an attachment,
/// recorded as an export rather than a play).
pub async fn api_cast(
    State(state): State<Shared>,
    auth: Auth,
    Path(id): Path<String>,
    Query(p): Query<CastParams>,
) -> Result<Response, Fail> {
    let opened = open(&state, &auth, &id, true).await?;
    let cast = match opened.content {
        Content::Sealed { sealed_for } => return Ok(sealed_response(&sealed_for)),
        Content::Clear { cast, .. } => cast,
    };
    let download = p.download.is_some();
    let (action, detail) = if download {
        ("export", "asciicast")
    } else {
        ("play", "")
    };
    record(
        &state,
        &auth,
        action,
        vec![opened.summary.id.clone()],
        detail,
    )
    .await?;
    let mut res = cast.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-asciicast"),
    );
    if download {
        let name = format!("attachment; filename=\"{}.cast\"", opened.summary.id);
        if let Ok(v) = HeaderValue::from_str(&name) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(res)
}

/// The player's segments of a session, authorized like every other read.
async fn segments(
    state: &Shared,
    auth: &Auth,
    id: &str,
) -> Result<Arc<crate::segments::Segmented>, Fail> {
    let Some(sid) = parse_id(id) else {
        return Err(Fail::new(not_found_response(true)));
    };
    let got = scoped(state, auth, move |s| s.segments(sid))
        .await?
        .ok_or_else(|| Fail::new(not_found_response(true)))?;
    let segments = match got.segments {
        Ok(s) => s,
        Err(sealed_for) => return Err(Fail::new(sealed_response(&sealed_for))),
    };
    // One access event per caller and session a minute, whichever request comes first:
    // the index normally, a segment if someone fetches one without it.
    let key = (auth.caller.name.clone(), got.summary.id.clone());
    let due = {
        let mut plays = state.plays.lock().unwrap_or_else(|p| p.into_inner());
        plays.retain(|_, at| at.elapsed() < crate::cache::TTL);
        match plays.get(&key) {
            Some(_) => false,
            None => {
                plays.insert(key, std::time::Instant::now());
                true
            }
        }
    };
    if due
        && let Err(e) = record(
            state,
            auth,
            "play",
            vec![got.summary.id.clone()],
            "segmented",
        )
        .await
    {
        // Not shown unless recorded: the next request tries again.
        let mut plays = state.plays.lock().unwrap_or_else(|p| p.into_inner());
        plays.remove(&(auth.caller.name.clone(), got.summary.id.clone()));
        return Err(e);
    }
    Ok(segments)
}

fn json_bytes(bytes: Vec<u8>) -> Response {
    let mut res = bytes.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// `GET /api/sessions/{id}/cast/segments`: the index of the segmented recording
/// asciinema-player plays (web/src/segments.rs).
pub async fn api_segment_index(
    State(state): State<Shared>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, Fail> {
    let s = segments(&state, &auth, &id).await?;
    Ok(json_bytes(s.index.clone()))
}

/// `GET /api/sessions/{id}/cast/segments/{n}`: one segment.
pub async fn api_segment(
    State(state): State<Shared>,
    auth: Auth,
    Path((id, n)): Path<(String, String)>,
) -> Result<Response, Fail> {
    let s = segments(&state, &auth, &id).await?;
    let Some(n) = n.parse::<usize>().ok().filter(|n| *n < s.len()) else {
        return Err(Fail::new(not_found_response(true)));
    };
    // Its snapshot may render the output of every segment before it: not on the runtime.
    let segment = tokio::task::spawn_blocking(move || s.segment(n))
        .await
        .ok()
        .flatten()
        .ok_or_else(|| Fail::new(not_found_response(true)))?;
    Ok(json_bytes(segment))
}

fn commands_json(opened: &Opened) -> serde_json::Value {
    match &opened.content {
        Content::Clear { commands, .. } => json!(commands),
        Content::Sealed { .. } => serde_json::Value::Null,
    }
}

/// `GET /api/sessions/{id}`: metadata, integrity and commands with offsets.
pub async fn api_session(
    State(state): State<Shared>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, Fail> {
    let opened = open(&state, &auth, &id, true).await?;
    record(
        &state,
        &auth,
        "commands",
        vec![opened.summary.id.clone()],
        "api",
    )
    .await?;
    let sealed_for = match &opened.content {
        Content::Sealed { sealed_for } => Some(sealed_for.clone()),
        Content::Clear { .. } => None,
    };
    Ok(Json(json!({
        "session": opened.summary.listing,
        "integrity": opened.summary.integrity,
        "opened": sealed_for.is_none(),
        "sealed_for": sealed_for,
        "commands": commands_json(&opened),
        "cast": format!("/api/sessions/{}/cast", opened.summary.id),
    }))
    .into_response())
}

/// `GET /api/sessions/{id}/commands`.
pub async fn api_commands(
    State(state): State<Shared>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, Fail> {
    let opened = open(&state, &auth, &id, true).await?;
    if let Content::Sealed { sealed_for } = &opened.content {
        return Ok(sealed_response(sealed_for));
    }
    record(
        &state,
        &auth,
        "commands",
        vec![opened.summary.id.clone()],
        "api",
    )
    .await?;
    Ok(Json(json!({"commands": commands_json(&opened)})).into_response())
}

/// Filters of the report page.
#[derive(Deserialize, Default)]
pub struct ReportParams {
    since: Option<String>,
    until: Option<String>,
    user: Option<String>,
    host: Option<String>,
    flagged: Option<String>,
}

/// `GET /report`: the report over the caller's sessions only.
pub async fn report_page(
    State(state): State<Shared>,
    auth: Auth,
    Query(p): Query<ReportParams>,
) -> Result<Response, Fail> {
    let filter = ReportFilter {
        since_ns: time_param(&state, "since", &p.since, false, false)?,
        until_ns: time_param(&state, "until", &p.until, true, false)?,
        user: nonempty(&p.user),
        host: nonempty(&p.host),
        flagged: nonempty(&p.flagged).is_some(),
    };
    let (report, ids) = scoped(&state, &auth, move |s| s.report(&filter)).await?;
    let given: Vec<(&str, &str)> = [
        ("since", &p.since),
        ("until", &p.until),
        ("user", &p.user),
        ("host", &p.host),
        ("flagged", &p.flagged),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_deref().filter(|v| !v.is_empty()).map(|v| (k, v)))
    .collect();
    let detail: Vec<String> = given.iter().map(|(k, v)| format!("{k}={v}")).collect();
    record(
        &state,
        &auth,
        "report",
        ids,
        &format!("format=html {}", detail.join(" ")),
    )
    .await?;
    Ok(crate::report_page::wrap(&report, &viewer(&auth), &given))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_full_ids_are_ids() {
        let id = "0191c2e4-7b1d-7c3e-9a55-1f0e2d3c4b5a";
        assert!(parse_id(id).is_some());
        assert!(parse_id(&id.to_uppercase()).is_some());
        assert!(parse_id("0191c2e4").is_none());
        assert!(parse_id("0191c2e47b1d7c3e9a551f0e2d3c4b5a").is_none());
        assert!(parse_id("..").is_none());
        assert!(parse_id(&format!("{{{id}}}")).is_none());
    }
}
