//! The protocol crate's modules, lowest first; `lib.rs` holds the frames
//! both sides share, which `trail`, `call`, `agent` and `visitor` build on;
//! `trail` holds what both sides speak of (page views, link cards), and
//! both sides carry call frames.

const LAYERS: kefu_testkit::layers::Table<'static> = &[
    ("trail", &[]),
    ("call", &[]),
    ("files", &[]),
    ("agent", &["trail", "call"]),
    ("visitor", &["trail", "call"]),
];

#[test]
fn modules_import_only_lower_layers() {
    kefu_testkit::layers::assert_layers(env!("CARGO_MANIFEST_DIR"), LAYERS);
}
