//! What EventHooks `task`, `pipeline` and `copilot` sinks start: a Task or
//! Pipeline call through the gate (`ops_agent::headless::invoke`, under
//! the hook's principal, no model), or a triage turn of the copilot.

use std::sync::Arc;

use anyhow::Result;
use ops_events::hooks::ActionSink;
use ops_model::event::CloudEvent;
use ops_model::event::filter::render;
use ops_model::event::hook::Hook;
use ops_model::event::subject;
use ops_store::DeliveryRecord;

use crate::settings::Settings;

/// Starts what `task`, `pipeline` and `copilot` hooks ask for: a session
/// with no one at the keyboard (`ops_agent::headless`), so the call goes
/// through the policy and, where it asks, waits for `opscli approval`.
pub struct HookActions {
    cfg: Settings,
    engine: ops_engine::Engine,
    feed: ops_events::feed::Feed,
    rules: ops_agent::policy::Rules,
    /// Wait for each session to end (`hook test`) instead of starting it
    /// in the background (`hook run`).
    wait: bool,
    /// The copilot's model, started on the first `copilot` event (the
    /// built-in server stays up while hooks run).
    model: tokio::sync::Mutex<Option<CopilotModel>>,
}

/// The copilot's model, its tool-call mode, and the built-in server when
/// that is what answers.
type CopilotModel = (
    Arc<dyn ops_agent::llm::ChatModel>,
    ops_agent::llm::ToolCallMode,
    Option<ops_agent::llm::local::LocalServer>,
);

impl std::fmt::Debug for HookActions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookActions").finish_non_exhaustive()
    }
}

/// The host a subject is about (`...hosts.{name}.{channel}`), if any.
fn host_of(subject: &str) -> Option<String> {
    let t: Vec<&str> = subject.split('.').collect();
    t.iter()
        .position(|x| *x == "hosts")
        .and_then(|i| t.get(i + 1))
        .filter(|_| t.len() >= 8)
        .map(|s| (*s).to_owned())
}

impl HookActions {
    /// Actions over the configured engine, publishing to `feed`; with
    /// `wait`, [`ActionSink::start`] returns when the work is done.
    pub async fn new(cfg: &Settings, feed: ops_events::feed::Feed, wait: bool) -> Result<Self> {
        let (engine, _pool) = crate::services::engine(cfg, false).await?;
        let engine = engine.with_feed(feed.clone());
        let (rules, _) = crate::agent::rules(cfg, None)?;
        Ok(HookActions {
            cfg: cfg.clone(),
            engine,
            feed,
            rules,
            wait,
            model: tokio::sync::Mutex::new(None),
        })
    }

    async fn copilot_model(
        &self,
    ) -> Result<
        (
            Arc<dyn ops_agent::llm::ChatModel>,
            ops_agent::llm::ToolCallMode,
        ),
        String,
    > {
        let mut m = self.model.lock().await;
        if m.is_none() {
            let (model, server, mode) = crate::model::model(&self.cfg)
                .await
                .map_err(|e| format!("{e:#}"))?;
            *m = Some((Arc::new(model), mode, server));
        }
        let (model, mode, _) = m.as_ref().ok_or("no model")?;
        Ok((Arc::clone(model), *mode))
    }
}

/// What a hook starts: one direct call through the gate, or a triage turn.
enum Work {
    /// `task_run` / `pipeline_run` with these arguments (`Op::Invoke`).
    Invoke(&'static str, serde_json::Value),
    /// A copilot turn on this input.
    Triage(String),
}

#[async_trait::async_trait]
impl ActionSink for HookActions {
    async fn start(&self, hook: &Hook, e: &CloudEvent) -> Result<(String, String), String> {
        use ops_agent::session::SessionConfig;
        use ops_model::event::hook::Sink;
        let Sink::Action { kind, target } = &hook.sink else {
            return Err("not an action hook".into());
        };
        let (ns, name) = hook.key.split_once('/').unwrap_or(("default", &hook.key));
        let session = format!(
            "hook-{}-{}",
            subject::token(name),
            &e.id[..e.id.len().min(12)]
        );
        // The hook asks as ops acting for the EventHooks object; it can
        // never decide its own approvals.
        let principal = ops_protocol::Principal::system(format!("eventhooks/{}", hook.key));
        let text = render(e);
        let reason = format!("EventHooks {} on event {} ({})", hook.key, e.id, e.subject);
        let work = match kind.as_str() {
            "copilot" => {
                let mut input = format!(
                    "An event arrived ({reason}). Find its cause with read-only tools and say what you would do; anything that changes a system needs approval.\n\n{text}"
                );
                if !target.is_empty() {
                    input = format!("{target}\n\n{input}");
                }
                if let Some(a) = &hook.additional {
                    input.push_str(a);
                }
                Work::Triage(input)
            }
            kind => {
                let tool = if kind == "task" {
                    "task_run"
                } else {
                    "pipeline_run"
                };
                let variables: std::collections::BTreeMap<String, String> = hook
                    .options
                    .iter()
                    .filter_map(|(k, v)| k.strip_prefix("var.").map(|k| (k.to_owned(), v.clone())))
                    .collect();
                let hosts = hook
                    .options
                    .get("hosts")
                    .cloned()
                    .or_else(|| host_of(&e.subject));
                let mut args =
                    serde_json::json!({"name": target, "variables": variables, "reason": reason});
                if let Some(h) = hosts {
                    args["hosts"] = serde_json::json!(h);
                }
                Work::Invoke(tool, args)
            }
        };
        let mode: ops_agent::policy::Mode = match hook.options.get("mode") {
            Some(m) => m.parse()?,
            None => ops_agent::policy::Mode::Ask,
        };
        // A hook's own `approval-ttl` (checked when it was compiled: 1
        // second to a year), else the setting.
        let ttl = hook
            .options
            .get("approval-ttl")
            .and_then(|t| t.trim().parse::<u64>().ok())
            .filter(|t| (1..=ops_model::MAX_SECONDS).contains(t))
            .map_or(self.cfg.approval_ttl, std::time::Duration::from_secs);
        let store = Arc::clone(self.engine.store());
        let registry = ops_tools::builtin::registry().map_err(|e| e.to_string())?;
        let wired = crate::agent::wire(crate::agent::Parts {
            registry,
            engine: Arc::new(self.engine.clone()),
            namespace: ns.to_owned(),
            approval_ttl: ttl,
            feed: Some(self.feed.clone()),
        });
        let mut sc = SessionConfig::new(session.clone(), principal);
        sc.mode = mode;
        sc.rules = self.rules.clone();
        let work: std::pin::Pin<
            Box<dyn std::future::Future<Output = ops_agent::headless::Outcome> + Send>,
        > = match work {
            Work::Invoke(tool, args) => Box::pin(async move {
                let terms = sc.terms(&sc.principal);
                let cancel = wired.ctx.cancel.clone();
                ops_agent::headless::invoke(wired.gate(), &terms, tool, args, cancel).await
            }),
            Work::Triage(input) => {
                let (model, tool_calls) = self.copilot_model().await?;
                sc.tool_calls = tool_calls;
                sc.max_steps = 12;
                Box::pin(ops_agent::headless::run(wired.with_model(model), sc, input))
            }
        };
        let mut rec = DeliveryRecord {
            seq: 0,
            hook: hook.key.clone(),
            event_id: e.id.clone(),
            subject: e.subject.clone(),
            batch: Vec::new(),
            sink: kind.clone(),
            status: String::new(),
            attempts: 1,
            code: None,
            detail: String::new(),
            at: String::new(),
        };
        let started = format!(
            "session {session} (audit: opscli audit show --session {session}; approvals: opscli approval list)"
        );
        if self.wait {
            // `hook test`: the work would die with the process, so the
            // command waits for it (and for any approval it asks for).
            tracing::info!("started {started}; waiting for it to finish");
            let out = work.await;
            return Ok((out.status().to_owned(), outcome(&session, &out)));
        }
        tokio::spawn(async move {
            let out = work.await;
            rec.status = out.status().to_owned();
            rec.detail = outcome(&session, &out);
            if let Err(e) = store.record_deliveries(vec![rec.clone()], None).await {
                tracing::warn!("hook {}: result not recorded: {e}", rec.hook);
            }
            tracing::info!("hook {} {}: {}", rec.hook, rec.status, rec.detail);
        });
        Ok(("started".into(), started))
    }
}

/// What a hook's session did, for its delivery record.
fn outcome(session: &str, out: &ops_agent::headless::Outcome) -> String {
    let mut detail = format!("session {session}");
    if !out.approvals.is_empty() {
        detail.push_str(&format!("; approvals {}", out.approvals.join(", ")));
    }
    for r in &out.refused {
        detail.push_str(&format!("; refused {r}"));
    }
    for e in &out.errors {
        detail.push_str(&format!("; error {e}"));
    }
    if !out.answer.is_empty() {
        detail.push_str(&format!("; {}", out.answer));
    }
    ops_model::clip(&detail, 1000)
}
