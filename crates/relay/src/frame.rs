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
/// that says what was wrong. So is a frame with U+0000 in any string:
/// PostgreSQL's text cannot hold it (SQLite's can), so it is refused alike
/// on both backends here, the one door every client frame comes through,
/// before it can fail a store write (and, on PostgreSQL, a batch of
/// everybody's writes).
pub fn decode<T: DeserializeOwned>(text: &str) -> Result<T, ErrorFrame> {
    if holds_nul(text) {
        return Err(ErrorFrame::new(
            ErrorCode::BadRequest,
            "invalid frame: a string holds U+0000",
        ));
    }
    serde_json::from_str(text)
        .map_err(|error| ErrorFrame::new(ErrorCode::BadRequest, format!("invalid frame: {error}")))
}

/// Whether JSON `text` spells U+0000 in a string. JSON can only write it as
/// the escape `\u0000` (a raw control character is malformed), and those
/// six characters are that escape unless their backslash is itself escaped
/// (`\\u0000` is the text `\u0000`): an even run of backslashes before it.
fn holds_nul(text: &str) -> bool {
    text.match_indices("\\u0000").any(|(at, _)| {
        let escaped = text[..at].bytes().rev().take_while(|&b| b == b'\\').count();
        escaped % 2 == 0
    })
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

    #[test]
    fn a_nul_escape_is_refused_but_the_text_of_one_is_not() {
        let refused = |text: &str| decode::<serde_json::Value>(text).is_err();
        assert!(refused(r#"{"text":"a\u0000b"}"#));
        assert!(
            refused(r#"{"text":"\\\u0000"}"#),
            "an escaped backslash, then U+0000"
        );
        assert!(refused(r#"{"text":"ok","name":"\u0000"}"#));
        assert!(
            !refused(r#"{"text":"\\u0000"}"#),
            "the six characters \\u0000"
        );
        assert!(
            !refused(r#"{"text":"\u0030 and \u0001"}"#),
            "other escapes pass"
        );
        let text: serde_json::Value = decode(r#"{"text":"\\u0000"}"#).expect("valid");
        assert_eq!(text["text"], "\\u0000");
    }
}
