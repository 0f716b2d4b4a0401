//! Thumbnails of uploaded raster images, made once at upload so that pages
//! show a few kilobytes instead of a ten-megabyte photo.
//!
//! Decoding an image a visitor sent is the most dangerous thing the relay
//! does with a file, so it is fenced in: only the four decoders of the
//! accepted types are compiled in (`image` without default features);
//! [`Limits`] refuse an image whose header claims more than [`MAX_SIDE`]
//! pixels a side or whose pixels would take more than [`MAX_DECODE_BYTES`],
//! before any is decoded, so a decompression bomb costs a header read; and
//! decoding runs on the blocking pool, at most [`DECODES_AT_ONCE`] at a
//! time, so uploads cannot take every core or more than that many times
//! the memory bound. Whatever goes wrong, the upload goes on without a
//! thumbnail.

use std::io::Cursor;

use bytes::Bytes;
use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageFormat, ImageReader, Limits, RgbImage};
use kefu_protocol::files::{THUMBNAIL_MAX_SIDE, Thumbnail};
use tokio::sync::Semaphore;

/// Widest or tallest image decoded, in pixels.
pub(crate) const MAX_SIDE: u32 = 16_384;
/// Most memory one decode may allocate: 32 megapixels of RGBA (a 48-
/// megapixel phone photo gets no thumbnail, and is still sent).
pub(crate) const MAX_DECODE_BYTES: u64 = 128 * 1024 * 1024;
/// Images decoded at once on the whole relay; more uploads wait their turn.
pub(crate) const DECODES_AT_ONCE: usize = 2;
/// JPEG quality of thumbnails: small, and sharp enough at 320 pixels.
const QUALITY: u8 = 80;

/// A thumbnail made: its JPEG bytes and size.
pub(super) struct Made {
    pub bytes: Bytes,
    pub thumbnail: Thumbnail,
}

/// A thumbnail of `bytes`, an upload typed `content_type`; `None` when it
/// is no raster image or does not decode within the limits.
pub(super) async fn make(decoding: &Semaphore, content_type: &str, bytes: Bytes) -> Option<Made> {
    let format = match content_type {
        "image/png" => ImageFormat::Png,
        "image/jpeg" => ImageFormat::Jpeg,
        "image/gif" => ImageFormat::Gif,
        "image/webp" => ImageFormat::WebP,
        _ => return None,
    };
    // Never closed: waiting can only end with a permit.
    let _turn = decoding.acquire().await.ok()?;
    let made = tokio::task::spawn_blocking(move || shrink(format, &bytes)).await;
    match made {
        Ok(Ok(made)) => Some(made),
        Ok(Err(error)) => {
            tracing::debug!(%error, "no thumbnail for an upload");
            None
        }
        Err(error) => {
            tracing::warn!(%error, "the thumbnail task failed");
            None
        }
    }
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits
}

/// Decodes (the first frame of an animation), scales down to fit
/// [`THUMBNAIL_MAX_SIDE`] and encodes as JPEG.
fn shrink(format: ImageFormat, bytes: &[u8]) -> Result<Made, image::ImageError> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits());
    let image = reader.decode()?;
    let image = if image.width().max(image.height()) > THUMBNAIL_MAX_SIDE {
        image.thumbnail(THUMBNAIL_MAX_SIDE, THUMBNAIL_MAX_SIDE)
    } else {
        image
    };
    let flat = on_white(&image);
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, QUALITY).encode_image(&flat)?;
    Ok(Made {
        bytes: Bytes::from(jpeg),
        thumbnail: Thumbnail {
            width: flat.width(),
            height: flat.height(),
        },
    })
}

/// `image` on a white background: JPEG has no transparency, and a
/// screenshot's transparent parts would otherwise turn black.
fn on_white(image: &DynamicImage) -> RgbImage {
    let rgba = image.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over = |channel: u8| {
            let (c, a) = (u16::from(channel), u16::from(a));
            // c·a + 255·(255 − a) ≤ 255·255 (as c ≤ 255): fits a u16.
            ((c * a + 255 * (255 - a)) / 255) as u8
        };
        image::Rgb([over(r), over(g), over(b)])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbaImage::from_fn(width, height, |x, _| {
            image::Rgba([(x % 256) as u8, 0, 0, if x < width / 2 { 0 } else { 255 }])
        });
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .expect("encode");
        bytes
    }

    #[test]
    fn a_large_image_shrinks_to_fit_and_transparency_turns_white() {
        let made = shrink(ImageFormat::Png, &png(1000, 500)).expect("thumbnail");
        assert_eq!(
            made.thumbnail,
            Thumbnail {
                width: 320,
                height: 160
            }
        );
        let back = image::load_from_memory_with_format(&made.bytes, ImageFormat::Jpeg)
            .expect("a JPEG")
            .to_rgb8();
        assert_eq!(back.dimensions(), (320, 160));
        let left = back.get_pixel(10, 80).0;
        assert!(
            left.iter().all(|c| *c > 240),
            "transparent is white: {left:?}"
        );
    }

    #[test]
    fn a_small_image_keeps_its_size() {
        let made = shrink(ImageFormat::Png, &png(40, 30)).expect("thumbnail");
        assert_eq!(
            made.thumbnail,
            Thumbnail {
                width: 40,
                height: 30
            }
        );
    }
}
