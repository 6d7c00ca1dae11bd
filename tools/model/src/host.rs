//! Host: a machine reached over SSH, or this machine when the address is
//! empty or `127.0.0.1` / `localhost`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::meta::Manifest;
use super::serde_util::opt_text;

/// A Host object.
pub type Host = Manifest<HostSpec, HostStatus>;

/// How to reach a host.
///
/// Prefer references (`privateKeyPath`, `secretRef`) to inline secrets
/// (`password`, `privateKey`): inline values are stored (in a 0600 file)
/// but never printed.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostSpec {
    /// Free-form description.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub desc: Option<String>,
    /// IP address or DNS name. Empty, `127.0.0.1` or `localhost` means this
    /// machine (run locally, no SSH).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub address: Option<String>,
    /// SSH port (default 22).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// SSH user (default: the current user, or `root`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub username: Option<String>,
    /// Inline SSH / sudo password. Secret: never printed.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub password: Option<String>,
    /// Inline private key (PEM / OpenSSH), or base64 of it as the anchor
    /// stores it. Secret: never printed.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub private_key: Option<String>,
    /// Path of a private key file on the machine running `ops`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub private_key_path: Option<String>,
    /// Connect and command timeout in seconds.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::serde_util::opt_secs_signed"
    )]
    pub timeout_seconds: Option<i64>,
    /// Name of a Kubernetes Secret holding the credentials (anchor
    /// compatible; used when running in a cluster).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub secret_ref: Option<String>,
}

impl HostSpec {
    /// Whether this spec targets the local machine (no SSH).
    pub fn is_local(&self) -> bool {
        matches!(
            self.address.as_deref().map(str::trim),
            None | Some("") | Some("127.0.0.1") | Some("localhost") | Some("::1")
        )
    }
}

/// What the last heartbeat saw. Field names are the anchor's.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostStatus {
    /// `hostname` as reported by the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// `uname -r`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_version: Option<String>,
    /// e.g. `Debian GNU/Linux 12 (bookworm)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<String>,
    /// e.g. `x86_64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Root filesystem size, human readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_total: Option<String>,
    /// Root filesystem use, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_usage_percent: Option<String>,
    /// CPU count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_total: Option<String>,
    /// 1-minute load average.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_load1: Option<String>,
    /// CPU use, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_usage_percent: Option<String>,
    /// Memory size, human readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_total: Option<String>,
    /// Memory use, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_usage_percent: Option<String>,
    /// GPU/NPU vendor (`nvidia`, `huawei`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator_vendor: Option<String>,
    /// GPU/NPU model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator_model: Option<String>,
    /// GPU/NPU count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator_count: Option<String>,
    /// Outcome of the last heartbeat (`successed`, `failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heart_status: Option<String>,
    /// RFC 3339 time of the last heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heart_time: Option<String>,
}
