//! What a tool call can do to the world. Every tool declares one per call;
//! the approval policy (`ops-agent::policy`) decides from it. When unsure,
//! err toward danger: an unknown command is `Mutate`, never `Read`.

use serde::{Deserialize, Serialize};

/// The effect of one call, least to most dangerous (the order is used:
/// the effect of a compound command is the maximum of its parts).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Looks, changes nothing.
    Read,
    /// Changes something that can be changed back (restart a service,
    /// write a file, scale a deployment).
    Mutate,
    /// Destroys data or availability (delete, wipe, reboot, kill -9).
    Destructive,
}

impl Effect {
    /// `read`, `mutate`, `destructive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Read => "read",
            Effect::Mutate => "mutate",
            Effect::Destructive => "destructive",
        }
    }
}

impl std::fmt::Display for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
