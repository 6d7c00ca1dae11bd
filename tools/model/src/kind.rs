//! The closed set of object kinds and the names the CLI accepts for them
//! (singular, plural and short forms, case-insensitive, like kubectl).

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An object kind.
#[derive(
    Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum Kind {
    /// A machine reached over SSH (or the local machine).
    Host,
    /// A Kubernetes cluster reached through a kubeconfig.
    Cluster,
    /// Variables plus ordered steps (shell or file copy).
    Task,
    /// Ordered references to Tasks.
    Pipeline,
    /// A request to run a Task, once or on a cron schedule.
    TaskRun,
    /// A request to run a Pipeline, once or on a cron schedule.
    PipelineRun,
    /// A subscription from event subjects to a sink.
    EventHooks,
}

/// The name given on the command line is not a kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown kind `{given}`; expected one of: {}", Kind::help_list())]
pub struct UnknownKind {
    /// What was given.
    pub given: String,
}

impl Kind {
    /// Every kind, in display order.
    pub const ALL: [Kind; 7] = [
        Kind::Host,
        Kind::Cluster,
        Kind::Task,
        Kind::Pipeline,
        Kind::TaskRun,
        Kind::PipelineRun,
        Kind::EventHooks,
    ];

    /// The `kind:` value in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Host => "Host",
            Kind::Cluster => "Cluster",
            Kind::Task => "Task",
            Kind::Pipeline => "Pipeline",
            Kind::TaskRun => "TaskRun",
            Kind::PipelineRun => "PipelineRun",
            Kind::EventHooks => "EventHooks",
        }
    }

    /// Lower-case plural, as in `opscli get hosts`.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Host => "hosts",
            Kind::Cluster => "clusters",
            Kind::Task => "tasks",
            Kind::Pipeline => "pipelines",
            Kind::TaskRun => "taskruns",
            Kind::PipelineRun => "pipelineruns",
            Kind::EventHooks => "eventhooks",
        }
    }

    /// Every accepted CLI name, lower-case: singular, plural, short forms.
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Kind::Host => &["host", "hosts", "ho"],
            Kind::Cluster => &["cluster", "clusters", "cl"],
            Kind::Task => &["task", "tasks", "tk"],
            Kind::Pipeline => &["pipeline", "pipelines", "pl"],
            Kind::TaskRun => &["taskrun", "taskruns", "tr"],
            Kind::PipelineRun => &["pipelinerun", "pipelineruns", "pr", "plr"],
            Kind::EventHooks => &["eventhooks", "eventhook", "eh", "hook", "hooks"],
        }
    }

    /// Whether objects of this kind carry secrets (credentials, kubeconfigs).
    pub fn holds_credentials(self) -> bool {
        matches!(self, Kind::Host | Kind::Cluster)
    }

    /// The exact YAML `kind:` value, case-sensitive.
    pub fn from_yaml_kind(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    fn help_list() -> String {
        Kind::ALL
            .iter()
            .map(|k| k.names().join("|"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl FromStr for Kind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        // `tasks.ops.dev` / `tasks.crd.chenshaowen.com` forms, like kubectl.
        let base = lower.split('.').next().unwrap_or_default();
        Kind::ALL
            .into_iter()
            .find(|k| k.names().contains(&base))
            .ok_or_else(|| UnknownKind {
                given: s.to_owned(),
            })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_kind() {
        for kind in Kind::ALL {
            for name in kind.names() {
                assert_eq!(name.parse::<Kind>(), Ok(kind), "{name}");
                assert_eq!(name.to_uppercase().parse::<Kind>(), Ok(kind));
            }
            assert_eq!(Kind::from_yaml_kind(kind.as_str()), Some(kind));
        }
        assert_eq!("tasks.crd.chenshaowen.com".parse::<Kind>(), Ok(Kind::Task));
    }

    #[test]
    fn names_are_unique_across_kinds() {
        let mut seen = std::collections::HashSet::new();
        for kind in Kind::ALL {
            for name in kind.names() {
                assert!(seen.insert(*name), "{name} used twice");
            }
        }
    }

    #[test]
    fn unknown_kind_lists_the_valid_names() {
        let err = "hostz".parse::<Kind>().unwrap_err();
        assert!(err.to_string().contains("host|hosts|ho"), "{err}");
    }
}
