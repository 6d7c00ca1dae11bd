//! Sessions nobody is typing into: what an EventHooks `task`, `pipeline`
//! or `copilot` sink starts. They run the same [`Agent`] loop as a chat,
//! so every call goes through the same policy, approval gate, redaction
//! and audit; only the client differs:
//!
//! - [`FixedCall`] is the "model" of a `task` / `pipeline` hook: it asks
//!   for exactly one call (`task_run` / `pipeline_run` with the hook's
//!   arguments) and then reports that call's result. No model decides
//!   anything, and the gate treats the call like any other.
//! - [`run`] drives a session to the end of one turn. When the gate asks
//!   for an approval, the request is already in the store; [`run`] polls
//!   the store until someone decides it (`opscli approval approve|deny`
//!   from any terminal) or it expires, and hands the decision to the
//!   session, which checks it against the exact call before running it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ops_store::Store;

use crate::approvals::Answer;
use crate::llm::{ChatModel, LlmError, Message, Reply, Role, ToolCall, ToolCallMode};
use crate::session::{Agent, Event, Op, SessionConfig};

/// A model that makes one fixed call, then reports its result.
#[derive(Debug)]
pub struct FixedCall {
    call: ToolCall,
    asked: AtomicUsize,
}

impl FixedCall {
    /// Asks for `tool` with `args`.
    pub fn new(tool: &str, args: &serde_json::Value) -> Self {
        FixedCall {
            call: ToolCall {
                id: "hook-1".into(),
                name: tool.into(),
                arguments: args.to_string(),
            },
            asked: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl ChatModel for FixedCall {
    async fn chat(
        &self,
        messages: &[Message],
        _tools: &[ops_tools::ToolSpec],
        _mode: ToolCallMode,
    ) -> Result<Reply, LlmError> {
        if self.asked.fetch_add(1, Ordering::SeqCst) == 0 {
            return Ok(Reply {
                tool_calls: vec![self.call.clone()],
                ..Reply::default()
            });
        }
        let result = messages
            .iter()
            .rev()
            .find(|m| m.role == Role::Tool)
            .map(|m| m.content.clone())
            .unwrap_or_else(|| "(no result)".into());
        Ok(Reply {
            content: format!("{}: {}", self.call.name, ops_model::clip(&result, 2000)),
            ..Reply::default()
        })
    }
}

/// How a headless turn ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The final answer (for a fixed call: the call's result).
    pub answer: String,
    /// Approvals requested (ids).
    pub approvals: Vec<String>,
    /// Calls refused, with the reason.
    pub refused: Vec<String>,
    /// Tools that ran.
    pub ran: Vec<String>,
    /// Errors (model unreachable, step cap).
    pub errors: Vec<String>,
}

impl Outcome {
    /// `done`, `refused` or `failed`.
    pub fn status(&self) -> &'static str {
        if !self.errors.is_empty() {
            "failed"
        } else if !self.refused.is_empty() {
            "refused"
        } else {
            "done"
        }
    }
}

/// Waits for a decision on approval `id` in the store; `None` when it
/// expired or vanished.
async fn decision(store: &Arc<dyn Store>, id: &str, poll: Duration) -> Option<(Answer, String)> {
    loop {
        let rec = store.get_approval(id).await.ok()??;
        let by = rec.decided_by.clone().unwrap_or_else(|| "unknown".into());
        match rec.state.as_str() {
            "approved" => return Some((Answer::Once, by)),
            "approved_for_session" => return Some((Answer::Session, by)),
            "denied" => {
                return Some((
                    Answer::Deny(rec.reason.unwrap_or_else(|| "no reason given".into())),
                    by,
                ));
            }
            "pending" => {
                let now = ops_model::stamp::now();
                if rec.expires_at.as_deref().is_some_and(|e| e <= now.as_str()) {
                    return None;
                }
            }
            _ => return None,
        }
        tokio::time::sleep(poll).await;
    }
}

/// Runs one turn of a session with `input` and no one at the keyboard;
/// approvals are decided in the store (polled every `poll`).
pub async fn run(agent: Agent, cfg: SessionConfig, input: String, poll: Duration) -> Outcome {
    let store = Arc::clone(agent.ctx.engine.store());
    let mut h = agent.spawn(cfg);
    let mut out = Outcome::default();
    if h.ops.send(Op::UserInput(input)).await.is_err() {
        out.errors.push("the session did not start".into());
        return out;
    }
    while let Some(e) = h.events.recv().await {
        match e {
            Event::ApprovalRequested { id, .. } => {
                out.approvals.push(id.clone());
                let (store, ops) = (Arc::clone(&store), h.ops.clone());
                tokio::spawn(async move {
                    // Expired: the session refuses on its own deadline.
                    if let Some((answer, by)) = decision(&store, &id, poll).await {
                        let _ = ops.send(Op::Decide { id, answer, by }).await;
                    }
                });
            }
            Event::Refused { tool, reason, .. } => out.refused.push(format!("{tool}: {reason}")),
            Event::ToolFinished { tool, .. } => out.ran.push(tool),
            Event::Answer { text } => out.answer = text,
            Event::Error { message } => out.errors.push(message),
            Event::TurnComplete { .. } => break,
            _ => {}
        }
    }
    drop(h.ops);
    out
}
