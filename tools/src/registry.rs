//! The typed tool trait, its erased twin, and the registry.
//!
//! A [`Tool`] has typed `Args` (deserialised and checked before anything
//! runs; a bad argument goes back to the model as an error it can fix), a
//! typed `Output`, and [`CallFacts`] per call: its [`Effect`] and what it
//! touches, which the approval policy and the approval request use. The
//! registry holds [`DynTool`]s by name; a duplicate name is an error when
//! the registry is built.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::Effect;
use ops_engine::Engine;
use ops_model::{Kind, LabelSelector, Object, ObjectKey};

/// What a call does and touches: the policy's input.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct CallFacts {
    /// The effect (`None` = undeclared, treated as destructive).
    pub effect: Option<Effect>,
    /// It reads secrets.
    pub reads_secret: bool,
    /// The shell line it runs, if it runs one.
    pub shell: Option<String>,
    /// The Task it runs.
    pub task: Option<String>,
    /// The Pipeline it runs.
    pub pipeline: Option<String>,
    /// Host / node / pod names it targets (resolved where possible).
    pub targets: Vec<String>,
    /// The cluster it works on.
    pub cluster: Option<String>,
}

impl CallFacts {
    /// A plain read.
    pub fn read() -> Self {
        CallFacts {
            effect: Some(Effect::Read),
            ..CallFacts::default()
        }
    }
}

/// Everything a tool may use.
#[derive(Debug, Clone)]
pub struct ToolContext {
    /// The engine (and through it the store and the SSH pool).
    pub engine: Arc<Engine>,
    /// The ops namespace the session works in.
    pub namespace: String,
    /// Cancels the running call.
    pub cancel: CancellationToken,
    /// Shell reads run in the read-only sandbox (`ExecRequest::sandbox`).
    /// The gate sets it for every call it lets run unasked as a read; a
    /// call a person approved runs without it.
    pub sandbox: bool,
    /// The targets the gate resolved and judged (and an approver
    /// approved): when set, a tool runs only on these; one its own
    /// resolution finds now that is not among them fails the call before
    /// anything runs.
    pub pinned: Option<Arc<[String]>>,
}

/// An error from below (store, engine, executor) as a tool failure.
pub(crate) fn failed(e: impl std::fmt::Display) -> ToolError {
    ToolError::Failed(e.to_string())
}

impl ToolContext {
    /// A context for calls in `namespace` over `engine`: not sandboxed,
    /// not pinned, with a fresh cancel token.
    pub fn new(engine: Arc<Engine>, namespace: impl Into<String>) -> Self {
        ToolContext {
            engine,
            namespace: namespace.into(),
            cancel: CancellationToken::new(),
            sandbox: false,
            pinned: None,
        }
    }

    /// The targets `expr` selects (with `runtime` for pod steps), checked
    /// against the pinned set: what every tool resolves its targets with.
    pub async fn targets(
        &self,
        expr: &str,
        runtime: &ops_exec::kube::PodRuntime,
    ) -> Result<Vec<ops_engine::Target>, ToolError> {
        let targets = self
            .engine
            .targets_with(&self.namespace, expr, runtime)
            .await
            .map_err(failed)?;
        self.check_pinned(&targets)?;
        Ok(targets)
    }

    /// Fails when `targets` go beyond the pinned set.
    pub fn check_pinned(&self, targets: &[ops_engine::Target]) -> Result<(), ToolError> {
        match &self.pinned {
            Some(allowed) => ops_engine::check_allowed(targets, allowed).map_err(failed),
            None => Ok(()),
        }
    }

    /// A stored object of this namespace, or an error naming what is
    /// missing and where (and which tool lists them).
    pub async fn object(&self, kind: Kind, name: &str) -> Result<Object, ToolError> {
        let key = ObjectKey {
            kind,
            namespace: self.namespace.clone(),
            name: name.to_owned(),
        };
        let noun = match kind {
            Kind::Host => "host",
            Kind::Cluster => "cluster",
            other => other.as_str(),
        };
        if let Some(s) = self.engine.store().get(&key).await.map_err(failed)? {
            return Ok(s.object);
        }
        // Name what is there, so a model that guessed a name can correct
        // it in one step (found by the evals: a 1.5B model invented a
        // pipeline name and gave up).
        const SHOWN: usize = 15;
        let there = self
            .objects(kind, &LabelSelector::default())
            .await
            .unwrap_or_default();
        let mut names: Vec<&str> = there.iter().map(|o| o.name()).take(SHOWN).collect();
        if there.len() > SHOWN {
            names.push("...");
        }
        let known = if names.is_empty() {
            format!("there is no {noun} in it")
        } else {
            format!("there: {}", names.join(", "))
        };
        Err(ToolError::NotFound(format!(
            "no {noun} named `{name}` in namespace {} ({known})",
            self.namespace
        )))
    }

    /// Stored objects of a kind in this namespace matching `selector`.
    pub async fn objects(
        &self,
        kind: Kind,
        selector: &LabelSelector,
    ) -> Result<Vec<Object>, ToolError> {
        Ok(self
            .engine
            .store()
            .list(kind, Some(&self.namespace), selector)
            .await
            .map_err(failed)?
            .into_iter()
            .map(|s| s.object)
            .collect())
    }
}

/// A failed call, in words for the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// No such tool.
    #[error("unknown tool `{name}`; available tools: {available}")]
    Unknown {
        /// Asked for.
        name: String,
        /// What exists.
        available: String,
    },
    /// The arguments do not fit the schema or a rule.
    #[error("invalid arguments for {tool}: {detail}")]
    InvalidArgs {
        /// Tool.
        tool: String,
        /// What is wrong.
        detail: String,
    },
    /// The thing named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// It ran and failed.
    #[error("{0}")]
    Failed(String),
    /// A read asked for the read-only sandbox and these targets cannot
    /// provide it; nothing ran there. The gate turns this into a question
    /// for a person (or a refusal in read-only mode).
    #[error("{} cannot run reads in the read-only sandbox: {reason}", hosts.join(", "))]
    Unsandboxed {
        /// The targets without one.
        hosts: Vec<String>,
        /// Why (what the first of them said).
        reason: String,
    },
}

/// A typed tool.
#[async_trait]
pub trait Tool: Send + Sync + 'static {
    /// Arguments (documented field by field; closed sets are enums).
    type Args: DeserializeOwned + JsonSchema + Send + Sync + 'static;
    /// Result.
    type Output: Serialize + Send + 'static;
    /// Name the model calls.
    fn name(&self) -> &'static str;
    /// One paragraph for the model.
    fn description(&self) -> &'static str;
    /// Checks beyond the schema (patterns, ranges); the message goes to
    /// the model.
    fn validate(&self, _args: &Self::Args) -> Result<(), String> {
        Ok(())
    }
    /// What this call does and touches. When unsure, err toward danger.
    fn facts(&self, args: &Self::Args) -> CallFacts;
    /// Runs it.
    async fn call(&self, ctx: &ToolContext, args: Self::Args) -> Result<Self::Output, ToolError>;
}

/// A tool's description for the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolSpec {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Sanitised JSON schema of the arguments.
    pub parameters: Value,
}

/// A checked call, ready for the policy and then [`DynTool::run`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prepared {
    /// Tool name.
    pub tool: String,
    /// The arguments, normalised (defaults filled in).
    pub args: Value,
    /// What it does and touches.
    pub facts: CallFacts,
}

/// The erased twin of [`Tool`], what the registry holds.
#[async_trait]
pub trait DynTool: Send + Sync {
    /// Name.
    fn name(&self) -> &'static str;
    /// The model-facing description and schema.
    fn spec(&self) -> ToolSpec;
    /// Parses and checks `args`; the facts for the policy.
    fn prepare(&self, args: Value) -> Result<Prepared, ToolError>;
    /// Runs a prepared call; the output as JSON.
    async fn run(&self, ctx: &ToolContext, args: Value) -> Result<Value, ToolError>;
}

fn parse<T: Tool>(tool: &T, args: Value) -> Result<T::Args, ToolError> {
    // A model that sends no arguments for a tool without required ones
    // means `{}`.
    let args = if args.is_null() {
        Value::Object(Default::default())
    } else {
        args
    };
    let parsed: T::Args = serde_json::from_value(args).map_err(|e| ToolError::InvalidArgs {
        tool: tool.name().into(),
        detail: e.to_string(),
    })?;
    tool.validate(&parsed)
        .map_err(|detail| ToolError::InvalidArgs {
            tool: tool.name().into(),
            detail,
        })?;
    Ok(parsed)
}

#[async_trait]
impl<T: Tool> DynTool for T
where
    T::Args: Serialize,
{
    fn name(&self) -> &'static str {
        Tool::name(self)
    }

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: Tool::name(self).into(),
            description: self.description().into(),
            parameters: super::schema::schema_for::<T::Args>(),
        }
    }

    fn prepare(&self, args: Value) -> Result<Prepared, ToolError> {
        let parsed = parse(self, args)?;
        Ok(Prepared {
            tool: Tool::name(self).into(),
            args: serde_json::to_value(&parsed).map_err(|e| ToolError::Failed(e.to_string()))?,
            facts: self.facts(&parsed),
        })
    }

    async fn run(&self, ctx: &ToolContext, args: Value) -> Result<Value, ToolError> {
        let parsed = parse(self, args)?;
        let out = self.call(ctx, parsed).await?;
        serde_json::to_value(out).map_err(|e| ToolError::Failed(e.to_string()))
    }
}

/// Tools by name.
#[derive(Clone, Default)]
pub struct Registry {
    tools: BTreeMap<&'static str, Arc<dyn DynTool>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.tools.keys()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Adds a tool; a name already taken is an error.
    pub fn register(&mut self, tool: Arc<dyn DynTool>) -> Result<(), String> {
        let name = tool.name();
        if self.tools.insert(name, tool).is_some() {
            return Err(format!("two tools are named `{name}`"));
        }
        Ok(())
    }

    /// Names, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        self.tools.keys().copied().collect()
    }

    /// Every tool's spec, sorted by name.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools.values().map(|t| t.spec()).collect()
    }

    /// A tool by name, or an error listing what exists.
    pub fn get(&self, name: &str) -> Result<&Arc<dyn DynTool>, ToolError> {
        self.tools.get(name).ok_or_else(|| ToolError::Unknown {
            name: name.into(),
            available: self.names().join(", "),
        })
    }

    /// Parses and checks a call by name.
    pub fn prepare(&self, name: &str, args: Value) -> Result<Prepared, ToolError> {
        self.get(name)?.prepare(args)
    }
}
