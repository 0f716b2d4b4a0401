//! kefu-bench's modules, lowest first, as `lib.rs`'s layout doc states them:
//! shared pieces, then one connection of each kind, then the runs.

const LAYERS: kefu_testkit::layers::Table<'static> = &[
    ("config", &[]),
    ("ledger", &[]),
    ("phase", &[]),
    ("reference", &[]),
    ("latency", &[]),
    ("png", &[]),
    // src/bin: other binaries; they reach the library as `kefu_bench::`,
    // like main.rs, never through `crate::`.
    ("bin", &[]),
    ("cli", &["config"]),
    ("error", &["config"]),
    ("tally", &["latency"]),
    ("report", &["latency", "ledger", "tally"]),
    ("net", &["config"]),
    ("http", &["config", "net"]),
    ("progress", &["config", "report"]),
    ("traffic", &["ledger", "report"]),
    ("attack", &["config", "net", "phase", "png", "tally"]),
    (
        "longpoll",
        &[
            "config", "http", "ledger", "net", "phase", "report", "traffic",
        ],
    ),
    ("agent", &["config", "ledger", "net", "phase", "report"]),
    ("search", &["agent", "config", "latency", "net"]),
    (
        "visitor",
        &[
            "config", "ledger", "longpoll", "net", "phase", "report", "traffic",
        ],
    ),
    (
        "upload",
        &[
            "config", "http", "ledger", "net", "phase", "png", "report", "tally", "visitor",
        ],
    ),
    (
        "chat",
        &[
            "agent", "attack", "config", "error", "ledger", "net", "phase", "progress", "report",
            "tally", "traffic", "upload", "visitor",
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
