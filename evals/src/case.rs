//! The case format (`evals/cases/*.yaml`): data, not code. A case says
//! what the copilot is given (a prompt or an Alertmanager alert), the
//! world it works in (lab hosts, faults, inventory objects), how the
//! session runs (mode, who approves what), what must be true afterwards
//! (cheapest checks first), and for the scripted tier the model's replies.
//!
//! Unknown fields are errors (a misspelt `forbiden:` would silently pass
//! everything); every error names the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ops_agent::policy::{self, Mode};
use regex::Regex;
use serde::Deserialize;

use crate::EvalError;

/// One eval case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Unique id (the file name without `.yaml` by convention).
    pub id: String,
    /// One line: the incident shape.
    #[serde(default)]
    pub about: String,
    /// Domain (host, cluster, task, pipeline), capability (diagnose,
    /// remediate, runbook, safety, counting, clarify), difficulty (easy,
    /// medium, hard).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Tiers it runs in (`scripted`, `live`); default scripted only.
    #[serde(default = "default_tiers")]
    pub tiers: Vec<Tier>,
    /// What the copilot is given.
    pub input: Input,
    /// The world.
    #[serde(default)]
    pub setup: Setup,
    /// Session mode (`read-only`, `ask`, `auto`; default ask).
    #[serde(default)]
    pub mode: Mode,
    /// Who approves what.
    #[serde(default)]
    pub approvals: Responder,
    /// What must hold afterwards.
    #[serde(default)]
    pub expect: Expect,
    /// The scripted tier's model replies, in order.
    #[serde(default)]
    pub script: Vec<Reply>,
    /// Where it was read from.
    #[serde(skip)]
    pub path: PathBuf,
}

fn default_tiers() -> Vec<Tier> {
    vec![Tier::Scripted]
}

/// A tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// A scripted OpenAI-compatible server replays `script`.
    Scripted,
    /// A real model (the local llama-server, or a configured endpoint).
    Live,
}

impl std::str::FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "scripted" => Ok(Tier::Scripted),
            "live" => Ok(Tier::Live),
            o => Err(format!("unknown tier `{o}` (scripted, live)")),
        }
    }
}

impl Tier {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Scripted => "scripted",
            Tier::Live => "live",
        }
    }
}

/// What the copilot is given: a prompt, an alert, or both (the prompt
/// then follows the alert).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// A person's message.
    #[serde(default)]
    pub prompt: Option<String>,
    /// An Alertmanager webhook body.
    #[serde(default)]
    pub alert: Option<serde_json::Value>,
}

/// The world a case runs in.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    /// Lab hosts registered as Hosts (all lab hosts when empty).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Faults to inject.
    #[serde(default)]
    pub faults: Vec<FaultAt>,
    /// Manifest files or directories applied to the store (relative to
    /// the repository root).
    #[serde(default)]
    pub objects: Vec<PathBuf>,
    /// Inline manifests (YAML text) applied to the store.
    #[serde(default)]
    pub manifests: Option<String>,
    /// Runbook files or directories (relative to the repository root)
    /// added to the store; the session then has `runbook_search` (by
    /// words: BM25, so results do not depend on an embedding model).
    #[serde(default)]
    pub runbooks: Vec<PathBuf>,
}

/// A fault on a host.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultAt {
    /// Lab host.
    pub host: String,
    /// Fault name (see `opscli lab faults`).
    pub fault: String,
}

/// Who approves what.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Responder {
    /// `approve` (every request), `deny` (every request; the default), or
    /// `matching` (only calls matching `approve`).
    #[serde(default)]
    pub respond: Respond,
    /// For `matching`: the calls to approve.
    #[serde(default)]
    pub approve: Vec<CallPattern>,
}

/// The responder's policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Respond {
    /// Approve every request.
    Approve,
    /// Deny every request.
    #[default]
    Deny,
    /// Approve the requests matching `approve`, deny the rest.
    Matching,
}

/// A tool call pattern: the tool name (exact, or `*`) and argument
/// regexes (each argument rendered as text: strings as they are, other
/// values as JSON).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallPattern {
    /// Tool name, or `*`.
    pub tool: String,
    /// Argument name -> regex its value must match (unanchored).
    #[serde(default)]
    pub args: BTreeMap<String, String>,
}

impl CallPattern {
    /// Whether a call matches.
    pub fn matches(&self, tool: &str, args: &serde_json::Value) -> bool {
        if self.tool != "*" && self.tool != tool {
            return false;
        }
        self.args.iter().all(|(k, re)| {
            let v = match args.get(k) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => return false,
            };
            Regex::new(re).map(|r| r.is_match(&v)).unwrap_or(false)
        })
    }
}

impl std::fmt::Display for CallPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.tool)?;
        if !self.args.is_empty() {
            let args: Vec<String> = self
                .args
                .iter()
                .map(|(k, v)| format!("{k}~/{v}/"))
                .collect();
            write!(f, "({})", args.join(", "))?;
        }
        Ok(())
    }
}

/// What must hold afterwards, cheapest first.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Regexes the answer must match (case-insensitive).
    #[serde(default)]
    pub contains: Vec<String>,
    /// Regexes the answer must not match (case-insensitive).
    #[serde(default)]
    pub not_contains: Vec<String>,
    /// Regexes some call's output (what the model was shown) must match
    /// (case-insensitive): the tools surfaced the evidence.
    #[serde(default)]
    pub seen: Vec<String>,
    /// Calls that must have run (each pattern at least once).
    #[serde(default)]
    pub called: Vec<CallPattern>,
    /// Calls that must not have been attempted at all (a plain failure).
    #[serde(default)]
    pub not_attempted: Vec<CallPattern>,
    /// Calls that must never run: running one is an **unsafe** action.
    #[serde(default)]
    pub forbidden: Vec<CallPattern>,
    /// Calls that must have been put to the approver (each pattern at
    /// least one request).
    #[serde(default)]
    pub asked: Vec<CallPattern>,
    /// No approval may be asked at all (a question that needs no change).
    #[serde(default)]
    pub no_approvals: bool,
    /// Final-state checks on the lab hosts.
    #[serde(default)]
    pub verify: Vec<Verify>,
    /// Model calls at most.
    #[serde(default)]
    pub max_steps: Option<u32>,
}

/// A final-state check on a host: a fault present or gone, or a script
/// that must exit 0.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// Lab host.
    pub host: String,
    /// A fault and whether it must still be present (`healthy`: appd
    /// answers).
    #[serde(default)]
    pub fault: Option<String>,
    /// With `fault`: present (true) or gone (false).
    #[serde(default)]
    pub present: Option<bool>,
    /// A shell line run on the host that must exit 0.
    #[serde(default)]
    pub script: Option<String>,
}

/// One scripted model reply.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    /// A tool call (name).
    #[serde(default)]
    pub call: Option<String>,
    /// Its arguments.
    #[serde(default)]
    pub args: Option<serde_json::Value>,
    /// A text answer.
    #[serde(default)]
    pub say: Option<String>,
}

impl Case {
    /// Parses one case file.
    pub fn load(path: &Path) -> Result<Case, EvalError> {
        let text = std::fs::read_to_string(path).map_err(|e| EvalError::Case {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let mut case: Case = serde_yaml::from_str(&text).map_err(|e| EvalError::Case {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        case.path = path.to_owned();
        case.check().map_err(|message| EvalError::Case {
            path: path.to_owned(),
            message,
        })?;
        Ok(case)
    }

    /// Internal consistency: ids, modes, regexes, faults, a script for
    /// the scripted tier.
    fn check(&self) -> Result<(), String> {
        if self.id.is_empty()
            || !self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(format!("id `{}` must be [A-Za-z0-9-]+", self.id));
        }
        if self.input.prompt.is_none() && self.input.alert.is_none() {
            return Err("input needs a prompt or an alert".into());
        }
        for re in self
            .expect
            .contains
            .iter()
            .chain(&self.expect.not_contains)
            .chain(&self.expect.seen)
        {
            Regex::new(re).map_err(|e| format!("regex {re:?}: {e}"))?;
        }
        let patterns = self
            .expect
            .called
            .iter()
            .chain(&self.expect.not_attempted)
            .chain(&self.expect.forbidden)
            .chain(&self.expect.asked)
            .chain(&self.approvals.approve);
        for p in patterns {
            for re in p.args.values() {
                Regex::new(re).map_err(|e| format!("pattern {p}: regex {re:?}: {e}"))?;
            }
        }
        if self.approvals.respond == Respond::Matching && self.approvals.approve.is_empty() {
            return Err("approvals: `respond: matching` needs `approve` patterns".into());
        }
        for f in &self.setup.faults {
            crate::lab::fault(&f.fault).map_err(|e| e.to_string())?;
        }
        for v in &self.expect.verify {
            match (&v.fault, &v.script) {
                (Some(f), None) => {
                    if f != "healthy" {
                        crate::lab::fault(f).map_err(|e| e.to_string())?;
                    }
                    if v.present.is_none() {
                        return Err(format!("verify on {}: fault {f} needs `present`", v.host));
                    }
                }
                (None, Some(_)) => {}
                _ => {
                    return Err(format!(
                        "verify on {}: give one of `fault` or `script`",
                        v.host
                    ));
                }
            }
        }
        if self.tiers.contains(&Tier::Scripted) && self.script.is_empty() {
            return Err("a scripted-tier case needs a `script`".into());
        }
        for (i, r) in self.script.iter().enumerate() {
            if r.call.is_some() == r.say.is_some() {
                return Err(format!("script[{i}]: give one of `call` or `say`"));
            }
        }
        Ok(())
    }

    /// The first message: the alert rendered as text, then the prompt.
    pub fn message(&self) -> String {
        let mut parts = Vec::new();
        if let Some(a) = &self.input.alert {
            parts.push(render_alert(a));
        }
        if let Some(p) = &self.input.prompt {
            parts.push(p.clone());
        }
        parts.join("\n\n")
    }
}

/// An Alertmanager webhook body as the text a session is given.
pub fn render_alert(body: &serde_json::Value) -> String {
    let s =
        |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
    let mut out = format!(
        "Alert notification ({}, receiver {}):",
        s(body, "status"),
        s(body, "receiver")
    );
    for a in body
        .get("alerts")
        .and_then(|x| x.as_array())
        .into_iter()
        .flatten()
    {
        let labels = a.get("labels").cloned().unwrap_or_default();
        let ann = a.get("annotations").cloned().unwrap_or_default();
        out.push_str(&format!(
            "\n- [{}] {} (severity {}) since {}",
            s(a, "status"),
            s(&labels, "alertname"),
            s(&labels, "severity"),
            s(a, "startsAt")
        ));
        if let Some(m) = labels.as_object() {
            let kv: Vec<String> = m
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "alertname" | "severity"))
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(&v.to_string())))
                .collect();
            out.push_str(&format!("\n  labels: {}", kv.join(", ")));
        }
        for k in ["summary", "description", "runbook_url"] {
            let v = s(&ann, k);
            if !v.is_empty() {
                out.push_str(&format!("\n  {k}: {v}"));
            }
        }
    }
    out
}

/// Loads the cases under `dir` whose file name (with or without
/// `.yaml`) matches one of the comma-separated `glob`s (`*` matches any
/// run), sorted by id; duplicate ids are an error.
pub fn load_dir(dir: &Path, glob: Option<&str>) -> Result<Vec<Case>, EvalError> {
    let entries = std::fs::read_dir(dir).map_err(|e| EvalError::Case {
        path: dir.to_owned(),
        message: e.to_string(),
    })?;
    let mut cases = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !(name.ends_with(".yaml") || name.ends_with(".yml")) {
            continue;
        }
        let stem = name.trim_end_matches(".yaml").trim_end_matches(".yml");
        if let Some(globs) = glob {
            let hit = globs
                .split(',')
                .map(str::trim)
                .any(|g| policy::glob(g, stem) || policy::glob(g, name));
            if !hit {
                continue;
            }
        }
        cases.push(Case::load(&p)?);
    }
    cases.sort_by(|a, b| a.id.cmp(&b.id));
    for w in cases.windows(2) {
        if w[0].id == w[1].id {
            return Err(EvalError::Case {
                path: w[1].path.clone(),
                message: format!("duplicate id `{}` (also {})", w[1].id, w[0].path.display()),
            });
        }
    }
    Ok(cases)
}
