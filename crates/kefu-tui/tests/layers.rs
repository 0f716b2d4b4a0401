//! kefu-tui's modules, lowest first, as `lib.rs`'s layout doc states them:
//! the app's state below its drawing, the network task and the event loop.

const LAYERS: kefu_testkit::layers::Table<'static> = &[
    ("wrap", &[]),
    ("sanitize", &["wrap"]),
    ("tls", &[]),
    ("config", &["tls"]),
    ("keys", &[]),
    ("hyperlink", &[]),
    ("compose", &["wrap"]),
    ("layout", &["compose", "keys"]),
    (
        "app",
        &["compose", "config", "keys", "layout", "sanitize", "wrap"],
    ),
    ("ui", &["app", "keys", "layout", "wrap"]),
    ("net", &["app", "tls"]),
    ("files", &["app", "config", "sanitize"]),
    ("notify", &["app", "config", "wrap"]),
    ("core", &["app", "config", "files", "net"]),
    (
        "terminal",
        &[
            "app",
            "config",
            "core",
            "files",
            "hyperlink",
            "notify",
            "ui",
        ],
    ),
];

#[test]
fn modules_import_only_lower_layers() {
    kefu_testkit::layers::assert_layers(env!("CARGO_MANIFEST_DIR"), LAYERS);
}
