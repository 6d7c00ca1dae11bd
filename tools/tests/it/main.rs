//! The integration tests of this crate, one binary (link time): each
//! module is one former test file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod bad_input;
mod compat_corpus;
mod compat_tasks;
mod engine;
mod events;
mod exec_kube;
mod exec_local;
mod exec_ssh;
mod heartbeat;
mod hooks;
mod kube_cluster;
mod nats;
mod shell_classify;
mod store;
mod tools;
