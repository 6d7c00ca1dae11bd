//! The gate: the one way a tool call reaches the world. A model's call in
//! a session turn, a person's direct call ([`Op::Invoke`](crate::session::Op)),
//! an EventHooks action and, later, REST, Slack and MCP requests all pass
//! through [`Gate::pass`]:
//!
//! 1. [`Gate::check`]: the call is parsed and validated by its tool, its
//!    targets are resolved **once** (the hosts it would touch now) and a
//!    Task's or Pipeline's plan is rendered for the approver;
//! 2. audit: no record, no action;
//! 3. the pure policy (effect x mode x rules) says allow, ask or forbid;
//! 4. ask: an approval bound to hash(tool, arguments, targets) is recorded
//!    and the caller's [`Door`] waits for the decision (pushed to it: an
//!    `Op::Decide` in a chat, the store's change signal for a decision made
//!    in another process or door; the first decision wins);
//! 5. the re-check: the targets are resolved again and the call must hash
//!    to what was approved; an approve-once approval is consumed here;
//! 6. the tool runs on exactly those targets (reads allowed unasked run in
//!    the read-only sandbox; a target without one turns the read into a
//!    question), its output is redacted, clipped and audited.
//!
//! Nothing a model writes, or a tool returns, can reach past this code.

use async_trait::async_trait;
use ops_protocol::{Event, Principal};
use ops_tools::{Prepared, Registry, TargetRef, ToolContext, resolve_targets};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use crate::approvals::Wait;
use crate::approvals::{ApprovalRequest, Approvals, CallSpec, NO_SIGNAL_REREAD};
use crate::audit::{Audit, AuditEvent};
use crate::policy::{self, Decision, HostRef, Mode, Rules};
use crate::redact::{redact_text, redact_value};

/// The pieces a call passes through.
#[derive(Debug, Clone, Copy)]
pub struct Gate<'a> {
    /// The tools.
    pub registry: &'a Registry,
    /// Where tools run.
    pub ctx: &'a ToolContext,
    /// Approvals.
    pub approvals: &'a Approvals,
    /// Audit trail.
    pub audit: &'a Audit,
}

/// Under what rules a call is judged, and for whom.
#[derive(Debug, Clone, Copy)]
pub struct Terms<'a> {
    /// The session the call belongs to (approvals and audit records).
    pub session: &'a str,
    /// Who asks for the call.
    pub asker: &'a Principal,
    /// read-only, ask or auto.
    pub mode: Mode,
    /// Policy rules.
    pub rules: &'a Rules,
    /// A tool result longer than this (bytes) is cut, head and tail kept.
    pub max_output: usize,
}

/// A call that parsed, validated, and whose targets and plan are known.
#[derive(Debug, Clone)]
pub struct Checked {
    /// Tool, arguments with defaults, facts.
    pub prepared: Prepared,
    /// The hosts (or nodes, pods) it would touch now.
    pub targets: Vec<TargetRef>,
    /// For a Task or Pipeline: its steps with variables resolved, redacted.
    pub plan: Option<String>,
}

/// The side of a call that is not the gate's: where its events go, how a
/// decision reaches it, how it is cancelled. A chat session, an unattended
/// hook action, and later an HTTP request or a Slack thread each are one.
#[async_trait]
pub trait Door: Send {
    /// Tells the caller what happened.
    async fn emit(&mut self, e: Event);
    /// Waits for the decision on approval `id`, at most until the request
    /// lapses (its expiry in the store: [`Approvals::wait`] ends there).
    async fn decision(&mut self, id: &str) -> Wait;
    /// Resolves when the caller wants the running call stopped (never, if
    /// it cannot ask).
    async fn cancelled(&mut self);
}

/// What passing the gate came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passed {
    /// The text for the model (or the person): the result, or why not.
    pub text: String,
    /// Whether it ran as a read the policy allowed unasked (such results
    /// may be reused for an identical call in the same turn).
    pub allowed_read: bool,
}

/// What running a call came to.
enum Executed {
    /// It ran; the text the model is given.
    Done(String),
    /// It asked for the read-only sandbox and a target cannot provide it;
    /// nothing ran there.
    Unsandboxed(String),
}

impl Executed {
    fn text(self) -> String {
        match self {
            Executed::Done(t) => t,
            Executed::Unsandboxed(why) => format!("not run: {why}"),
        }
    }
}

impl Gate<'_> {
    /// Step 1: parse and validate `args` for `tool`, resolve its targets,
    /// render its plan. The error is for the caller to correct (an unknown
    /// tool, bad arguments, targets nobody can name, a Task that does not
    /// exist), not a question for a person.
    pub async fn check(&self, tool: &str, args: serde_json::Value) -> Result<Checked, String> {
        let prepared = self
            .registry
            .prepare(tool, args)
            .map_err(|e| e.to_string())?;
        let targets = resolve_targets(self.ctx, &prepared)
            .await
            .map_err(|e| e.to_string())?;
        let plan = ops_tools::plan(self.ctx, &prepared)
            .await
            .map_err(|e| e.to_string())?
            .map(|t| redact_text(&t));
        Ok(Checked {
            prepared,
            targets,
            plan,
        })
    }

    /// Records and reports a call that did not pass [`Gate::check`].
    pub async fn invalid(&self, terms: &Terms<'_>, door: &mut dyn Door, tool: &str, error: &str) {
        let error = redact_text(error);
        self.record(
            terms,
            door,
            AuditEvent::InvalidCall {
                tool: tool.to_owned(),
                error: error.clone(),
            },
        )
        .await;
        door.emit(Event::InvalidCall {
            tool: tool.to_owned(),
            error,
        })
        .await;
    }

    /// Steps 2 to 6 for a checked call.
    pub async fn pass(&self, terms: &Terms<'_>, c: &Checked, door: &mut dyn Door) -> Passed {
        let p = &c.prepared;
        let recorded = self.record_call(terms, door, p).await;
        let denied = |text| Passed {
            text,
            allowed_read: false,
        };
        if !recorded {
            return denied(unaudited(door, p).await);
        }
        let verdict = policy::decide(&policy_call(p, &c.targets), terms.mode, terms.rules);
        match verdict.decision {
            Decision::Allow => {
                // What runs unasked as a read runs in the read-only sandbox
                // (`mutate` calls an allow rule lets through do not).
                let read = p.facts.effect == Some(ops_model::Effect::Read);
                match self.execute(terms, door, p, &c.targets, read).await {
                    Executed::Done(text) => Passed {
                        text,
                        allowed_read: read,
                    },
                    // A target that cannot provide the sandbox makes the
                    // read a question for a person (read-only mode refuses).
                    Executed::Unsandboxed(why) => {
                        if terms.mode == Mode::ReadOnly {
                            let why = format!("{why}; read-only mode runs reads only inside it");
                            return denied(self.refuse(terms, door, p, why).await);
                        }
                        let reasons = vec![format!("{why}; without it, the read needs approval")];
                        denied(self.ask_then_run(terms, door, c, reasons).await)
                    }
                }
            }
            Decision::Forbid => {
                let reason = verdict.reasons.join("; ");
                self.refuse(terms, door, p, reason.clone()).await;
                denied(format!(
                    "refused: {reason}. Do not retry this call; tell the user what you would do instead."
                ))
            }
            Decision::Ask => denied(self.ask_then_run(terms, door, c, verdict.reasons).await),
        }
    }

    /// Step 2 alone: audits the call with who asked; `false` when the
    /// audit log could not take it (then nothing may run). A caller that
    /// answers a call without running it (a repeated read) still records it.
    pub async fn record_call(&self, terms: &Terms<'_>, door: &mut dyn Door, p: &Prepared) -> bool {
        self.record(
            terms,
            door,
            AuditEvent::ToolCall {
                tool: p.tool.clone(),
                args: p.args.clone(),
                effect: p
                    .facts
                    .effect
                    .map_or("undeclared".into(), |e| e.as_str().to_owned()),
                by: Some(terms.asker.to_string()),
            },
        )
        .await
    }

    /// Records `e`; `false` (and an error event) when the audit log could
    /// not take it. Callers about to act treat `false` as a refusal: no
    /// record, no action.
    async fn record(&self, terms: &Terms<'_>, door: &mut dyn Door, e: AuditEvent) -> bool {
        match self.audit.record(Some(terms.session), &e).await {
            Ok(_) => true,
            Err(err) => {
                door.emit(Event::Error {
                    message: format!("audit log: {err}"),
                })
                .await;
                false
            }
        }
    }

    async fn refuse(
        &self,
        terms: &Terms<'_>,
        door: &mut dyn Door,
        p: &Prepared,
        reason: String,
    ) -> String {
        self.record(
            terms,
            door,
            AuditEvent::Refused {
                tool: p.tool.clone(),
                args: shown_args(p),
                reason: reason.clone(),
            },
        )
        .await;
        refused(door, p, reason).await
    }

    async fn ask_then_run(
        &self,
        terms: &Terms<'_>,
        door: &mut dyn Door,
        c: &Checked,
        policy_reasons: Vec<String>,
    ) -> String {
        let (p, targets) = (&c.prepared, &c.targets);
        let spec = call_spec(p, targets);
        let approvals = self.approvals;
        // An identical call approved for the session runs without asking.
        if let Ok(Some(rec)) = approvals.preapproved(terms.session, &spec).await {
            return match approvals.authorize(terms.session, &rec.id, &spec).await {
                Ok(_) => self.execute(terms, door, p, targets, false).await.text(),
                Err(e) => self.refuse(terms, door, p, e.to_string()).await,
            };
        }
        let model_reason = p
            .args
            .get("reason")
            .and_then(|r| r.as_str())
            .unwrap_or("")
            .to_owned();
        let summary = summarize(p, targets);
        let req = ApprovalRequest {
            call: spec.clone(),
            summary: summary.clone(),
            reason: model_reason.clone(),
            plan: c.plan.clone(),
        };
        let rec = match approvals.request(terms.session, &req).await {
            Ok(r) => r,
            Err(e) => {
                let why = format!("cannot record the approval request: {e}");
                return self.refuse(terms, door, p, why).await;
            }
        };
        let recorded = self
            .record(
                terms,
                door,
                AuditEvent::ApprovalRequested {
                    id: rec.id.clone(),
                    call_hash: rec.call_hash.clone(),
                    summary: summary.clone(),
                },
            )
            .await;
        if !recorded {
            let _ = approvals
                .withdraw(&rec.id, "the audit log could not record the request")
                .await;
            return unaudited(door, p).await;
        }
        door.emit(Event::ApprovalRequested {
            id: rec.id.clone(),
            tool: p.tool.clone(),
            summary,
            effect: spec.effect.as_str().into(),
            reason: model_reason,
            policy: policy_reasons,
            args: redact_value(&p.args),
            targets: spec.targets.clone(),
            call_hash: rec.call_hash.clone(),
            expires_at: rec.expires_at.clone(),
            plan: c.plan.clone(),
        })
        .await;
        // Nobody answering is a "no" once the request expires.
        match door.decision(&rec.id).await {
            Wait::Answer(answer, by) => {
                let decided = approvals.answer(&rec.id, &answer, &by).await;
                let audited = AuditEvent::decided(&rec.id, &answer, &by.to_string());
                let recorded = self.record(terms, door, audited).await;
                if let Err(e) = decided {
                    return self.refuse(terms, door, p, e.to_string()).await;
                }
                if !recorded {
                    return unaudited(door, p).await;
                }
            }
            // The door that decided recorded and audited the decision;
            // `authorize` below reads the decision itself from the store.
            Wait::Recorded(..) => {}
            Wait::Expired => {
                let why = format!(
                    "approval `{}` expired unanswered after {}s",
                    rec.id,
                    approvals.ttl().as_secs()
                );
                return self.refuse(terms, door, p, why).await;
            }
            Wait::Withdrawn(why) => {
                let _ = approvals.withdraw(&rec.id, &why).await;
                return self.refuse(terms, door, p, why).await;
            }
        }
        // The last check: exactly this call, on the hosts its targets
        // select now (an inventory change since the request shows up as a
        // different hash), approved and not used.
        let (now, spec) = match resolve_targets(self.ctx, p).await {
            Ok(t) => {
                let spec = call_spec(p, &t);
                (t, spec)
            }
            Err(e) => return self.refuse(terms, door, p, e.to_string()).await,
        };
        match approvals.authorize(terms.session, &rec.id, &spec).await {
            Ok(_) => self.execute(terms, door, p, &now, false).await.text(),
            Err(e) => self.refuse(terms, door, p, e.to_string()).await,
        }
    }

    /// Runs `p` on exactly `targets` (the tool's own resolution must stay
    /// within them), in the read-only sandbox when `sandboxed`; the text
    /// the model is given, or why it could not be sandboxed.
    async fn execute(
        &self,
        terms: &Terms<'_>,
        door: &mut dyn Door,
        p: &Prepared,
        targets: &[TargetRef],
        sandboxed: bool,
    ) -> Executed {
        door.emit(Event::ToolStarted {
            tool: p.tool.clone(),
            args: shown_args(p),
        })
        .await;
        // A token of its own, so a cancel stops this call only.
        let mut ctx = self.ctx.clone();
        ctx.cancel = self.ctx.cancel.child_token();
        ctx.sandbox = sandboxed;
        ctx.pinned = Some(targets.iter().map(|t| t.name.clone()).collect());
        let registry = self.registry.clone();
        let call_ctx = ctx.clone();
        let run = async move {
            match registry.get(&p.tool) {
                Ok(t) => t.run(&call_ctx, p.args.clone()).await,
                Err(e) => Err(e),
            }
        };
        tokio::pin!(run);
        let mut cancelled = false;
        let result = tokio::select! {
            r = &mut run => r,
            () = door.cancelled() => {
                cancelled = true;
                ctx.cancel.cancel();
                run.await
            }
        };
        let unsandboxed = match &result {
            Err(e @ ops_tools::ToolError::Unsandboxed { .. }) => Some(e.to_string()),
            _ => None,
        };
        let (ok, text) = match result {
            Ok(serde_json::Value::String(s)) => (true, s),
            Ok(other) => (
                true,
                serde_json::to_string_pretty(&redact_value(&other)).unwrap_or_default(),
            ),
            Err(e) => (false, format!("error: {e}")),
        };
        let text = if cancelled {
            format!("(cancelled by the operator)\n{text}")
        } else {
            text
        };
        let text = ops_model::clip(&redact_text(&text), terms.max_output);
        self.record(
            terms,
            door,
            AuditEvent::ToolResult {
                tool: p.tool.clone(),
                ok,
                output: text.clone(),
            },
        )
        .await;
        door.emit(Event::ToolFinished {
            tool: p.tool.clone(),
            ok,
            output: text.clone(),
        })
        .await;
        match unsandboxed {
            Some(why) => Executed::Unsandboxed(redact_text(&why)),
            None => Executed::Done(text),
        }
    }
}

/// Refuses `p` because the audit log could not record it (nothing more
/// can be audited, so only the event and the model are told).
async fn unaudited(door: &mut dyn Door, p: &Prepared) -> String {
    refused(
        door,
        p,
        "the audit log could not record this call, so it does not run".into(),
    )
    .await
}

/// Tells the caller that `p` was refused.
async fn refused(door: &mut dyn Door, p: &Prepared, reason: String) -> String {
    door.emit(Event::Refused {
        tool: p.tool.clone(),
        args: shown_args(p),
        reason: reason.clone(),
    })
    .await;
    format!("not run: {reason}")
}

/// What the policy sees of a call.
fn policy_call(p: &Prepared, targets: &[TargetRef]) -> policy::Call {
    policy::Call {
        tool: p.tool.clone(),
        effect: p.facts.effect,
        reads_secret: p.facts.reads_secret,
        shell: p.facts.shell.clone(),
        task: p.facts.task.clone(),
        pipeline: p.facts.pipeline.clone(),
        hosts: targets
            .iter()
            .map(|t| HostRef {
                name: t.name.clone(),
                labels: t.labels.clone(),
            })
            .collect(),
        cluster: p.facts.cluster.clone(),
    }
}

/// What an approval is bound to: tool, arguments and the resolved hosts.
fn call_spec(p: &Prepared, targets: &[TargetRef]) -> CallSpec {
    CallSpec {
        tool: p.tool.clone(),
        args: p.args.clone(),
        targets: targets.iter().map(|t| t.name.clone()).collect(),
        effect: p.facts.effect.unwrap_or(ops_model::Effect::Destructive),
    }
}

/// What will run where, in words, for the approver.
fn summarize(p: &Prepared, targets: &[TargetRef]) -> String {
    let targets = if targets.is_empty() {
        String::new()
    } else {
        format!(
            " on {}",
            targets
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let vars = || {
        p.args
            .get("variables")
            .map(|v| v.to_string())
            .unwrap_or_else(|| "{}".into())
    };
    match (&p.facts.shell, &p.facts.task, &p.facts.pipeline) {
        (Some(cmd), _, _) => format!("{}: `{cmd}`{targets}", p.tool),
        (_, Some(t), _) => format!("run Task {t} with {}{targets}", vars()),
        (_, _, Some(pl)) => format!("run Pipeline {pl} with {}{targets}", vars()),
        _ => format!("{} {}{targets}", p.tool, p.args),
    }
}

/// A call's arguments as events and the audit trail show them: secrets
/// redacted.
fn shown_args(p: &Prepared) -> serde_json::Value {
    redact_value(&p.args)
}

/// The door of a call nobody is watching live (an EventHooks action, and
/// later a REST request that does not wait): its events are forwarded
/// when someone listens, decisions come from the store, where any door
/// records them (`opscli approval`, REST, Slack), and it is cancelled by
/// a token.
#[derive(Debug)]
pub struct Unattended {
    approvals: Approvals,
    events: Option<mpsc::Sender<Event>>,
    cancel: CancellationToken,
}

impl Unattended {
    /// Decisions from `approvals`' store; events to `events` (if any).
    pub fn new(
        approvals: Approvals,
        events: Option<mpsc::Sender<Event>>,
        cancel: CancellationToken,
    ) -> Self {
        Unattended {
            approvals,
            events,
            cancel,
        }
    }
}

#[async_trait]
impl Door for Unattended {
    async fn emit(&mut self, e: Event) {
        if let Some(tx) = &self.events {
            let _ = tx.send(e).await;
        }
    }

    async fn decision(&mut self, id: &str) -> Wait {
        tokio::select! {
            w = self.approvals.wait(id, NO_SIGNAL_REREAD) => w,
            () = self.cancel.cancelled() => Wait::Withdrawn("cancelled before a decision".into()),
        }
    }

    async fn cancelled(&mut self) {
        self.cancel.cancelled().await;
    }
}
