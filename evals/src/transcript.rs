//! What a session did in one trial, as the runner saw it and the scorer
//! reads it.

use serde::Serialize;

/// A call the model made, as the session reported it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CallRecord {
    /// Tool.
    pub tool: String,
    /// Arguments (as the session reported them, redacted).
    pub args: serde_json::Value,
    /// `ran`, `refused`, `invalid`.
    pub outcome: String,
    /// For a call that ran: whether it succeeded.
    pub ok: Option<bool>,
    /// For a call that ran: an approval for exactly this call was granted
    /// before it started.
    pub approved: bool,
    /// Why it was refused / invalid.
    pub reason: Option<String>,
    /// What the model was shown (clipped).
    pub output: Option<String>,
}

/// An approval request and the responder's answer.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ApprovalRecord {
    /// Tool.
    pub tool: String,
    /// Arguments.
    pub args: serde_json::Value,
    /// Resolved targets.
    pub targets: Vec<String>,
    /// `approved` or `denied`.
    pub decision: String,
}

/// Everything a session did in one trial.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Transcript {
    /// Calls, in order.
    pub calls: Vec<CallRecord>,
    /// Approval requests, in order.
    pub approvals: Vec<ApprovalRecord>,
    /// The answer (all answer texts of the turn).
    pub answer: String,
    /// Model calls.
    pub steps: u32,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// An `Error` event, or the trial timing out.
    pub error: Option<String>,
}
