//! The one place protocol types become WebSocket text and back.

use axum::extract::ws::Utf8Bytes;
use kefu_protocol::{ErrorCode, ErrorFrame};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A serialized frame. Cloning shares the bytes, so a broadcast is encoded
/// once however many connections receive it.
pub type Frame = Utf8Bytes;

/// Serializes a frame. Our types always serialize; should one ever fail, the
/// client gets an `internal` error instead of a broken frame.
pub fn encode<T: Serialize>(event: &T) -> Frame {
    match serde_json::to_string(event) {
        Ok(text) => Frame::from(text),
        Err(error) => {
            tracing::error!(%error, "could not encode a frame");
            Frame::from_static(
                r#"{"type":"error","code":"internal","message":"could not encode a frame"}"#,
            )
        }
    }
}

/// Parses a client frame; anything malformed or unknown is a `bad_request`
/// that says what was wrong.
pub fn decode<T: DeserializeOwned>(text: &str) -> Result<T, ErrorFrame> {
    serde_json::from_str(text)
        .map_err(|error| ErrorFrame::new(ErrorCode::BadRequest, format!("invalid frame: {error}")))
}
