//! `sqlx::migrate!` embeds `migrations/` when the crate compiles, but a new
//! migration file changes no Rust source, so without this cargo would keep
//! a build that lacks it (`sqlx migrate build-script` writes the same).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
