//! The one place protocol types become frame text and back.
//!
//! [`Frame`] is the relay's own type, not the web framework's: the hub fans
//! frames out without knowing how they travel, and the transport turns each
//! into a WebSocket message or a long-poll body.

use bytes::Bytes;
use kefu_protocol::{ErrorCode, ErrorFrame};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A serialized frame: JSON text, always valid UTF-8 (it is only ever built
/// from a string). Cloning shares the bytes, so a broadcast is encoded once
/// however many connections receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame(Bytes);

impl Frame {
    /// The frame's bytes, shared, for the transport to send without a copy.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The frame as text. This scans the bytes (safe code cannot skip the
    /// UTF-8 check), so the delivery path uses [`Frame::into_bytes`].
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a frame is built from a string")
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Serializes a frame. Our types always serialize; should one ever fail, the
/// client gets an `internal` error instead of a broken frame.
pub fn encode<T: Serialize>(event: &T) -> Frame {
    match serde_json::to_string(event) {
        Ok(text) => Frame(Bytes::from(text)),
        Err(error) => {
            tracing::error!(%error, "could not encode a frame");
            Frame(Bytes::from_static(
                br#"{"type":"error","code":"internal","message":"could not encode a frame"}"#,
            ))
        }
    }
}

/// Parses a client frame; anything malformed or unknown is a `bad_request`
/// that says what was wrong.
pub fn decode<T: DeserializeOwned>(text: &str) -> Result<T, ErrorFrame> {
    serde_json::from_str(text)
        .map_err(|error| ErrorFrame::new(ErrorCode::BadRequest, format!("invalid frame: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_encoding() {
        let frame = encode(&ErrorFrame::new(ErrorCode::NotFound, "gone"));
        let copy = frame.clone();
        assert_eq!(copy.as_bytes().as_ptr(), frame.as_bytes().as_ptr());
        let bytes = copy.into_bytes();
        assert_eq!(bytes.as_ptr(), frame.as_bytes().as_ptr());
        assert_eq!(frame.as_str(), r#"{"code":"not_found","message":"gone"}"#);
    }
}
