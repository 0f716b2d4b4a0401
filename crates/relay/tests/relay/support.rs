//! What only the relay's own tests have; the rest (a relay in this process
//! or as a child, clients, PostgreSQL databases, HTTP) is `kefu_testkit`.

use std::path::Path;

/// The `kefu-relay` binary cargo built for these tests, for
/// [`kefu_testkit::RelayProcess`].
pub const KEFU_RELAY: &str = env!("CARGO_BIN_EXE_kefu-relay");

/// The database URL of the SQLite file at `path`.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}
