//! The optional TOML file (`--config PATH`). Every key is optional: a key
//! left out falls back to the default, and one given on the command line or
//! in the environment overrides it. Unknown keys are refused, so a typo is an
//! error instead of a setting silently ignored.
//!
//! The same shape is written back by `check-config` to show the effective
//! configuration, so every field serializes too.

use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::LogFormat;
use super::settings::ConfigError;

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub greeting: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_assign: Option<bool>,
    /// Seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_grace: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// Seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_heartbeat: Option<f64>,
    #[serde(default)]
    pub limits: FileLimits,
}

/// The `[limits]` table.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileLimits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_frame_bytes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_message_chars: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames_per_second: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_burst: Option<u32>,
    /// Seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hello_timeout: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections_per_ip: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound_queue: Option<usize>,
    /// Seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping_interval: Option<f64>,
}

impl FileConfig {
    /// Reads and parses `path`. Errors name the file, and for a bad key its
    /// line, the key and why.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        FileConfig::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses the file's text; the error says where and why.
    pub fn parse(text: &str) -> Result<FileConfig, String> {
        toml::from_str(text).map_err(|error| error.to_string().trim_end().to_owned())
    }

    /// The file's text for these settings.
    pub fn to_toml(&self) -> String {
        // Only plain strings, numbers, booleans and addresses: serializing
        // cannot fail.
        toml::to_string(self).unwrap_or_else(|error| format!("# cannot show: {error}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_fractions_both_count_as_seconds() {
        let file = FileConfig::parse("presence_grace = 3\n[limits]\nhello_timeout = 2.5\n")
            .expect("valid file");
        assert_eq!(file.presence_grace, Some(3.0));
        assert_eq!(file.limits.hello_timeout, Some(2.5));
    }

    #[test]
    fn a_misspelt_key_is_an_error_that_names_it_and_its_line() {
        let error = FileConfig::parse("listen = \"127.0.0.1:1\"\ngreting = \"hi\"\n")
            .expect_err("unknown key");
        assert!(error.contains("greting"), "{error}");
        assert!(error.contains("line 2"), "{error}");
        let error = FileConfig::parse("[limits]\nmax_frame = 1\n").expect_err("unknown key");
        assert!(error.contains("max_frame"), "{error}");
    }

    #[test]
    fn a_value_of_the_wrong_kind_is_an_error_that_names_the_key() {
        let error = FileConfig::parse("listen = \"port 80\"\n").expect_err("bad address");
        assert!(error.contains("listen"), "{error}");
        let error = FileConfig::parse("[limits]\nframe_burst = -1\n").expect_err("negative");
        assert!(error.contains("frame_burst"), "{error}");
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        let file = FileConfig {
            listen: Some("0.0.0.0:80".parse().expect("addr")),
            greeting: Some("Hi \"there\"".into()),
            allowed_origins: Some(vec!["https://shop.example".into()]),
            presence_grace: Some(1.5),
            limits: FileLimits {
                frame_burst: Some(7),
                ..FileLimits::default()
            },
            ..FileConfig::default()
        };
        assert_eq!(FileConfig::parse(&file.to_toml()), Ok(file));
    }
}
