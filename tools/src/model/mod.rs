//! The vocabulary of `ops`: one set of Rust types for Host, Cluster, Task,
//! Pipeline, TaskRun, PipelineRun and EventHooks.
//!
//! The same values serve as YAML files (the anchor's
//! `apiVersion: crd.chenshaowen.com/v1` library parses unchanged), REST
//! bodies, store records and, later, LLM tool schemas. Every field keeps the
//! anchor's YAML name. Optional fields are `Option` so that a field present in
//! a file, even empty, survives `apply` -> `get -o yaml`.
//!
//! This module is pure: no I/O, no async, no clocks. Reading files lives in
//! [`crate::manifest`], persistence in [`crate::store`].
//!
//! Strictness: `spec` structs reject unknown fields. A misspelt `when:` or
//! `allowfailure:` silently ignored would make a guarded step run
//! unconditionally, so a typo is an error that names the field and lists the
//! valid ones. `metadata` is lenient (exported Kubernetes objects carry many
//! server-side fields) and keeps what it does not know.

mod cluster;
mod eventhooks;
mod host;
mod kind;
mod meta;
mod object;
mod parse;
mod pipeline;
mod redact;
mod run;
mod selector;
mod serde_util;
pub use serde_util::MAX_SECONDS;
mod task;
mod variable;

pub use cluster::{Cluster, ClusterSpec, ClusterStatus};
pub use eventhooks::{EventHooks, EventHooksSpec, KeywordMatchMode, KeywordMatchType, Keywords};
pub use host::{Host, HostSpec, HostStatus};
pub use kind::{Kind, UnknownKind};
pub use meta::{
    ANCHOR_API_VERSION, API_GROUP, API_VERSION, EmptyStatus, Manifest, ObjectMeta,
    SUPPORTED_API_VERSIONS,
};
pub use object::{Object, ObjectKey};
pub use parse::{DocumentError, ParsedDocument, check_name, parse_documents};
pub use pipeline::{Pipeline, PipelineSpec, TaskRef};
pub use redact::{REDACTED, SecretRef, is_secret_name};
pub use run::{
    PipelineRun, PipelineRunSpec, PipelineRunStatus, PipelineRunTaskStatus, RunPhase, TaskRun,
    TaskRunNodeStatus, TaskRunSpec, TaskRunStatus, TaskRunStep,
};
pub use selector::{LabelSelector, SelectorError};
pub use task::{Direction, Mount, SecretMount, Step, Task, TaskSpec};
pub use variable::{Variable, Variables};
