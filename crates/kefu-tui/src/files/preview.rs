//! Images shown in the terminal, where it has graphics (kitty, iTerm2,
//! sixel) through `ratatui-image`: the terminal is asked once, at start-up;
//! an image is decoded and encoded for it in a blocking task, never on the
//! UI loop, within bounds a hostile image cannot pass.

use std::io::Cursor;

use image::{ImageReader, Limits};
use ratatui::layout::Size;
use ratatui_image::Resize;
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::protocol::Protocol;

/// Bytes fetched for a preview, at most (the relay's default file limit).
pub const MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Bytes fetched for an inline preview's thumbnail, at most: a JPEG of at
/// most 320×320 pixels is far smaller.
pub const MAX_THUMBNAIL_BYTES: u64 = 1024 * 1024;
/// Pixels on either side; a header claiming more is refused before any
/// pixel is allocated.
const MAX_SIDE: u32 = 8192;
/// What the decoder may allocate in all.
const MAX_ALLOC: u64 = 256 * 1024 * 1024;

/// The terminal's graphics, asked once after entering the alternate
/// screen and before reading its events (the answer comes on stdin).
/// `None` where it has none: half blocks are too coarse to be worth a
/// preview, so such terminals keep the `📎` line and the opener.
pub fn probe() -> Option<Picker> {
    match Picker::from_query_stdio() {
        Ok(picker) if picker.protocol_type() != ProtocolType::Halfblocks => {
            tracing::info!(protocol = ?picker.protocol_type(), "terminal graphics");
            Some(picker)
        }
        Ok(_) => None,
        Err(error) => {
            tracing::info!(%error, "no terminal graphics");
            None
        }
    }
}

/// Decodes `bytes` (any raster type the relay serves inline) and encodes
/// the image for `picker`'s terminal, fitted into `cells` (columns, rows).
/// CPU-bound: call it from a blocking task.
pub fn encode(bytes: &[u8], picker: &Picker, cells: Size) -> Result<Protocol, String> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|error| error.to_string())?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let image = reader.decode().map_err(|error| error.to_string())?;
    picker
        .new_protocol(image, cells, Resize::Fit(None))
        .map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use image::{ImageFormat, RgbImage};

    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        RgbImage::from_pixel(width, height, image::Rgb([200, 30, 30]))
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .expect("encoded");
        bytes
    }

    #[test]
    fn an_image_is_fitted_into_the_cells_given() {
        let protocol =
            encode(&png(400, 100), &Picker::halfblocks(), Size::new(20, 10)).expect("a preview");
        let size = protocol.size();
        assert!(size.width <= 20 && size.height <= 10, "{size:?}");
        assert!(size.width > 0 && size.height > 0);
    }

    #[test]
    fn oversized_and_broken_images_are_refused() {
        let picker = Picker::halfblocks();
        let wide = encode(&png(MAX_SIDE + 1, 1), &picker, Size::new(20, 10));
        assert!(
            wide.is_err_and(|error| error.contains("limit")),
            "refused by its size"
        );
        assert!(encode(&png(MAX_SIDE, 1), &picker, Size::new(20, 10)).is_ok());
        assert!(encode(b"not an image", &picker, Size::new(20, 10)).is_err());
    }
}
