//! The protocol crate's modules, lowest first; `lib.rs` holds the frames
//! both sides share, which `call`, `agent` and `visitor` build on; both
//! sides carry call frames.

const LAYERS: kefu_testkit::layers::Table<'static> =
    &[("call", &[]), ("agent", &["call"]), ("visitor", &["call"])];

#[test]
fn modules_import_only_lower_layers() {
    kefu_testkit::layers::assert_layers(env!("CARGO_MANIFEST_DIR"), LAYERS);
}
