//! Records the store returns: stored objects, run records and audit
//! records.

use serde::{Deserialize, Serialize};

use ops_model::{Object, ObjectKey, RunPhase};

/// What `apply` did to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyOutcome {
    /// It did not exist.
    Created,
    /// It existed and changed.
    Configured,
    /// It existed and was identical.
    Unchanged,
}

impl ApplyOutcome {
    /// kubectl's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyOutcome::Created => "created",
            ApplyOutcome::Configured => "configured",
            ApplyOutcome::Unchanged => "unchanged",
        }
    }
}

/// An object with its bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    /// The object, with its namespace filled in.
    pub object: Object,
    /// Identity.
    pub key: ObjectKey,
    /// Incremented on every change.
    pub generation: i64,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// A TaskRun or PipelineRun execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Unique id.
    pub id: String,
    /// `TaskRun` or `PipelineRun`.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Run name.
    pub name: String,
    /// The Task or Pipeline it runs.
    pub ref_name: String,
    /// Current phase.
    pub phase: RunPhase,
    /// Why it ended as it did (failure reason, cancellation, ...).
    pub message: Option<String>,
    /// The resolved run object (JSON), secrets redacted by the caller.
    pub spec: serde_json::Value,
    /// The scheduling run this one was started by (cron children).
    pub parent_id: Option<String>,
    /// The process executing it, `machine:pid` (see `store::process_owner`).
    pub owner: Option<String>,
    /// Someone asked for it to stop.
    pub cancel_requested: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, once running.
    pub started_at: Option<String>,
    /// RFC 3339, once terminal.
    pub finished_at: Option<String>,
    /// Steps (filled by `get_run`, empty in listings).
    pub steps: Vec<StepRecord>,
}

/// One step on one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The run.
    pub run_id: String,
    /// Pipeline task name; empty for a TaskRun.
    pub task: String,
    /// Target (host or node) name.
    pub target: String,
    /// 0-based position in the task.
    pub index: u32,
    /// Step name.
    pub name: String,
    /// Phase.
    pub phase: RunPhase,
    /// Exit code, when the step ran to completion.
    pub exit_code: Option<i32>,
    /// RFC 3339.
    pub started_at: Option<String>,
    /// RFC 3339.
    pub finished_at: Option<String>,
    /// Standard output (bounded by the executor).
    pub stdout: String,
    /// Standard error (bounded by the executor).
    pub stderr: String,
}

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only runs of this Task / Pipeline.
    pub ref_name: Option<String>,
    /// Only runs in this phase.
    pub phase: Option<RunPhase>,
    /// Only runs started by this parent (a schedule key).
    pub parent_id: Option<String>,
    /// At most this many (default 100).
    pub limit: Option<usize>,
}

/// The `prev_hash` of the first audit record.
pub const AUDIT_GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One record of the append-only audit log. Each record's `hash` covers
/// its own fields and the previous record's hash, so editing, removing or
/// reordering any record breaks the chain from there on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position, from 1, without gaps.
    pub seq: i64,
    /// The copilot session, if any.
    pub session_id: Option<String>,
    /// When (RFC 3339).
    pub at: String,
    /// What happened (`user_input`, `tool_call`, `approval_decided`, ...).
    pub kind: String,
    /// Details, JSON (already redacted).
    pub payload: String,
    /// The previous record's hash ([`AUDIT_GENESIS`] for the first).
    pub prev_hash: String,
    /// SHA-256 over the fields above, hex.
    pub hash: String,
}

/// `parts`, each prefixed with its length: no two different lists give
/// the same bytes. What every audit hash and MAC covers.
pub fn length_prefixed(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// The bytes an audit record's hash covers.
pub fn audit_fields(
    prev_hash: &str,
    seq: i64,
    at: &str,
    session_id: Option<&str>,
    kind: &str,
    payload: &str,
) -> Vec<u8> {
    length_prefixed(&[
        prev_hash,
        &seq.to_string(),
        at,
        session_id.unwrap_or("\u{0}"),
        kind,
        payload,
    ])
}

/// The hash of an audit record's fields.
pub fn audit_hash(
    prev_hash: &str,
    seq: i64,
    at: &str,
    session_id: Option<&str>,
    kind: &str,
    payload: &str,
) -> String {
    use sha2::{Digest, Sha256};
    ops_model::hex(&Sha256::digest(audit_fields(
        prev_hash, seq, at, session_id, kind, payload,
    )))
}

/// The outcome of checking the audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum AuditCheck {
    /// Every record is where it should be and unchanged.
    Intact {
        /// How many records.
        records: u64,
        /// The last record's hash (note it somewhere else to detect a
        /// truncated tail later).
        head: String,
    },
    /// The first record that does not check out.
    Broken {
        /// Its position.
        seq: i64,
        /// What is wrong.
        reason: String,
    },
}

/// A stored approval request and its decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// Id (shown to approvers, used by `POST /approvals/{id}` later).
    pub id: String,
    /// The copilot session that asked.
    pub session_id: Option<String>,
    /// Hash of tool + arguments + targets: the exact call approved.
    pub call_hash: String,
    /// `pending`, `approved`, `approved_for_session`, `denied`, `expired`
    /// or `used` (an approve-once approval after its call ran).
    pub state: String,
    /// What was asked (JSON: tool, args, targets, effect, reason).
    pub request: String,
    /// The approver's reason (a denial's reason goes back to the model).
    pub reason: Option<String>,
    /// Who decided.
    pub decided_by: Option<String>,
    /// When asked (RFC 3339).
    pub created_at: String,
    /// When it lapses unanswered (RFC 3339).
    pub expires_at: Option<String>,
    /// When decided.
    pub decided_at: Option<String>,
}

/// A runbook file as stored (its chunks apart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunbookRecord {
    /// Name: the path relative to the directory it was added from.
    pub name: String,
    /// Where it was read from (absolute path).
    pub source: String,
    /// SHA-256 of the file's text.
    pub hash: String,
    /// Its title (first heading, else the name).
    pub title: String,
    /// Front matter as JSON (`alerts`, `labels`, `services`, `hosts`).
    pub meta: String,
    /// When first added (RFC 3339).
    pub added_at: String,
    /// When last changed.
    pub updated_at: String,
    /// How many chunks (filled when listing).
    pub chunks: usize,
}

/// One searchable piece of a runbook: a section under a heading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRecord {
    /// Row id (stable while the chunk's text is unchanged).
    pub id: i64,
    /// Runbook name.
    pub runbook: String,
    /// Position in the runbook.
    pub ordinal: u32,
    /// Heading path, `Disk full > Web tier > Cleanup`.
    pub heading: String,
    /// First line (1-based).
    pub start_line: u32,
    /// Last line.
    pub end_line: u32,
    /// The text.
    pub body: String,
    /// SHA-256 of heading path and text (the embedding cache key).
    pub hash: String,
    /// Whether it holds a code block.
    pub code: bool,
}

/// What storing a runbook changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct RunbookChange {
    /// The file was new.
    pub created: bool,
    /// The file's text was the same as stored: nothing was done.
    pub unchanged: bool,
    /// Chunks added.
    pub added: usize,
    /// Chunks kept (same text, maybe moved).
    pub kept: usize,
    /// Chunks removed.
    pub removed: usize,
}

/// An event as stored in the embedded event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Position in the log.
    pub seq: i64,
    /// The event's id (unique: a second append of the same id is ignored).
    pub id: String,
    /// Its subject.
    pub subject: String,
    /// Its time (RFC 3339).
    pub time: String,
    /// The whole CloudEvent, JSON.
    pub body: String,
}

/// One hook delivery attempt series: what a sink did with one request,
/// which carried one event or (batching sinks) several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// Position in the delivery log.
    pub seq: i64,
    /// The hook (`namespace/name`).
    pub hook: String,
    /// The event's id (a batch's first).
    pub event_id: String,
    /// The event's subject (a batch's first's).
    pub subject: String,
    /// Every event id a batch request carried, in order (the first is
    /// `event_id`); empty when the request carried one event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batch: Vec<String>,
    /// Sink type (`webhook`, `slack`, ...).
    pub sink: String,
    /// `delivered`, `failed`, `filtered`, `awaiting_approval`, ...
    pub status: String,
    /// Attempts made.
    pub attempts: u32,
    /// HTTP status of the last attempt, when there was one.
    pub code: Option<u16>,
    /// What happened (an error, a re-published subject, a run id).
    pub detail: String,
    /// When it was recorded (RFC 3339).
    pub at: String,
}

impl DeliveryRecord {
    /// How many events the request carried.
    pub fn events(&self) -> usize {
        self.batch.len().max(1)
    }
}
