//! Cluster: a Kubernetes cluster reached through a kubeconfig or a server
//! URL and bearer token.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::meta::Manifest;
use super::serde_util::opt_text;

/// A Cluster object.
pub type Cluster = Manifest<ClusterSpec, ClusterStatus>;

/// How to reach a cluster.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSpec {
    /// Free-form description.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub desc: Option<String>,
    /// API server URL (read from the kubeconfig when absent).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub server: Option<String>,
    /// Kubeconfig content (plain or base64, as the anchor stores it).
    /// Secret: never printed.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub config: Option<String>,
    /// Bearer token. Secret: never printed.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub token: Option<String>,
    /// Path of a kubeconfig file on the machine running `ops`: a reference,
    /// preferred to an inline `config`. (Our addition; not in the anchor.)
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub kubeconfig_path: Option<String>,
}

/// What the last cluster heartbeat saw. Field names are the anchor's,
/// including its `lastHeartstatus` spelling.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterStatus {
    /// Kubernetes server version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Number of nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_number: Option<i64>,
    /// Number of pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_number: Option<i64>,
    /// Days until the client certificate in the kubeconfig expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_days_left: Option<i64>,
    /// RFC 3339 time of the last heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heart_time: Option<String>,
    /// Outcome of the last heartbeat (`successed`, `failed`, `error`).
    #[serde(
        default,
        rename = "lastHeartstatus",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_heart_status: Option<String>,
}
