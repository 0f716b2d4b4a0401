//! The protocol crate's modules, lowest first; `lib.rs` holds the frames
//! both sides share, which `agent` and `visitor` build on.

const LAYERS: kefu_testkit::layers::Table<'static> =
    &[("agent", &[]), ("files", &[]), ("visitor", &[])];

#[test]
fn modules_import_only_lower_layers() {
    kefu_testkit::layers::assert_layers(env!("CARGO_MANIFEST_DIR"), LAYERS);
}
