//! Object metadata and the generic `Manifest<Spec, Status>` envelope that
//! every kind shares (`apiVersion`, `kind`, `metadata`, `spec`, `status`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Our own API group.
pub const API_GROUP: &str = "ops.dev";
/// The `apiVersion` we write for objects we create.
pub const API_VERSION: &str = "ops.dev/v1";
/// The anchor's `apiVersion` (`shaowenchen/ops`); accepted unchanged.
pub const ANCHOR_API_VERSION: &str = "crd.chenshaowen.com/v1";
/// Every `apiVersion` a manifest may carry.
pub const SUPPORTED_API_VERSIONS: [&str; 2] = [API_VERSION, ANCHOR_API_VERSION];

/// Standard object metadata, a subset of Kubernetes' `ObjectMeta`.
///
/// Unknown keys (e.g. `managedFields` in an exported object) are kept in
/// `extra` and written back unchanged.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Object name, unique per kind and namespace. Lower-case letters,
    /// digits, `-`, `.` and `_`; at most 253 characters.
    #[serde(default)]
    pub name: String,
    /// Prefix for a server-generated name (runs created from a template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_name: Option<String>,
    /// Namespace; the configured default namespace when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels used by selectors (`-l k=v`, Task `host: k=v`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Free-form annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Server-assigned unique id, kept when present in a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Server-assigned version, kept when present in a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Server-assigned generation, kept when present in a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// RFC 3339 creation time, kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    /// Any other metadata key, kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl ObjectMeta {
    /// A label's value, if set.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.as_ref()?.get(key).map(String::as_str)
    }
}

/// A status block with no fields (Task, Pipeline, EventHooks). It accepts and
/// writes back `status: {}`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
pub struct EmptyStatus {}

/// The envelope shared by every kind.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(bound = "S: JsonSchema + Default, T: JsonSchema")]
pub struct Manifest<S, T> {
    /// `ops.dev/v1` or the anchor's `crd.chenshaowen.com/v1`, kept as written.
    pub api_version: String,
    /// The kind's name, e.g. `Task`.
    pub kind: String,
    /// Name, namespace, labels and friends.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Desired state.
    #[serde(default)]
    pub spec: S,
    /// Observed state, written by `ops` (heartbeats, runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<T>,
}
