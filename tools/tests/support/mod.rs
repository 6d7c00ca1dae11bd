//! Shared test harness: real OpenSSH servers on loopback addresses.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod isolated;
pub mod kube_standin;
pub mod nats;
pub mod sshd;

/// The anchor's EventHooks (`../shared/compat/ops-manifests/eventhooks`, or
/// `$OPS_COMPAT_DIR/eventhooks`); a file that does not load fails the test.
pub fn anchor_eventhooks() -> Vec<ops_tools::model::EventHooks> {
    let dir = std::env::var_os("OPS_COMPAT_DIR").map_or_else(
        || {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/compat/ops-manifests")
        },
        std::path::PathBuf::from,
    );
    let report = ops_tools::manifest::load_path(&dir.join("eventhooks"));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    report
        .files
        .into_iter()
        .flat_map(|f| f.documents)
        .filter_map(|d| match d.object {
            ops_tools::model::Object::EventHooks(h) => Some(h),
            _ => None,
        })
        .collect()
}
