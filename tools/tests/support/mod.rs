//! Shared test harness: real OpenSSH servers on loopback addresses.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod isolated;
pub mod kube_standin;
pub mod nats;
pub mod sshd;
