//! What an upload's bytes are, and what of them is kept: the type is
//! detected from the content (never the name), only listed types are
//! accepted, and image metadata (EXIF with its GPS position, XMP, IPTC,
//! comments, text chunks) is dropped.
//!
//! Metadata goes with `img-parts`, which removes whole segments and chunks
//! of JPEG, PNG and WebP files without decoding a pixel: the image is
//! exactly the one sent, and a hostile image costs no decoder time. The
//! `image` crate would re-encode (lossy for JPEG, slow, a large decoder
//! surface) for no gain here.

use bytes::Bytes;
use img_parts::ImageEXIF;
use img_parts::jpeg::{Jpeg, markers};
use img_parts::png::Png;
use img_parts::webp::WebP;

/// What an accepted upload turned out to be.
pub(super) struct Content {
    pub bytes: Bytes,
    pub content_type: &'static str,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// The types accepted, by what `infer` detects, besides plain text.
const ALLOWED: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "application/zip",
    "application/gzip",
];

/// Markup `infer` recognises, kept (a visitor may well send the page that
/// fails) but as plain text: served so, it can never render or run.
const MARKUP: &[&str] = &["text/html", "text/xml", "application/xml", "image/svg+xml"];

/// Detects the type of `bytes` and strips image metadata; `Err` names the
/// refused type.
pub(super) fn inspect(bytes: Bytes) -> Result<Content, String> {
    let is_text = !bytes.contains(&0) && std::str::from_utf8(&bytes).is_ok();
    let content_type = match infer::get(&bytes) {
        Some(kind) if MARKUP.contains(&kind.mime_type()) && is_text => "text/plain",
        Some(kind) => ALLOWED
            .iter()
            .find(|allowed| **allowed == kind.mime_type())
            .copied()
            .ok_or_else(|| kind.mime_type().to_owned())?,
        // Text has no magic number: UTF-8 without NULs is plain text.
        None if is_text => "text/plain",
        None => return Err("unknown binary".to_owned()),
    };
    let bytes = strip_metadata(content_type, bytes);
    let (width, height) = if kefu_protocol::files::is_raster_image(content_type) {
        match imagesize::blob_size(&bytes) {
            Ok(size) => (
                u32::try_from(size.width).ok(),
                u32::try_from(size.height).ok(),
            ),
            Err(_) => (None, None),
        }
    } else {
        (None, None)
    };
    Ok(Content {
        bytes,
        content_type,
        width,
        height,
    })
}

/// `bytes` without metadata, or as they came when the container does not
/// parse (then it holds no metadata `img-parts` could find either).
fn strip_metadata(content_type: &str, bytes: Bytes) -> Bytes {
    match content_type {
        "image/jpeg" => match Jpeg::from_bytes(bytes.clone()) {
            Ok(mut jpeg) => {
                // APP1 holds EXIF and XMP, APP13 IPTC; COM free text. JFIF
                // (APP0), ICC (APP2) and Adobe (APP14) change how it looks.
                jpeg.segments_mut().retain(|segment| {
                    !matches!(
                        segment.marker(),
                        markers::APP1 | markers::APP13 | markers::COM
                    )
                });
                jpeg.encoder().bytes()
            }
            Err(_) => bytes,
        },
        "image/png" => match Png::from_bytes(bytes.clone()) {
            Ok(mut png) => {
                png.set_exif(None);
                png.chunks_mut().retain(|chunk| {
                    !matches!(&chunk.kind(), b"tEXt" | b"iTXt" | b"zTXt" | b"tIME")
                });
                png.encoder().bytes()
            }
            Err(_) => bytes,
        },
        "image/webp" => match WebP::from_bytes(bytes.clone()) {
            Ok(mut webp) => {
                webp.set_exif(None);
                webp.chunks_mut().retain(|chunk| &chunk.id() != b"XMP ");
                webp.encoder().bytes()
            }
            Err(_) => bytes,
        },
        _ => bytes,
    }
}

/// The `Content-Disposition` a download is served with: inline only for
/// raster images, so that no other type is ever rendered by the browser.
pub(super) fn disposition(content_type: &str, name: &str) -> String {
    let kind = if kefu_protocol::files::is_raster_image(content_type) {
        "inline"
    } else {
        "attachment"
    };
    // RFC 6266/8187: a plain-ASCII fallback and the exact name encoded.
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._- ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}
