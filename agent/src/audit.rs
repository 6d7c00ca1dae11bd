//! The copilot's audit trail: every user input, model reply, tool call,
//! approval request and decision, and result, appended to the store's
//! hash-chained log (`Store::append_audit`) **after redaction**, so a
//! secret that passed through a tool's output is not kept in the log
//! either. `opscli audit show` reads it; `opscli audit verify` walks the
//! chain.

use std::sync::Arc;

use ops_tools::events::CloudEvent;
use ops_tools::events::feed::Feed;
use ops_tools::store::{AuditRecord, Store, StoreError};
use serde::Serialize;

use crate::redact::redact_text;

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuditEvent {
    /// A person's message (or an alert) entering a session.
    UserInput {
        /// The text.
        text: String,
    },
    /// The model's reply.
    ModelReply {
        /// The text.
        text: String,
    },
    /// A tool call the model made, before any decision.
    ToolCall {
        /// Tool name.
        tool: String,
        /// Arguments (JSON).
        args: serde_json::Value,
        /// Declared effect.
        effect: String,
    },
    /// An approval was asked for.
    ApprovalRequested {
        /// Approval id.
        id: String,
        /// Hash of tool + arguments + targets the approval is bound to.
        call_hash: String,
        /// What will run where, as shown to the approver.
        summary: String,
    },
    /// Someone decided.
    ApprovalDecided {
        /// Approval id.
        id: String,
        /// `approved`, `approved_for_session`, `denied`, `expired`.
        decision: String,
        /// Who.
        by: String,
        /// Their reason, if given.
        reason: Option<String>,
    },
    /// A call that could not be checked (unknown tool, bad arguments,
    /// targets nobody can name); the model was told.
    InvalidCall {
        /// Tool as named by the model.
        tool: String,
        /// What was wrong.
        error: String,
    },
    /// A policy refusal (no human asked).
    Refused {
        /// Tool name.
        tool: String,
        /// Its arguments, secrets redacted (absent in records written
        /// before they were kept).
        #[serde(default)]
        args: serde_json::Value,
        /// Why.
        reason: String,
    },
    /// A tool's result.
    ToolResult {
        /// Tool name.
        tool: String,
        /// Whether it succeeded.
        ok: bool,
        /// Output (bounded by the caller).
        output: String,
    },
}

impl AuditEvent {
    /// The record kind (`user_input`, `tool_call`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            AuditEvent::UserInput { .. } => "user_input",
            AuditEvent::ModelReply { .. } => "model_reply",
            AuditEvent::ToolCall { .. } => "tool_call",
            AuditEvent::ApprovalRequested { .. } => "approval_requested",
            AuditEvent::ApprovalDecided { .. } => "approval_decided",
            AuditEvent::Refused { .. } => "refused",
            AuditEvent::InvalidCall { .. } => "invalid_call",
            AuditEvent::ToolResult { .. } => "tool_result",
        }
    }
}

/// Appends redacted events to the store's audit log and, with a feed,
/// publishes each record as an event: approvals on
/// `ops.clusters.local.namespaces.{ns}.approvals.{id}.status`
/// (`dev.ops.approval.requested` / `dev.ops.approval.decided`), everything
/// else on `ops.clusters.local.namespaces.{ns}.sessions.{session}.events`
/// (`dev.ops.audit.{kind}`). The event carries the record as written
/// (redacted) with its sequence number and hash.
#[derive(Clone)]
pub struct Audit {
    store: Arc<dyn Store>,
    feed: Option<(Feed, String)>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit").finish_non_exhaustive()
    }
}

impl Audit {
    /// An audit trail in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Audit { store, feed: None }
    }

    /// Also publishes every record to `feed` (subjects in `namespace`).
    pub fn with_feed(mut self, feed: Feed, namespace: impl Into<String>) -> Self {
        self.feed = Some((feed, namespace.into()));
        self
    }

    /// Records `event` for `session` (redacted first).
    pub async fn record(
        &self,
        session: Option<&str>,
        event: &AuditEvent,
    ) -> Result<AuditRecord, StoreError> {
        let json = serde_json::to_string(event).map_err(|e| StoreError::Encode {
            key: format!("audit {}", event.kind()),
            detail: e.to_string(),
        })?;
        let rec = self
            .store
            .append_audit(session, event.kind(), &redact_text(&json))
            .await?;
        if let Some((feed, ns)) = &self.feed {
            let e = audit_event(&rec, event, ns);
            if let Err(err) = feed.publish(e).await {
                eprintln!("warning: audit record {} not published: {err}", rec.seq);
            }
        }
        Ok(rec)
    }
}

/// The event for an audit record.
fn audit_event(rec: &AuditRecord, event: &AuditEvent, ns: &str) -> CloudEvent {
    use ops_tools::events::runs::LOCAL_CLUSTER;
    use ops_tools::events::subject::{Channel, object};
    let payload: serde_json::Value = serde_json::from_str(&rec.payload).unwrap_or_default();
    let session = rec.session_id.clone().unwrap_or_else(|| "none".into());
    let (kind, subject) = match event {
        AuditEvent::ApprovalRequested { id, .. } => (
            "dev.ops.approval.requested".to_owned(),
            object(LOCAL_CLUSTER, ns, "approvals", id, Channel::Status),
        ),
        AuditEvent::ApprovalDecided { id, .. } => (
            "dev.ops.approval.decided".to_owned(),
            object(LOCAL_CLUSTER, ns, "approvals", id, Channel::Status),
        ),
        other => (
            format!("dev.ops.audit.{}", other.kind()),
            object(LOCAL_CLUSTER, ns, "sessions", &session, Channel::Events),
        ),
    };
    CloudEvent::new(
        ops_tools::events::default_source(),
        kind,
        subject,
        serde_json::json!({
            "seq": rec.seq,
            "session": rec.session_id,
            "kind": rec.kind,
            "at": rec.at,
            "record": payload,
            "hash": rec.hash,
        }),
    )
    .in_cluster(LOCAL_CLUSTER)
}
