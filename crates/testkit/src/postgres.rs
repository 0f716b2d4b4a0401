//! A fresh PostgreSQL database per test, so tests never see each other's
//! rows. Where no server answers, a test is skipped with a notice, unless
//! `KEFU_REQUIRE_POSTGRES` (CI sets it) makes that a failure.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::Connection;

/// A fresh PostgreSQL database for one test.
pub struct TestDatabase {
    pub url: String,
    name: String,
    admin: String,
}

impl TestDatabase {
    /// Creates one on the server named by `KEFU_TEST_POSTGRES` (default: the
    /// local server as user postgres). Where no server answers: `None`,
    /// after a notice, unless `KEFU_REQUIRE_POSTGRES` makes that a failure.
    pub async fn create() -> Option<TestDatabase> {
        let admin = std::env::var("KEFU_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let mut conn = match sqlx::PgConnection::connect(&admin).await {
            Ok(conn) => conn,
            Err(error) => {
                assert!(
                    std::env::var_os("KEFU_REQUIRE_POSTGRES").is_none(),
                    "KEFU_REQUIRE_POSTGRES is set but {admin} does not answer: {error}"
                );
                eprintln!("notice: skipping a PostgreSQL test: {admin} does not answer ({error})");
                return None;
            }
        };
        let name = unique_name();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create a test database");
        let (base, _) = admin.rsplit_once('/').expect("a database URL");
        Some(TestDatabase {
            url: format!("{base}/{name}"),
            name,
            admin,
        })
    }

    /// Drops the database (clients still connected are cut off).
    pub async fn drop_database(self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn)
            .await;
        }
    }
}

/// A database name no other test (of this run or a concurrent one) uses:
/// this process, a counter within it, and the time against pid reuse.
fn unique_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    format!(
        "kefu_test_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
