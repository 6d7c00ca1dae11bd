//! `ops-protocol`: the words every door speaks. Today: [`Principal`], who
//! is asking for a call or deciding on one, and how that was established.
//! Every operation a session receives and every approval decision carries
//! one, and the audit trail records it. Pure (serde + schemars): a REST
//! body, a Slack action and an MCP request all carry these values.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Who asks or decides, and how ops knows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Principal {
    /// A stable name within its kind of authentication: the OS account
    /// name, or `namespace/name` of the object ops acts for.
    pub name: String,
    /// How the name was established.
    pub auth: Auth,
}

/// How a [`Principal`] was authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Auth {
    /// The local OS account that runs this process: the kernel vouches
    /// for the uid (the CLI). Anyone who can act as this account can act
    /// as this principal.
    LocalUser {
        /// The real uid.
        uid: u32,
    },
    /// ops itself, acting for one of its objects (an EventHooks action, a
    /// schedule): it asks, but it never decides an approval.
    System {
        /// What it acts for: `eventhooks/NAMESPACE/NAME`.
        on_behalf_of: String,
    },
    /// The eval runner's scripted responder, standing in for the person
    /// an eval case describes (it asks and decides as the case says).
    Eval {
        /// The case.
        case: String,
    },
}

impl Principal {
    /// The local OS account `name` with real uid `uid`.
    pub fn local_user(name: impl Into<String>, uid: u32) -> Self {
        Principal {
            name: name.into(),
            auth: Auth::LocalUser { uid },
        }
    }

    /// ops acting for `object` (`eventhooks/ns/name`).
    pub fn system(object: impl Into<String>) -> Self {
        let object = object.into();
        Principal {
            name: format!("ops:{object}"),
            auth: Auth::System {
                on_behalf_of: object,
            },
        }
    }

    /// The eval runner's responder for `case`.
    pub fn eval(case: impl Into<String>) -> Self {
        Principal {
            name: "eval-responder".into(),
            auth: Auth::Eval { case: case.into() },
        }
    }

    /// Whether this principal may decide approvals at all: people may,
    /// ops acting for its own objects may not (it would approve itself).
    pub fn may_decide(&self) -> bool {
        !matches!(self.auth, Auth::System { .. })
    }
}

impl fmt::Display for Principal {
    /// `alice (local uid 1000)`, `ops:eventhooks/ns/restart (system)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.auth {
            Auth::LocalUser { uid } => write!(f, "{} (local uid {uid})", self.name),
            Auth::System { .. } => write!(f, "{} (system)", self.name),
            Auth::Eval { case } => write!(f, "{} (eval case {case})", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_show_how_they_were_authenticated_and_round_trip() {
        let alice = Principal::local_user("alice", 1000);
        assert_eq!(alice.to_string(), "alice (local uid 1000)");
        assert!(alice.may_decide());
        let hook = Principal::system("eventhooks/ops/restart");
        assert_eq!(hook.to_string(), "ops:eventhooks/ops/restart (system)");
        assert!(!hook.may_decide());
        let text = serde_json::to_string(&alice).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"name":"alice","auth":{"kind":"local_user","uid":1000}}"#
        );
        assert_eq!(serde_json::from_str::<Principal>(&text).ok(), Some(alice));
    }
}
