//! Where a value came from, so that an error can point at the one place to
//! fix: the flag, the environment variable, or the file and its key.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid configuration file {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    /// `key` is the file's (`limits.hello_timeout`); `origin` says which of
    /// the flag, the variable or the file set it.
    #[error("invalid {key} (set by {origin}): {why}")]
    Invalid {
        key: &'static str,
        origin: String,
        why: String,
    },
}

/// One of the places a setting is read from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Source {
    /// `--hello-timeout`.
    Flag,
    /// `KEFU_HELLO_TIMEOUT`.
    Env,
    /// The configuration file, named when known.
    File(Option<PathBuf>),
    #[default]
    Default,
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Given<T> {
    pub value: T,
    pub source: Source,
}

impl Source {
    /// The error for the setting `key` (`limits.hello_timeout`) when the
    /// value from here is wrong.
    pub(super) fn invalid(&self, key: &'static str, why: impl Into<String>) -> ConfigError {
        let origin = match self {
            Source::Flag => format!("--{}", flag_name(key)),
            Source::Env => env_name(key),
            Source::File(Some(path)) => path.display().to_string(),
            Source::File(None) => "the configuration file".to_owned(),
            Source::Default => "the default".to_owned(),
        };
        ConfigError::Invalid {
            key,
            origin,
            why: why.into(),
        }
    }
}

/// The flag of the file key `key`, without `--`: `limits.hello_timeout` is
/// `--hello-timeout` (the table is left out).
pub fn flag_name(key: &str) -> String {
    name(key).replace('_', "-")
}

/// The environment variable of the file key `key`: `limits.hello_timeout`
/// is `KEFU_HELLO_TIMEOUT`.
pub fn env_name(key: &str) -> String {
    format!("KEFU_{}", name(key).to_ascii_uppercase())
}

/// The key without its table: the setting's name on the command line.
pub fn name(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

/// The precedence rule: the command line (the flag, else its variable)
/// over the file over the default already in `slot`. The value found is
/// checked by `parse`, and an error names its source; returns that source.
pub fn pick<T, U>(
    key: &'static str,
    command_line: Option<Given<T>>,
    file: Option<T>,
    file_source: &Source,
    parse: impl FnOnce(T) -> Result<U, String>,
    slot: &mut U,
) -> Result<Source, ConfigError> {
    let given = command_line.or_else(|| {
        file.map(|value| Given {
            value,
            source: file_source.clone(),
        })
    });
    let Some(Given { value, source }) = given else {
        return Ok(Source::Default);
    };
    *slot = parse(value).map_err(|why| source.invalid(key, why))?;
    Ok(source)
}
