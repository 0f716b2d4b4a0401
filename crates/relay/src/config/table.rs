//! The `settings!` macro: from one row per setting it generates the flag
//! and its variable ([`super::flag`]), the file key (`FileConfig`,
//! `FileLimits`), the merge by precedence ([`super::source::pick`]) and the
//! effective file that `check-config` prints. The default of each is the
//! value in `Settings::default()` at the row's path, so `--help` shows the
//! real one.
//!
//! A row reads
//!
//! ```text
//! /// Help text (doc comment).
//! key: FileType => path.in.settings, Scope, parse, show, .extra_clap_call(…);
//! ```
//!
//! `parse` turns the given value into the field's (checking it; the error
//! says why), `show` turns the field back into what the file would hold
//! (`None`: leave the key out). Rows under `limits` are keys of `[limits]`.

macro_rules! settings {
    (
        top {$(
            $(#[doc = $doc:literal])+
            $key:ident : $raw:ty => $($path:ident).+ , $scope:ident , $parse:expr , $show:expr
            $(, .$method:ident ( $($extra:expr),* ))* ;
        )*}
        limits {$(
            $(#[doc = $ldoc:literal])+
            $lkey:ident : $lraw:ty => $($lpath:ident).+ , $lscope:ident , $lparse:expr , $lshow:expr
            $(, .$lmethod:ident ( $($lextra:expr),* ))* ;
        )*}
    ) => {
        /// The optional TOML file (`--config PATH`). Every key is optional:
        /// a key left out falls back to the default, and one given on the
        /// command line or in the environment overrides it. Unknown keys are
        /// refused, so a typo is an error instead of a setting silently
        /// ignored. `check-config` writes the same shape back.
        #[derive(Debug, Default, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
        #[serde(deny_unknown_fields)]
        pub struct FileConfig {
            $(
                $(#[doc = $doc])+
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $key: Option<$raw>,
            )*
            #[serde(default)]
            pub limits: FileLimits,
        }

        /// The `[limits]` table.
        #[derive(Debug, Default, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
        #[serde(deny_unknown_fields)]
        pub struct FileLimits {
            $(
                $(#[doc = $ldoc])+
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $lkey: Option<$lraw>,
            )*
        }

        /// What the command line (flags and variables) gave, and which.
        #[derive(Debug, Default, Clone, PartialEq)]
        pub struct CommandLine {
            $(pub $key: Option<Given<$raw>>,)*
            $(pub $lkey: Option<Given<$lraw>>,)*
        }

        impl CommandLine {
            /// Adds the flags of `scope`, in the table's order, after `--config`.
            fn augment(mut command: clap::Command, scope: Scope) -> clap::Command {
                let defaults = Settings::default();
                let mut order = 0;
                $(
                    order += 1;
                    if Scope::$scope == scope {
                        let default: Option<$raw> = ($show)(&defaults.$($path).+);
                        let help = [$($doc),+];
                        command = command.arg(
                            arg(stringify!($key), scope, &help, default, order)
                                $(.$method($($extra),*))*,
                        );
                    }
                )*
                $(
                    order += 1;
                    if Scope::$lscope == scope {
                        let default: Option<$lraw> = ($lshow)(&defaults.$($lpath).+);
                        let help = [$($ldoc),+];
                        command = command.arg(
                            arg(concat!("limits.", stringify!($lkey)), scope, &help, default, order)
                                $(.$lmethod($($lextra),*))*,
                        );
                    }
                )*
                command
            }

            /// The flags of `scope` that were given.
            fn read(matches: &clap::ArgMatches, scope: Scope) -> CommandLine {
                CommandLine {
                    $($key: if Scope::$scope == scope { given(matches, stringify!($key)) } else { None },)*
                    $($lkey: if Scope::$lscope == scope { given(matches, stringify!($lkey)) } else { None },)*
                }
            }

            /// Either's values; the two never set the same flag.
            fn or(self, other: CommandLine) -> CommandLine {
                CommandLine {
                    $($key: self.$key.or(other.$key),)*
                    $($lkey: self.$lkey.or(other.$lkey),)*
                }
            }
        }

        impl Settings {
            /// Sets each setting in `self` (holding the defaults) from the
            /// command line or else the file; returns where each came from,
            /// by file key.
            fn merge(
                &mut self,
                command_line: CommandLine,
                file: FileConfig,
                file_source: &Source,
            ) -> Result<Vec<(&'static str, Source)>, ConfigError> {
                Ok(vec![
                    $({
                        let key = stringify!($key);
                        let slot = &mut self.$($path).+;
                        (key, pick(key, command_line.$key, file.$key, file_source, $parse, slot)?)
                    },)*
                    $({
                        let key = concat!("limits.", stringify!($lkey));
                        let slot = &mut self.$($lpath).+;
                        (key, pick(key, command_line.$lkey, file.limits.$lkey, file_source, $lparse, slot)?)
                    },)*
                ])
            }

            /// These settings as the file would hold them.
            fn file(&self) -> FileConfig {
                FileConfig {
                    $($key: ($show)(&self.$($path).+),)*
                    limits: FileLimits {
                        $($lkey: ($lshow)(&self.$($lpath).+),)*
                    },
                }
            }
        }
    };
}

pub(super) use settings;
