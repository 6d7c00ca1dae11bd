//! The approval policy: a pure, synchronous function from what a call does
//! (its [`Effect`], whether it reads a secret, what it touches) and the
//! session's [`Mode`] and [`Rules`] to a [`Decision`].
//!
//! | effect \ mode | read-only | ask (default) | auto |
//! |---|---|---|---|
//! | read | allow | allow | allow |
//! | read of a secret | ask | ask | ask |
//! | mutate | forbid | ask | ask, or allow if an `allow` rule matches |
//! | destructive | forbid | ask | ask (an `allow` rule never lowers it) |
//!
//! Rules then apply, and the most restrictive outcome wins: a matching
//! `forbid` rule forbids in every mode, a matching `ask` rule asks even for
//! a read; an `allow` rule only ever turns an `ask` for a `mutate` call in
//! `auto` mode into `allow`. A call the policy cannot judge (a shell line
//! that does not parse) is at least `mutate` by the classifier's own rule,
//! so nothing unknown is allowed unasked.

mod rules;

use ops_model::Effect;
use serde::{Deserialize, Serialize};

pub use rules::{Example, Rule, RuleAction, Rules, RulesError, glob};

/// How much the copilot may do on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Reads only; anything else is refused without asking.
    ReadOnly,
    /// Reads run; everything else asks (the default).
    #[default]
    Ask,
    /// What `allow` rules cover runs unasked; the rest asks.
    Auto,
}

impl Mode {
    /// `read-only`, `ask`, `auto`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ReadOnly => "read-only",
            Mode::Ask => "ask",
            Mode::Auto => "auto",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read-only" | "readonly" => Ok(Mode::ReadOnly),
            "ask" => Ok(Mode::Ask),
            "auto" => Ok(Mode::Auto),
            other => Err(format!("unknown mode `{other}` (read-only, ask or auto)")),
        }
    }
}

/// The outcome, least to most restrictive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Runs without asking.
    Allow,
    /// A human must approve this exact call.
    Ask,
    /// Refused; the model is told why.
    Forbid,
}

/// A host a call targets.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HostRef {
    /// Host name.
    pub name: String,
    /// Its labels.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// What the policy needs to know about one tool call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Call {
    /// Tool name (`host_run_shell`, `task_run`, ...).
    pub tool: String,
    /// Declared effect.
    pub effect: Option<Effect>,
    /// It reads secrets (private keys, shadow, kubeconfigs).
    pub reads_secret: bool,
    /// The shell line, for shell calls.
    pub shell: Option<String>,
    /// The Task, for task runs.
    pub task: Option<String>,
    /// The Pipeline, for pipeline runs.
    pub pipeline: Option<String>,
    /// Target hosts.
    pub hosts: Vec<HostRef>,
    /// Target cluster.
    pub cluster: Option<String>,
}

/// A decision and the reasons for it (shown to the approver and, on a
/// refusal, to the model).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The outcome.
    pub decision: Decision,
    /// Why, most important first.
    pub reasons: Vec<String>,
}

/// Decides one call. Pure: same inputs, same verdict.
pub fn decide(call: &Call, mode: Mode, rules: &Rules) -> Verdict {
    // An undeclared effect is treated as the worst case.
    let effect = call.effect.unwrap_or(Effect::Destructive);
    let mut reasons = Vec::new();
    let mut decision = match (mode, effect) {
        (_, Effect::Read) => Decision::Allow,
        (Mode::ReadOnly, e) => {
            reasons.push(format!("read-only mode refuses {e} calls"));
            Decision::Forbid
        }
        (_, e) => {
            reasons.push(format!("{e} calls need approval"));
            Decision::Ask
        }
    };
    if call.effect.is_none() {
        reasons.push("the call declared no effect; treated as destructive".into());
    }
    if call.reads_secret && decision < Decision::Ask {
        decision = Decision::Ask;
        reasons.push("it reads secrets".into());
    }
    let mut allowed_by = None;
    let mut asked_by_rule = false;
    for rule in rules.matching(call) {
        match rule.action {
            RuleAction::Forbid => {
                decision = Decision::Forbid;
                reasons.insert(0, format!("rule `{}` forbids it", rule.name));
            }
            RuleAction::Ask => {
                asked_by_rule = true;
                if decision < Decision::Ask {
                    decision = Decision::Ask;
                }
                reasons.push(format!("rule `{}` asks for approval", rule.name));
            }
            RuleAction::Allow => allowed_by = allowed_by.or(Some(rule.name.clone())),
        }
    }
    if let Some(name) = allowed_by {
        let lowerable = mode == Mode::Auto
            && effect == Effect::Mutate
            && !call.reads_secret
            && decision == Decision::Ask
            && !asked_by_rule;
        if lowerable {
            decision = Decision::Allow;
            reasons = vec![format!("rule `{name}` allows it in auto mode")];
        } else if decision != Decision::Forbid
            && mode == Mode::Auto
            && effect == Effect::Destructive
        {
            reasons.push(format!(
                "rule `{name}` matches, but destructive calls always ask"
            ));
        }
    }
    Verdict { decision, reasons }
}
