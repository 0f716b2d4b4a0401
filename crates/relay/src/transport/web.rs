//! The visitor's chat page (`/`, with `call.js` for screen sharing), the
//! embeddable widget (`/widget.js`) and the agents' assist page
//! (`/assist`): plain HTML, CSS and JavaScript compiled into the binary, no
//! build step.

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
const CALL_JS: &str = include_str!("../../web/call.js");
const ASSIST_HTML: &str = include_str!("../../web/assist.html");
const ASSIST_JS: &str = include_str!("../../web/assist.js");

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
        .route(
            "/call.js",
            get(|| asset("text/javascript; charset=utf-8", CALL_JS)),
        )
        .route("/assist", get(assist))
        .route(
            "/assist.js",
            get(|| asset("text/javascript; charset=utf-8", ASSIST_JS)),
        )
}

/// The agents' assist page: the relay's own scripts and sockets only,
/// framed by nobody, and its one-time code never sent on as a referrer.
async fn assist() -> Response {
    let csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
               media-src 'self' blob: mediastream:; base-uri 'none'; form-action 'none'; \
               frame-ancestors 'none'";
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CONTENT_SECURITY_POLICY, csp),
        ],
        ASSIST_HTML,
    )
        .into_response()
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
