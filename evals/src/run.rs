//! The runner: one trial of one case is one fresh world (lab hosts reset,
//! faults injected, a new store with the case's inventory) and one
//! copilot session driven through its front door (`Op` in, `Event` out),
//! with a responder answering approval requests as the case says. The
//! transcript is then scored ([`crate::score`]) and the lab is checked
//! from outside.
//!
//! The runner never decides whether a call may run: the session's gate
//! does. It only answers approval requests, like a person would.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ops_agent::approvals::Answer;
use ops_agent::llm::openai::{EndpointConfig, OpenAiModel};
use ops_agent::llm::{ToolCallMode, Usage};
use ops_agent::session::{Agent, Event, Op, SessionConfig};
use ops_engine::{Engine, EngineOptions};
use ops_exec::ssh::{SshOptions, SshPool};
use ops_store::{SqliteStore, Store};
use serde::Serialize;

use crate::EvalError;
use crate::case::{Case, Respond};
use crate::lab::Lab;
use crate::score::{self, Score};
use crate::scripted::ScriptedServer;

/// Where a trial's objects live: the anchor's (and the CLI's) default
/// namespace, so the compat library's objects apply as written.
const NAMESPACE: &str = "ops-system";

/// The model a run talks to.
#[derive(Debug)]
pub enum ModelChoice {
    /// The scripted server (scripted tier).
    Scripted(ScriptedServer),
    /// A real endpoint (live tier) and how it calls tools.
    Endpoint(EndpointConfig, ToolCallMode),
}

/// What a run needs.
#[derive(Debug)]
pub struct Runner {
    /// The lab (up).
    pub lab: Lab,
    /// The model.
    pub model: ModelChoice,
    /// Trials per case.
    pub k: u32,
    /// Where `setup.objects` paths are relative to.
    pub root: PathBuf,
    /// Scratch space (a home per trial).
    pub work: PathBuf,
    /// Limit for one trial's session.
    pub trial_timeout: Duration,
}

pub use crate::transcript::{ApprovalRecord, CallRecord, Transcript};

/// One trial's result.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    /// The score.
    pub score: Score,
    /// What happened.
    pub transcript: Transcript,
    /// Wall time of the session (setup excluded), ms.
    pub latency_ms: u64,
}

/// One case's results over its trials.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// Case id.
    pub id: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Trials, in order; empty when setup failed.
    pub trials: Vec<Trial>,
    /// Setup or harness failure (the case counts as failed).
    pub error: Option<String>,
}

impl Runner {
    /// Runs every case `k` times, in order; `progress` sees each trial.
    pub async fn run(
        &self,
        cases: &[Case],
        mut progress: impl FnMut(&Case, u32, &Trial),
    ) -> Vec<CaseResult> {
        let mut out = Vec::new();
        for case in cases {
            let mut r = CaseResult {
                id: case.id.clone(),
                tags: case.tags.clone(),
                trials: Vec::new(),
                error: None,
            };
            for i in 0..self.k.max(1) {
                match self.trial(case, i).await {
                    Ok(t) => {
                        progress(case, i, &t);
                        r.trials.push(t);
                    }
                    Err(e) => {
                        r.error = Some(e.to_string());
                        break;
                    }
                }
            }
            out.push(r);
        }
        out
    }

    /// One trial in a fresh world.
    pub async fn trial(&self, case: &Case, i: u32) -> Result<Trial, EvalError> {
        let hosts: Vec<String> = if case.setup.hosts.is_empty() {
            self.lab.hosts.iter().map(|h| h.name.clone()).collect()
        } else {
            case.setup.hosts.clone()
        };
        // Every lab host back to its baseline (the last case may have
        // touched any of them), then this case's faults.
        let lab = self.lab.clone();
        let faults = case.setup.faults.clone();
        tokio::task::spawn_blocking(move || -> Result<(), EvalError> {
            for h in &lab.hosts {
                lab.reset(&h.name)?;
            }
            for f in &faults {
                lab.inject(&f.host, &f.fault)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| EvalError::Lab(format!("setup task: {e}")))??;

        let home = self.work.join(format!("{}-{i}", case.id));
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home)
            .map_err(|e| EvalError::Setup(format!("{}: {e}", home.display())))?;
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&home.join("ops.db"))
                .map_err(|e| EvalError::Setup(format!("store: {e}")))?,
        );
        self.inventory(case, &hosts, &store).await?;
        // Strict host keys: the lab's, known from its state.
        let ssh = SshOptions::new(&home);
        std::fs::write(&ssh.known_hosts, self.lab.known_hosts())
            .map_err(|e| EvalError::Setup(format!("{}: {e}", ssh.known_hosts.display())))?;
        let pool = SshPool::new(ssh);
        let engine = Engine::new(
            Arc::clone(&store),
            Arc::clone(&pool),
            EngineOptions::default(),
        );
        let mut registry =
            ops_tools::builtin::registry().map_err(|e| EvalError::Setup(e.to_string()))?;
        if !case.setup.runbooks.is_empty() {
            let k = ops_agent::knowledge::Knowledge::new(
                Arc::clone(&store),
                None,
                Some("evals search runbooks by words (BM25)".into()),
            );
            for p in &case.setup.runbooks {
                k.add(&self.root.join(p))
                    .await
                    .map_err(|e| EvalError::Case {
                        path: case.path.clone(),
                        message: format!("setup.runbooks: {e}"),
                    })?;
            }
            registry
                .register(Arc::new(ops_agent::knowledge::tool::RunbookSearch::new(
                    Arc::new(k),
                )))
                .map_err(|e| EvalError::Setup(e.to_string()))?;
        }
        let (endpoint, tool_calls) = match &self.model {
            ModelChoice::Scripted(s) => {
                s.load(&case.script);
                (
                    EndpointConfig::new(s.base_url.clone(), "scripted"),
                    ToolCallMode::Native,
                )
            }
            ModelChoice::Endpoint(e, m) => (e.clone(), *m),
        };
        let model =
            OpenAiModel::new(endpoint).map_err(|e| EvalError::Setup(format!("model: {e}")))?;
        let agent = ops_app::agent::assemble(
            Arc::new(model),
            ops_app::agent::Parts {
                registry: registry.clone(),
                engine: Arc::new(engine),
                namespace: NAMESPACE.into(),
                approval_ttl: ops_app::settings::DEFAULT_APPROVAL_TTL,
                feed: None,
            },
        );
        let mut sc = SessionConfig::new(
            format!("eval-{}-{i}", case.id),
            ops_protocol::Principal::eval(case.id.clone()),
        );
        sc.mode = case.mode;
        sc.tool_calls = tool_calls;
        sc.max_steps = case.expect.max_steps.unwrap_or(10).max(1);
        let started = Instant::now();
        let transcript = drive(agent, sc, case, self.trial_timeout).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        pool.close_all().await;
        let lab = self.lab.clone();
        let c = case.clone();
        let t2 = transcript.clone();
        let score = tokio::task::spawn_blocking(move || score::score(&c, &t2, &lab, &registry))
            .await
            .map_err(|e| EvalError::Lab(format!("scoring task: {e}")))?;
        Ok(Trial {
            score,
            transcript,
            latency_ms,
        })
    }

    async fn inventory(
        &self,
        case: &Case,
        hosts: &[String],
        store: &Arc<dyn Store>,
    ) -> Result<(), EvalError> {
        let all = self.lab.host_manifests();
        let mut objects = Vec::new();
        let parsed = ops_model::manifest::parse_text(Path::new("lab"), &all)
            .map_err(|e| EvalError::Setup(format!("lab hosts: {e}")))?;
        for d in parsed.documents {
            if hosts.iter().any(|h| h == d.object.name()) {
                objects.push(d.object);
            }
        }
        for h in hosts {
            self.lab.host(h)?;
        }
        for p in &case.setup.objects {
            let r = ops_model::manifest::load_path(&self.root.join(p));
            if let Some(e) = r.errors.first() {
                return Err(EvalError::Case {
                    path: case.path.clone(),
                    message: format!("setup.objects: {e}"),
                });
            }
            objects.extend(
                r.files
                    .into_iter()
                    .flat_map(|f| f.documents)
                    .map(|d| d.object),
            );
        }
        if let Some(text) = &case.setup.manifests {
            let f =
                ops_model::manifest::parse_text(&case.path, text).map_err(|e| EvalError::Case {
                    path: case.path.clone(),
                    message: format!("setup.manifests: {e}"),
                })?;
            objects.extend(f.documents.into_iter().map(|d| d.object));
        }
        store
            .apply(objects, NAMESPACE)
            .await
            .map_err(|e| EvalError::Setup(format!("applying the case's inventory: {e}")))?;
        Ok(())
    }
}

/// The responder's answer to one request.
fn respond(case: &Case, tool: &str, args: &serde_json::Value) -> Answer {
    let approve = match case.approvals.respond {
        Respond::Approve => true,
        Respond::Deny => false,
        Respond::Matching => case.approvals.approve.iter().any(|p| p.matches(tool, args)),
    };
    if approve {
        Answer::Once
    } else {
        Answer::Deny("denied by the eval responder".into())
    }
}

async fn drive(agent: Agent, sc: SessionConfig, case: &Case, limit: Duration) -> Transcript {
    let mut t = Transcript::default();
    let mut h = agent.spawn(sc);
    if h.ops.send(Op::UserInput(case.message())).await.is_err() {
        t.error = Some("the session ended before its input".into());
        return t;
    }
    // Approved calls not yet matched by a started call.
    let mut granted: Vec<(String, serde_json::Value)> = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let e = match tokio::time::timeout_at(deadline, h.events.recv()).await {
            Err(_) => {
                t.error = Some(format!("the trial ran past {} s", limit.as_secs()));
                let _ = h.ops.send(Op::Cancel).await;
                break;
            }
            Ok(None) => {
                t.error
                    .get_or_insert_with(|| "the session ended unexpectedly".into());
                break;
            }
            Ok(Some(e)) => e,
        };
        match e {
            Event::ApprovalRequested {
                id,
                tool,
                args,
                targets,
                ..
            } => {
                let answer = respond(case, &tool, &args);
                let approved = matches!(answer, Answer::Once | Answer::Session);
                if approved {
                    granted.push((tool.clone(), args.clone()));
                }
                t.approvals.push(ApprovalRecord {
                    tool,
                    args,
                    targets,
                    decision: if approved { "approved" } else { "denied" }.into(),
                });
                if h.ops
                    .send(Op::Decide {
                        id,
                        answer,
                        by: ops_protocol::Principal::eval(case.id.clone()),
                    })
                    .await
                    .is_err()
                {
                    t.error = Some("the session ended while asking".into());
                    break;
                }
            }
            Event::ToolStarted { tool, args } => {
                let approved = match granted
                    .iter()
                    .position(|(gt, ga)| *gt == tool && *ga == args)
                {
                    Some(i) => {
                        granted.remove(i);
                        true
                    }
                    None => false,
                };
                t.calls.push(CallRecord {
                    tool,
                    args,
                    outcome: "ran".into(),
                    ok: None,
                    approved,
                    reason: None,
                    output: None,
                });
            }
            Event::ToolFinished { tool, ok, output } => {
                if let Some(c) = t
                    .calls
                    .iter_mut()
                    .rev()
                    .find(|c| c.tool == tool && c.outcome == "ran" && c.ok.is_none())
                {
                    c.ok = Some(ok);
                    c.output = Some(ops_model::clip(&output, 4000));
                }
            }
            Event::Refused { tool, args, reason } => t.calls.push(CallRecord {
                tool,
                args,
                outcome: "refused".into(),
                ok: None,
                approved: false,
                reason: Some(reason),
                output: None,
            }),
            Event::InvalidCall { tool, error } => t.calls.push(CallRecord {
                tool,
                args: serde_json::Value::Null,
                outcome: "invalid".into(),
                ok: None,
                approved: false,
                reason: Some(error),
                output: None,
            }),
            Event::Answer { text } => {
                if !t.answer.is_empty() {
                    t.answer.push('\n');
                }
                t.answer.push_str(&text);
            }
            Event::Error { message } => t.error = Some(message),
            Event::TurnComplete { steps, usage } => {
                let Usage { prompt, completion } = usage;
                t.steps = steps;
                t.prompt_tokens = prompt;
                t.completion_tokens = completion;
                break;
            }
            Event::AnswerDelta { .. } => {}
        }
    }
    drop(h.ops);
    // A session that does not wind down (a model call still running past
    // the limit) is stopped, so it cannot load the next trial's model.
    let mut task = h.task;
    if tokio::time::timeout(Duration::from_secs(10), &mut task)
        .await
        .is_err()
    {
        task.abort();
    }
    t
}
