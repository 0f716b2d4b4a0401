//! Where a downloaded file is saved: its untrusted name made safe for a
//! file system, and a path that never overwrites what is already there.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// Bytes a saved file's name may take: well under every common file
/// system's 255, with room for ` (999)`.
const NAME_MAX: usize = 120;
/// Numbered names tried (`name (1).ext` …) before giving up.
const NUMBERED_MAX: u32 = 999;

/// The name a visitor gave a file, made safe to create in a folder: no
/// path separators (the whole name stays one file in that folder), no
/// control or bidi-override characters (which could disguise `gpj.exe` as
/// `exe.jpg`), no leading dots (no hidden files, no `..`), no trailing dots
/// or spaces (which Windows drops), at most [`NAME_MAX`] bytes with the
/// extension kept. An empty result is `file`.
pub fn safe_name(untrusted: &str) -> String {
    let cleaned: String = untrusted
        .chars()
        .map(|ch| match ch {
            '/' | '\\' | ':' => '_',
            ch => ch,
        })
        .filter(|&ch| !ch.is_control() && !is_bidi_control(ch))
        .collect();
    let trimmed = cleaned
        .trim_start_matches(|ch: char| ch == '.' || ch.is_whitespace())
        .trim_end_matches(|ch: char| ch == '.' || ch.is_whitespace());
    let bounded = bound(trimmed, NAME_MAX);
    if bounded.is_empty() {
        "file".to_owned()
    } else {
        bounded
    }
}

fn is_bidi_control(ch: char) -> bool {
    matches!(ch, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `name` cut to `max` bytes on a character boundary, keeping a short
/// extension (the part the opener picks the program by).
fn bound(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let (stem, extension) = split_extension(name);
    let extension = if extension.len() <= 16 { extension } else { "" };
    let mut end = max - extension.len();
    while !stem.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{extension}", stem[..end].trim_end())
}

/// `("report", ".pdf")` from `report.pdf`; a name without a dot (after its
/// first character) has no extension.
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(dot) if dot > 0 => name.split_at(dot),
        _ => (name, ""),
    }
}

/// Creates `name` in `dir` (made first if missing), or `name (1).ext`,
/// `name (2).ext` … when it exists: an existing file is never overwritten,
/// even by another program racing for the same name (the file is created
/// with `create_new`).
pub fn create_unique(dir: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    std::fs::create_dir_all(dir)?;
    let (stem, extension) = split_extension(name);
    for n in 0..=NUMBERED_MAX {
        let candidate = match n {
            0 => name.to_owned(),
            n => format!("{stem} ({n}){extension}"),
        };
        let path = dir.join(candidate);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{name} and {NUMBERED_MAX} numbered copies already exist"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_separators_controls_and_leading_dots() {
        assert_eq!(safe_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_name("..\\..\\boot.ini"), "_.._boot.ini");
        assert_eq!(safe_name(".bashrc"), "bashrc");
        assert_eq!(safe_name("..."), "file");
        assert_eq!(safe_name(""), "file");
        assert_eq!(safe_name(" report.pdf. "), "report.pdf");
        assert_eq!(safe_name("a\u{0}b\u{1b}[31mc\nd.txt"), "ab[31mcd.txt");
        // A right-to-left override would show "invoice{RLO}fdp.exe" as
        // "invoiceexe.pdf".
        assert_eq!(safe_name("invoice\u{202e}fdp.exe"), "invoicefdp.exe");
        assert_eq!(safe_name("C:evil"), "C_evil");
        assert_eq!(safe_name("截图 1.png"), "截图 1.png");
    }

    #[test]
    fn long_names_are_cut_on_a_character_keeping_the_extension() {
        let long = format!("{}.png", "图".repeat(100));
        let safe = safe_name(&long);
        assert!(safe.len() <= NAME_MAX, "{}", safe.len());
        assert!(safe.ends_with("图.png"), "{safe}");
        let no_extension = "x".repeat(500);
        assert_eq!(safe_name(&no_extension).len(), NAME_MAX);
        let long_extension = format!("a.{}", "e".repeat(300));
        assert!(safe_name(&long_extension).len() <= NAME_MAX);
    }

    #[test]
    fn existing_files_are_never_overwritten() {
        let dir = tempfile::tempdir().expect("temp dir");
        let folder = dir.path().join("kefu");
        let (first, _) = create_unique(&folder, "shot.png").expect("created");
        std::fs::write(&first, b"mine").expect("written");
        let (second, _) = create_unique(&folder, "shot.png").expect("created");
        let (third, _) = create_unique(&folder, "shot.png").expect("created");
        assert_eq!(first, folder.join("shot.png"));
        assert_eq!(second, folder.join("shot (1).png"));
        assert_eq!(third, folder.join("shot (2).png"));
        assert_eq!(std::fs::read(&first).expect("read"), b"mine");
        let (plain, _) = create_unique(&folder, "README").expect("created");
        let (again, _) = create_unique(&folder, "README").expect("created");
        assert_eq!(plain, folder.join("README"));
        assert_eq!(again, folder.join("README (1)"));
    }
}
