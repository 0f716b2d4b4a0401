use std::time::Duration;

use clap::{CommandFactory, Parser};

use super::*;
use crate::config::Limits;

/// The command line as `serve` parses it.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(flatten)]
    serve: ServeArgs,
}

fn parse(args: &[&str]) -> (GlobalArgs, ServeArgs) {
    let cli = Cli::try_parse_from(std::iter::once("kefu-relay").chain(args.iter().copied()))
        .expect("valid arguments");
    (cli.global, cli.serve)
}

fn file(text: &str) -> FileConfig {
    toml::from_str(text).expect("valid file")
}

#[test]
fn flags_beat_the_file_and_the_file_beats_defaults() {
    let (mut global, serve) = parse(&["--greeting", "from the flag", "--frame-burst", "5"]);
    global.config = Some("relay.toml".into());
    let file = file(
        r#"
        greeting = "from the file"
        listen = "0.0.0.0:9000"
        [limits]
        frame_burst = 7
        frames_per_second = 3
        "#,
    );
    let settings = Settings::resolve(global, serve, file).expect("valid");
    assert_eq!(settings.relay.greeting, "from the flag");
    assert_eq!(settings.relay.limits.frame_burst, 5);
    assert_eq!(settings.listen, "0.0.0.0:9000".parse().expect("addr"));
    assert_eq!(settings.relay.limits.frames_per_second, 3);
    // Untouched settings keep their defaults.
    let defaults = Config::default();
    assert_eq!(settings.relay.database, defaults.database);
    assert_eq!(
        settings.relay.limits.outbound_max_wait,
        defaults.limits.outbound_max_wait
    );
    assert_eq!(settings.ignored_outbound_queue, None);
    assert!(!settings.relay.auto_assign);
}

#[test]
fn nothing_given_means_the_documented_defaults() {
    let settings = Settings::resolve(
        GlobalArgs::default(),
        ServeArgs::default(),
        FileConfig::default(),
    )
    .expect("valid");
    assert_eq!(settings.listen, DEFAULT_LISTEN);
    assert_eq!(settings.relay.database, "sqlite://kefu.db");
    assert_eq!(settings.log_format, LogFormat::Text);
    assert_eq!(settings.relay.presence_grace, Duration::from_secs(10));
    assert_eq!(settings.relay.limits.ping_interval, Duration::from_secs(20));
    assert_eq!(settings.relay.metrics_listen, None);
}

#[test]
fn the_heartbeat_expires_after_three_beats() {
    let (global, serve) = parse(&["--cluster-heartbeat", "2"]);
    let settings = Settings::resolve(global, serve, FileConfig::default()).expect("valid");
    assert_eq!(settings.relay.heartbeat.every, Duration::from_secs(2));
    assert_eq!(
        settings.relay.heartbeat.expire_after,
        Duration::from_secs(6)
    );
}

#[test]
fn auto_assign_is_a_switch_or_an_explicit_boolean() {
    let on = |args: &[&str], text: &str| {
        let (global, serve) = parse(args);
        Settings::resolve(global, serve, file(text))
            .expect("valid")
            .relay
            .auto_assign
    };
    assert!(on(&["--auto-assign"], ""));
    assert!(!on(&["--auto-assign=false"], "auto_assign = true"));
    assert!(on(&[], "auto_assign = true"));
}

#[test]
fn an_invalid_value_names_the_key_its_source_and_why() {
    let global = GlobalArgs {
        config: Some("/etc/kefu/relay.toml".into()),
        ..GlobalArgs::default()
    };
    let error = Settings::resolve(
        global,
        ServeArgs::default(),
        file("[limits]\nhello_timeout = 0"),
    )
    .expect_err("zero timeout");
    let message = error.to_string();
    assert!(message.contains("limits.hello_timeout"), "{message}");
    assert!(message.contains("/etc/kefu/relay.toml"), "{message}");
    assert!(message.contains("more than 0 seconds"), "{message}");

    for (text, key) in [
        ("database = \"mysql://x\"", "database"),
        (
            "allowed_origins = [\"https://shop.example/path\"]",
            "allowed_origins",
        ),
        ("public_url = \"support.example\"", "public_url"),
        ("trusted_proxies = [\"10.0.0.0/33\"]", "trusted_proxies"),
        ("[limits]\nmax_frame_bytes = 10", "max_frame_bytes"),
        (
            "listen = \"127.0.0.1:9\"\nmetrics_listen = \"127.0.0.1:9\"",
            "metrics_listen",
        ),
    ] {
        let message = Settings::resolve(GlobalArgs::default(), ServeArgs::default(), file(text))
            .expect_err(text)
            .to_string();
        assert!(message.contains(key), "{text}: {message}");
    }
}

/// The one source of a bad value is named: the flag, the variable, or the
/// file (with the key).
#[test]
fn an_error_tells_the_flag_from_its_variable_and_the_file() {
    let (global, serve) = parse(&["--presence-grace=-1"]);
    let message = Settings::resolve(global, serve, FileConfig::default())
        .expect_err("negative grace")
        .to_string();
    assert_eq!(
        message,
        "invalid presence_grace (set by --presence-grace): must be 0 or more seconds, not -1"
    );

    // What clap reports as read from the environment (the binary's own
    // test, in tests/relay/ops.rs, sets the real variable).
    let from_env = ServeArgs {
        given: CommandLine {
            presence_grace: Some(Given {
                value: -1.0,
                source: Source::Env,
            }),
            ..CommandLine::default()
        },
    };
    let message = Settings::resolve(GlobalArgs::default(), from_env, FileConfig::default())
        .expect_err("negative grace")
        .to_string();
    assert_eq!(
        message,
        "invalid presence_grace (set by KEFU_PRESENCE_GRACE): must be 0 or more seconds, not -1"
    );

    let global = GlobalArgs {
        config: Some("relay.toml".into()),
        ..GlobalArgs::default()
    };
    let message = Settings::resolve(global, ServeArgs::default(), file("presence_grace = -1"))
        .expect_err("negative grace")
        .to_string();
    assert_eq!(
        message,
        "invalid presence_grace (set by relay.toml): must be 0 or more seconds, not -1"
    );

    let (global, serve) = parse(&["--listen", "127.0.0.1:9", "--metrics-listen=127.0.0.1:9"]);
    let message = Settings::resolve(global, serve, FileConfig::default())
        .expect_err("same address twice")
        .to_string();
    assert!(message.contains("(set by --metrics-listen)"), "{message}");
}

#[test]
fn trusted_proxies_are_addresses_or_ranges() {
    let (global, serve) = parse(&["--trusted-proxies", "10.0.0.1, 192.168.7.9/16,,::1"]);
    let settings = Settings::resolve(global, serve, FileConfig::default()).expect("valid");
    let ranges: Vec<String> = (settings.relay.trusted_proxies.ranges().iter())
        .map(ToString::to_string)
        .collect();
    assert_eq!(ranges, ["10.0.0.1/32", "192.168.0.0/16", "::1/128"]);
}

#[test]
fn origins_are_trimmed_and_empty_ones_dropped() {
    let (global, serve) = parse(&[
        "--allowed-origins",
        " https://a.example/ ,,http://b.example:81",
    ]);
    let settings = Settings::resolve(global, serve, FileConfig::default()).expect("valid");
    assert_eq!(
        settings.relay.allowed_origins,
        ["https://a.example", "http://b.example:81"]
    );
}

#[test]
fn every_flag_is_named_after_its_variable() {
    // Error messages derive `--flag` and `KEFU_VAR` from the key; this keeps
    // the derivation true.
    for arg in Cli::command().get_arguments() {
        let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) else {
            continue;
        };
        let expected = format!("KEFU_{}", long.replace('-', "_").to_ascii_uppercase());
        assert_eq!(env.to_str(), Some(expected.as_str()), "--{long}");
    }
}

/// Every `[default: …]` in `--help`, given back as the flag's value, yields
/// the same settings as giving nothing: the help cannot show a default the
/// relay does not use. (`--help` is rendered, not the args' help read, so
/// that what a user sees is what is tested.)
#[test]
fn the_defaults_in_help_are_the_real_defaults() {
    let help = Cli::command().render_long_help().to_string();
    let mut args = vec!["kefu-relay".to_owned()];
    let mut flag = None;
    for line in help.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("--") {
            flag = rest.split([' ', '[', '=']).next().map(str::to_owned);
        }
        if let (Some(flag), Some((_, shown))) = (&flag, line.split_once("[default: ")) {
            let shown = shown.strip_suffix(']').expect("one default a line");
            args.push(format!("--{flag}={shown}"));
        }
    }
    let settings = Cli::command()
        .get_arguments()
        .filter(|arg| arg.get_env().is_some() && arg.get_id() != "config")
        .count();
    assert_eq!(
        args.len() - 1,
        settings - 11,
        "every setting but public_url, allowed_origins, trusted_proxies, metrics_listen, \
         tls_cert, tls_key, ice_servers, turn_secret, files_dir, files_url and the ignored \
         outbound_queue shows its default: {args:?}\n{help}"
    );

    let cli = Cli::try_parse_from(&args).expect("the shown defaults parse");
    let from_help = Settings::resolve(cli.global, cli.serve, FileConfig::default()).expect("valid");
    let defaults = Settings {
        relay: Config::default(),
        ..Settings::default()
    };
    assert_eq!(from_help.to_toml(), defaults.to_toml());
    assert_eq!(
        from_help.relay.presence_grace,
        defaults.relay.presence_grace
    );
}

#[test]
fn the_effective_configuration_masks_passwords_and_reads_back() {
    let (global, serve) = parse(&[
        "--database",
        "postgres://kefu:s3cret@db.internal/kefu?sslpassword=x&a=1",
    ]);
    let settings = Settings::resolve(global, serve, FileConfig::default()).expect("valid");
    let text = settings.to_toml();
    assert!(!text.contains("s3cret"), "{text}");
    assert!(
        text.contains("postgres://kefu:***@db.internal/kefu?sslpassword=***&a=1"),
        "{text}"
    );
    let back: FileConfig = toml::from_str(&text).expect("reads back");
    assert_eq!(back.limits.frame_burst, Some(Limits::default().frame_burst));
}

#[test]
fn integers_and_fractions_both_count_as_seconds() {
    let file = FileConfig::parse("presence_grace = 3\n[limits]\nhello_timeout = 2.5\n")
        .expect("valid file");
    assert_eq!(file.presence_grace, Some(3.0));
    assert_eq!(file.limits.hello_timeout, Some(2.5));
}

#[test]
fn a_misspelt_key_is_an_error_that_names_it_and_its_line() {
    let error =
        FileConfig::parse("listen = \"127.0.0.1:1\"\ngreting = \"hi\"\n").expect_err("unknown key");
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

#[test]
fn tls_takes_a_certificate_and_its_key_together() {
    let (global, serve) = parse(&[
        "--tls-cert",
        "/etc/kefu/cert.pem",
        "--tls-key=/etc/kefu/key.pem",
    ]);
    let settings = Settings::resolve(global, serve, FileConfig::default()).expect("valid");
    assert_eq!(
        settings.relay.tls,
        Some(TlsFiles {
            cert: "/etc/kefu/cert.pem".into(),
            key: "/etc/kefu/key.pem".into(),
        })
    );
    let text = settings.to_toml();
    assert!(text.contains("tls_cert = \"/etc/kefu/cert.pem\""), "{text}");
    assert_eq!(
        FileConfig::parse(&text).expect("reads back").tls_key,
        Some("/etc/kefu/key.pem".into())
    );

    let from_file =
        file("tls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n[limits]\ntls_handshake_timeout = 2.5");
    let settings =
        Settings::resolve(GlobalArgs::default(), ServeArgs::default(), from_file).expect("valid");
    assert_eq!(settings.relay.tls.map(|tls| tls.key), Some("k.pem".into()));
    assert_eq!(
        settings.relay.limits.tls_handshake_timeout,
        Duration::from_millis(2500)
    );

    let plain = Settings::resolve(
        GlobalArgs::default(),
        ServeArgs::default(),
        FileConfig::default(),
    )
    .expect("valid");
    assert_eq!(plain.relay.tls, None, "plain HTTP unless asked");
    assert_eq!(
        plain.relay.limits.tls_handshake_timeout,
        Duration::from_secs(10)
    );
}

#[test]
fn a_certificate_without_its_key_or_a_key_alone_is_refused() {
    let (global, serve) = parse(&["--tls-cert", "cert.pem"]);
    let message = Settings::resolve(global, serve, FileConfig::default())
        .expect_err("no key")
        .to_string();
    assert_eq!(
        message,
        "invalid tls_cert (set by --tls-cert): needs tls_key too (the certificate's private key)"
    );

    let global = GlobalArgs {
        config: Some("relay.toml".into()),
        ..GlobalArgs::default()
    };
    let message = Settings::resolve(global, ServeArgs::default(), file("tls_key = \"k.pem\""))
        .expect_err("no certificate")
        .to_string();
    assert_eq!(
        message,
        "invalid tls_key (set by relay.toml): needs tls_cert too (the certificate the key belongs to)"
    );
}

#[test]
fn ice_servers_and_the_turn_secret_come_from_flags_and_the_file() {
    let (global, serve) = parse(&[
        "--ice-servers",
        "stun:stun.example:3478,turn:turn.example:3478?transport=udp",
    ]);
    let settings = Settings::resolve(
        global,
        serve,
        file("turn_secret = \"north\"\nturn_credential_ttl = 600"),
    )
    .expect("valid");
    let ice = &settings.relay.ice;
    assert_eq!(ice.urls.len(), 2);
    assert_eq!(ice.turn_secret.as_deref(), Some("north"));
    assert_eq!(ice.credential_ttl, Duration::from_secs(600));
    let (global, serve) = parse(&["--ice-servers", "https://turn.example"]);
    let error = Settings::resolve(global, serve, FileConfig::default()).expect_err("not ICE");
    assert!(error.to_string().contains("ice"), "{error}");
}

#[test]
fn retention_is_off_or_a_duration_and_reads_back_the_same() {
    let settings = Settings::resolve(
        GlobalArgs::default(),
        ServeArgs::default(),
        FileConfig::default(),
    )
    .expect("defaults");
    assert_eq!(settings.relay.retention, None);
    assert!(settings.to_toml().contains("retention = \"off\""));

    let (global, serve) = parse(&["--retention", "365d"]);
    let settings = Settings::resolve(global, serve, file("retention = \"off\"")).expect("valid");
    assert_eq!(
        settings.relay.retention,
        Some(Duration::from_secs(365 * 86_400))
    );
    assert!(settings.to_toml().contains("retention = \"365d\""));

    let settings = Settings::resolve(
        GlobalArgs::default(),
        ServeArgs::default(),
        file("retention = \"90m\""),
    )
    .expect("valid");
    assert_eq!(settings.relay.retention, Some(Duration::from_secs(5400)));
    // Written in the largest unit that divides it.
    assert!(settings.to_toml().contains("retention = \"90m\""));

    let (global, serve) = parse(&["--retention", "forever"]);
    let message = Settings::resolve(global, serve, FileConfig::default())
        .expect_err("not a duration")
        .to_string();
    assert!(
        message.starts_with("invalid retention (set by --retention)"),
        "{message}"
    );
}
