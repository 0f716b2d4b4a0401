//! Files in conversations: what a message says of each file attached to it.
//!
//! The bytes never travel in frames: a client uploads a file over HTTP
//! (`POST /api/files`), gets its [`Attachment`] back, and names that id in a `send`'s
//! `attachments`; the relay answers with the stored [`Attachment`]s in the
//! message. Downloads go through a short-lived signed link (see
//! `docs/protocol.md`, "Files").

use serde::{Deserialize, Serialize};

/// Most files one message may carry.
pub const MAX_ATTACHMENTS: usize = 10;

/// A file attached to a message, as stored: its `content_type` was
/// detected from the content, never taken from the name or the uploader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: String,
    /// The name the uploader gave, cut to a bounded length; untrusted text.
    pub name: String,
    /// In bytes, as stored (after image metadata was stripped).
    pub size: u64,
    pub content_type: String,
    /// Pixels, for raster images whose header tells them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// A smaller copy the relay made of a raster image it could decode
    /// (see [`Thumbnail`]); fetched through the file's link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<Thumbnail>,
}

/// Longest side of a thumbnail, in pixels.
pub const THUMBNAIL_MAX_SIDE: u32 = 320;

/// A raster image's thumbnail: a JPEG at most [`THUMBNAIL_MAX_SIDE`] pixels
/// on its long side (never larger than the image), its size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thumbnail {
    pub width: u32,
    pub height: u32,
}

impl Attachment {
    /// Whether browsers may show it inline: raster images only (never SVG
    /// or HTML, which can carry scripts).
    pub fn is_raster_image(&self) -> bool {
        is_raster_image(&self.content_type)
    }
}

/// The raster image types the relay serves inline.
pub fn is_raster_image(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    )
}

/// `GET /api/files/{id}/link` answers this: a URL (relative to the relay)
/// anybody holding it may fetch until `expires_at` (unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileLink {
    pub url: String,
    pub expires_at: u64,
    /// The thumbnail's URL, signed alike, when the file has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
}
