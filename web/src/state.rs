//! What every handler is given: the shared state, and who is asking (the [`Auth`]
//! extractor that every handler but the login page and static files takes, the client's
//! address, its cookies). Kept apart from the router, which names the handlers, so that
//! the handlers depend on this and the router on them, never back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::auth::{AuthConfig, Caller};
use crate::backend::Backend;
use crate::sessions::{RateLimiter, SessionStore, cookie_name, cookie_value};

/// The Content-Security-Policy of every answer: nothing inline, nothing from elsewhere.
pub const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What every handler shares.
pub struct AppState {
    /// The store.
    pub backend: Arc<dyn Backend>,
    /// Users, tokens, roles.
    pub auth: AuthConfig,
    /// Logged-in browsers.
    pub sessions: SessionStore,
    /// Failed logins.
    pub limiter: RateLimiter,
    /// Served over TLS (cookies are then Secure).
    pub tls: bool,
    /// Record reads in the access log (off: `--no-access-log`).
    pub access_log: bool,
    /// (caller, session) → when a segmented play was last recorded in the access log, so
    /// that a segment fetched without its index is logged too, but not every segment.
    pub plays: std::sync::Mutex<std::collections::HashMap<(String, String), std::time::Instant>>,
}

impl AppState {
    /// State with the default limits: sessions last 8 hours, 5 failed logins per minute
    /// per user and per address.
    pub fn new(
        backend: Arc<dyn Backend>,
        auth: AuthConfig,
        tls: bool,
        access_log: bool,
    ) -> AppState {
        AppState {
            backend,
            auth,
            sessions: SessionStore::new(Duration::from_secs(8 * 3600)),
            limiter: RateLimiter::new(5, Duration::from_secs(60)),
            tls,
            access_log,
            plays: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }
}

/// Shared state as handlers take it.
pub type Shared = Arc<AppState>;

/// An authenticated caller: by `Authorization: Bearer TOKEN`, or by the session cookie.
/// Without either, pages redirect to the login page and the API answers 401.
pub struct Auth {
    /// Who.
    pub caller: Caller,
    /// The CSRF token of the browser session (none for a token).
    pub csrf: Option<String>,
    /// Where the request came from.
    pub addr: SocketAddr,
}

/// The client's address (the TCP peer).
pub fn peer(parts: &Parts) -> SocketAddr {
    let plain = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let tls = || {
        parts
            .extensions
            .get::<ConnectInfo<crate::tls::TlsPeer>>()
            .map(|c| c.0.0)
    };
    plain
        .or_else(tls)
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
}

/// The client's address, as an extractor.
pub struct ClientAddr(pub SocketAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<ClientAddr, Self::Rejection> {
        Ok(ClientAddr(peer(parts)))
    }
}

impl FromRequestParts<Shared> for Auth {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Auth, Response> {
        let addr = peer(parts);
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            return match token.and_then(|t| state.auth.check_token(t)) {
                Some(caller) => Ok(Auth {
                    caller,
                    csrf: None,
                    addr,
                }),
                None => Err(unauthorized()),
            };
        }
        let session =
            cookie(&parts.headers, cookie_name(state.tls)).and_then(|id| state.sessions.get(&id));
        match session {
            Some(s) => Ok(Auth {
                caller: s.caller,
                csrf: Some(s.csrf),
                addr,
            }),
            None if parts.uri.path().starts_with("/api/") => Err(unauthorized()),
            None => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_string();
                let to = format!("/login?next={}", crate::html::url_enc(&next));
                Err(Redirect::to(&to).into_response())
            }
        }
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| cookie_value(v, name).map(str::to_string))
}

fn unauthorized() -> Response {
    let mut res = (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({"error": "log in, or send Authorization: Bearer TOKEN"})),
    )
        .into_response();
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"auditty\""),
    );
    res
}
