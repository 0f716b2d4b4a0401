//! kefu-bench's modules, lowest first, as `lib.rs`'s layout doc states them:
//! shared pieces, then one connection of each kind, then the runs.

const LAYERS: kefu_testkit::layers::Table<'static> = &[
    ("config", &[]),
    ("ledger", &[]),
    ("phase", &[]),
    ("reference", &[]),
    // src/bin: other binaries; they reach the library as `kefu_bench::`,
    // like main.rs, never through `crate::`.
    ("bin", &[]),
    ("cli", &["config"]),
    ("error", &["config"]),
    ("report", &["ledger"]),
    ("net", &["config"]),
    ("progress", &["config", "report"]),
    ("traffic", &["ledger", "report"]),
    (
        "longpoll",
        &["config", "ledger", "net", "phase", "report", "traffic"],
    ),
    ("agent", &["config", "ledger", "net", "phase", "report"]),
    ("search", &["agent", "config", "net"]),
    (
        "visitor",
        &[
            "config", "ledger", "longpoll", "net", "phase", "report", "traffic",
        ],
    ),
    (
        "chat",
        &[
            "agent", "config", "error", "ledger", "net", "phase", "progress", "report", "traffic",
            "visitor",
        ],
    ),
    (
        "idle",
        &[
            "config", "error", "ledger", "phase", "progress", "report", "visitor",
        ],
    ),
];

#[test]
fn modules_import_only_lower_layers() {
    kefu_testkit::layers::assert_layers(env!("CARGO_MANIFEST_DIR"), LAYERS);
}
