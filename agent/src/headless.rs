//! Work nobody is typing into: what an EventHooks `task`, `pipeline` or
//! `copilot` sink starts. It passes the same [`Gate`](crate::gate) as a
//! chat, so every call goes through the same policy, approvals, redaction
//! and audit; only the door differs:
//!
//! - [`invoke`]: one direct call (`task_run` / `pipeline_run` with the
//!   hook's arguments) under the hook's principal, no model. Where the
//!   policy asks, the request is in the store and the call waits for a
//!   decision from any door (`opscli approval approve|deny` in another
//!   process, later REST or Slack): the store's change signal wakes it,
//!   nothing polls.
//! - [`run`]: one model turn of a session (a `copilot` hook's triage);
//!   the session's own door hears decisions made elsewhere the same way.

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::gate::{Gate, Terms, Unattended};
use crate::session::{Agent, Event, Op, SessionConfig};

/// How a headless call or turn ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The final answer (for a direct call: the call's result).
    pub answer: String,
    /// Approvals requested (ids).
    pub approvals: Vec<String>,
    /// Calls refused, with the reason.
    pub refused: Vec<String>,
    /// Tools that ran.
    pub ran: Vec<String>,
    /// Errors (model unreachable, step cap, invalid calls).
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

    /// Takes in one event; `true` at the end of a turn.
    fn observe(&mut self, e: Event) -> bool {
        match e {
            Event::ApprovalRequested { id, .. } => self.approvals.push(id),
            Event::Refused { tool, reason, .. } => self.refused.push(format!("{tool}: {reason}")),
            Event::ToolFinished { tool, .. } => self.ran.push(tool),
            Event::InvalidCall { tool, error } => self.errors.push(format!("{tool}: {error}")),
            Event::Answer { text } => self.answer = text,
            Event::Error { message } => self.errors.push(message),
            Event::TurnComplete { .. } => return true,
            _ => {}
        }
        false
    }
}

/// Runs one direct call of `tool` with `args` through the gate under
/// `terms`, with no one at the keyboard; `cancel` withdraws it.
pub async fn invoke(
    gate: Gate<'_>,
    terms: &Terms<'_>,
    tool: &str,
    args: serde_json::Value,
    cancel: CancellationToken,
) -> Outcome {
    let (tx, mut rx) = mpsc::channel::<Event>(64);
    let mut door = Unattended::new(gate.approvals.clone(), Some(tx), cancel);
    let call = async {
        let text = match gate.check(tool, args).await {
            Ok(c) => gate.pass(terms, &c, &mut door).await.text,
            Err(e) => {
                gate.invalid(terms, &mut door, tool, &e).await;
                format!("error: {e}")
            }
        };
        drop(door);
        text
    };
    let collect = async {
        let mut out = Outcome::default();
        while let Some(e) = rx.recv().await {
            out.observe(e);
        }
        out
    };
    let (text, mut out) = tokio::join!(call, collect);
    out.answer = format!("{tool}: {}", ops_model::clip(&text, 2000));
    out
}

/// Runs one turn of a session with `input` and no one at the keyboard;
/// approvals are decided from other doors (the session hears them through
/// the store).
pub async fn run(agent: Agent, cfg: SessionConfig, input: String) -> Outcome {
    let mut h = agent.spawn(cfg);
    let mut out = Outcome::default();
    if h.ops.send(Op::UserInput(input)).await.is_err() {
        out.errors.push("the session did not start".into());
        return out;
    }
    while let Some(e) = h.events.recv().await {
        if out.observe(e) {
            break;
        }
    }
    drop(h.ops);
    out
}
