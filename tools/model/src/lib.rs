//! The vocabulary of `ops`: one set of Rust types for Host, Cluster, Task,
//! Pipeline, TaskRun, PipelineRun and EventHooks.
//!
//! The same values serve as YAML files (the anchor's
//! `apiVersion: crd.chenshaowen.com/v1` library parses unchanged), REST
//! bodies, store records and, later, LLM tool schemas. Every field keeps the
//! anchor's YAML name. Optional fields are `Option` so that a field present in
//! a file, even empty, survives `apply` -> `get -o yaml`.
//!
//! This crate is pure: no I/O dependency, no async. Its only reads of the
//! world are the clock ([`stamp`], [`id`]), the host name
//! ([`event::default_source`]) and the manifest files a caller names
//! ([`manifest`]). Persistence lives in `ops-store`, execution in
//! `ops-exec`; a test over `cargo metadata` keeps I/O crates out of here.
//!
//! Besides the objects it holds what every layer speaks: the template and
//! `when` languages ([`template`]), the shell classifier ([`shell`]) and
//! the [`Effect`] it decides, text redaction ([`redact`]), the CloudEvent
//! envelope, subject scheme and compiled EventHooks ([`event`]).
//!
//! Strictness: `spec` structs reject unknown fields. A misspelt `when:` or
//! `allowfailure:` silently ignored would make a guarded step run
//! unconditionally, so a typo is an error that names the field and lists the
//! valid ones. `metadata` is lenient (exported Kubernetes objects carry many
//! server-side fields) and keeps what it does not know.

pub mod event;
pub mod id;
pub mod manifest;
pub mod redact;
pub mod shell;
pub mod stamp;
pub mod template;

mod effect;
pub use effect::Effect;

mod cluster;
mod eventhooks;
mod host;
mod kind;
mod meta;
mod object;
mod parse;
mod pipeline;
mod run;
mod secret_fields;
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
pub use run::{
    PipelineRun, PipelineRunSpec, PipelineRunStatus, PipelineRunTaskStatus, RunPhase, TaskRun,
    TaskRunNodeStatus, TaskRunSpec, TaskRunStatus, TaskRunStep,
};
pub use secret_fields::{REDACTED, SecretRef, is_secret_name};
pub use selector::{LabelSelector, SelectorError};
pub use task::{Direction, Mount, SecretMount, Step, Task, TaskSpec};
pub use variable::{Variable, Variables};

/// `s` cut to about `max` bytes, keeping its head and tail with a note of
/// how much was cut in between (never splitting a character). What a model
/// or a person is shown of long output.
pub fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let half = max / 2;
    let mut a = half;
    while !s.is_char_boundary(a) {
        a -= 1;
    }
    let mut b = s.len() - half;
    while !s.is_char_boundary(b) {
        b += 1;
    }
    format!("{}\n[... {} bytes cut ...]\n{}", &s[..a], b - a, &s[b..])
}

/// Lower-case hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Standard base64 (with or without padding).
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = T.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::clip;

    #[test]
    fn clip_keeps_head_and_tail() {
        assert_eq!(clip("short", 10), "short");
        let c = clip(&"é".repeat(100), 20);
        assert!(c.starts_with("éééé") && c.ends_with("éééé"), "{c}");
        assert!(c.contains("bytes cut"), "{c}");
    }
}
