//! Image previews inline in the history (issue 18): under an image's `📎`
//! row, its thumbnail a few rows tall, in terminals with graphics.
//!
//! The rows a preview takes are known before anything is fetched: the
//! relay tells each thumbnail's size in pixels, the terminal its cells'.
//! So the history's height does not change when a preview arrives or is
//! forgotten, and the text under the reader stays put while they load;
//! only a thumbnail that cannot be had gives its rows back (its `📎` row
//! stays, as in a terminal without graphics).
//!
//! Bounded: the previews last wanted are kept encoded ([`KEPT`]), at most
//! [`LOADING`] are fetched at once, and only for images within a screen
//! or two of the view (`App::want_thumbnails`, with the scrolling);
//! fetching, decoding and encoding are the runtime's
//! ([`super::Effect::Thumbnail`]), off the UI loop.

use std::collections::HashSet;
use std::num::NonZeroUsize;

use kefu_protocol::Attachment;
use lru::LruCache;

use super::Preview;

/// Rows a preview takes at most: enough to tell a screenshot apart (a
/// 320-pixel thumbnail is 8 rows of a 20-pixel font at most anyway), few
/// enough that a 24-row terminal's history still shows the text around
/// it.
pub const MAX_ROWS: u16 = 8;
/// Encoded previews kept; a few screens' worth. One is at most
/// 320×320 pixels in the terminal's encoding (a few hundred KiB).
const KEPT: usize = 24;
/// Thumbnails fetched at once.
pub const LOADING: usize = 2;
/// Failures remembered (not asked for again); past it they are forgotten
/// and may be tried once more.
const FAILED: usize = 256;

/// A preview's size in cells: (columns, rows).
pub type Cells = (u16, u16);

/// What is known of the inline previews.
#[derive(Debug)]
pub struct Thumbnails {
    /// A terminal cell in pixels; `None` when previews are not shown
    /// inline (no graphics, or turned off in the config).
    cell: Option<Cells>,
    /// Ready to draw, by attachment id, with the cells encoded for.
    ready: LruCache<String, (Cells, Preview)>,
    loading: HashSet<String>,
    failed: HashSet<String>,
}

impl Thumbnails {
    /// `cell` is the terminal's cell size in pixels, `None` for no inline
    /// previews.
    pub fn new(cell: Option<Cells>) -> Thumbnails {
        Thumbnails {
            cell: cell.filter(|&(width, height)| width > 0 && height > 0),
            ready: LruCache::new(NonZeroUsize::new(KEPT).expect("not zero")),
            loading: HashSet::new(),
            failed: HashSet::new(),
        }
    }

    /// The cells `attachment`'s preview takes under its `📎` row, in
    /// `columns`; `None` when it has none (not an image the relay made a
    /// thumbnail of, no graphics, or the thumbnail could not be had).
    pub fn cells(&self, attachment: &Attachment, columns: usize) -> Option<Cells> {
        let (cell_width, cell_height) = self.cell?;
        let thumbnail = attachment
            .thumbnail
            .filter(|_| attachment.is_raster_image())?;
        if self.failed.contains(&attachment.id) || columns == 0 {
            return None;
        }
        let (width, height) = (
            u64::from(thumbnail.width.max(1)),
            u64::from(thumbnail.height.max(1)),
        );
        let columns = u64::try_from(columns).unwrap_or(u64::MAX);
        // As `ratatui_image`'s `Resize::Fit` does: shrunk to fit, never
        // enlarged, the aspect kept; then whole cells.
        let most_width = (columns * u64::from(cell_width)).min(width);
        let most_height = (u64::from(MAX_ROWS) * u64::from(cell_height)).min(height);
        let (fit_width, fit_height) = if most_width * height <= most_height * width {
            (most_width, most_width * height / width)
        } else {
            (most_height * width / height, most_height)
        };
        let to_cells = |pixels: u64, cell: u16| {
            u16::try_from(pixels.div_ceil(u64::from(cell)).max(1)).unwrap_or(u16::MAX)
        };
        Some((
            to_cells(fit_width, cell_width).min(u16::try_from(columns).unwrap_or(u16::MAX)),
            to_cells(fit_height, cell_height).min(MAX_ROWS),
        ))
    }

    /// The preview of attachment `id`, if it is ready in `cells`.
    pub fn get(&self, id: &str, cells: Cells) -> Option<&Preview> {
        self.ready
            .peek(id)
            .filter(|(encoded, _)| *encoded == cells)
            .map(|(_, preview)| preview)
    }

    /// Whether previews are shown inline at all.
    pub fn enabled(&self) -> bool {
        self.cell.is_some()
    }

    /// `attachment` is near the view: `true` if it must be fetched now.
    /// A ready one is kept longest.
    pub(super) fn wanted(&mut self, attachment: &Attachment, cells: Cells) -> bool {
        if self
            .ready
            .get(&attachment.id)
            .is_some_and(|(at, _)| *at == cells)
        {
            return false;
        }
        if self.loading.len() >= LOADING || self.loading.contains(&attachment.id) {
            return false;
        }
        self.loading.insert(attachment.id.clone())
    }

    /// The runtime's answer to [`super::Effect::Thumbnail`].
    pub(super) fn arrived(&mut self, id: String, cells: Cells, image: Result<Preview, String>) {
        self.loading.remove(&id);
        match image {
            Ok(preview) => {
                self.ready.put(id, (cells, preview));
            }
            Err(_) => {
                if self.failed.len() >= FAILED {
                    self.failed.clear();
                }
                self.failed.insert(id);
            }
        }
    }

    /// After a reconnect: what failed, maybe for want of the relay, is
    /// tried again.
    pub(super) fn forget_failures(&mut self) {
        self.failed.clear();
    }
}

#[cfg(test)]
mod tests {
    use kefu_protocol::files::Thumbnail;

    use super::*;

    fn image(id: &str, width: u32, height: u32) -> Attachment {
        Attachment {
            id: id.into(),
            name: format!("{id}.png"),
            size: 1000,
            content_type: "image/png".into(),
            width: Some(width * 4),
            height: Some(height * 4),
            thumbnail: Some(Thumbnail { width, height }),
        }
    }

    #[test]
    fn a_preview_is_fitted_to_the_width_and_at_most_a_few_rows() {
        let thumbnails = Thumbnails::new(Some((10, 20)));
        // 320×240 in 10×20 cells: 32×12 cells whole; 8 rows at most.
        assert_eq!(thumbnails.cells(&image("a", 320, 240), 80), Some((22, 8)));
        // Narrow: the width decides.
        assert_eq!(thumbnails.cells(&image("a", 320, 240), 16), Some((16, 6)));
        // Small: never enlarged.
        assert_eq!(thumbnails.cells(&image("a", 64, 32), 80), Some((7, 2)));
        // A hair of a picture still gets a row.
        assert_eq!(thumbnails.cells(&image("a", 320, 1), 80), Some((32, 1)));
    }

    #[test]
    fn no_preview_without_graphics_a_thumbnail_or_after_a_failure() {
        assert_eq!(Thumbnails::new(None).cells(&image("a", 32, 32), 80), None);
        let mut thumbnails = Thumbnails::new(Some((10, 20)));
        let mut no_thumbnail = image("a", 32, 32);
        no_thumbnail.thumbnail = None;
        assert_eq!(thumbnails.cells(&no_thumbnail, 80), None);
        let mut svg = image("a", 32, 32);
        svg.content_type = "image/svg+xml".into();
        assert_eq!(thumbnails.cells(&svg, 80), None);
        let failing = image("b", 32, 32);
        assert!(thumbnails.wanted(&failing, (4, 2)));
        thumbnails.arrived("b".into(), (4, 2), Err("refused".into()));
        assert_eq!(thumbnails.cells(&failing, 80), None);
        thumbnails.forget_failures();
        assert!(thumbnails.cells(&failing, 80).is_some());
    }

    #[test]
    fn loads_are_bounded_and_previews_kept_by_recent_use() {
        let mut thumbnails = Thumbnails::new(Some((10, 20)));
        let preview = crate::app::tests::files::red_square();
        assert!(thumbnails.wanted(&image("a", 32, 32), (4, 2)));
        assert!(!thumbnails.wanted(&image("a", 32, 32), (4, 2)), "once");
        assert!(thumbnails.wanted(&image("b", 32, 32), (4, 2)));
        assert!(!thumbnails.wanted(&image("c", 32, 32), (4, 2)), "bounded");
        thumbnails.arrived("a".into(), (4, 2), Ok(preview.clone()));
        assert!(thumbnails.get("a", (4, 2)).is_some());
        assert!(thumbnails.get("a", (5, 2)).is_none(), "not for other cells");
        assert!(!thumbnails.wanted(&image("a", 32, 32), (4, 2)), "ready");
        assert!(thumbnails.wanted(&image("c", 32, 32), (4, 2)));
        for id in 0..KEPT {
            thumbnails.arrived(format!("x{id}"), (4, 2), Ok(preview.clone()));
            // "a" is used all along: it stays.
            thumbnails.wanted(&image("a", 32, 32), (4, 2));
        }
        assert!(thumbnails.get("a", (4, 2)).is_some());
        assert!(thumbnails.get("x0", (4, 2)).is_none(), "the oldest goes");
        assert_eq!(thumbnails.ready.len(), KEPT);
    }
}
