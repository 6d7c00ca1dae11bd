//! EventHooks compiled once: subject pattern, keyword filter and the
//! [`Sink`] a matching event goes to. Compiling is where a bad hook is
//! refused (at `apply`), so delivery never meets one.

use std::collections::BTreeMap;

use super::filter::{KeywordFilter, render};
use super::{CloudEvent, subject};
use crate::EventHooks;

/// What a hook does with a matching event.
#[derive(Debug, Clone, PartialEq)]
pub enum Sink {
    /// POST the event as JSON.
    Webhook {
        /// Where.
        url: String,
    },
    /// A Slack incoming webhook (Block Kit).
    Slack {
        /// Where.
        url: String,
    },
    /// The anchor's `xiezuo` chat bot: a text message.
    Xiezuo {
        /// Where.
        url: String,
    },
    /// Re-publish on a rewritten subject.
    Event {
        /// Target subject (`*` filled from the source).
        subject: String,
    },
    /// Index the event in Elasticsearch.
    Elasticsearch {
        /// Base URL.
        url: String,
        /// Index name prefix.
        index: String,
    },
    /// Start a Task run, a Pipeline run or a copilot triage session.
    Action {
        /// `task`, `pipeline` or `copilot`.
        kind: String,
        /// The Task / Pipeline name, or for `copilot` a prompt prefix.
        target: String,
    },
}

impl Sink {
    /// The sink's type name.
    pub fn kind(&self) -> &str {
        match self {
            Sink::Webhook { .. } => "webhook",
            Sink::Slack { .. } => "slack",
            Sink::Xiezuo { .. } => "xiezuo",
            Sink::Event { .. } => "event",
            Sink::Elasticsearch { .. } => "elasticsearch",
            Sink::Action { kind, .. } => kind,
        }
    }
}

/// A compiled EventHooks object.
#[derive(Debug, Clone)]
pub struct Hook {
    /// `namespace/name`.
    pub key: String,
    /// Subject pattern.
    pub subject: String,
    /// Keyword filter.
    pub filter: KeywordFilter,
    /// Where matching events go.
    pub sink: Sink,
    /// `spec.options`.
    pub options: BTreeMap<String, String>,
    /// `spec.additional`.
    pub additional: Option<String>,
}

impl Hook {
    /// Compiles an EventHooks object; the error names the hook and the
    /// field.
    pub fn compile(h: &EventHooks) -> Result<Hook, String> {
        let key = format!(
            "{}/{}",
            h.metadata.namespace.as_deref().unwrap_or("default"),
            h.metadata.name
        );
        let spec = &h.spec;
        let subject = spec
            .subject
            .clone()
            .ok_or_else(|| format!("EventHooks {key}: spec.subject is missing"))?;
        if !subject::valid_pattern(&subject) {
            return Err(format!(
                "EventHooks {key}: spec.subject `{subject}` is not a valid subject pattern"
            ));
        }
        let filter = KeywordFilter::new(spec.keywords.as_ref())
            .map_err(|e| format!("EventHooks {key}: spec.keywords: {e}"))?;
        let kind = spec
            .type_
            .as_deref()
            .ok_or_else(|| format!("EventHooks {key}: spec.type is missing"))?
            .to_lowercase();
        let url = || {
            spec.url
                .clone()
                .filter(|u| !u.trim().is_empty())
                .ok_or_else(|| format!("EventHooks {key}: spec.url is missing (type {kind})"))
        };
        let http = |u: String| -> Result<String, String> {
            if u.starts_with("http://") || u.starts_with("https://") || u.starts_with("${") {
                Ok(u)
            } else {
                Err(format!(
                    "EventHooks {key}: spec.url `{u}` must start with http:// or https://"
                ))
            }
        };
        let options = spec.options.clone().unwrap_or_default();
        // Options read as numbers or words later are checked now, so a
        // typo is refused at apply instead of quietly falling back.
        for (name, range) in [
            ("batch", 1..=10_000u64),
            ("retries", 0..=100),
            ("concurrency", 1..=256),
            ("approval-ttl", 1..=crate::MAX_SECONDS),
        ] {
            if let Some(v) = options.get(name)
                && !v.trim().parse::<u64>().is_ok_and(|n| range.contains(&n))
            {
                return Err(format!(
                    "EventHooks {key}: spec.options.{name} `{v}` must be a whole number in {}..={}",
                    range.start(),
                    range.end()
                ));
            }
        }
        if let Some(m) = options.get("mode")
            && !matches!(m.as_str(), "read-only" | "readonly" | "ask" | "auto")
        {
            return Err(format!(
                "EventHooks {key}: spec.options.mode `{m}` must be read-only, ask or auto"
            ));
        }
        let sink = match kind.as_str() {
            "webhook" => Sink::Webhook { url: http(url()?)? },
            "slack" => Sink::Slack { url: http(url()?)? },
            "xiezuo" => Sink::Xiezuo { url: http(url()?)? },
            "event" => {
                let target = url()?;
                if !subject::valid_pattern(&target) || !target.starts_with("ops.") {
                    return Err(format!(
                        "EventHooks {key}: spec.url `{target}` must be a subject under ops. (with `*` / `>` filled from the event's)"
                    ));
                }
                Sink::Event { subject: target }
            }
            "elasticsearch" => Sink::Elasticsearch {
                url: http(url()?)?.trim_end_matches('/').to_owned(),
                index: options
                    .get("index")
                    .cloned()
                    .unwrap_or_else(|| "ops-events".into()),
            },
            "task" | "pipeline" | "copilot" => Sink::Action {
                target: spec
                    .url
                    .clone()
                    .or_else(|| options.get(kind.as_str()).cloned())
                    .unwrap_or_default(),
                kind: kind.clone(),
            },
            other => {
                return Err(format!(
                    "EventHooks {key}: spec.type `{other}` is not one of webhook, slack, xiezuo, event, elasticsearch, task, pipeline, copilot"
                ));
            }
        };
        if let Sink::Action { kind, target } = &sink {
            if kind != "copilot" && target.is_empty() {
                return Err(format!(
                    "EventHooks {key}: type {kind} needs the {kind}'s name in spec.url"
                ));
            }
        }
        Ok(Hook {
            key,
            subject,
            filter,
            sink,
            options,
            additional: spec.additional.clone(),
        })
    }

    /// Whether the event is for this hook: subject and keywords.
    pub fn wants(&self, e: &CloudEvent) -> bool {
        subject::matches(&self.subject, &e.subject) && self.passes(e)
    }

    /// Whether the event passes the hook's keywords (for a reader that
    /// only hands over events on the hook's subject).
    pub fn passes(&self, e: &CloudEvent) -> bool {
        self.filter.is_empty() || self.filter.passes(&render(e))
    }

    /// Whether the hook has keywords (without, every event passes and
    /// nothing needs rendering).
    pub fn has_keywords(&self) -> bool {
        !self.filter.is_empty()
    }

    /// Whether an event whose rendered text is `text` passes the hook's
    /// keywords.
    pub fn passes_text(&self, text: &str) -> bool {
        self.filter.passes(text)
    }
}
