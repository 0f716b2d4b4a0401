//! What a client is told when the relay refuses something: requests
//! checked before they reach the store, store errors as error frames, and
//! error frames as HTTP responses.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kefu_protocol::{ErrorCode, ErrorFrame};

use crate::frame::encode;
use crate::store::StoreError;
use crate::telemetry;

/// An error as an HTTP response: the status that fits, the frame as body.
pub(super) fn error_response(error: ErrorFrame) -> Response {
    telemetry::error_sent(error.code);
    let status = match error.code {
        ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let body = encode(&kefu_protocol::visitor::VisitorEvent::Error(error));
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.into_bytes(),
    )
        .into_response()
}

/// A request the router or an extractor refused before any handler ran (a
/// bad query string, a body past the hard limit, an unknown path or method)
/// as an error frame, so that every `/api/visitor/*` answer is one.
pub(super) fn refused(status: StatusCode, why: String) -> Response {
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::TooLarge,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        _ => ErrorCode::BadRequest,
    };
    let mut response = error_response(ErrorFrame::new(code, why));
    // Keep the precise status (405, 415…) where no code of ours has its own.
    *response.status_mut() = status;
    response
}

/// An extractor's rejection (axum's own plain-text answer) as an error frame.
pub(super) fn rejected(rejection: impl IntoResponse + std::fmt::Display) -> Response {
    let why = rejection.to_string();
    refused(rejection.into_response().status(), why)
}

/// The longest `client_id` accepted; it is an idempotency key, not content.
const MAX_CLIENT_ID: usize = 128;

/// Checks a `send` before it reaches the store: its text may be empty
/// only when it carries files.
pub(super) fn check_send(
    client_id: &str,
    text: &str,
    attachments: &[String],
    max_chars: usize,
) -> Result<(), ErrorFrame> {
    let refuse = |code, message: String| Err(ErrorFrame::new(code, message).with_ref(client_id));
    if client_id.is_empty() || client_id.len() > MAX_CLIENT_ID {
        return refuse(
            ErrorCode::BadRequest,
            format!("client_id must be 1 to {MAX_CLIENT_ID} bytes"),
        );
    }
    if text.trim().is_empty() && attachments.is_empty() {
        return refuse(ErrorCode::BadRequest, "text is empty".to_owned());
    }
    let most = kefu_protocol::files::MAX_ATTACHMENTS;
    if attachments.len() > most {
        return refuse(
            ErrorCode::TooLarge,
            format!("a message carries at most {most} files"),
        );
    }
    let chars = text.chars().count();
    if chars > max_chars {
        return refuse(
            ErrorCode::TooLarge,
            format!("text of {chars} characters exceeds the limit of {max_chars}"),
        );
    }
    Ok(())
}

/// What a client is told when the store refuses; internals stay in the log.
pub(super) fn store_error(error: StoreError, reference: &str) -> ErrorFrame {
    let (code, message) = match error {
        StoreError::NotFound(what) => (ErrorCode::NotFound, format!("{what} not found")),
        StoreError::Conflict(why) => (ErrorCode::Conflict, why),
        StoreError::Forbidden(why) => (ErrorCode::Forbidden, why.to_owned()),
        other => {
            tracing::error!(error = %other, "store failure");
            (
                ErrorCode::Internal,
                "the relay could not store this; retry later".to_owned(),
            )
        }
    };
    ErrorFrame::new(code, message).with_ref(reference)
}
