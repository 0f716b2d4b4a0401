//! The `kefu-tui` binary's command line, up to the point where it would take
//! over the terminal: where the token and the CA certificates come from, and
//! errors that name the file to fix.

use std::process::{Command, Output, Stdio};

const KEFU_TUI: &str = env!("CARGO_BIN_EXE_kefu-tui");

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(KEFU_TUI)
        .args(["--config", "/dev/null"])
        .args(args)
        .env_remove("KEFU_TOKEN")
        .env_remove("KEFU_TOKEN_FILE")
        .env_remove("KEFU_CA_FILE")
        .env_remove("KEFU_RELAY")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run kefu-tui")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_token_file_flag_wins_over_the_environment_and_a_bad_one_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such-token");
    let missing = missing.to_str().expect("UTF-8 path");
    // KEFU_TOKEN is set, but the flag asks for the file: the file is read.
    let output = run(
        &["--relay", "ws://127.0.0.1:1", "--token-file", missing],
        &[("KEFU_TOKEN", "kefu_from_env")],
    );
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("cannot read the agent token from") && message.contains("no-such-token"),
        "{message}"
    );
}

#[test]
fn a_ca_file_that_holds_no_certificate_stops_the_client_before_it_starts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate\n").expect("write");
    let output = run(
        &[
            "--relay",
            "wss://127.0.0.1:1",
            "--ca-file",
            ca.to_str().expect("UTF-8"),
        ],
        &[("KEFU_TOKEN", "kefu_from_env")],
    );
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("ca.pem") && message.contains("no usable CA"),
        "{message}"
    );
}
