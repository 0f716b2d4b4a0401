//! Settings: the config file, and how flags and environment override it.
//!
//! Precedence is flag > environment > file. clap already resolves a flag
//! against its environment variable, so this module only has to let whatever
//! came from either win over the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::tls::{self, TlsError};

/// `$XDG_CONFIG_HOME/kefu/tui.toml`, or `~/.config/kefu/tui.toml`.
pub fn default_path(xdg_config_home: Option<&Path>, home: Option<&Path>) -> Option<PathBuf> {
    let base = match xdg_config_home {
        // The XDG spec says relative values are to be ignored.
        Some(dir) if dir.is_absolute() => dir.to_path_buf(),
        _ => home?.join(".config"),
    };
    Some(base.join("kefu").join("tui.toml"))
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error(
        "no relay given: pass --relay ws://HOST:PORT, set KEFU_RELAY or put relay = \"…\" in {0}"
    )]
    NoRelay(String),
    #[error(
        "no agent token given: pass --token-file PATH, set KEFU_TOKEN or put token_file = \"…\" in {0}"
    )]
    NoToken(String),
    #[error("cannot read the agent token from {path}: {source}")]
    TokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the token file {0} is empty")]
    EmptyTokenFile(PathBuf),
    #[error("relay URL {0:?} must start with ws:// or wss://")]
    BadRelay(String),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Where the agent token is: given as it is, or in a file (which keeps it
/// out of `ps` and of shell history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Value(String),
    File(PathBuf),
}

impl Token {
    /// The token itself; a file's is its content, surrounding whitespace
    /// left out.
    fn read(self) -> Result<String, ConfigError> {
        match self {
            Token::Value(token) => Ok(token),
            Token::File(path) => {
                let text =
                    std::fs::read_to_string(&path).map_err(|source| ConfigError::TokenFile {
                        path: path.clone(),
                        source,
                    })?;
                let token = text.trim();
                if token.is_empty() {
                    return Err(ConfigError::EmptyTokenFile(path));
                }
                Ok(token.to_owned())
            }
        }
    }
}

/// The file, as written. Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    pub relay: Option<String>,
    pub token: Option<String>,
    /// A file holding the token, instead of `token`.
    pub token_file: Option<PathBuf>,
    /// CA certificates (PEM) to check a `wss://` relay against, instead of
    /// the system's.
    pub ca_file: Option<PathBuf>,
    pub log_file: Option<PathBuf>,
    /// Capture the mouse (clicks, wheel); `false` leaves plain dragging to
    /// the terminal, to select and copy text. Default: on.
    pub mouse: Option<bool>,
    pub notify: Notify,
    pub keys: KeyPrefs,
    pub canned: Vec<Canned>,
    pub files: FilesConfig,
}

/// `[files]`: where opened files are saved and what opens them.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    /// Default: `$XDG_DOWNLOAD_DIR/kefu`, or `~/Downloads/kefu`.
    pub download_dir: Option<PathBuf>,
    /// The command a saved file's path is appended to, e.g.
    /// `["xdg-open"]`; `[]` saves without opening. Default: `open` on
    /// macOS, `xdg-open` elsewhere.
    pub opener: Option<Vec<String>>,
    /// Images previewed inline in the history, a few rows tall, in
    /// terminals with graphics. Default: true.
    pub inline_previews: Option<bool>,
}

/// What the file tasks run with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSettings {
    pub download_dir: PathBuf,
    /// Program and arguments; empty for none.
    pub opener: Vec<String>,
    /// Images previewed inline in the history (where the terminal can).
    pub inline_previews: bool,
}

impl FileSettings {
    fn resolve(file: FilesConfig) -> FileSettings {
        let xdg = std::env::var_os("XDG_DOWNLOAD_DIR").map(PathBuf::from);
        let home = std::env::var_os("HOME").map(PathBuf::from);
        FileSettings {
            download_dir: file
                .download_dir
                .unwrap_or_else(|| default_download_dir(xdg.as_deref(), home.as_deref())),
            opener: file.opener.unwrap_or_else(|| {
                let opener = if cfg!(target_os = "macos") {
                    "open"
                } else {
                    "xdg-open"
                };
                vec![opener.to_owned()]
            }),
            inline_previews: file.inline_previews.unwrap_or(true),
        }
    }
}

/// `$XDG_DOWNLOAD_DIR/kefu`, or `~/Downloads/kefu`, or `./kefu-downloads`
/// without a home.
pub fn default_download_dir(xdg_download_dir: Option<&Path>, home: Option<&Path>) -> PathBuf {
    match (xdg_download_dir, home) {
        (Some(dir), _) if dir.is_absolute() => dir.join("kefu"),
        (_, Some(home)) => home.join("Downloads").join("kefu"),
        _ => PathBuf::from("kefu-downloads"),
    }
}

impl FileConfig {
    /// Reads `path`. A missing file is an empty config unless it was asked
    /// for by name (`required`).
    pub fn load(path: &Path, required: bool) -> Result<FileConfig, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => FileConfig::parse(&text, path),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && !required => {
                Ok(FileConfig::default())
            }
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    pub fn parse(text: &str, path: &Path) -> Result<FileConfig, ConfigError> {
        toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
    }
}

/// When and how to draw the agent's attention.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Notify {
    /// Ring the terminal bell.
    pub bell: bool,
    /// Also ask the terminal for a desktop notification.
    pub desktop: Desktop,
    /// On a new waiting visitor (silent while away).
    pub new_visitor: bool,
    /// On a visitor's message in one of the agent's own chats, off screen
    /// (rings while away too).
    pub new_message: bool,
    /// When a colleague transfers a chat to the agent (rings while away
    /// too).
    pub transfer: bool,
    /// At most one ring per this many seconds; what happens in between is
    /// counted and rung as one when the period ends.
    pub quiet_seconds: u16,
}

impl Default for Notify {
    fn default() -> Self {
        Notify {
            bell: true,
            desktop: Desktop::Off,
            new_visitor: true,
            new_message: true,
            transfer: true,
            quiet_seconds: 5,
        }
    }
}

/// The escape sequence terminals use for desktop notifications.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Desktop {
    #[default]
    Off,
    /// `OSC 777;notify;TITLE;BODY` (rxvt, foot, WezTerm, Ghostty…).
    Osc777,
    /// `OSC 9;BODY` (iTerm2, Windows Terminal, kitty…).
    Osc9,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyPrefs {
    /// Enter sends and Alt-Enter inserts a newline; `false` swaps the two.
    pub enter_sends: bool,
}

impl Default for KeyPrefs {
    fn default() -> Self {
        KeyPrefs { enter_sends: true }
    }
}

/// A canned reply: `/shortcut` in the compose box expands to `text`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Canned {
    pub shortcut: String,
    pub text: String,
}

/// Everything the client runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The agent endpoint, e.g. `ws://127.0.0.1:8080/ws/agent`.
    pub url: String,
    pub token: String,
    /// How to check a `wss://` relay's certificate; `None` for `ws://`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub log_file: Option<PathBuf>,
    /// Capture the mouse (`--no-mouse` or `mouse = false` turn it off).
    pub mouse: bool,
    pub notify: Notify,
    pub keys: KeyPrefs,
    pub canned: Vec<Canned>,
    pub files: FileSettings,
}

impl Settings {
    /// Lets `relay`, `token` and `ca_file` (from a flag or the environment)
    /// win over the file, and reads the token file and CA certificates.
    /// `path` names the file in error messages.
    pub fn resolve(
        relay: Option<String>,
        token: Option<Token>,
        ca_file: Option<PathBuf>,
        file: FileConfig,
        path: &str,
    ) -> Result<Settings, ConfigError> {
        let relay = relay
            .or(file.relay)
            .ok_or_else(|| ConfigError::NoRelay(path.to_owned()))?;
        let token = token
            .or(file.token.map(Token::Value))
            .or(file.token_file.map(Token::File))
            .ok_or_else(|| ConfigError::NoToken(path.to_owned()))?
            .read()?;
        let url = agent_url(&relay)?;
        let tls = if url.starts_with("wss://") {
            let ca_file = ca_file.or(file.ca_file);
            Some(tls::client_config(ca_file.as_deref())?)
        } else {
            None
        };
        Ok(Settings {
            url,
            token,
            tls,
            log_file: file.log_file,
            mouse: file.mouse.unwrap_or(true),
            notify: file.notify,
            keys: file.keys,
            canned: file.canned,
            files: FileSettings::resolve(file.files),
        })
    }
}

/// `ws://host:port` → `ws://host:port/ws/agent` (and the same for
/// `wss://`); a URL that already names a path is kept as it is (the relay
/// may sit behind a prefix).
pub fn agent_url(relay: &str) -> Result<String, ConfigError> {
    let Some((scheme, rest)) = ["wss://", "ws://"]
        .into_iter()
        .find_map(|scheme| Some((scheme, relay.strip_prefix(scheme)?)))
    else {
        return Err(ConfigError::BadRelay(relay.to_owned()));
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() {
        Err(ConfigError::BadRelay(relay.to_owned()))
    } else if path.is_empty() {
        Ok(format!("{scheme}{host}/ws/agent"))
    } else {
        Ok(relay.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
relay = "ws://file:1"
token = "file-token"
mouse = false

[notify]
bell = false
desktop = "osc9"

[keys]
enter_sends = false

[[canned]]
shortcut = "hi"
text = "Hello! How can I help?"

[files]
download_dir = "/srv/desk"
opener = ["open", "-a", "Preview"]
inline_previews = false
"#;

    fn file() -> FileConfig {
        FileConfig::parse(FILE, Path::new("tui.toml")).expect("the sample parses")
    }

    #[test]
    fn flags_and_environment_win_over_the_file() {
        let settings =
            Settings::resolve(Some("ws://flag:2".into()), None, None, file(), "tui.toml")
                .expect("complete settings");
        assert_eq!(settings.url, "ws://flag:2/ws/agent");
        assert_eq!(settings.token, "file-token");
        assert!(!settings.notify.bell);
        assert!(settings.notify.new_visitor, "unset fields keep defaults");
        assert_eq!(settings.notify.desktop, Desktop::Osc9);
        assert!(!settings.keys.enter_sends);
        assert_eq!(settings.canned[0].shortcut, "hi");
        assert!(!settings.mouse);
        assert_eq!(settings.files.download_dir, Path::new("/srv/desk"));
        assert_eq!(settings.files.opener, ["open", "-a", "Preview"]);
        assert!(!settings.files.inline_previews);
        let default = Settings::resolve(
            None,
            None,
            None,
            FileConfig::parse("relay = \"ws://h:1\"\ntoken = \"t\"", Path::new("x"))
                .expect("parses"),
            "x",
        )
        .expect("complete settings");
        assert!(default.mouse, "the mouse is captured unless turned off");
        assert!(
            default.files.inline_previews,
            "inline previews unless turned off"
        );
    }

    #[test]
    fn downloads_go_to_the_download_folder() {
        let home = Path::new("/home/ming");
        assert_eq!(
            default_download_dir(Some(Path::new("/data/dl")), Some(home)),
            Path::new("/data/dl/kefu")
        );
        assert_eq!(
            default_download_dir(Some(Path::new("relative")), Some(home)),
            Path::new("/home/ming/Downloads/kefu"),
            "relative XDG values are ignored"
        );
        assert_eq!(
            default_download_dir(None, None),
            Path::new("kefu-downloads")
        );
    }

    #[test]
    fn missing_relay_or_token_is_explained() {
        let token = Some(Token::Value("t".into()));
        let error = Settings::resolve(None, token, None, FileConfig::default(), "x.toml")
            .expect_err("no relay anywhere");
        assert!(error.to_string().contains("KEFU_RELAY"), "{error}");
        let error = Settings::resolve(
            Some("ws://h:1".into()),
            None,
            None,
            FileConfig::default(),
            "x",
        )
        .expect_err("no token anywhere");
        assert!(error.to_string().contains("KEFU_TOKEN"), "{error}");
        assert!(error.to_string().contains("--token-file"), "{error}");
    }

    #[test]
    fn the_readme_example_is_a_valid_config() {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("## The agents' terminal client")
            .nth(1)
            .expect("the README has the kefu-tui section");
        let example = section
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("the section has a TOML example");
        let file = FileConfig::parse(example, Path::new("README.md")).expect("the example parses");
        assert_eq!(file.canned.len(), 1);
        assert_eq!(
            file.notify,
            Notify::default(),
            "the example shows the defaults"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let error = FileConfig::parse("relya = \"ws://x\"", Path::new("tui.toml"))
            .expect_err("a typo is reported");
        assert!(error.to_string().contains("tui.toml"), "{error}");
    }

    #[test]
    fn relay_urls_get_the_agent_path() {
        assert_eq!(
            agent_url("ws://h:8080").expect("ok"),
            "ws://h:8080/ws/agent"
        );
        assert_eq!(
            agent_url("ws://h:8080/").expect("ok"),
            "ws://h:8080/ws/agent"
        );
        assert_eq!(
            agent_url("ws://h/kefu/ws/agent").expect("ok"),
            "ws://h/kefu/ws/agent"
        );
        assert_eq!(
            agent_url("wss://chat.example").expect("ok"),
            "wss://chat.example/ws/agent"
        );
        assert_eq!(
            agent_url("wss://chat.example/kefu/ws/agent").expect("ok"),
            "wss://chat.example/kefu/ws/agent"
        );
        assert!(agent_url("http://h").is_err());
        assert!(agent_url("https://h").is_err());
        assert!(agent_url("ws://").is_err());
        assert!(agent_url("wss://").is_err());
    }

    #[test]
    fn a_token_file_is_read_trimmed_and_a_given_token_wins_over_the_file() {
        let dir = std::env::temp_dir().join(format!("kefu-tui-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("token");
        std::fs::write(&path, "kefu_secret\n").expect("write");
        let relay = || Some("ws://h:1".to_owned());
        let from_file =
            Settings::resolve(relay(), Some(Token::File(path.clone())), None, file(), "x")
                .expect("a token file");
        assert_eq!(from_file.token, "kefu_secret");
        assert!(from_file.tls.is_none(), "no TLS for ws://");

        let in_config = FileConfig {
            token_file: Some(path.clone()),
            ..FileConfig::default()
        };
        let settings = Settings::resolve(relay(), None, None, in_config, "x").expect("valid");
        assert_eq!(settings.token, "kefu_secret", "token_file in the config");

        std::fs::write(&path, " \n").expect("write");
        let error = Settings::resolve(relay(), Some(Token::File(path.clone())), None, file(), "x")
            .expect_err("an empty token file");
        assert!(error.to_string().contains("empty"), "{error}");
        let missing = dir.join("missing");
        let error = Settings::resolve(relay(), Some(Token::File(missing)), None, file(), "x")
            .expect_err("no such file");
        assert!(error.to_string().contains("missing"), "{error}");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_wss_relay_is_checked_against_the_ca_file_given() {
        let dir = std::env::temp_dir().join(format!("kefu-tui-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("ca.pem");
        std::fs::write(&path, "no certificate here\n").expect("write");
        let token = || Some(Token::Value("t".into()));
        let error = Settings::resolve(
            Some("wss://h:1".into()),
            token(),
            Some(path.clone()),
            FileConfig::default(),
            "x",
        )
        .expect_err("the CA file is read for wss://");
        assert!(error.to_string().contains("ca.pem"), "{error}");
        let plain = Settings::resolve(
            Some("ws://h:1".into()),
            token(),
            Some(path),
            FileConfig::default(),
            "x",
        )
        .expect("a CA file is not needed for ws://");
        assert!(plain.tls.is_none());
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn config_lives_under_xdg_or_home() {
        let xdg = default_path(Some(Path::new("/x")), Some(Path::new("/home/a")));
        assert_eq!(xdg, Some(PathBuf::from("/x/kefu/tui.toml")));
        let home = default_path(Some(Path::new("relative")), Some(Path::new("/home/a")));
        assert_eq!(home, Some(PathBuf::from("/home/a/.config/kefu/tui.toml")));
        assert_eq!(default_path(None, None), None);
    }
}
