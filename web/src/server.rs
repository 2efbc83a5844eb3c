//! The router, its shared state, the security headers every answer carries, and the
//! [`Auth`] extractor that every handler but the login page and static files takes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::auth::{AuthConfig, Caller};
use crate::backend::Backend;
use crate::sessions::{RateLimiter, SessionStore, cookie_name, cookie_value};
use crate::{handlers, login};

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

/// The whole application.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/", get(handlers::list_page))
        .route("/search", get(handlers::search_page))
        .route("/sessions/{id}", get(handlers::player_page))
        .route("/report", get(handlers::report_page))
        .route("/api/sessions", get(handlers::api_list))
        .route("/api/sessions/{id}", get(handlers::api_session))
        .route("/api/sessions/{id}/cast", get(handlers::api_cast))
        .route(
            "/api/sessions/{id}/cast/segments",
            get(handlers::api_segment_index),
        )
        .route(
            "/api/sessions/{id}/cast/segments/{n}",
            get(handlers::api_segment),
        )
        .route("/api/sessions/{id}/commands", get(handlers::api_commands))
        .route("/api/search", get(handlers::api_search))
        .route("/static/{*file}", get(crate::assets::serve))
        .fallback(handlers::not_found)
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// Adds the security headers to every answer, and `Cache-Control: no-store` to all but
/// static files. A handler that set its own CSP (the report, whose one inline style
/// sheet is allowed by its hash) keeps it.
async fn security_headers(req: Request, next: Next) -> Response {
    let is_static = req.uri().path().starts_with("/static/");
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        // Not no-referrer: with it browsers send `Origin: null` on form POSTs, which the
        // login's origin check must refuse. same-origin gives other sites nothing.
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !is_static {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

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
