//! The relay's modules, lowest layer first, each with the modules it may
//! import; `lib.rs` (which wires them together in `run`) and `main.rs` sit
//! on top. The same layers are written down in `lib.rs`'s `# Layout`.

use kefu_testkit::layers::Table;

const LAYERS: Table<'static> = &[
    ("ids", &[]),
    ("telemetry", &[]),
    ("systemd", &[]),
    ("auth", &[]),
    ("blobs", &[]),
    ("frame", &[]),
    ("cluster", &[]),
    ("tls", &[]),
    ("proxy", &[]),
    ("proxy_header", &[]),
    ("blocklist", &[]),
    ("http", &["proxy"]),
    (
        "admission",
        &["telemetry", "proxy", "proxy_header", "blocklist"],
    ),
    ("config", &["cluster", "proxy", "blocklist"]),
    ("store", &["auth", "ids", "cluster", "telemetry"]),
    ("export", &["store"]),
    ("prune", &["store", "blobs", "telemetry"]),
    ("retention", &["store", "blobs", "prune"]),
    (
        "hub",
        &["ids", "frame", "config", "store", "cluster", "telemetry"],
    ),
    (
        "transport",
        &[
            "ids",
            "telemetry",
            "admission",
            "blocklist",
            "auth",
            "blobs",
            "frame",
            "config",
            "store",
            "hub",
        ],
    ),
];

#[test]
fn modules_import_only_lower_layers() {
    kefu_testkit::layers::assert_layers(env!("CARGO_MANIFEST_DIR"), LAYERS);
}
