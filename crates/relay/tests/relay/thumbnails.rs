//! Thumbnails of uploaded images on a real relay: made at upload, carried
//! in the attachment, served through the file's signed link with the
//! file's safe headers, refused to anybody the file is refused to; a
//! decompression bomb is sent without one; pruning removes them with their
//! file.

use std::io::Cursor;

use image::{ImageFormat, RgbaImage};
use kefu_protocol::agent::Role;
use kefu_protocol::files::{FileLink, Thumbnail};
use kefu_testkit::TestRelay;
use kefu_testkit::http::Client;

use crate::files::{PDF, blob_count, download, link, prune_now, signed, upload, uploaded};

/// A `width` × `height` PNG, its left half transparent.
fn png(width: u32, height: u32) -> Vec<u8> {
    let image = RgbaImage::from_fn(width, height, |x, y| {
        let alpha = if x < width / 2 { 0 } else { 255 };
        image::Rgba([(x % 251) as u8, (y % 241) as u8, 90, alpha])
    });
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .expect("encode a PNG");
    bytes
}

#[tokio::test]
async fn an_image_gets_a_thumbnail_served_like_its_file() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let (mut agent, _) = relay.welcomed_agent(&token).await;
    let (mut visitor, welcome) = relay.new_visitor().await;

    let shot = uploaded(&upload(relay.addr, &welcome.token, "name=shot.png", png(1000, 500)).await);
    assert_eq!((shot.width, shot.height), (Some(1000), Some(500)));
    assert_eq!(
        shot.thumbnail,
        Some(Thumbnail {
            width: 320,
            height: 160
        })
    );
    visitor.send_files("c1", vec![shot.id.clone()]).await;
    let message = agent.next_message().await;
    assert_eq!(
        message.attachments,
        vec![shot.clone()],
        "sent with its thumbnail"
    );

    let link = signed(relay.addr, &token, &shot.id).await;
    let url = link.thumbnail_url.expect("a thumbnail link");
    assert!(
        url.starts_with(&format!("/files/{}/thumbnail?", shot.id)),
        "{url}"
    );
    let client = Client::new();
    let got = client.get(relay.addr, &url).await.expect("thumbnail");
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.header("content-type"), Some("image/jpeg"));
    assert_eq!(got.header("x-content-type-options"), Some("nosniff"));
    assert!(
        got.header("content-security-policy")
            .is_some_and(|csp| csp.contains("sandbox"))
    );
    assert!(
        got.header("content-disposition")
            .is_some_and(|d| d.starts_with("inline"))
    );
    let small = image::load_from_memory_with_format(&got.bytes, ImageFormat::Jpeg)
        .expect("a JPEG")
        .to_rgb8();
    assert_eq!(small.dimensions(), (320, 160));
    let transparent = small.get_pixel(20, 80).0;
    assert!(
        transparent.iter().all(|c| *c > 235),
        "on white: {transparent:?}"
    );
    assert!(got.bytes.len() < 40_000, "small: {} bytes", got.bytes.len());

    // Another conversation's visitor gets no link, and a link signed for
    // another file opens neither this file nor its thumbnail.
    let (mut other, theirs) = relay.new_visitor().await;
    other.say("c1", "hello").await;
    let refused = crate::files::link(relay.addr, &theirs.token, &shot.id).await;
    assert_eq!(refused.status, 404, "{}", refused.body);
    let theirs_file = uploaded(&upload(relay.addr, &theirs.token, "name=a.png", png(10, 10)).await);
    let their_link = signed(relay.addr, &theirs.token, &theirs_file.id).await;
    let their_thumbnail = their_link.thumbnail_url.expect("theirs has one too");
    let forged = their_thumbnail.replace(&theirs_file.id, &shot.id);
    let got = client.get(relay.addr, &forged).await.expect("forged");
    assert_eq!(got.status, 403, "{}", got.body);
    // The visitor who sent it may see it.
    let own = signed(relay.addr, &welcome.token, &shot.id).await;
    let got = client
        .get(relay.addr, &own.thumbnail_url.expect("a thumbnail link"))
        .await
        .expect("own thumbnail");
    assert_eq!(got.status, 200);
}

#[tokio::test]
async fn other_files_have_no_thumbnail() {
    let relay = TestRelay::start().await;
    let (_visitor, welcome) = relay.new_visitor().await;
    let pdf = uploaded(&upload(relay.addr, &welcome.token, "name=a.pdf", PDF.to_vec()).await);
    assert_eq!(pdf.thumbnail, None);
    let answer = link(relay.addr, &welcome.token, &pdf.id).await;
    assert!(!answer.body.contains("thumbnail"), "{}", answer.body);
    let link: FileLink = serde_json::from_str(&answer.body).expect("a link");
    // Its valid signature, on the thumbnail's path.
    let url = link.url.replacen('?', "/thumbnail?", 1);
    let got = Client::new().get(relay.addr, &url).await.expect("get");
    assert_eq!(got.status, 404, "{}", got.body);
    assert_eq!(blob_count(&relay), 1, "no thumbnail blob");
}

/// Bits written the way DEFLATE packs them: from the low bit of each byte.
#[derive(Default)]
struct Bits {
    bytes: Vec<u8>,
    used: u32,
}

impl Bits {
    /// The low `count` bits of `value`, lowest first (headers, extra bits).
    fn value(&mut self, value: u32, count: u32) {
        for bit in 0..count {
            self.bit(value >> bit & 1);
        }
    }

    /// A Huffman code of `count` bits, highest first.
    fn code(&mut self, code: u32, count: u32) {
        for bit in (0..count).rev() {
            self.bit(code >> bit & 1);
        }
    }

    fn bit(&mut self, bit: u32) {
        if self.used.is_multiple_of(8) {
            self.bytes.push(0);
        }
        if let Some(last) = self.bytes.last_mut() {
            *last |= (bit as u8) << (self.used % 8);
        }
        self.used += 1;
    }
}

/// A valid black RGBA PNG of `side` × `side` pixels, compressed as hard as
/// zeros allow with DEFLATE's fixed codes (a literal, then copies of 258
/// bytes, 13 bits each): about 160 times smaller than its pixels. Written
/// by hand because encoding 150 MB with a real encoder is slow in a debug
/// build.
fn black_png(side: u32) -> Vec<u8> {
    let raw = u64::from(side) * (1 + 4 * u64::from(side));
    let mut deflate = Bits::default();
    deflate.value(1, 1); // the last block,
    deflate.value(1, 2); // with the fixed codes.
    deflate.code(0x30, 8); // literal 0
    let mut left = raw - 1;
    while left >= 258 {
        deflate.code(0xC5, 8); // length 258 (code 285)
        deflate.code(0, 5); // distance 1
        left -= 258;
    }
    for _ in 0..left {
        deflate.code(0x30, 8);
    }
    deflate.code(0, 7); // end of block
    let mut zlib = vec![0x78, 0x01];
    zlib.extend(deflate.bytes);
    // Adler-32 of zeros: a stays 1, b grows by 1 a byte.
    zlib.extend(((raw % 65521) << 16 | 1).to_be_bytes()[4..].iter());

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        png.extend((data.len() as u32).to_be_bytes());
        let start = png.len();
        png.extend(kind);
        png.extend(data);
        let crc = crc32(&png[start..]);
        png.extend(crc.to_be_bytes());
    };
    let mut header = Vec::new();
    header.extend(side.to_be_bytes());
    header.extend(side.to_be_bytes());
    header.extend([8, 6, 0, 0, 0]); // 8 bits, RGBA, no interlace
    chunk(b"IHDR", &header);
    chunk(b"IDAT", &zlib);
    chunk(b"IEND", &[]);
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0u32, |crc, byte| {
        (0..8).fold(crc ^ u32::from(*byte), |crc, _| {
            (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg())
        })
    })
}

#[test]
fn the_hand_made_png_decodes() {
    let image = image::load_from_memory_with_format(&black_png(300), ImageFormat::Png)
        .expect("a valid PNG")
        .to_rgba8();
    assert_eq!(image.dimensions(), (300, 300));
    assert!(image.pixels().all(|pixel| pixel.0 == [0, 0, 0, 0]));
}

/// A decompression bomb: a valid PNG under a megabyte whose pixels take
/// 144 MiB decoded, past the relay's 128 MiB (a relay without the limit
/// decodes it and makes a thumbnail).
#[tokio::test]
async fn a_decompression_bomb_is_sent_without_a_thumbnail() {
    let relay = TestRelay::start().await;
    let token = relay.add_agent("alice", Role::Agent).await;
    let (mut agent, _) = relay.welcomed_agent(&token).await;
    let (mut visitor, welcome) = relay.new_visitor().await;
    let bomb = black_png(6144);
    assert!(bomb.len() < 1024 * 1024, "{} bytes", bomb.len());

    let file = uploaded(&upload(relay.addr, &welcome.token, "name=bomb.png", bomb).await);
    assert_eq!(file.content_type, "image/png");
    assert_eq!((file.width, file.height), (Some(6144), Some(6144)));
    assert_eq!(file.thumbnail, None, "refused before decoding");
    visitor.send_files("c1", vec![file.id.clone()]).await;
    assert_eq!(agent.next_message().await.attachments, vec![file.clone()]);
    assert_eq!(download(relay.addr, &token, &file.id).await.status, 200);
    assert_eq!(blob_count(&relay), 1);
}

#[tokio::test]
async fn pruning_removes_thumbnails_with_their_files() {
    let relay = TestRelay::start().await;
    let (mut visitor, welcome) = relay.new_visitor().await;
    let sent = uploaded(&upload(relay.addr, &welcome.token, "name=a.png", png(400, 300)).await);
    visitor.send_files("c1", vec![sent.id.clone()]).await;
    let unsent = uploaded(&upload(relay.addr, &welcome.token, "name=b.png", png(300, 400)).await);
    assert!(unsent.thumbnail.is_some());
    assert_eq!(blob_count(&relay), 4, "two files, two thumbnails");

    assert_eq!(
        prune_now(&relay).await,
        kefu_relay::prune::Pruned {
            unsent: 1,
            blobs: 2,
            staged: 0
        }
    );
    assert_eq!(
        blob_count(&relay),
        2,
        "the sent file and its thumbnail stay"
    );
    let kept = signed(relay.addr, &welcome.token, &sent.id).await;
    let got = Client::new()
        .get(relay.addr, &kept.thumbnail_url.expect("a thumbnail link"))
        .await
        .expect("thumbnail");
    assert_eq!(got.status, 200);
}
