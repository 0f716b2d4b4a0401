//! What only the relay's own tests have; the rest (a relay in this process
//! or as a child, clients, PostgreSQL databases, HTTP) is `kefu_testkit`.

use std::path::Path;

use kefu_testkit::PATIENCE;

/// The `kefu-relay` binary cargo built for these tests, for
/// [`kefu_testkit::RelayProcess`].
pub const KEFU_RELAY: &str = env!("CARGO_BIN_EXE_kefu-relay");

/// The database URL of the SQLite file at `path`.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Runs a one-shot subcommand (`check-config`, `backup`, …) to completion.
pub async fn run_cli(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = tokio::process::Command::new(KEFU_RELAY);
    command
        .args(args)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null());
    tokio::time::timeout(PATIENCE, command.output())
        .await
        .expect("kefu-relay finished in time")
        .expect("run kefu-relay")
}

pub fn write_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path.display().to_string()
}

pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
