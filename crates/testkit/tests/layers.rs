//! The kit's modules, lowest first, as its layout doc states them; the
//! root (`lib.rs`) holds only `PATIENCE` and re-exports.

const LAYERS: kefu_testkit::layers::Table<'static> = &[
    ("layers", &[]),
    ("tls", &[]),
    ("http", &["tls"]),
    ("ws", &[]),
    ("visitor", &["ws"]),
    ("agent", &["ws"]),
    ("accounts", &[]),
    ("postgres", &[]),
    ("relay", &["accounts", "http", "tls", "ws"]),
    ("process", &["ws"]),
];

#[test]
fn modules_import_only_lower_layers() {
    kefu_testkit::layers::assert_layers(env!("CARGO_MANIFEST_DIR"), LAYERS);
}
