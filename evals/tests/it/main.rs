//! The integration tests of this crate, one binary (link time): each
//! module is one former test file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod house;
mod lab;
