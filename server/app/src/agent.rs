//! The Agent, assembled in one place. Every program that runs the copilot
//! (the chat, a hook's triage, the eval runner, and later the server's
//! sessions) gets its [`Agent`] from [`assemble`], its policy rules from
//! [`rules`] and its approval TTL from [`Settings::approval_ttl`] (a hook
//! may shorten or lengthen it for its own calls), and its tools from
//! [`registry`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use ops_agent::approvals::Approvals;
use ops_agent::audit::Audit;
use ops_agent::gate::Gate;
use ops_agent::llm::ChatModel;
use ops_agent::policy::Rules;
use ops_agent::session::Agent;
use ops_engine::Engine;
use ops_events::feed::Feed;
use ops_store::Store;
use ops_tools::{Registry, ToolContext};

use crate::settings::Settings;

/// The policy rules in force: the file at `path` when given, else
/// `$OPS_HOME/rules.yaml` when it exists, else none (the built-in policy
/// alone); with the file they came from.
pub fn rules(cfg: &Settings, path: Option<&Path>) -> Result<(Rules, Option<PathBuf>)> {
    let path = path.map(Path::to_owned).or_else(|| {
        let p = cfg.home.join("rules.yaml");
        p.is_file().then_some(p)
    });
    Ok(match path {
        Some(p) => (Rules::load(&p)?, Some(p)),
        None => (Rules::default(), None),
    })
}

/// The tools the model sees: the built-in ones, and `runbook_search` when
/// the store holds runbooks (with a note when search is BM25 only).
pub async fn registry(
    cfg: &Settings,
    store: &Arc<dyn Store>,
) -> Result<(Registry, Option<String>)> {
    let mut registry = ops_tools::builtin::registry().map_err(|e| anyhow::anyhow!(e))?;
    let mut note = None;
    if !store.list_runbooks().await?.is_empty() {
        let k = crate::services::knowledge(cfg, Arc::clone(store))?;
        if k.embedder().is_none() {
            note = Some(
                "runbook search: BM25 only (no embedding model; run scripts/embed-model.sh)".into(),
            );
        }
        registry
            .register(Arc::new(ops_agent::knowledge::tool::RunbookSearch::new(
                Arc::new(k),
            )))
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    Ok((registry, note))
}

/// What an Agent is made of besides its model.
#[derive(Debug)]
pub struct Parts {
    /// The tools.
    pub registry: Registry,
    /// The engine the tools run on (its store keeps approvals and audit).
    pub engine: Arc<Engine>,
    /// The namespace the session works in.
    pub namespace: String,
    /// How long an approval request waits.
    pub approval_ttl: Duration,
    /// Where audit records are also published as events, if anywhere.
    pub feed: Option<Feed>,
}

/// Everything a call needs to pass the gate: what an [`Agent`] is
/// without its model (a hook's direct call needs no model).
#[derive(Debug)]
pub struct Wired {
    /// The tools.
    pub registry: Registry,
    /// Where they run.
    pub ctx: ToolContext,
    /// Approvals, in the engine's store.
    pub approvals: Approvals,
    /// The audit trail, in the engine's store.
    pub audit: Audit,
}

impl Wired {
    /// The gate over these pieces.
    pub fn gate(&self) -> Gate<'_> {
        Gate {
            registry: &self.registry,
            ctx: &self.ctx,
            approvals: &self.approvals,
            audit: &self.audit,
        }
    }

    /// The Agent these pieces make with `model`.
    pub fn with_model(self, model: Arc<dyn ChatModel>) -> Agent {
        Agent {
            model,
            registry: self.registry,
            ctx: self.ctx,
            approvals: self.approvals,
            audit: self.audit,
        }
    }
}

/// The one place the gate's pieces are put together.
pub fn wire(parts: Parts) -> Wired {
    let store = Arc::clone(parts.engine.store());
    let audit = Audit::new(Arc::clone(&store));
    let audit = match parts.feed {
        Some(feed) => audit.with_feed(feed, parts.namespace.clone()),
        None => audit,
    };
    Wired {
        registry: parts.registry,
        ctx: ToolContext::new(parts.engine, parts.namespace),
        approvals: Approvals::new(store, parts.approval_ttl),
        audit,
    }
}

/// The one place an [`Agent`] is put together.
pub fn assemble(model: Arc<dyn ChatModel>, parts: Parts) -> Agent {
    wire(parts).with_model(model)
}
