//! Approvals bound to the exact call. A request records what will run
//! where (tool, arguments with variables resolved, targets, effect, the
//! model's reason) and a hash of tool + arguments + targets. Before a
//! gated call runs, [`Approvals::authorize`] checks that the call about to
//! run hashes to what was approved: any change to the command, a variable
//! or the target list needs a new approval. Decisions: approve once
//! (consumed when the call runs), approve identical calls for the rest of
//! the session, deny (with a reason the model is told), or let it expire.
//! The approver's identity is stored with the decision. This check sits in
//! code below the model; nothing a prompt or a tool output says can skip it.

use std::sync::Arc;
use std::time::Duration;

use ops_model::Effect;
use ops_protocol::Principal;
use ops_store::{ApprovalRecord, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// One gated call, as it will run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallSpec {
    /// Tool name.
    pub tool: String,
    /// Arguments, with variables resolved.
    pub args: Value,
    /// Target names (hosts, nodes, `cluster/namespace/pod`).
    pub targets: Vec<String>,
    /// Its effect.
    pub effect: Effect,
}

fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                canonical(&m[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

impl CallSpec {
    /// SHA-256 of tool, arguments (keys sorted at every level) and the
    /// sorted, de-duplicated targets. The effect is not part of it: it is
    /// derived from the rest.
    pub fn hash(&self) -> String {
        let mut targets = self.targets.clone();
        targets.sort();
        targets.dedup();
        let mut text = String::new();
        canonical(
            &serde_json::json!({"tool": self.tool, "args": self.args, "targets": targets}),
            &mut text,
        );
        ops_model::hex(&Sha256::digest(text.as_bytes()))
    }
}

/// What an approver is shown and what is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// The call.
    pub call: CallSpec,
    /// What will run where, in words (`systemctl restart nginx` on
    /// `web-1, web-2`).
    pub summary: String,
    /// The model's stated reason.
    pub reason: String,
    /// For a Task or Pipeline: its steps with the variables resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
}

pub use ops_protocol::Answer;

/// Why a call may not run (yet).
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// No approval with that id.
    #[error("no approval `{0}`")]
    Unknown(String),
    /// It was already decided (or expired).
    #[error("approval `{id}` is {state}, not pending")]
    NotPending {
        /// Id.
        id: String,
        /// Its state.
        state: String,
    },
    /// Nobody has decided yet.
    #[error("approval `{0}` is still pending")]
    Pending(String),
    /// A human said no.
    #[error("denied by {by}: {reason}")]
    Denied {
        /// Who.
        by: String,
        /// Why.
        reason: String,
    },
    /// Nobody answered in time.
    #[error("approval `{0}` expired unanswered")]
    Expired(String),
    /// Already used by an earlier run of the call (approve-once).
    #[error("approval `{0}` was for one run and has been used")]
    Used(String),
    /// The call differs from what was approved.
    #[error(
        "the call differs from what approval `{id}` approved (approved {approved}, about to run {actual}); a new approval is needed"
    )]
    Mismatch {
        /// Id.
        id: String,
        /// Approved hash.
        approved: String,
        /// Hash of the call about to run.
        actual: String,
    },
    /// The approval belongs to another session.
    #[error("approval `{0}` belongs to another session")]
    OtherSession(String),
    /// The would-be approver may not decide approvals (ops acting for
    /// one of its own objects).
    #[error("{0} may not decide approvals")]
    NotAnApprover(String),
    /// The store failed: fail closed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What waiting for a decision came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Wait {
    /// Decided through the waiting caller's own door (a chat's answer):
    /// not recorded yet; the gate records it for `by`.
    Answer(Answer, Principal),
    /// Decided and recorded in the store by any door (this process or
    /// another); who, as recorded.
    Recorded(Answer, String),
    /// Nobody answered before the request lapsed.
    Expired,
    /// The request was withdrawn or could not be read, or the caller gave
    /// up waiting (cancelled, closed); why.
    Withdrawn(String),
}

/// How often a waiter re-reads an approval when its store cannot signal
/// changes (no such store ships; a safety net).
pub const NO_SIGNAL_REREAD: Duration = Duration::from_secs(30);

/// How a call was authorised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorized {
    /// By this approve-once decision, now consumed.
    Once(ApprovalRecord),
    /// By a session-wide approval of the identical call.
    Session(ApprovalRecord),
}

/// Approval requests and decisions, in the store.
#[derive(Clone)]
pub struct Approvals {
    store: Arc<dyn Store>,
    ttl: Duration,
}

impl std::fmt::Debug for Approvals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approvals")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

use ops_model::stamp::of as stamp;

fn new_id() -> String {
    format!("ap-{}", ops_model::id::unique_hex("approval", 6))
}

impl Approvals {
    /// Approvals in `store`; unanswered requests lapse after `ttl`.
    pub fn new(store: Arc<dyn Store>, ttl: Duration) -> Self {
        Approvals { store, ttl }
    }

    /// How long a request waits for an answer.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Records a pending request for `session`.
    pub async fn request(
        &self,
        session: &str,
        req: &ApprovalRequest,
    ) -> Result<ApprovalRecord, ApprovalError> {
        let now = chrono::Utc::now();
        let ttl = chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::hours(1));
        let rec = ApprovalRecord {
            id: new_id(),
            session_id: Some(session.to_owned()),
            call_hash: req.call.hash(),
            state: "pending".into(),
            // Shown to approvers; the call itself is bound by `call_hash`.
            request: crate::redact::redacted_json(req).map_err(|e| StoreError::Encode {
                key: "approval request".into(),
                detail: e.to_string(),
            })?,
            reason: None,
            decided_by: None,
            created_at: stamp(now),
            expires_at: Some(stamp(now + ttl)),
            decided_at: None,
        };
        self.store.create_approval(&rec).await?;
        Ok(rec)
    }

    /// Records `by`'s answer to a pending request. Only a principal that
    /// may decide approvals can ([`Principal::may_decide`]).
    pub async fn answer(
        &self,
        id: &str,
        answer: &Answer,
        by: &Principal,
    ) -> Result<ApprovalRecord, ApprovalError> {
        if !by.may_decide() {
            return Err(ApprovalError::NotAnApprover(by.to_string()));
        }
        let by = by.to_string();
        self.record_answer(id, answer, &by).await
    }

    /// Closes a pending request on the asking side (the session was
    /// cancelled or closed, the audit could not record it): a denial by
    /// ops, never an approval.
    pub async fn withdraw(&self, id: &str, reason: &str) -> Result<ApprovalRecord, ApprovalError> {
        self.record_answer(id, &Answer::Deny(reason.to_owned()), "ops")
            .await
    }

    async fn record_answer(
        &self,
        id: &str,
        answer: &Answer,
        by: &str,
    ) -> Result<ApprovalRecord, ApprovalError> {
        let (state, reason) = match answer {
            Answer::Once => ("approved", None),
            Answer::Session => ("approved_for_session", None),
            Answer::Deny(r) => ("denied", Some(r.as_str())),
        };
        let rec = self
            .store
            .decide_approval(id, state, by, reason)
            .await?
            .ok_or_else(|| ApprovalError::Unknown(id.to_owned()))?;
        if rec.decided_by.as_deref() != Some(by) || rec.state != state {
            return Err(match rec.state.as_str() {
                "expired" => ApprovalError::Expired(id.to_owned()),
                s => ApprovalError::NotPending {
                    id: id.to_owned(),
                    state: s.to_owned(),
                },
            });
        }
        Ok(rec)
    }

    /// Waits for a decision on approval `id`, until it lapses. Pushed,
    /// not polled: a decision in this process wakes the waiter at once,
    /// one in another process through the store's change signal
    /// ([`Store::changes`]: inotify on the SQLite file); the record is
    /// re-read only when something changed. A store that cannot signal is
    /// re-read every `fallback`. Never [`Wait::Answer`]: that comes only
    /// from a caller's own door.
    pub async fn wait(&self, id: &str, fallback: Duration) -> Wait {
        let mut changes = self.store.changes();
        loop {
            let rec = match self.store.get_approval(id).await {
                Ok(Some(r)) => r,
                Ok(None) => return Wait::Withdrawn(format!("approval `{id}` does not exist")),
                Err(e) => return Wait::Withdrawn(e.to_string()),
            };
            let by = rec.decided_by.clone().unwrap_or_else(|| "unknown".into());
            match rec.state.as_str() {
                "approved" | "used" => return Wait::Recorded(Answer::Once, by),
                "approved_for_session" => return Wait::Recorded(Answer::Session, by),
                "denied" => {
                    let why = rec.reason.unwrap_or_else(|| "no reason given".into());
                    return Wait::Recorded(Answer::Deny(why), by);
                }
                "expired" => return Wait::Expired,
                "pending" => {}
                other => return Wait::Withdrawn(format!("approval `{id}` is {other}")),
            }
            let now = chrono::Utc::now();
            let left = rec
                .expires_at
                .as_deref()
                .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
                .map(|e| {
                    (e.with_timezone(&chrono::Utc) - now)
                        .to_std()
                        .unwrap_or_default()
                });
            let Some(left) = left else {
                return Wait::Withdrawn(format!("approval `{id}` has no expiry"));
            };
            if left.is_zero() {
                return Wait::Expired;
            }
            match changes.as_mut() {
                Some(rx) => {
                    // A closed signal (store gone): fall back to re-reading.
                    let closed = tokio::time::timeout(left, rx.changed())
                        .await
                        .is_ok_and(|r| r.is_err());
                    if closed {
                        changes = None;
                    }
                }
                None => tokio::time::sleep(left.min(fallback)).await,
            }
        }
    }

    /// A session-wide approval that already covers `call`, if any.
    pub async fn preapproved(
        &self,
        session: &str,
        call: &CallSpec,
    ) -> Result<Option<ApprovalRecord>, ApprovalError> {
        Ok(self.store.session_approval(session, &call.hash()).await?)
    }

    /// The last check before a gated call runs: `call` must be exactly
    /// what approval `id` (of this `session`) approved. An approve-once
    /// approval is consumed here, atomically, so it authorises one run.
    pub async fn authorize(
        &self,
        session: &str,
        id: &str,
        call: &CallSpec,
    ) -> Result<Authorized, ApprovalError> {
        let rec = self
            .store
            .get_approval(id)
            .await?
            .ok_or_else(|| ApprovalError::Unknown(id.to_owned()))?;
        if rec.session_id.as_deref() != Some(session) {
            return Err(ApprovalError::OtherSession(id.to_owned()));
        }
        let actual = call.hash();
        if rec.call_hash != actual {
            return Err(ApprovalError::Mismatch {
                id: id.to_owned(),
                approved: rec.call_hash,
                actual,
            });
        }
        match rec.state.as_str() {
            "approved" => {
                if self.store.consume_approval(id).await? {
                    Ok(Authorized::Once(rec))
                } else {
                    Err(ApprovalError::Used(id.to_owned()))
                }
            }
            "approved_for_session" => Ok(Authorized::Session(rec)),
            "pending" => {
                let expired = rec
                    .expires_at
                    .as_deref()
                    .is_some_and(|e| e <= stamp(chrono::Utc::now()).as_str());
                if expired {
                    Err(ApprovalError::Expired(id.to_owned()))
                } else {
                    Err(ApprovalError::Pending(id.to_owned()))
                }
            }
            "denied" => Err(ApprovalError::Denied {
                by: rec.decided_by.unwrap_or_default(),
                reason: rec.reason.unwrap_or_else(|| "no reason given".into()),
            }),
            "expired" => Err(ApprovalError::Expired(id.to_owned())),
            "used" => Err(ApprovalError::Used(id.to_owned())),
            other => Err(ApprovalError::NotPending {
                id: id.to_owned(),
                state: other.to_owned(),
            }),
        }
    }
}
