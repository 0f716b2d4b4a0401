//! Valid PNG images of a chosen size, made in memory for upload runs.
//!
//! The pixels are noise from a seed, so that every upload is a different
//! file: the relay stores files by content, and a thousand copies of one
//! image would be stored once and measure nothing. Noise does not
//! compress, so the image data is deflate's stored blocks (level 0), and
//! the file is as large as asked at almost no cost to the bench.

/// Pixels per row; rows are added until the file is large enough.
const WIDTH: u32 = 512;
/// RGBA, 8 bits a channel.
const BYTES_PER_PIXEL: usize = 4;
const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// A PNG of at least `bytes` bytes (a few hundred more: headers, one
/// filter byte per row, a row rounded up), its pixels noise from `seed`.
pub fn image(bytes: usize, seed: u64) -> Vec<u8> {
    let row = 1 + WIDTH as usize * BYTES_PER_PIXEL;
    let height = bytes.div_ceil(row).max(1);
    let mut raw = vec![0; row * height];
    let mut noise = Noise::new(seed);
    for line in raw.chunks_mut(row) {
        // line[0] is the row's filter type: 0, none.
        noise.fill(&mut line[1..]);
    }
    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&WIDTH.to_be_bytes());
    header.extend_from_slice(&u32::try_from(height).unwrap_or(u32::MAX).to_be_bytes());
    // Bit depth 8, colour type 6 (RGBA), deflate, adaptive filtering, no
    // interlace.
    header.extend_from_slice(&[8, 6, 0, 0, 0]);
    let data = miniz_oxide::deflate::compress_to_vec_zlib(&raw, 0);
    let mut png = Vec::with_capacity(data.len() + 64);
    png.extend_from_slice(SIGNATURE);
    chunk(&mut png, b"IHDR", &header);
    chunk(&mut png, b"IDAT", &data);
    chunk(&mut png, b"IEND", &[]);
    png
}

/// Appends one chunk: length, type, data, CRC of type and data.
fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    png.extend_from_slice(kind);
    png.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    png.extend_from_slice(&crc.finalize().to_be_bytes());
}

/// xorshift64*: fast, and different for every seed.
struct Noise(u64);

impl Noise {
    fn new(seed: u64) -> Noise {
        // Never zero, where xorshift would stay.
        Noise(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    fn fill(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let word = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chunks of `png`, each checked against its CRC.
    fn chunks(png: &[u8]) -> Vec<([u8; 4], Vec<u8>)> {
        assert_eq!(&png[..8], SIGNATURE);
        let mut rest = &png[8..];
        let mut found = Vec::new();
        while !rest.is_empty() {
            let length = u32::from_be_bytes(rest[..4].try_into().expect("length")) as usize;
            let kind: [u8; 4] = rest[4..8].try_into().expect("type");
            let data = &rest[8..8 + length];
            let crc = u32::from_be_bytes(rest[8 + length..12 + length].try_into().expect("crc"));
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(&kind);
            hasher.update(data);
            assert_eq!(
                hasher.finalize(),
                crc,
                "CRC of {}",
                String::from_utf8_lossy(&kind)
            );
            found.push((kind, data.to_vec()));
            rest = &rest[12 + length..];
        }
        found
    }

    #[test]
    fn an_image_is_a_valid_png_of_the_size_asked() {
        let wanted = 1024 * 1024;
        let png = image(wanted, 7);
        assert!(
            (wanted..wanted + 4096).contains(&png.len()),
            "{} bytes",
            png.len()
        );
        let chunks = chunks(&png);
        let kinds: Vec<&[u8; 4]> = chunks.iter().map(|(kind, _)| kind).collect();
        assert_eq!(kinds, [b"IHDR", b"IDAT", b"IEND"]);
        let header = &chunks[0].1;
        let width = u32::from_be_bytes(header[..4].try_into().expect("width"));
        let height = u32::from_be_bytes(header[4..8].try_into().expect("height"));
        assert_eq!((width, &header[8..]), (WIDTH, &[8, 6, 0, 0, 0][..]));
        let raw = miniz_oxide::inflate::decompress_to_vec_zlib(&chunks[1].1).expect("inflates");
        let row = 1 + WIDTH as usize * BYTES_PER_PIXEL;
        assert_eq!(raw.len(), row * height as usize, "every row, whole");
        assert!(raw.chunks(row).all(|line| line[0] == 0), "filter type none");
    }

    #[test]
    fn every_seed_makes_another_file_and_tiny_sizes_still_make_an_image() {
        assert_ne!(image(10_000, 1), image(10_000, 2));
        assert_eq!(image(10_000, 3), image(10_000, 3));
        let tiny = image(0, 1);
        assert_eq!(chunks(&tiny).len(), 3, "one row at least");
    }
}
