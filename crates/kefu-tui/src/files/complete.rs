//! Tab completion of the path after `/attach`, as a shell does it: one
//! match is completed whole (a folder with its `/`), several are completed
//! to their longest common prefix and listed.

use std::path::{Path, PathBuf};

/// Entries of one folder looked at, at most: a huge folder must not stall
/// the UI loop (completion runs on it, between two keys).
const ENTRIES_MAX: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The path as completed (unchanged when nothing matches).
    pub text: String,
    /// Every match when there are several (folders end in `/`), sorted;
    /// empty when there is one or none.
    pub candidates: Vec<String>,
}

/// Completes `partial`, a path as typed (`~/` means `home`; a relative
/// path is from the current folder). Hidden entries are offered only when
/// the typed name starts with a dot.
pub fn complete(partial: &str, home: Option<&Path>) -> Completion {
    let (folder, prefix) = match partial.rfind('/') {
        Some(slash) => partial.split_at(slash + 1),
        None => ("", partial),
    };
    let mut matches: Vec<String> = entries(&expand(folder, home))
        .into_iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .filter(|(name, _)| prefix.starts_with('.') || !name.starts_with('.'))
        .map(|(name, is_dir)| if is_dir { name + "/" } else { name })
        .collect();
    matches.sort();
    let text = match matches.as_slice() {
        [] => partial.to_owned(),
        [only] => format!("{folder}{only}"),
        [first, rest @ ..] => {
            let common = rest
                .iter()
                .fold(first.as_str(), |common, name| common_prefix(common, name));
            format!("{folder}{common}")
        }
    };
    if matches.len() < 2 {
        matches.clear();
    }
    Completion {
        text,
        candidates: matches,
    }
}

/// A path as typed, with `~` or `~/…` read as the home folder.
pub fn expand(typed: &str, home: Option<&Path>) -> PathBuf {
    let rest = match typed.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.trim_start_matches('/'),
        _ => return PathBuf::from(if typed.is_empty() { "." } else { typed }),
    };
    match home {
        Some(home) => home.join(rest),
        None => PathBuf::from(typed),
    }
}

/// (name, is a folder) of the entries of `folder`; names that are not
/// UTF-8 or hold control characters are left out (they could not be typed
/// back anyway, and must not reach the terminal through the compose box).
fn entries(folder: &Path) -> Vec<(String, bool)> {
    let Ok(read) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    read.filter_map(Result::ok)
        .take(ENTRIES_MAX)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            if name.chars().any(char::is_control) {
                return None;
            }
            // Follows symbolic links, as `ls -F` on a link to a folder.
            let is_dir = entry.path().is_dir();
            Some((name, is_dir))
        })
        .collect()
}

/// The longest prefix of `a` that `b` shares, on a character boundary.
fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let end = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or_else(|| a.len().min(b.len()), |((at, _), _)| at);
    &a[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for file in [
            "report-2025.pdf",
            "report-2026.pdf",
            "shot.png",
            ".hidden",
            "截图一.png",
            "截图二.png",
            "sh\u{1b}]0;owned\u{7}",
        ] {
            std::fs::write(dir.path().join(file), b"x").expect("file");
        }
        std::fs::create_dir(dir.path().join("screens")).expect("folder");
        dir
    }

    #[test]
    fn one_match_is_completed_whole_and_folders_get_a_slash() {
        let dir = folder();
        let base = format!("{}/", dir.path().display());
        let done = complete(&format!("{base}sh"), None);
        assert_eq!(done.text, format!("{base}shot.png"));
        assert!(done.candidates.is_empty());
        let done = complete(&format!("{base}scr"), None);
        assert_eq!(done.text, format!("{base}screens/"));
    }

    #[test]
    fn several_matches_complete_the_common_prefix_and_are_listed() {
        let dir = folder();
        let base = format!("{}/", dir.path().display());
        let done = complete(&format!("{base}rep"), None);
        assert_eq!(done.text, format!("{base}report-202"));
        assert_eq!(done.candidates, ["report-2025.pdf", "report-2026.pdf"]);
        let done = complete(&format!("{base}s"), None);
        assert_eq!(done.text, format!("{base}s"));
        assert_eq!(done.candidates, ["screens/", "shot.png"]);
        // The common prefix of two CJK names ends on a character.
        let done = complete(&format!("{base}截"), None);
        assert_eq!(done.text, format!("{base}截图"));
    }

    #[test]
    fn hidden_files_only_when_asked_and_no_match_changes_nothing() {
        let dir = folder();
        let base = format!("{}/", dir.path().display());
        let all = complete(&base, None);
        assert!(
            !all.candidates.iter().any(|c| c.starts_with('.')),
            "{all:?}"
        );
        assert_eq!(all.candidates.len(), 6);
        assert_eq!(
            complete(&format!("{base}.h"), None).text,
            format!("{base}.hidden")
        );
        let none = complete(&format!("{base}zzz"), None);
        assert_eq!(none.text, format!("{base}zzz"));
        assert!(none.candidates.is_empty());
        let missing = complete("/no/such/folder/x", None);
        assert_eq!(missing.text, "/no/such/folder/x");
    }

    #[test]
    fn a_tilde_is_the_home_folder_and_stays_as_typed() {
        let dir = folder();
        let done = complete("~/sh", Some(dir.path()));
        assert_eq!(done.text, "~/shot.png");
        assert_eq!(expand("~", Some(dir.path())), dir.path());
        assert_eq!(
            expand("~other/x", Some(dir.path())),
            PathBuf::from("~other/x")
        );
    }
}
