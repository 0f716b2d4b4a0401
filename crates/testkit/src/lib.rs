//! Shared by the tests of every kefu crate; never a dependency of shipped
//! code.
//!
//! # Layout
//! - [`layers`]: checks a crate's module imports against its stated layers.

pub mod layers;
