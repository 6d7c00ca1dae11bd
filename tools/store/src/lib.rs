//! Persistence: inventory objects, run records, and room for approvals,
//! audit records and copilot sessions.
//!
//! [`Store`] is the one interface; [`SqliteStore`] is the embedded default
//! (one file under `$OPS_HOME`, safe for several `opscli` processes at
//! once). A PostgreSQL implementation for multi-replica servers implements
//! the same trait. This module owns persistence only: it never runs
//! anything, and it stores secrets as given (callers redact for display).

mod feed;
mod migrations;
mod records;
mod runbooks;
pub mod seal;
mod sql;
mod sqlite;

use async_trait::async_trait;

use ops_model::{Kind, LabelSelector, Object, ObjectKey, RunPhase};

pub use records::{
    AUDIT_GENESIS, ApplyOutcome, ApprovalRecord, AuditCheck, AuditRecord, ChunkRecord,
    DeliveryRecord, EventRecord, RunFilter, RunRecord, RunbookChange, RunbookRecord, StepRecord,
    StoredObject, audit_hash,
};
pub use sqlite::SqliteStore;

/// This process as a run owner: `machine:pid`.
pub fn process_owner() -> String {
    format!("{}:{}", machine_id(), std::process::id())
}

fn machine_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// Whether an owner recorded by [`process_owner`] is still running: same
/// machine (and boot) and the pid exists and is not a zombie. Owners from
/// another machine count as alive (their own start-up recovers them).
pub fn owner_alive(owner: &str) -> bool {
    let Some((machine, pid)) = owner.rsplit_once(':') else {
        return false;
    };
    if machine != machine_id() {
        return true;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty() && !stat.contains(") Z ")
}

/// A store failure. All variants are fatal to the operation that hit them;
/// none is partially applied.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error. The backend's own error type stays
    /// behind a box, so every backend (SQLite today, PostgreSQL or the
    /// Kubernetes API later) reports through this one type.
    #[error("store {path}: {source}")]
    Database {
        /// The store's location.
        path: String,
        /// The database error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A file-system error around the store file.
    #[error("store {path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A stored record could not be read back.
    #[error("store {path}: corrupt record {what}: {detail}")]
    Corrupt {
        /// The store's location.
        path: String,
        /// Which record.
        what: String,
        /// Why.
        detail: String,
    },
    /// The file was written by a newer `opscli`.
    #[error(
        "store {path}: schema version {found} is newer than this opscli supports ({supported}); upgrade opscli"
    )]
    NewerSchema {
        /// The store's location.
        path: String,
        /// Version found in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// An object could not be serialised for storage.
    #[error("cannot store {key}: {detail}")]
    Encode {
        /// The object.
        key: String,
        /// Why.
        detail: String,
    },
    /// A run referred to does not exist.
    #[error("run `{0}` not found")]
    RunNotFound(String),
    /// The blocking worker died.
    #[error("store worker failed: {0}")]
    Worker(String),
}

/// Everything `ops` persists.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Creates or replaces objects in one transaction: all or none.
    /// Objects without a namespace go to `default_namespace`.
    async fn apply(
        &self,
        objects: Vec<Object>,
        default_namespace: &str,
    ) -> Result<Vec<ApplyOutcome>, StoreError>;

    /// One object.
    async fn get(&self, key: &ObjectKey) -> Result<Option<StoredObject>, StoreError>;

    /// Objects of `kind`, in `namespace` (or all namespaces when `None`),
    /// matching `selector`, ordered by namespace then name.
    async fn list(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Result<Vec<StoredObject>, StoreError>;

    /// Deletes objects in one transaction; `true` for each that existed.
    async fn delete(&self, keys: &[ObjectKey]) -> Result<Vec<bool>, StoreError>;

    /// Records a new run (before it starts).
    async fn create_run(&self, run: &RunRecord) -> Result<(), StoreError>;

    /// Moves a run to `phase`, with an optional message; sets `started_at`
    /// on the first move to `Running` and `finished_at` on a terminal phase.
    async fn set_run_phase(
        &self,
        id: &str,
        phase: RunPhase,
        message: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Inserts or replaces one step's record.
    async fn record_step(&self, step: &StepRecord) -> Result<(), StoreError>;

    /// A run with its steps.
    async fn get_run(&self, id: &str) -> Result<Option<RunRecord>, StoreError>;

    /// Runs, newest first, without their steps.
    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError>;

    /// Extends an active run's lease to `until` (RFC 3339): its owner is
    /// alive and working on it until then.
    async fn renew_lease(&self, id: &str, until: &str) -> Result<(), StoreError>;

    /// Marks every run (and its steps) still `Running` or `Pending` whose
    /// owner is not alive, or whose lease ran out, as `Interrupted`,
    /// keeping partial output; returns how many runs. `alive` answers for
    /// an owner string (at once on the owner's machine); a lease that ran
    /// out answers for owners anywhere.
    async fn mark_interrupted(
        &self,
        alive: &(dyn for<'o> Fn(&'o str) -> bool + Sync),
    ) -> Result<usize, StoreError>;

    /// Asks a run to stop; `false` when it is not active.
    async fn request_cancel(&self, id: &str) -> Result<bool, StoreError>;

    /// When the schedule `key` last fired (RFC 3339), if ever.
    async fn schedule_mark(&self, key: &str) -> Result<Option<String>, StoreError>;

    /// Records that the schedule `key` fired at `at` (RFC 3339).
    async fn set_schedule_mark(&self, key: &str, at: &str) -> Result<(), StoreError>;

    /// Appends to the audit log (hash-chained to the previous record, in
    /// one transaction). There is no update or delete.
    async fn append_audit(
        &self,
        session_id: Option<&str>,
        kind: &str,
        payload: &str,
    ) -> Result<AuditRecord, StoreError>;

    /// Audit records in order, only `session_id`'s when given, after
    /// `after_seq`, at most `limit`.
    async fn list_audit(
        &self,
        session_id: Option<&str>,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError>;

    /// Walks the whole chain and reports the first record that was
    /// edited, removed or reordered.
    async fn verify_audit(&self) -> Result<AuditCheck, StoreError>;

    /// Stores a new (pending) approval request.
    async fn create_approval(&self, a: &ApprovalRecord) -> Result<(), StoreError>;

    /// One approval by id.
    async fn get_approval(&self, id: &str) -> Result<Option<ApprovalRecord>, StoreError>;

    /// A signal that the store may have changed, written by this process
    /// or any other (the value counts changes seen; readers re-read what
    /// they wait for). Waiters for a decision made elsewhere use it
    /// instead of polling. `None` where the backend cannot tell (an
    /// in-memory store: nothing outside this process can write to it).
    fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    /// Decides a pending approval (`state` is `approved`,
    /// `approved_for_session` or `denied`), atomically: a decision on an
    /// approval that is no longer pending changes nothing, and one past
    /// its expiry marks it `expired`. Returns the record as it now is.
    async fn decide_approval(
        &self,
        id: &str,
        state: &str,
        by: &str,
        reason: Option<&str>,
    ) -> Result<Option<ApprovalRecord>, StoreError>;

    /// Turns an `approved` (once) approval into `used`; `false` when it
    /// was not `approved` (already used, denied, expired): the caller must
    /// not run the call.
    async fn consume_approval(&self, id: &str) -> Result<bool, StoreError>;

    /// An `approved_for_session` approval of this exact call in this
    /// session, if any.
    async fn session_approval(
        &self,
        session_id: &str,
        call_hash: &str,
    ) -> Result<Option<ApprovalRecord>, StoreError>;

    /// Saves a copilot session's state (its conversation, JSON) under `id`.
    async fn put_session(&self, id: &str, title: &str, state: &str) -> Result<(), StoreError>;

    /// A saved session: `(title, state)`.
    async fn get_session(&self, id: &str) -> Result<Option<(String, String)>, StoreError>;

    /// Approvals, newest first; only pending ones when `pending_only`.
    async fn list_approvals(
        &self,
        session_id: Option<&str>,
        pending_only: bool,
    ) -> Result<Vec<ApprovalRecord>, StoreError>;

    /// Stores a runbook and its chunks in one transaction. A file whose
    /// text is unchanged is left alone; otherwise chunks whose text is
    /// unchanged keep their ids (and cached vectors), new ones are added
    /// and the rest removed.
    async fn put_runbook(
        &self,
        runbook: &RunbookRecord,
        chunks: &[ChunkRecord],
    ) -> Result<RunbookChange, StoreError>;

    /// Runbooks by name, with their chunk counts.
    async fn list_runbooks(&self) -> Result<Vec<RunbookRecord>, StoreError>;

    /// One runbook and its chunks in order.
    async fn get_runbook(
        &self,
        name: &str,
    ) -> Result<Option<(RunbookRecord, Vec<ChunkRecord>)>, StoreError>;

    /// Removes a runbook and its chunks; `false` when there was none.
    async fn delete_runbook(&self, name: &str) -> Result<bool, StoreError>;

    /// Every chunk of every runbook, by runbook then position.
    async fn runbook_chunks(&self) -> Result<Vec<ChunkRecord>, StoreError>;

    /// Cached vectors of `model` for chunk hashes (those present).
    async fn get_embeddings(
        &self,
        model: &str,
        hashes: &[String],
    ) -> Result<std::collections::HashMap<String, Vec<f32>>, StoreError>;

    /// Caches vectors of `model` by chunk hash.
    async fn put_embeddings(
        &self,
        model: &str,
        vectors: &[(String, Vec<f32>)],
    ) -> Result<(), StoreError>;

    /// Appends an event to the embedded log; `false` when an event with
    /// the same id is already there (nothing is written).
    async fn append_event(&self, e: &EventRecord) -> Result<bool, StoreError>;

    /// Events after `after_seq`, at or after `since` (RFC 3339) when
    /// given, oldest first, at most `limit`.
    async fn list_events(
        &self,
        after_seq: i64,
        since: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError>;

    /// Appends events to the outbox (events waiting for NATS), in order,
    /// while it holds fewer than `max`; returns how many were taken (the
    /// rest did not fit).
    async fn outbox_push(&self, events: &[EventRecord], max: usize) -> Result<usize, StoreError>;

    /// The oldest `limit` outbox entries (their `seq` is the outbox's).
    async fn outbox_peek(&self, limit: usize) -> Result<Vec<EventRecord>, StoreError>;

    /// Removes outbox entries up to and including `upto_seq`.
    async fn outbox_remove(&self, upto_seq: i64) -> Result<(), StoreError>;

    /// How many events wait in the outbox.
    async fn outbox_len(&self) -> Result<usize, StoreError>;

    /// An embedded hook consumer's position in the event log.
    async fn hook_cursor(&self, hook: &str) -> Result<Option<i64>, StoreError>;

    /// Moves an embedded hook consumer to `seq`.
    async fn set_hook_cursor(&self, hook: &str, seq: i64) -> Result<(), StoreError>;

    /// Replaces an object's `status` (heartbeats): the spec, generation
    /// and labels are untouched, so it never races an `apply`. `false`
    /// when the object does not exist.
    async fn set_status(
        &self,
        key: &ObjectKey,
        status: &serde_json::Value,
    ) -> Result<bool, StoreError>;

    /// Records what hooks' sinks did with events and, when given, moves
    /// a hook's cursor (`(key, position)`) in the same transaction: a
    /// consumer that stops between two chunks neither loses a record nor
    /// hands a recorded chunk out again.
    async fn record_deliveries(
        &self,
        d: Vec<DeliveryRecord>,
        cursor: Option<(String, i64)>,
    ) -> Result<(), StoreError>;

    /// Removes event-log entries and hook delivery records older than
    /// `before` (RFC 3339); how many of each went. Positions are never
    /// reused, so hook cursors stay valid.
    async fn prune_events(&self, before: &str) -> Result<(usize, usize), StoreError>;

    /// The embedded event log's last position (0 when empty).
    async fn last_event_seq(&self) -> Result<i64, StoreError>;

    /// The newest `limit` delivery records (of `hook`, and of requests
    /// that carried event `event`, when given), oldest first.
    async fn list_deliveries(
        &self,
        hook: Option<&str>,
        event: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;
}
