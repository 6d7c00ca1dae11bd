//! The rules file: `allow | ask | forbid` over shell command prefixes,
//! tools, Task and Pipeline names, hosts, host labels and clusters. Each
//! rule carries `match` and `not_match` examples that are checked when the
//! file loads, so a rule that does not do what its author meant is an
//! error before it can allow anything.
//!
//! ```yaml
//! rules:
//!   - name: restart-web-on-staging
//!     action: allow
//!     shell: ["/usr/bin/systemctl restart nginx", "/usr/bin/systemctl reload nginx"]
//!     labels: {env: staging}
//!     match:
//!       - {shell: "sudo /usr/bin/systemctl restart nginx", hosts: [{name: web-1, labels: {env: staging}}]}
//!     not_match:
//!       - {shell: "systemctl restart postgres", hosts: [{name: web-1, labels: {env: staging}}]}
//!       - {shell: "systemctl restart nginx", hosts: [{name: web-9, labels: {env: prod}}]}
//! ```
//!
//! A rule matches when every criterion it sets matches. For `allow`, a
//! criterion must hold for *all* parts of the call (every simple command
//! of the shell line, every target host); for `ask` and `forbid`, *any*
//! part is enough. Patterns are words with `*` wildcards; other patterns
//! match whole names.
//!
//! Shell patterns mean what they say:
//! - an `ask`/`forbid` pattern matches a command whose first words match
//!   it, for every command the line runs: wrappers (`sudo`, `env`, `nice`,
//!   `timeout`, `xargs`, `watch`, `sh -c`, ...) are looked through,
//!   `find -exec` runs its command and `find -delete` counts as `rm`. A
//!   line that cannot be read fully matches every `ask`/`forbid` pattern.
//! - an `allow` pattern names its program by absolute path and matches a
//!   command only word for word (`/usr/bin/systemctl restart nginx`
//!   covers neither `... nginx postgres` nor `-H root@db-1 ...`), with no
//!   redirection that writes and nothing the classifier cannot prove.

use std::collections::BTreeMap;
use std::path::Path;

use ops_model::shell;
use serde::{Deserialize, Serialize};

use super::{Call, HostRef};

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    /// May run unasked in auto mode (mutating calls only).
    Allow,
    /// Always asks, even for reads.
    Ask,
    /// Never runs, in any mode.
    Forbid,
}

/// An example call for checking a rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    /// Tool name (default: `host_run_shell` when `shell` is set).
    #[serde(default)]
    pub tool: Option<String>,
    /// Shell line.
    #[serde(default)]
    pub shell: Option<String>,
    /// Task name.
    #[serde(default)]
    pub task: Option<String>,
    /// Pipeline name.
    #[serde(default)]
    pub pipeline: Option<String>,
    /// Target hosts.
    #[serde(default)]
    pub hosts: Vec<HostRef>,
    /// Cluster.
    #[serde(default)]
    pub cluster: Option<String>,
}

impl Example {
    fn call(&self) -> Call {
        Call {
            tool: self.tool.clone().unwrap_or_else(|| {
                if self.shell.is_some() {
                    "host_run_shell".into()
                } else if self.task.is_some() {
                    "task_run".into()
                } else if self.pipeline.is_some() {
                    "pipeline_run".into()
                } else {
                    String::new()
                }
            }),
            shell: self.shell.clone(),
            task: self.task.clone(),
            pipeline: self.pipeline.clone(),
            hosts: self.hosts.clone(),
            cluster: self.cluster.clone(),
            ..Call::default()
        }
    }
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique name, shown in verdicts.
    pub name: String,
    /// What it does.
    pub action: RuleAction,
    /// Tool names.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Shell command prefixes.
    #[serde(default)]
    pub shell: Vec<String>,
    /// Task names.
    #[serde(default)]
    pub tasks: Vec<String>,
    /// Pipeline names.
    #[serde(default)]
    pub pipelines: Vec<String>,
    /// Host names.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Host labels (all must be present).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Cluster names.
    #[serde(default)]
    pub clusters: Vec<String>,
    /// Calls this rule must match.
    #[serde(default, rename = "match")]
    pub matches: Vec<Example>,
    /// Calls this rule must not match.
    #[serde(default)]
    pub not_match: Vec<Example>,
}

/// A loaded, checked rule set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// In file order.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// Why a rules file was refused.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// File.
        path: String,
        /// OS error.
        source: std::io::Error,
    },
    /// The YAML is malformed or has unknown fields.
    #[error("{path}: {detail}")]
    Parse {
        /// File.
        path: String,
        /// Parser message (with line and column).
        detail: String,
    },
    /// A rule is wrong: no criteria, a duplicate name, or an example that
    /// does not behave as stated.
    #[error("{path}: rule `{rule}`: {detail}")]
    Rule {
        /// File.
        path: String,
        /// Rule name.
        rule: String,
        /// What is wrong.
        detail: String,
    },
}

/// `*` matches any run of characters; everything else literally.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// Whether an `ask`/`forbid` shell pattern hits a command: the pattern's
/// words are a prefix of the command's (each word a glob; the program may
/// be written with its path). `commands` are every command the line runs,
/// wrappers looked through ([`shell::commands`]).
fn shell_prefix_matches(pattern: &str, words: &[String]) -> bool {
    let pat: Vec<&str> = pattern.split_whitespace().collect();
    !pat.is_empty()
        && pat.len() <= words.len()
        && pat
            .iter()
            .zip(words)
            .enumerate()
            .all(|(i, (p, w))| glob(p, w) || (i == 0 && glob(p, w.rsplit('/').next().unwrap_or(w))))
}

/// Whether an `allow` shell pattern covers a command exactly: as many
/// words as the pattern, each matching its glob, the program named by the
/// same absolute path (so a program planted earlier on `PATH` is never
/// the one that runs), optionally under a plain `sudo`.
fn shell_exact_matches(pattern: &str, cmd: &shell::SimpleCommand) -> bool {
    let pat: Vec<&str> = pattern.split_whitespace().collect();
    let mut words: &[String] = &cmd.argv;
    let mut dynamic: &[bool] = &cmd.dynamic;
    if words
        .first()
        .is_some_and(|w| w == "sudo" || w == "/usr/bin/sudo")
        && pat.first() != Some(&"sudo")
    {
        let skip = if words.get(1).is_some_and(|w| w == "-n") {
            2
        } else {
            1
        };
        words = words.get(skip..).unwrap_or_default();
        dynamic = dynamic.get(skip..).unwrap_or_default();
    }
    !pat.is_empty()
        && pat.len() == words.len()
        && !dynamic.iter().any(|d| *d)
        && pat[0].starts_with('/')
        && pat[0] == words[0]
        && pat.iter().zip(words).all(|(p, w)| glob(p, w))
}

impl Rule {
    fn has_criteria(&self) -> bool {
        !(self.tools.is_empty()
            && self.shell.is_empty()
            && self.tasks.is_empty()
            && self.pipelines.is_empty()
            && self.hosts.is_empty()
            && self.labels.is_empty()
            && self.clusters.is_empty())
    }

    /// Whether this rule applies to `call`.
    pub fn matches(&self, call: &Call) -> bool {
        let all = self.action == RuleAction::Allow;
        let any_of = |pats: &[String], value: Option<&str>| -> bool {
            pats.is_empty() || value.is_some_and(|v| pats.iter().any(|p| glob(p, v)))
        };
        if !any_of(&self.tools, Some(call.tool.as_str())) {
            return false;
        }
        if !any_of(&self.tasks, call.task.as_deref()) {
            return false;
        }
        if !any_of(&self.pipelines, call.pipeline.as_deref()) {
            return false;
        }
        if !any_of(&self.clusters, call.cluster.as_deref()) {
            return false;
        }
        if !self.shell.is_empty() {
            let Some(line) = call.shell.as_deref() else {
                return false;
            };
            let parsed = shell::parse(line);
            if parsed.commands.is_empty() {
                return false;
            }
            let ok = if all {
                // Allow only what is wholly covered and fully understood:
                // every command exactly as a pattern writes it, nothing
                // written by a redirection, no construct left unproved.
                parsed.problems.is_empty()
                    && parsed.unsure.is_empty()
                    && parsed.commands.iter().all(|c| {
                        self.shell.iter().any(|p| shell_exact_matches(p, c))
                            && c.redirects.iter().all(|r| !r.writes())
                    })
            } else {
                // `ask`/`forbid` see every command the line runs; a line
                // that cannot be read fully (a program known only at run
                // time, a construct not proved) may run anything.
                let opaque = !parsed.problems.is_empty()
                    || !parsed.unsure.is_empty()
                    || parsed
                        .commands
                        .iter()
                        .any(|c| c.dynamic.first().copied().unwrap_or(false));
                opaque
                    || shell::commands(line)
                        .iter()
                        .any(|words| self.shell.iter().any(|p| shell_prefix_matches(p, words)))
            };
            if !ok {
                return false;
            }
        }
        let host_ok = |h: &HostRef| {
            (self.hosts.is_empty() || self.hosts.iter().any(|p| glob(p, &h.name)))
                && self
                    .labels
                    .iter()
                    .all(|(k, v)| h.labels.get(k).is_some_and(|hv| glob(v, hv)))
        };
        if !self.hosts.is_empty() || !self.labels.is_empty() {
            if call.hosts.is_empty() {
                return false;
            }
            let ok = if all {
                call.hosts.iter().all(host_ok)
            } else {
                call.hosts.iter().any(host_ok)
            };
            if !ok {
                return false;
            }
        }
        true
    }
}

impl Rules {
    /// Parses and checks a rules document; `origin` names it in errors.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Rules, RulesError> {
        let rules: Rules = serde_yaml::from_str(text).map_err(|e| RulesError::Parse {
            path: origin.to_owned(),
            detail: e.to_string(),
        })?;
        rules.check(origin)?;
        Ok(rules)
    }

    /// Loads a rules file.
    pub fn load(path: &Path) -> Result<Rules, RulesError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
            path: origin.clone(),
            source,
        })?;
        Rules::from_yaml(&text, &origin)
    }

    fn check(&self, origin: &str) -> Result<(), RulesError> {
        let err = |rule: &str, detail: String| RulesError::Rule {
            path: origin.to_owned(),
            rule: rule.to_owned(),
            detail,
        };
        let mut seen = std::collections::BTreeSet::new();
        for r in &self.rules {
            if r.name.trim().is_empty() {
                return Err(err("", "every rule needs a name".into()));
            }
            if !seen.insert(r.name.clone()) {
                return Err(err(&r.name, "the name is used twice".into()));
            }
            if !r.has_criteria() {
                return Err(err(
                    &r.name,
                    "no criteria (tools, shell, tasks, pipelines, hosts, labels or clusters): it would match every call".into(),
                ));
            }
            if r.action == RuleAction::Allow
                && let Some(p) = r.shell.iter().find(|p| {
                    !p.split_whitespace()
                        .next()
                        .is_some_and(|w| w.starts_with('/'))
                })
            {
                return Err(err(
                    &r.name,
                    format!(
                        "the allow pattern `{p}` must name its program by absolute path \
                         (e.g. `/usr/bin/systemctl restart nginx`): an allowed command runs \
                         unasked, so it must not be whatever `{}` is first on the target's PATH",
                        p.split_whitespace().next().unwrap_or("")
                    ),
                ));
            }
            if r.matches.is_empty() {
                return Err(err(
                    &r.name,
                    "give at least one `match` example, so the rule is checked".into(),
                ));
            }
            for e in &r.matches {
                if !r.matches(&e.call()) {
                    return Err(err(
                        &r.name,
                        format!("does not match its `match` example {}", show(e)),
                    ));
                }
            }
            for e in &r.not_match {
                if r.matches(&e.call()) {
                    return Err(err(
                        &r.name,
                        format!("matches its `not_match` example {}", show(e)),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Rules that apply to `call`, in file order.
    pub fn matching<'a>(&'a self, call: &'a Call) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules.iter().filter(move |r| r.matches(call))
    }
}

fn show(e: &Example) -> String {
    serde_json::to_string(e).unwrap_or_else(|_| format!("{e:?}"))
}
