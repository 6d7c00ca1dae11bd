//! EventHooks: a subscription from event subjects, filtered by keywords, to
//! a sink (webhook, Slack, re-published event, ...). Delivery arrives with
//! the event feed; this is the declaration.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::meta::{EmptyStatus, Manifest};
use super::serde_util::{opt_text, opt_text_map};

/// An EventHooks object.
pub type EventHooks = Manifest<EventHooksSpec, EmptyStatus>;

/// A hook's definition.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventHooksSpec {
    /// Sink type: `webhook`, `slack`, `event`, `elasticsearch`, `task`,
    /// `pipeline`, `copilot` (the anchor also has `xiezuo`).
    #[serde(
        default,
        rename = "type",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub type_: Option<String>,
    /// Subject pattern, NATS style (`*` one token, `>` the rest).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub subject: Option<String>,
    /// Sink address: a URL, or for `event` the subject to re-publish to.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub url: Option<String>,
    /// Sink options (headers, index name, secret for signing, ...).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text_map"
    )]
    pub options: Option<BTreeMap<String, String>>,
    /// Keyword filter on a readable rendering of the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keywords: Option<Keywords>,
    /// Extra text appended to the delivered message.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub additional: Option<String>,
}

/// Keyword filter.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Keywords {
    /// Keywords that must match (see `matchMode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<String>>,
    /// Keywords that must not match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<Vec<String>>,
    /// `ANY` (default) or `ALL` of `include`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_mode: Option<KeywordMatchMode>,
    /// `CONTAINS` (default), `EXACT` or `REGEX`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_type: Option<KeywordMatchType>,
}

/// How many include keywords must match.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum KeywordMatchMode {
    /// At least one.
    #[serde(alias = "any")]
    Any,
    /// Every one.
    #[serde(alias = "all")]
    All,
}

/// How a keyword matches.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum KeywordMatchType {
    /// Substring.
    #[serde(alias = "contains")]
    Contains,
    /// A whole field value (or a whole word) equals the keyword.
    #[serde(alias = "exact")]
    Exact,
    /// Regular expression search.
    #[serde(alias = "regex")]
    Regex,
}
