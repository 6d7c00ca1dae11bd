//! `ops-protocol`: the words every door speaks. [`Op`] into a session,
//! [`Event`] out of it, an approver's [`Answer`], and [`Principal`]: who
//! is asking for a call or deciding on one, and how that was established
//! (every op that acts and every decision carries one, and the audit
//! trail records it). Pure (serde + schemars): a REST body, an SSE
//! stream, a Slack action and an MCP request all carry these values.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Who asks or decides, and how ops knows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Principal {
    /// A stable name within its kind of authentication: the OS account
    /// name, or `namespace/name` of the object ops acts for.
    pub name: String,
    /// How the name was established.
    pub auth: Auth,
}

/// How a [`Principal`] was authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Auth {
    /// The local OS account that runs this process: the kernel vouches
    /// for the uid (the CLI). Anyone who can act as this account can act
    /// as this principal.
    LocalUser {
        /// The real uid.
        uid: u32,
    },
    /// ops itself, acting for one of its objects (an EventHooks action, a
    /// schedule): it asks, but it never decides an approval.
    System {
        /// What it acts for: `eventhooks/NAMESPACE/NAME`.
        on_behalf_of: String,
    },
    /// The eval runner's scripted responder, standing in for the person
    /// an eval case describes (it asks and decides as the case says).
    Eval {
        /// The case.
        case: String,
    },
}

impl Principal {
    /// The local OS account `name` with real uid `uid`.
    pub fn local_user(name: impl Into<String>, uid: u32) -> Self {
        Principal {
            name: name.into(),
            auth: Auth::LocalUser { uid },
        }
    }

    /// ops acting for `object` (`eventhooks/ns/name`).
    pub fn system(object: impl Into<String>) -> Self {
        let object = object.into();
        Principal {
            name: format!("ops:{object}"),
            auth: Auth::System {
                on_behalf_of: object,
            },
        }
    }

    /// The eval runner's responder for `case`.
    pub fn eval(case: impl Into<String>) -> Self {
        Principal {
            name: "eval-responder".into(),
            auth: Auth::Eval { case: case.into() },
        }
    }

    /// Whether this principal may decide approvals at all: people may,
    /// ops acting for its own objects may not (it would approve itself).
    pub fn may_decide(&self) -> bool {
        !matches!(self.auth, Auth::System { .. })
    }
}

impl fmt::Display for Principal {
    /// `alice (local uid 1000)`, `ops:eventhooks/ns/restart (system)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.auth {
            Auth::LocalUser { uid } => write!(f, "{} (local uid {uid})", self.name),
            Auth::System { .. } => write!(f, "{} (system)", self.name),
            Auth::Eval { case } => write!(f, "{} (eval case {case})", self.name),
        }
    }
}

/// An approver's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// This call, once.
    Once,
    /// Identical calls for the rest of this session.
    Session,
    /// No; the reason goes back to the model.
    Deny(String),
}

/// Tokens used by one exchange with the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt: u64,
    /// Completion tokens.
    pub completion: u64,
}

/// Into a session: what a door sends (externally tagged on the wire:
/// `{"user_input": "..."}`, `{"invoke": {...}}`, `"cancel"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// A person's message (or an alert rendered as text).
    UserInput(String),
    /// A person's (or a program's) direct call of one tool, no model in
    /// between: it passes the same gate as the model's calls, under `by`.
    Invoke {
        /// Tool name.
        tool: String,
        /// Its arguments.
        args: serde_json::Value,
        /// Who asks.
        by: Principal,
    },
    /// A decision on a pending approval.
    Decide {
        /// Approval id.
        id: String,
        /// The answer.
        answer: Answer,
        /// Who decided (authenticated by the door it came through).
        by: Principal,
    },
    /// Stop the tool call that is running (Ctrl-C); the model is told it
    /// was cancelled. Ignored when nothing runs.
    Cancel,
}

/// Out of a session: what every door shows (tagged by `event`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
// A few events per turn cross a channel; matching on plain fields is worth
// more to every client than the bytes boxing would save.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    /// A tool call is about to run.
    ToolStarted {
        /// Tool.
        tool: String,
        /// Arguments (redacted).
        args: serde_json::Value,
    },
    /// A tool call finished.
    ToolFinished {
        /// Tool.
        tool: String,
        /// Whether it succeeded.
        ok: bool,
        /// Its result, as the model sees it (redacted, bounded).
        output: String,
    },
    /// A human must decide.
    ApprovalRequested {
        /// Approval id, for [`Op::Decide`].
        id: String,
        /// Tool.
        tool: String,
        /// What will run where.
        summary: String,
        /// Effect.
        effect: String,
        /// The model's reason.
        reason: String,
        /// Why the policy asks.
        policy: Vec<String>,
        /// The arguments, whole (redacted).
        args: serde_json::Value,
        /// The hosts (or `cluster/node`s) it will run on, resolved.
        targets: Vec<String>,
        /// What the approval is bound to: SHA-256 of tool, arguments and
        /// targets.
        call_hash: String,
        /// When the request lapses unanswered (RFC 3339).
        expires_at: Option<String>,
        /// For a Task or Pipeline: its steps with the variables resolved.
        plan: Option<String>,
    },
    /// A call could not be checked (unknown tool, bad arguments, targets
    /// nobody can name); the model is told and may correct it.
    InvalidCall {
        /// Tool as the model named it.
        tool: String,
        /// What was wrong.
        error: String,
    },
    /// A call was refused (by policy, a denial, or a failed check).
    Refused {
        /// Tool.
        tool: String,
        /// Its arguments, secrets redacted.
        args: serde_json::Value,
        /// Why.
        reason: String,
    },
    /// A piece of the answer as the model writes it (streamed). The
    /// pieces of a turn add up to the text of its [`Event::Answer`]; prose
    /// the model writes before a tool call may come as pieces too.
    AnswerDelta {
        /// Text.
        text: String,
    },
    /// The model's answer for this turn, whole.
    Answer {
        /// Text.
        text: String,
    },
    /// The turn could not finish (model unreachable, step cap).
    Error {
        /// Why.
        message: String,
    },
    /// The turn is over; totals.
    TurnComplete {
        /// Model calls made.
        steps: u32,
        /// Tokens used.
        usage: Usage,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_show_how_they_were_authenticated_and_round_trip() {
        let alice = Principal::local_user("alice", 1000);
        assert_eq!(alice.to_string(), "alice (local uid 1000)");
        assert!(alice.may_decide());
        let hook = Principal::system("eventhooks/ops/restart");
        assert_eq!(hook.to_string(), "ops:eventhooks/ops/restart (system)");
        assert!(!hook.may_decide());
        let text = serde_json::to_string(&alice).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"name":"alice","auth":{"kind":"local_user","uid":1000}}"#
        );
        assert_eq!(serde_json::from_str::<Principal>(&text).ok(), Some(alice));
    }

    #[test]
    fn ops_and_events_have_a_wire_form_that_reads_back() {
        let ops = [
            Op::UserInput("why is web-1 slow?".into()),
            Op::Invoke {
                tool: "host_run_shell".into(),
                args: serde_json::json!({"hosts": "web-1", "command": "uptime"}),
                by: Principal::local_user("alice", 1000),
            },
            Op::Decide {
                id: "ap-1".into(),
                answer: Answer::Deny("not now".into()),
                by: Principal::local_user("bob", 1001),
            },
            Op::Cancel,
        ];
        for op in ops {
            let text = serde_json::to_string(&op).unwrap_or_default();
            assert_eq!(serde_json::from_str::<Op>(&text).ok(), Some(op), "{text}");
        }
        assert_eq!(
            serde_json::to_string(&Op::UserInput("hi".into())).unwrap_or_default(),
            r#"{"user_input":"hi"}"#
        );
        let e = Event::TurnComplete {
            steps: 2,
            usage: Usage {
                prompt: 10,
                completion: 5,
            },
        };
        let text = serde_json::to_string(&e).unwrap_or_default();
        assert!(text.starts_with(r#"{"event":"turn_complete""#), "{text}");
        assert_eq!(serde_json::from_str::<Event>(&text).ok(), Some(e));
    }
}
