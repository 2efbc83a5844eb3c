//! `GET /login`, `POST /login`, `POST /logout`.
//!
//! The login form carries a CSRF token that is also set in a short-lived HttpOnly
//! cookie (`auditty_login`) and held by the server, single use: a login is accepted only
//! when the three agree. Failed logins are counted per user and per address; beyond the
//! limit, 429 with Retry-After, before the password is even checked.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::sessions::{clear_cookie, same, session_cookie};
use crate::state::{Auth, ClientAddr, Shared, cookie};

const LOGIN_COOKIE: &str = "auditty_login";

/// `?next=` of the login page.
#[derive(Deserialize, Default)]
pub struct Next {
    next: Option<String>,
}

/// Where to go after logging in: a local path only (never `//host` or a URL).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.into(),
        _ => "/".into(),
    }
}

fn login_page(
    state: &Shared,
    headers: &HeaderMap,
    next: &str,
    status: StatusCode,
    msg: Option<&str>,
) -> Response {
    // A browser that shows the form again (a second tab, or a redirect of its favicon
    // request while the form is open) keeps its live token: a new one would overwrite the
    // cookie and make the form already on screen fail.
    let token = cookie(headers, LOGIN_COOKIE)
        .filter(|t| state.sessions.login_form_token_live(t))
        .unwrap_or_else(|| state.sessions.login_form_token());
    let mut res = (status, Html(crate::html::login(&token, next, msg))).into_response();
    let cookie = format!(
        "{LOGIN_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600{}",
        if state.tls { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

/// `GET /login`: the form.
pub async fn form(
    State(state): State<Shared>,
    Query(q): Query<Next>,
    headers: HeaderMap,
) -> Response {
    let next = safe_next(q.next.as_deref());
    login_page(&state, &headers, &next, StatusCode::OK, None)
}

/// The login form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    user: String,
    password: String,
    csrf: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /login`: checks the CSRF token, the rate limit, then the password; on success
/// sets the session cookie and redirects (303) to `next` (the form's field, else
/// `?next=`; a local path only).
pub async fn submit(
    State(state): State<Shared>,
    ClientAddr(addr): ClientAddr,
    Query(q): Query<Next>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let from_cookie = cookie(&headers, LOGIN_COOKIE);
    let next = safe_next(
        f.next
            .as_deref()
            .filter(|n| !n.is_empty())
            .or(q.next.as_deref()),
    );
    let csrf_ok = from_cookie.is_some_and(|c| same(&c, &f.csrf))
        && state.sessions.take_login_form_token(&f.csrf);
    if !csrf_ok {
        return login_page(
            &state,
            &headers,
            &next,
            StatusCode::FORBIDDEN,
            Some("The form expired; log in again."),
        );
    }
    if let Some(wait) = state.limiter.blocked(&f.user, addr.ip()) {
        return too_many(wait.as_secs());
    }
    let checker = state.clone();
    let (user, password) = (f.user.clone(), f.password);
    let caller = tokio::task::spawn_blocking(move || checker.auth.check_password(&user, &password))
        .await
        .ok()
        .flatten();
    let Some(caller) = caller else {
        state.limiter.fail(&f.user, addr.ip());
        tracing::warn!(user = %f.user, %addr, "Failed web login.");
        return login_page(
            &state,
            &headers,
            &next,
            StatusCode::UNAUTHORIZED,
            Some("Wrong user name or password."),
        );
    };
    tracing::info!(user = %caller.name, %addr, "Web login.");
    let id = state.sessions.create(caller);
    let mut res = Redirect::to(&next).into_response();
    let h = res.headers_mut();
    for c in [
        session_cookie(&id, state.tls, state.sessions.ttl()),
        format!("{LOGIN_COOKIE}=; Path=/login; Max-Age=0"),
    ] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    res
}

fn too_many(secs: u64) -> Response {
    let mut res = (
        StatusCode::TOO_MANY_REQUESTS,
        "Too many failed logins; try again later.",
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

/// The logout form's fields.
#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /logout`: ends the browser session (CSRF token required).
pub async fn logout(
    State(state): State<Shared>,
    auth: Auth,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let session_id = cookie(&headers, crate::sessions::cookie_name(state.tls));
    if !auth.csrf.as_deref().is_some_and(|c| same(c, &f.csrf)) {
        return (StatusCode::FORBIDDEN, "bad CSRF token").into_response();
    }
    if let Some(id) = session_id {
        state.sessions.remove(&id);
    }
    let mut res = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&clear_cookie(state.tls)) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_a_local_path_only() {
        assert_eq!(safe_next(Some("/sessions/x?t=1")), "/sessions/x?t=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
