//! The visitor's chat page (`/`) and the embeddable widget (`/widget.js`):
//! plain HTML, CSS and JavaScript compiled into the binary, no build step.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;

const INDEX_HTML: &str = include_str!("../../web/index.html");
const CHAT_JS: &str = include_str!("../../web/chat.js");
const CHAT_CSS: &str = include_str!("../../web/chat.css");
const FILES_JS: &str = include_str!("../../web/files.js");
const WIDGET_JS: &str = include_str!("../../web/widget.js");

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route(
            "/chat.js",
            get(|| asset("text/javascript; charset=utf-8", CHAT_JS)),
        )
        .route(
            "/files.js",
            get(|| asset("text/javascript; charset=utf-8", FILES_JS)),
        )
        .route(
            "/chat.css",
            get(|| asset("text/css; charset=utf-8", CHAT_CSS)),
        )
        .route(
            "/widget.js",
            get(|| asset("text/javascript; charset=utf-8", WIDGET_JS)),
        )
}

/// The chat page. Its CSP allows nothing but the relay's own scripts, styles
/// and sockets, and lets only allowed origins frame it (for the widget).
async fn index(State(state): State<AppState>) -> Response {
    let mut ancestors = String::from("'self'");
    for origin in &state.config.allowed_origins {
        // Origins come from the operator's config; keep CSP syntax intact anyway.
        if origin
            .chars()
            .all(|c| c.is_ascii_graphic() && c != ';' && c != ',')
        {
            ancestors.push(' ');
            ancestors.push_str(origin.trim_end_matches('/'));
        }
    }
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors {ancestors}"
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "strict-origin-when-cross-origin"),
        ],
        [(header::CONTENT_SECURITY_POLICY, csp)],
        INDEX_HTML,
    )
        .into_response()
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Revalidate, so that upgrading the relay upgrades every page.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}
