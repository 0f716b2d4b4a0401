//! The protocol crate's modules, lowest first; `lib.rs` holds the frames
//! both sides share, which `agent` and `visitor` build on.

const LAYERS: kefu_testkit::layers::Table<'static> = &[("agent", &[]), ("visitor", &[])];

#[test]
fn modules_import_only_lower_layers() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    if let Err(violations) = kefu_testkit::layers::check(&src, LAYERS) {
        panic!("{violations}");
    }
}
