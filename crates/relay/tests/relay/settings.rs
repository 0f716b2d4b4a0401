//! Settings from flags, `KEFU_*` variables and the file, in that order, as
//! `check-config` shows them and `serve` uses them; bad values refused with
//! the one place to fix named. They run the real binary.

use kefu_protocol::ErrorCode;
use kefu_protocol::visitor::VisitorRequest;
use kefu_relay::config::FileConfig;
use kefu_testkit::{RelayProcess, assert_error};

use crate::support::{KEFU_RELAY, run_cli, sqlite_url, stderr, stdout, write_file};

#[tokio::test]
async fn check_config_shows_flags_over_environment_over_file_with_secrets_masked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_file(
        dir.path(),
        "relay.toml",
        r#"
        listen = "0.0.0.0:9000"
        greeting = "from the file"
        database = "postgres://kefu:hunter2@db.internal/kefu"
        public_url = "https://support.example"
        [limits]
        frame_burst = 7
        outbound_queue = 99
        "#,
    );
    let output = run_cli(
        &["check-config", "--config", &config, "--frame-burst", "5"],
        &[
            ("KEFU_GREETING", "from the environment"),
            ("KEFU_FRAME_BURST", "6"),
        ],
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(!text.contains("hunter2"), "the password is masked:\n{text}");
    let effective = FileConfig::parse(&text).expect("the output reads as a config file");
    assert_eq!(effective.greeting.as_deref(), Some("from the environment"));
    assert_eq!(effective.limits.frame_burst, Some(5), "the flag wins");
    assert_eq!(
        effective.limits.outbound_queue,
        Some(99),
        "the file fills in"
    );
    assert_eq!(
        effective.listen,
        Some("0.0.0.0:9000".parse().expect("addr"))
    );
    assert_eq!(
        effective.database.as_deref(),
        Some("postgres://kefu:***@db.internal/kefu")
    );
    assert_eq!(
        effective.limits.max_message_chars,
        Some(kefu_relay::Limits::default().max_message_chars),
        "what nobody set has its default"
    );
}

#[tokio::test]
async fn check_config_refuses_a_bad_file_naming_the_file_the_key_and_why() {
    let dir = tempfile::tempdir().expect("temp dir");
    let typo = write_file(
        dir.path(),
        "typo.toml",
        "greeting = \"hi\"\nlisten_addr = \"x\"\n",
    );
    let output = run_cli(&["check-config", "--config", &typo], &[]).await;
    assert!(!output.status.success(), "a misspelt key is an error");
    let message = stderr(&output);
    for needle in [typo.as_str(), "listen_addr", "line 2"] {
        assert!(message.contains(needle), "{needle:?} in {message}");
    }
    assert!(stdout(&output).is_empty(), "nothing printed as if valid");

    let zero = write_file(dir.path(), "zero.toml", "[limits]\nping_interval = 0\n");
    let output = run_cli(&["check-config", "--config", &zero], &[]).await;
    assert!(!output.status.success(), "a zero interval is an error");
    let message = stderr(&output);
    for needle in [zero.as_str(), "limits.ping_interval", "more than 0 seconds"] {
        assert!(message.contains(needle), "{needle:?} in {message}");
    }

    let missing = dir.path().join("missing.toml");
    let output = run_cli(
        &["check-config", "--config", &missing.display().to_string()],
        &[],
    )
    .await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("missing.toml"),
        "{}",
        stderr(&output)
    );
}

/// An error names the one place to fix: the flag, its variable or the file.
#[tokio::test]
async fn check_config_names_the_flag_the_variable_or_the_file_of_a_bad_value() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_file(dir.path(), "relay.toml", "presence_grace = -1\n");
    for (args, env, origin) in [
        (
            &["check-config", "--presence-grace=-1"][..],
            &[][..],
            "--presence-grace",
        ),
        (
            &["check-config"][..],
            &[("KEFU_PRESENCE_GRACE", "-1")][..],
            "KEFU_PRESENCE_GRACE",
        ),
        (&["check-config", "--config", &config][..], &[][..], &config),
    ] {
        let output = run_cli(args, env).await;
        assert!(!output.status.success(), "{args:?} {env:?}");
        let expected = format!("invalid presence_grace (set by {origin}): must be 0 or more");
        assert!(stderr(&output).contains(&expected), "{}", stderr(&output));
    }
}

#[tokio::test]
async fn serve_takes_settings_from_the_environment_and_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_file(
        dir.path(),
        "relay.toml",
        "greeting = \"from the file\"\n[limits]\nmax_message_chars = 20\n",
    );
    let relay = RelayProcess::start_with_env(
        KEFU_RELAY,
        &sqlite_url(&dir.path().join("kefu.db")),
        &["--config", &config],
        &[("KEFU_GREETING", "from the environment".as_ref())],
    )
    .await;

    let mut visitor = relay.visitor().await;
    let welcome = visitor.hello(None, None).await;
    assert_eq!(welcome.greeting, "from the environment");
    visitor.say("short", "fits in twenty").await;
    visitor
        .send(&VisitorRequest::Send {
            attachments: Vec::new(),
            client_id: "long".into(),
            text: "twenty-one characters".into(),
        })
        .await;
    assert_error(&visitor.next_error().await, ErrorCode::TooLarge);
    relay.kill().await;
}
