//! The SQLite and PostgreSQL migrations make the same schema: the same
//! tables, columns (name, type family, nullability) and indexes, but for the
//! deliberate differences listed here with their reasons. Runs where a
//! PostgreSQL server answers (see `kefu_testkit::TestDatabase`).

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use kefu_testkit::TestDatabase;
use sqlx::Row;
use sqlx::sqlite::SqliteConnectOptions;

/// Columns PostgreSQL types `BOOLEAN` and SQLite `INTEGER`: SQLite has no
/// boolean type, and the SQLite store writes 0 and 1.
const BOOLEAN_AS_INTEGER: &[(&str, &str)] = &[
    ("agents", "disabled"),
    ("messages", "internal"),
    ("files", "public"),
];

/// Indexes only PostgreSQL has, as (table, columns, unique).
const POSTGRES_ONLY_INDEXES: &[(&str, &[&str], bool)] = &[
    // SQLite migration 0003: the SQLite writer recognises a resend itself
    // (store/sqlite/client_ids.rs), which saves a WAL frame per message.
    // PostgreSQL keeps the index: several relays write there.
    ("messages", &["author_kind", "author_id", "client_id"], true),
    // SQLite migration 0007: an `INTEGER PRIMARY KEY` is the rowid itself,
    // which needs no index of its own.
    ("page_views", &["id"], true),
    // Search (issue 17): pg_trgm's GIN indexes serve visitors' name and
    // email; SQLite scans its visitors with LIKE, as an index there would
    // be rewritten on every page view.
    ("visitors", &["name"], false),
    ("visitors", &["email"], false),
];

/// The columns of a conversation's row that a message changes. No index may
/// cover them: SQLite's writer would rewrite an index page per message
/// (SQLite migration 0002), and PostgreSQL could no longer update the row
/// in place ("HOT"), so that every message would write an entry in each of
/// the table's indexes (PostgreSQL migration 0016; docs/cluster.md).
const CHANGED_BY_EVERY_MESSAGE: &[&str] = &[
    "last_seq",
    "unread",
    "visitor_messages",
    "agent_read_seq",
    "preview",
    "updated_at",
];

/// The search index is each backend's own by design (an FTS5 virtual table
/// and its shadow tables; a table with a trigram GIN index): its tables
/// start with this and are left out here. `store/search.rs` checks that
/// both find the same.
const SEARCH_TABLES: &str = "message_search";

/// What both backends' types are compared by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Family {
    Text,
    Integer,
    Boolean,
    Bytes,
}

/// The family of a SQLite declared type or a PostgreSQL `data_type`.
fn family(table: &str, type_name: String) -> Family {
    match type_name.to_ascii_lowercase().as_str() {
        "text" => Family::Text,
        "integer" | "bigint" | "smallint" => Family::Integer,
        "boolean" => Family::Boolean,
        "blob" | "bytea" => Family::Bytes,
        other => panic!("{table}: a type this test does not know: {other}"),
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Column {
    family: Family,
    nullable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Index {
    table: String,
    columns: Vec<String>,
    unique: bool,
    /// Has a `WHERE` clause; the clauses' text differs between backends.
    partial: bool,
}

#[derive(Debug, Default)]
struct Schema {
    /// (table, column) to its type family and nullability.
    columns: BTreeMap<(String, String), Column>,
    indexes: BTreeSet<Index>,
}

impl Schema {
    fn tables(&self) -> BTreeSet<&str> {
        self.columns
            .keys()
            .map(|(table, _)| table.as_str())
            .collect()
    }
}

#[tokio::test]
async fn sqlite_and_postgresql_migrations_make_the_same_schema() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let mut postgres = postgres_schema(&database.url).await;
    database.drop_database().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut sqlite = sqlite_schema(&dir.path().join("kefu.db")).await;

    // Deliberate differences, made equal here after checking they are what
    // the lists say.
    postgres
        .columns
        .retain(|(table, _), _| !table.starts_with(SEARCH_TABLES));
    postgres
        .indexes
        .retain(|index| !index.table.starts_with(SEARCH_TABLES));
    for (table, column) in BOOLEAN_AS_INTEGER {
        let key = (table.to_string(), column.to_string());
        assert_eq!(
            postgres.columns.get(&key).map(|c| c.family),
            Some(Family::Boolean),
            "{table}.{column} in PostgreSQL"
        );
        let in_sqlite = sqlite.columns.get_mut(&key).expect("the column in SQLite");
        assert_eq!(
            in_sqlite.family,
            Family::Integer,
            "{table}.{column} in SQLite"
        );
        in_sqlite.family = Family::Boolean;
    }
    for (table, columns, unique) in POSTGRES_ONLY_INDEXES {
        let index = Index {
            table: table.to_string(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            unique: *unique,
            partial: false,
        };
        assert!(postgres.indexes.contains(&index), "{index:?} in PostgreSQL");
        assert!(!sqlite.indexes.contains(&index), "{index:?} in SQLite");
        sqlite.indexes.insert(index);
    }

    assert!(!sqlite.columns.is_empty(), "the migrations made tables");
    assert_eq!(sqlite.tables(), postgres.tables(), "tables");
    assert_eq!(sqlite.columns, postgres.columns, "columns");
    let only_sqlite: Vec<_> = sqlite.indexes.difference(&postgres.indexes).collect();
    let only_postgres: Vec<_> = postgres.indexes.difference(&sqlite.indexes).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "indexes only SQLite has: {only_sqlite:?}; only PostgreSQL has: {only_postgres:?}"
    );
    for column in CHANGED_BY_EVERY_MESSAGE {
        let key = ("conversations".to_string(), column.to_string());
        assert!(
            postgres.columns.contains_key(&key),
            "conversations.{column}"
        );
        let covering: Vec<_> = (postgres.indexes.iter())
            .filter(|index| index.table == "conversations" && index.columns.contains(&key.1))
            .collect();
        assert!(
            covering.is_empty(),
            "indexes on conversations.{column}: {covering:?}"
        );
    }
}

/// Applies the SQLite migrations to a new file and reads its schema.
async fn sqlite_schema(path: &std::path::Path) -> Schema {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .expect("SQLite URL")
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("open SQLite");
    sqlx::migrate!("./migrations/sqlite")
        .run(&pool)
        .await
        .expect("SQLite migrations");

    // The tables the migrations made, not SQLite's own nor sqlx's ledger.
    // Nor the search index's (see SEARCH_TABLES).
    let tables = format!(
        "SELECT name FROM sqlite_schema WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' \
         AND name NOT LIKE '{SEARCH_TABLES}%'"
    );
    let mut schema = Schema::default();
    let columns = sqlx::query(&format!(
        r#"SELECT t.name AS table_name, c.name, c.type, c."notnull", c.pk
        FROM ({tables}) AS t, pragma_table_info(t.name) AS c"#
    ))
    .fetch_all(&pool)
    .await
    .expect("columns");
    for column in columns {
        let table: String = column.get("table_name");
        // SQLite lets a rowid table's non-integer primary key hold NULL
        // (a bug it keeps for compatibility); the store never writes one,
        // and PostgreSQL forbids it, so a key column counts as NOT NULL.
        let not_null = column.get::<i64, _>("notnull") != 0 || column.get::<i64, _>("pk") != 0;
        schema.columns.insert(
            (table.clone(), column.get("name")),
            Column {
                family: family(&table, column.get("type")),
                nullable: !not_null,
            },
        );
    }
    let keys = sqlx::query(&format!(
        r#"SELECT t.name AS table_name, i.name AS index_name, i."unique", i.partial,
        k.name AS column_name
        FROM ({tables}) AS t, pragma_index_list(t.name) AS i,
        pragma_index_info(i.name) AS k
        ORDER BY i.name, k.seqno"#
    ))
    .fetch_all(&pool)
    .await
    .expect("indexes");
    let mut indexes: BTreeMap<String, Index> = BTreeMap::new();
    for key in keys {
        indexes
            .entry(key.get("index_name"))
            .or_insert_with(|| Index {
                table: key.get("table_name"),
                columns: Vec::new(),
                unique: key.get::<i64, _>("unique") != 0,
                partial: key.get::<i64, _>("partial") != 0,
            })
            .columns
            .push(key.get("column_name"));
    }
    schema.indexes = indexes.into_values().collect();
    pool.close().await;
    schema
}

/// Applies the PostgreSQL migrations to the empty database at `url` and
/// reads its schema.
async fn postgres_schema(url: &str) -> Schema {
    let pool = sqlx::PgPool::connect(url).await.expect("open PostgreSQL");
    sqlx::migrate!("./migrations/postgres")
        .run(&pool)
        .await
        .expect("PostgreSQL migrations");

    let mut schema = Schema::default();
    let columns = sqlx::query(
        "SELECT c.table_name::text AS table_name, c.column_name::text AS column_name, \
         c.data_type::text AS data_type, c.is_nullable::text AS is_nullable \
         FROM information_schema.columns c \
         JOIN information_schema.tables t USING (table_schema, table_name) \
         WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' \
         AND c.table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&pool)
    .await
    .expect("columns");
    for column in columns {
        let table: String = column.get("table_name");
        schema.columns.insert(
            (table.clone(), column.get("column_name")),
            Column {
                family: family(&table, column.get("data_type")),
                nullable: column.get::<String, _>("is_nullable") == "YES",
            },
        );
    }
    let indexes = sqlx::query(
        "SELECT t.relname::text AS table_name, ix.indisunique AS is_unique, \
         ix.indpred IS NOT NULL AS partial, \
         array_agg(a.attname::text ORDER BY k.ord) AS columns \
         FROM pg_index ix \
         JOIN pg_class t ON t.oid = ix.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         CROSS JOIN LATERAL unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
         WHERE n.nspname = current_schema() AND t.relname <> '_sqlx_migrations' \
         GROUP BY ix.indexrelid, t.relname, ix.indisunique, ix.indpred IS NOT NULL",
    )
    .fetch_all(&pool)
    .await
    .expect("indexes");
    for index in indexes {
        schema.indexes.insert(Index {
            table: index.get("table_name"),
            columns: index.get("columns"),
            unique: index.get("is_unique"),
            partial: index.get("partial"),
        });
    }
    pool.close().await;
    schema
}
