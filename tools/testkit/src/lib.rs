//! Test support for every crate's tests (a dev-dependency only, never
//! linked into `opscli`): real OpenSSH servers on loopback ([`sshd`]) and
//! in network namespaces ([`isolated`]), a real `nats-server`
//! ([`nats`]), and two STAND-INS where no real server can run here: a
//! Kubernetes API server ([`kube_standin`]) and a Qdrant server
//! ([`qdrant_standin`]).

#![allow(
    dead_code,
    missing_debug_implementations,
    clippy::new_without_default,
    clippy::unwrap_used,
    clippy::expect_used
)]

pub mod isolated;
pub mod kube_standin;
pub mod nats;
pub mod qdrant_standin;
pub mod sshd;

/// The anchor's EventHooks (`../shared/compat/ops-manifests/eventhooks`, or
/// `$OPS_COMPAT_DIR/eventhooks`); a file that does not load fails the test.
pub fn anchor_eventhooks() -> Vec<ops_model::EventHooks> {
    let dir = std::env::var_os("OPS_COMPAT_DIR").map_or_else(
        || {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/compat/ops-manifests")
        },
        std::path::PathBuf::from,
    );
    let report = ops_model::manifest::load_path(&dir.join("eventhooks"));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    report
        .files
        .into_iter()
        .flat_map(|f| f.documents)
        .filter_map(|d| match d.object {
            ops_model::Object::EventHooks(h) => Some(h),
            _ => None,
        })
        .collect()
}
