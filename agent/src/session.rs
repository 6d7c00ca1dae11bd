//! The agent loop: one front door in ([`Op`]), one event stream out
//! ([`Event`]). The CLI chat, the REST server, Slack triage and the eval
//! runner are all clients of that pair.
//!
//! A turn: the model sees the conversation and the tools; each tool call it
//! makes is parsed and checked ([`Registry::prepare`]), judged by the
//! [`policy`](crate::policy), and then run (allow), refused (forbid, the
//! model is told why), or put to a human (ask): an approval bound to the
//! exact call is recorded, [`Event::ApprovalRequested`] goes out, and the
//! loop waits for an [`Op::Decide`]; only an approval that
//! [`Approvals::authorize`] accepts for *this* call lets it run. Everything
//! is audited, redacted. Nothing the model writes, or a tool returns, can
//! reach past the gate: the gate is this code.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use ops_protocol::Principal;
use ops_tools::{Registry, ToolContext};
use tokio::sync::mpsc;

use crate::approvals::Approvals;
use crate::approvals::NO_SIGNAL_REREAD;
use crate::audit::{Audit, AuditEvent};
use crate::gate::{Door, Gate, Terms, Wait};
use crate::llm::parse::calls_in_text;
use crate::llm::stream::AnswerStream;
use crate::llm::{ChatModel, LlmError, Message, Reply, Role, ToolCall, ToolCallMode, Usage};
use crate::policy::{Mode, Rules};
use crate::redact::redact_text;

pub use ops_protocol::{Event, Op};

/// How a session behaves.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Session id (audit, approvals).
    pub id: String,
    /// On whose behalf the session's model asks for calls (the person
    /// who started it, or ops for a hook's triage).
    pub principal: Principal,
    /// read-only, ask or auto.
    pub mode: Mode,
    /// Policy rules.
    pub rules: Rules,
    /// How tool calls are asked for.
    pub tool_calls: ToolCallMode,
    /// Model calls per turn at most.
    pub max_steps: u32,
    /// A tool result longer than this (bytes) is cut, head and tail kept.
    pub max_tool_output: usize,
    /// Tokens (prompt + completion, as the endpoint reports them) the
    /// whole session may use; past it, no more model calls.
    pub max_tokens: u64,
    /// The system prompt.
    pub system_prompt: String,
}

impl SessionConfig {
    /// Defaults: ask mode, 12 steps, 12 KiB per tool result, 2M tokens.
    pub fn new(id: impl Into<String>, principal: Principal) -> Self {
        SessionConfig {
            id: id.into(),
            principal,
            mode: Mode::Ask,
            rules: Rules::default(),
            tool_calls: ToolCallMode::Lenient,
            max_steps: 12,
            max_tool_output: 12 * 1024,
            max_tokens: 2_000_000,
            system_prompt: DEFAULT_SYSTEM_PROMPT.into(),
        }
    }
}

impl SessionConfig {
    /// The gate's terms for a call of this session asked by `asker`.
    pub fn terms<'c>(&'c self, asker: &'c Principal) -> Terms<'c> {
        Terms {
            session: &self.id,
            asker,
            mode: self.mode,
            rules: &self.rules,
            max_output: self.max_tool_output,
        }
    }
}

/// The built-in system prompt.
pub const DEFAULT_SYSTEM_PROMPT: &str = include_str!("../../prompts/system.md");

/// The pieces a session runs on.
#[derive(Clone)]
pub struct Agent {
    /// The model.
    pub model: Arc<dyn ChatModel>,
    /// The tools.
    pub registry: Registry,
    /// Where tools run.
    pub ctx: ToolContext,
    /// Approvals.
    pub approvals: Approvals,
    /// Audit trail.
    pub audit: Audit,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

/// A running session's handles.
#[derive(Debug)]
pub struct SessionHandle {
    /// Submit here.
    pub ops: mpsc::Sender<Op>,
    /// Read events here.
    pub events: mpsc::Receiver<Event>,
    /// The loop's task.
    pub task: tokio::task::JoinHandle<()>,
}

struct Turn<'a> {
    agent: &'a Agent,
    cfg: &'a SessionConfig,
    events: &'a mpsc::Sender<Event>,
    ops: &'a mut mpsc::Receiver<Op>,
    /// Ops that arrived while the turn was busy, handled after it.
    pending: &'a mut Vec<Op>,
    /// Tokens used by the session so far.
    used_tokens: &'a mut u64,
    /// Results of identical read calls this turn.
    seen: HashMap<String, String>,
    /// How often each identical invalid call was made this turn.
    invalid: HashMap<String, u32>,
    /// How often each identical read was repeated this turn.
    repeats: HashMap<String, u32>,
    /// The model repeated a read: the next call offers no tools, so it
    /// must answer (in JSON-action mode the grammar then allows only
    /// `final_answer`).
    force_answer: bool,
}

/// The same invalid call this many times in a turn, or the same read
/// repeated this many times, ends the turn: the model is stuck, and more
/// calls only burn tokens.
const MAX_SAME_INVALID: u32 = 3;

impl Agent {
    /// The gate this agent's calls pass.
    pub fn gate(&self) -> Gate<'_> {
        Gate {
            registry: &self.registry,
            ctx: &self.ctx,
            approvals: &self.approvals,
            audit: &self.audit,
        }
    }

    /// Starts a session loop.
    pub fn spawn(self, cfg: SessionConfig) -> SessionHandle {
        let (op_tx, mut op_rx) = mpsc::channel::<Op>(32);
        let (ev_tx, ev_rx) = mpsc::channel::<Event>(256);
        let span = tracing::info_span!("session", id = %cfg.id, principal = %cfg.principal);
        let task = tokio::spawn(tracing::Instrument::instrument(
            async move {
                // A saved session resumes where it stopped.
                let saved = self.ctx.engine.store().get_session(&cfg.id).await;
                let mut history: Vec<Message> = match saved {
                    Ok(Some((_, state))) => serde_json::from_str(&state).unwrap_or_default(),
                    _ => Vec::new(),
                };
                if history.is_empty() {
                    history.push(Message::text(Role::System, cfg.system_prompt.clone()));
                }
                let mut pending: Vec<Op> = Vec::new();
                let mut used_tokens: u64 = 0;
                loop {
                    let op = if pending.is_empty() {
                        match op_rx.recv().await {
                            Some(op) => op,
                            None => return,
                        }
                    } else {
                        pending.remove(0)
                    };
                    let mut turn = Turn {
                        agent: &self,
                        cfg: &cfg,
                        events: &ev_tx,
                        ops: &mut op_rx,
                        pending: &mut pending,
                        used_tokens: &mut used_tokens,
                        seen: HashMap::new(),
                        invalid: HashMap::new(),
                        repeats: HashMap::new(),
                        force_answer: false,
                    };
                    match op {
                        Op::UserInput(input) => turn.run(&mut history, input).await,
                        Op::Invoke { tool, args, by } => turn.invoke(&tool, args, &by).await,
                        Op::Decide { id, .. } => {
                            turn.emit(Event::Error {
                                message: format!("no approval `{id}` is waiting"),
                            })
                            .await
                        }
                        Op::Cancel => {}
                    }
                }
            },
            span,
        ));
        SessionHandle {
            ops: op_tx,
            events: ev_rx,
            task,
        }
    }
}

impl Turn<'_> {
    async fn emit(&self, e: Event) {
        let _ = self.events.send(e).await;
    }

    /// Records `e`; `false` (and an error event) when the audit log
    /// could not take it. Callers about to act treat `false` as a refusal:
    /// no record, no action.
    async fn audit(&self, e: AuditEvent) -> bool {
        match self.agent.audit.record(Some(&self.cfg.id), &e).await {
            Ok(_) => true,
            Err(err) => {
                self.emit(Event::Error {
                    message: format!("audit log: {err}"),
                })
                .await;
                false
            }
        }
    }

    /// Saves the conversation so `--session ID` can resume it.
    async fn save(&self, history: &[Message], title: &str) {
        // Stored redacted: what the model saw was redacted already, and
        // what it wrote (arguments, replies) is redacted here.
        let saved = match crate::redact::redacted_json(&history) {
            Ok(state) => self
                .agent
                .ctx
                .engine
                .store()
                .put_session(&self.cfg.id, title, &state)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = saved {
            self.emit(Event::Error {
                message: format!("saving the session: {e}"),
            })
            .await;
        }
    }

    async fn run(&mut self, history: &mut Vec<Message>, input: String) {
        let input = redact_text(&input);
        let title: String = input.chars().take(80).collect();
        self.audit(AuditEvent::UserInput {
            text: input.clone(),
        })
        .await;
        // The system prompt carries the inventory as it is now, so the
        // model names real hosts instead of inventing them.
        let context = self.inventory().await;
        if let Some(first) = history.first_mut().filter(|m| m.role == Role::System) {
            first.content = format!("{}{context}", self.cfg.system_prompt);
        }
        history.push(Message::text(Role::User, input));
        let specs = self.agent.registry.specs();
        let known: Vec<&str> = self.agent.registry.names();
        let mut usage = Usage::default();
        let mut steps = 0;
        loop {
            if steps >= self.cfg.max_steps {
                self.emit(Event::Error {
                    message: format!(
                        "stopped after {} model calls without an answer",
                        self.cfg.max_steps
                    ),
                })
                .await;
                break;
            }
            if *self.used_tokens >= self.cfg.max_tokens {
                self.emit(Event::Error {
                    message: format!(
                        "the session's token budget ({} tokens) is used up; start a new session",
                        self.cfg.max_tokens
                    ),
                })
                .await;
                break;
            }
            steps += 1;
            let mut shown = AnswerStream::new(self.cfg.tool_calls);
            let offered: &[ops_tools::ToolSpec] = if self.force_answer { &[] } else { &specs };
            self.force_answer = false;
            let reply = match self.model_call(history, offered, &mut shown).await {
                Ok(r) => r,
                Err(message) => {
                    self.emit(Event::Error { message }).await;
                    break;
                }
            };
            // The endpoint may have been asked in another mode than
            // configured (it rejected `tools`); read the reply that way.
            let mode = reply.mode.unwrap_or(self.cfg.tool_calls);
            usage.prompt += reply.usage.prompt;
            usage.completion += reply.usage.completion;
            *self.used_tokens += reply.usage.prompt + reply.usage.completion;
            let mut calls = reply.tool_calls.clone();
            let mut text = reply.content.clone();
            let mut final_answer = None;
            if mode != ToolCallMode::Native && calls.is_empty() {
                let p = calls_in_text(&reply.content, &known);
                final_answer = p.final_answer;
                text = p.text;
                calls = p
                    .calls
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| ToolCall {
                        id: format!("call-{steps}-{i}"),
                        name: c.name,
                        arguments: c.arguments.to_string(),
                    })
                    .collect();
            }
            self.audit(AuditEvent::ModelReply {
                text: reply.content.clone(),
            })
            .await;
            if calls.is_empty() {
                // A JSON action cut off (length limit) does not parse; what
                // was streamed of its answer is the answer.
                let answer = match final_answer {
                    Some(a) => a,
                    None if mode == ToolCallMode::JsonAction && !shown.shown().is_empty() => {
                        format!("{}\n(the reply was cut off)", shown.shown())
                    }
                    None => text,
                };
                history.push(Message::text(Role::Assistant, answer.clone()));
                let rest = shown.finish(&answer);
                if !rest.is_empty() {
                    self.emit(Event::AnswerDelta { text: rest }).await;
                }
                self.emit(Event::Answer { text: answer }).await;
                break;
            }
            history.push(Message {
                role: Role::Assistant,
                content: text,
                tool_calls: calls.clone(),
                tool_call_id: None,
            });
            for call in calls {
                let result = self.handle(&call).await;
                history.push(Message {
                    role: Role::Tool,
                    content: result,
                    tool_calls: Vec::new(),
                    tool_call_id: Some(call.id.clone()),
                });
            }
            if let Some(message) = self.stuck() {
                self.emit(Event::Error { message }).await;
                break;
            }
        }
        self.save(history, &title).await;
        self.emit(Event::TurnComplete { steps, usage }).await;
    }

    /// The names the model may use: hosts (with labels) and clusters, a
    /// bounded list.
    async fn inventory(&self) -> String {
        use ops_model::{Kind, LabelSelector};
        const SHOWN: usize = 40;
        let all = LabelSelector::default();
        let ctx = &self.agent.ctx;
        let line = |objs: Vec<ops_model::Object>, labels: bool| -> String {
            let mut names: Vec<String> = objs
                .iter()
                .take(SHOWN)
                .map(|o| {
                    let l = o.labels();
                    if labels && !l.is_empty() {
                        let l: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        format!("{} ({})", o.name(), l.join(","))
                    } else {
                        o.name().to_owned()
                    }
                })
                .collect();
            if objs.len() > SHOWN {
                names.push(format!("... {} more", objs.len() - SHOWN));
            }
            if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            }
        };
        let hosts = ctx.objects(Kind::Host, &all).await.unwrap_or_default();
        let clusters = ctx.objects(Kind::Cluster, &all).await.unwrap_or_default();
        format!(
            "\n\nInventory (namespace {}): hosts: {}; clusters: {}.",
            ctx.namespace,
            line(hosts, true),
            line(clusters, false)
        )
    }

    /// One model call, its text streamed out as [`Event::AnswerDelta`]s
    /// (through `shown`, which keeps calls written as text out of them).
    /// Op::Cancel stops the call.
    async fn model_call(
        &mut self,
        history: &[Message],
        specs: &[ops_tools::ToolSpec],
        shown: &mut AnswerStream,
    ) -> Result<Reply, String> {
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let model = Arc::clone(&self.agent.model);
        let call = model.chat_streamed(history, specs, self.cfg.tool_calls, tx);
        tokio::pin!(call);
        let mut reply: Option<Result<Reply, LlmError>> = None;
        let mut open = true;
        // Until the reply is in and every piece of text is passed on.
        while reply.is_none() || open {
            tokio::select! {
                r = &mut call, if reply.is_none() => reply = Some(r),
                piece = rx.recv(), if open => match piece {
                    Some(p) => {
                        let text = shown.push(&p);
                        if !text.is_empty() {
                            self.emit(Event::AnswerDelta { text }).await;
                        }
                    }
                    None => open = false,
                },
                op = self.ops.recv(), if reply.is_none() => match op {
                    Some(Op::Cancel) | None => {
                        return Err("the model call was cancelled by the operator".into());
                    }
                    Some(op) => self.later(op).await,
                },
            }
        }
        match reply {
            Some(Ok(r)) => Ok(r),
            Some(Err(e)) => Err(e.to_string()),
            None => Err("the model call ended without a reply".into()),
        }
    }

    /// One tool call of the model's, through the gate; the text the model
    /// gets back.
    async fn handle(&mut self, call: &ToolCall) -> String {
        let args: serde_json::Value = match serde_json::from_str(&call.arguments) {
            Ok(v) => v,
            Err(_) if call.arguments.trim().is_empty() => serde_json::Value::Null,
            Err(e) => {
                let error = format!(
                    "the arguments of {} are not valid JSON ({e}); send an object",
                    call.name
                );
                return self.invalid(call, error).await;
            }
        };
        // A Task or Pipeline that does not exist (or whose variables do
        // not resolve) is the model's mistake to correct, not a question
        // to put to a person. (Found by the evals: a made-up pipeline
        // name with explicit hosts reached the approver.)
        let checked = match self.agent.gate().check(&call.name, args).await {
            Ok(c) => c,
            Err(e) => return self.invalid(call, e).await,
        };
        let p = &checked.prepared;
        let (agent, cfg) = (self.agent, self.cfg);
        let terms = cfg.terms(&cfg.principal);
        // An identical read this turn gets its result again, and the model
        // is pushed to answer; nothing runs (a read the policy allowed
        // before is allowed now: the policy is pure). The call is still
        // audited.
        let key = format!("{}:{}", p.tool, p.args);
        let cached = (p.facts.effect == Some(ops_model::Effect::Read))
            .then(|| self.seen.get(&key).cloned())
            .flatten();
        let mut door = self.door();
        if let Some(prev) = cached {
            agent.gate().record_call(&terms, &mut door, p).await;
            *self.repeats.entry(key).or_insert(0) += 1;
            self.force_answer = true;
            return format!(
                "(same call as before in this turn; its result was:)\n{prev}\nDo not repeat this call: use its result and give your final answer, or call a different tool."
            );
        }
        let passed = agent.gate().pass(&terms, &checked, &mut door).await;
        if passed.allowed_read {
            self.seen.insert(key, passed.text.clone());
        }
        passed.text
    }

    /// A person's direct call ([`Op::Invoke`]): the same gate, under
    /// `by`, no model; the turn ends when the call does.
    async fn invoke(&mut self, tool: &str, args: serde_json::Value, by: &Principal) {
        let (agent, cfg) = (self.agent, self.cfg);
        let gate = agent.gate();
        let terms = cfg.terms(by);
        let mut door = self.door();
        match gate.check(tool, args).await {
            Ok(c) => {
                gate.pass(&terms, &c, &mut door).await;
            }
            Err(e) => gate.invalid(&terms, &mut door, tool, &e).await,
        }
        self.emit(Event::TurnComplete {
            steps: 0,
            usage: Usage::default(),
        })
        .await;
    }

    /// This turn's side of the gate.
    fn door(&mut self) -> SessionDoor<'_> {
        SessionDoor {
            events: self.events,
            ops: &mut *self.ops,
            pending: &mut *self.pending,
            approvals: self.agent.approvals.clone(),
        }
    }

    /// An op that arrived while the turn was busy.
    async fn later(&mut self, op: Op) {
        match op {
            Op::Decide { id, .. } => {
                self.emit(Event::Error {
                    message: format!("no approval `{id}` is waiting"),
                })
                .await
            }
            Op::Cancel => {}
            op => self.pending.push(op),
        }
    }

    /// A call that could not be checked: shown, audited, and returned to
    /// the model as an error it can correct; a repeat says so.
    async fn invalid(&mut self, call: &ToolCall, error: String) -> String {
        let error = redact_text(&error);
        let (agent, cfg) = (self.agent, self.cfg);
        let terms = cfg.terms(&cfg.principal);
        let mut door = self.door();
        agent
            .gate()
            .invalid(&terms, &mut door, &call.name, &error)
            .await;
        let key = format!("{}:{}", call.name, call.arguments.trim());
        let n = self.invalid.entry(key).or_insert(0);
        *n += 1;
        if *n > 1 {
            format!(
                "error: {error}\nYou made this exact call before and it failed the same way. Change it (host_list, task_list, cluster_list give valid names) or give your final answer."
            )
        } else {
            format!("error: {error}")
        }
    }

    /// Why the model is stuck, if it keeps making the same invalid call
    /// or repeating the same read.
    fn stuck(&self) -> Option<String> {
        if self.invalid.values().any(|n| *n >= MAX_SAME_INVALID) {
            return Some(format!(
                "stopped: the model made the same invalid call {MAX_SAME_INVALID} times"
            ));
        }
        if self.repeats.values().any(|n| *n >= MAX_SAME_INVALID) {
            return Some(format!(
                "stopped: the model repeated the same read {MAX_SAME_INVALID} times instead of answering"
            ));
        }
        None
    }
}

/// A chat's side of the gate: events go to the session's client, a
/// decision comes as an [`Op::Decide`] from it or from any other door
/// through the store (the first wins), [`Op::Cancel`] stops a wait or a
/// running call, and other input waits for the turn to end.
struct SessionDoor<'t> {
    events: &'t mpsc::Sender<Event>,
    ops: &'t mut mpsc::Receiver<Op>,
    pending: &'t mut Vec<Op>,
    approvals: Approvals,
}

impl SessionDoor<'_> {
    async fn send(&self, e: Event) {
        let _ = self.events.send(e).await;
    }
}

#[async_trait]
impl Door for SessionDoor<'_> {
    async fn emit(&mut self, e: Event) {
        self.send(e).await;
    }

    async fn decision(&mut self, id: &str) -> Wait {
        let stored = self.approvals.wait(id, NO_SIGNAL_REREAD);
        tokio::pin!(stored);
        loop {
            tokio::select! {
                w = &mut stored => return w,
                op = self.ops.recv() => match op {
                    Some(Op::Decide { id: decided, answer, by }) if decided == id => {
                        return Wait::Answer(answer, by);
                    }
                    Some(Op::Decide { id: other, .. }) => {
                        self.send(Event::Error {
                            message: format!("approval `{other}` is not the one waiting (`{id}`)"),
                        })
                        .await;
                    }
                    Some(Op::Cancel) => {
                        return Wait::Withdrawn("cancelled by the operator before a decision".into());
                    }
                    None => return Wait::Withdrawn("the session closed before a decision".into()),
                    Some(op) => self.pending.push(op),
                },
            }
        }
    }

    async fn cancelled(&mut self) {
        loop {
            match self.ops.recv().await {
                Some(Op::Cancel) | None => return,
                Some(Op::Decide { id, .. }) => {
                    self.send(Event::Error {
                        message: format!("no approval `{id}` is waiting"),
                    })
                    .await;
                }
                Some(op) => self.pending.push(op),
            }
        }
    }
}
