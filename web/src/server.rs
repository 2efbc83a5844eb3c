//! The router, and the security headers every answer carries.

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};

use crate::state::{CSP, Shared};
use crate::{handlers, login};

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
