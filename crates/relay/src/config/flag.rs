//! How a setting is asked for on the command line: its flag, read also from
//! its `KEFU_*` variable (clap reads both, the flag first), with the help
//! text ending in the default that applies when neither nor the file sets
//! it. The flag and variable names are derived from the file key, so the
//! three cannot drift apart.

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, ValueEnum, value_parser};

use super::source::{Given, Source, env_name, flag_name, name};
use super::values::{LogFormat, VisitorAddress};

/// Which command lines take a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every subcommand (`--database`, `--log-format`).
    Global,
    /// `serve` and `check-config`.
    Serve,
}

/// A kind of value a flag takes.
pub trait Flag: Sized + Clone + Send + Sync + 'static {
    /// How the flag parses and collects its value.
    fn takes(arg: Arg) -> Arg;
    fn read(matches: &ArgMatches, id: &str) -> Option<Self> {
        matches.try_get_one::<Self>(id).ok().flatten().cloned()
    }
    /// The value as `--help` shows a default; `None` shows none.
    fn shown(&self) -> Option<String>;
}

macro_rules! scalar_flags {
    ($($kind:ty),*) => {$(
        impl Flag for $kind {
            fn takes(arg: Arg) -> Arg {
                arg.value_parser(value_parser!($kind)).action(ArgAction::Set)
            }
            fn shown(&self) -> Option<String> {
                Some(self.to_string())
            }
        }
    )*};
}

scalar_flags!(String, std::net::SocketAddr, f64, usize, u32);

impl Flag for std::path::PathBuf {
    fn takes(arg: Arg) -> Arg {
        arg.value_parser(value_parser!(std::path::PathBuf))
            .action(ArgAction::Set)
    }
    fn shown(&self) -> Option<String> {
        Some(self.display().to_string())
    }
}

/// `--auto-assign` alone means true; `--auto-assign=false` is possible too,
/// to override the file.
impl Flag for bool {
    fn takes(arg: Arg) -> Arg {
        arg.value_parser(value_parser!(bool))
            .num_args(0..=1)
            .default_missing_value("true")
            .action(ArgAction::Set)
    }
    fn shown(&self) -> Option<String> {
        Some(self.to_string())
    }
}

/// Comma-separated on the command line, an array in the file.
impl Flag for Vec<String> {
    fn takes(arg: Arg) -> Arg {
        arg.value_parser(value_parser!(String))
            .value_delimiter(',')
            .action(ArgAction::Append)
    }
    fn read(matches: &ArgMatches, id: &str) -> Option<Self> {
        let values = matches.try_get_many::<String>(id).ok().flatten()?;
        Some(values.cloned().collect())
    }
    fn shown(&self) -> Option<String> {
        (!self.is_empty()).then(|| self.join(","))
    }
}

/// Settings that take one of a few names (`clap::ValueEnum`).
macro_rules! named_flags {
    ($($kind:ty),*) => {$(
        impl Flag for $kind {
            fn takes(arg: Arg) -> Arg {
                arg.value_parser(value_parser!($kind))
                    .action(ArgAction::Set)
            }
            fn shown(&self) -> Option<String> {
                self.to_possible_value()
                    .map(|value| value.get_name().to_owned())
            }
        }
    )*};
}

named_flags!(LogFormat, VisitorAddress);

/// The flag of the setting `key` (`limits.hello_timeout`), listed `order`th
/// in `--help`. `help` is its doc comment, one string a line.
pub fn arg<T: Flag>(
    key: &'static str,
    scope: Scope,
    help: &[&str],
    default: Option<T>,
    order: usize,
) -> Arg {
    let mut text = help
        .iter()
        .map(|line| line.trim())
        .collect::<Vec<_>>()
        .join(" ");
    // clap's derive drops a summary's final period too.
    if text.ends_with('.') {
        text.pop();
    }
    if let Some(default) = default.as_ref().and_then(Flag::shown) {
        text = format!("{text} [default: {default}]");
    }
    let arg = Arg::new(name(key))
        .long(flag_name(key))
        .env(env_name(key))
        .value_name(name(key).to_ascii_uppercase())
        .help(text)
        .display_order(order)
        .global(scope == Scope::Global);
    T::takes(arg)
}

/// The value of `key` on this command line, if given, and whether by flag
/// or by variable.
pub fn given<T: Flag>(matches: &ArgMatches, key: &'static str) -> Option<Given<T>> {
    let id = name(key);
    let value = T::read(matches, id)?;
    let source = match matches.value_source(id) {
        Some(ValueSource::EnvVariable) => Source::Env,
        _ => Source::Flag,
    };
    Some(Given { value, source })
}
