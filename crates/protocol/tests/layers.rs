//! The protocol crate's modules, lowest first; `lib.rs` holds the frames
//! both sides share, which `agent` and `visitor` build on; `trail` holds
//! what both of those speak of (page views, link cards).

const LAYERS: kefu_testkit::layers::Table<'static> = &[
    ("trail", &[]),
    ("agent", &["trail"]),
    ("visitor", &["trail"]),
];

#[test]
fn modules_import_only_lower_layers() {
    kefu_testkit::layers::assert_layers(env!("CARGO_MANIFEST_DIR"), LAYERS);
}
