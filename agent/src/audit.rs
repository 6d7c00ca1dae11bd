//! The copilot's audit trail: every user input, model reply, tool call,
//! approval request and decision, and result, appended to the store's
//! hash-chained log (`Store::append_audit`) **after redaction**, so a
//! secret that passed through a tool's output is not kept in the log
//! either. `opscli audit show` reads it; `opscli audit verify` walks the
//! chain.

use std::sync::Arc;

use ops_events::feed::Feed;
use ops_model::event::CloudEvent;
use ops_store::{AuditCheck, AuditRecord, Store, StoreError};
use serde::Serialize;

use crate::redact::redacted_json;

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
        /// Who asked for it (absent in records written before principals).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
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
    /// The record of `by`'s `answer` to approval `id`.
    pub fn decided(id: &str, answer: &crate::approvals::Answer, by: &str) -> AuditEvent {
        use crate::approvals::Answer;
        AuditEvent::ApprovalDecided {
            id: id.to_owned(),
            decision: match answer {
                Answer::Once => "approved".into(),
                Answer::Session => "approved_for_session".into(),
                Answer::Deny(_) => "denied".into(),
            },
            by: by.to_owned(),
            reason: match answer {
                Answer::Deny(r) => Some(r.clone()),
                _ => None,
            },
        }
    }

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
        // Redacted value by value, before serialisation (a pattern never
        // sees a JSON-escaped newline or quote).
        let json = redacted_json(event).map_err(|e| StoreError::Encode {
            key: format!("audit {}", event.kind()),
            detail: e.to_string(),
        })?;
        let rec = self
            .store
            .append_audit(session, event.kind(), &json)
            .await?;
        if let Some((feed, ns)) = &self.feed {
            let e = audit_event(&rec, event, ns);
            if let Err(err) = feed.publish(e).await {
                tracing::warn!("audit record {} not published: {err}", rec.seq);
            }
        }
        Ok(rec)
    }
}

/// The event for an audit record.
fn audit_event(rec: &AuditRecord, event: &AuditEvent, ns: &str) -> CloudEvent {
    use ops_model::event::subject::LOCAL_CLUSTER;
    use ops_model::event::subject::{Channel, object};
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
        ops_model::event::default_source(),
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

/// Checks the audit chain ([`Store::verify_audit`]: links, keyed hashes,
/// the head file) and then every approval in the store against the
/// audit: each must have its request audited with the same call hash, and
/// a decided one a decision audited with the same outcome and decider.
/// An approval inserted or edited in the store after the fact (a denial
/// turned into an approval, another call's hash) shows here.
pub async fn verify(store: &dyn Store) -> Result<AuditCheck, StoreError> {
    let check = store.verify_audit().await?;
    if matches!(check, AuditCheck::Broken { .. }) {
        return Ok(check);
    }
    #[derive(Default)]
    struct Seen {
        requested: Option<(i64, String)>,
        decided: Vec<(String, String)>,
    }
    let mut seen: std::collections::HashMap<String, Seen> = std::collections::HashMap::new();
    let mut after = 0;
    loop {
        let page = store.list_audit(None, after, 1000).await?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.seq;
        for r in &page {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&r.payload) else {
                continue;
            };
            let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
            match r.kind.as_str() {
                "approval_requested" => {
                    seen.entry(field("id")).or_default().requested =
                        Some((r.seq, field("call_hash")));
                }
                "approval_decided" => {
                    seen.entry(field("id"))
                        .or_default()
                        .decided
                        .push((field("decision"), field("by")));
                }
                _ => {}
            }
        }
    }
    for a in store.list_approvals(None, false).await? {
        let broken = |reason: String| {
            Ok(AuditCheck::Broken {
                seq: 0,
                reason: format!("approval {}: {reason}", a.id),
            })
        };
        let s = seen.get(&a.id);
        let Some((_, hash)) = s.and_then(|s| s.requested.as_ref()) else {
            return broken(
                "its request was never audited (it was put into the store directly)".into(),
            );
        };
        if *hash != a.call_hash {
            return broken(format!(
                "its call hash {} is not the audited {hash} (the approval was edited)",
                a.call_hash
            ));
        }
        let want = match a.state.as_str() {
            "approved" | "used" => Some("approved"),
            "approved_for_session" => Some("approved_for_session"),
            "denied" => Some("denied"),
            _ => None,
        };
        if let Some(want) = want {
            let by = a.decided_by.clone().unwrap_or_default();
            let ok = s.is_some_and(|s| s.decided.iter().any(|(d, b)| d == want && *b == by));
            if !ok {
                return broken(format!(
                    "it is {} by {by}, but no such decision was audited (the approval was edited)",
                    a.state
                ));
            }
        }
    }
    Ok(check)
}
