//! The event vocabulary: CloudEvents 1.0 envelopes ([`CloudEvent`]) on the
//! anchor's subject scheme ([`subject`]), keyword filters for EventHooks
//! ([`filter`]) and EventHooks compiled once ([`hook`]). Publishing and
//! delivery live in `ops-events`.

pub mod filter;
pub mod hook;
pub mod subject;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The CloudEvents spec version we write.
pub const SPEC_VERSION: &str = "1.0";

/// A CloudEvents 1.0 event (JSON format), with the anchor's `cluster`
/// extension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    /// Always `1.0`.
    pub specversion: String,
    /// Unique per event (also the JetStream message id, for dedup).
    pub id: String,
    /// Who produced it (`opscli/HOST`, `ops-server`, a task run's URI).
    pub source: String,
    /// What happened, reverse-DNS style (`dev.ops.taskrun.status`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The subject it is published on.
    pub subject: String,
    /// When (RFC 3339).
    pub time: String,
    /// Always `application/json`.
    #[serde(default = "json_type")]
    pub datacontenttype: String,
    /// The cluster it concerns (extension attribute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The payload.
    #[serde(default)]
    pub data: Value,
}

fn json_type() -> String {
    "application/json".into()
}

/// The `source` of events this process produces: `opscli/HOSTNAME`.
pub fn default_source() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    format!("opscli/{host}")
}

/// A new event id: 32 hex digits, unique per process and time.
pub fn new_id() -> String {
    crate::id::unique_hex("event", 16)
}

impl CloudEvent {
    /// An event of `kind` from `source` on `subject`, now.
    pub fn new(
        source: impl Into<String>,
        kind: impl Into<String>,
        subject: impl Into<String>,
        data: Value,
    ) -> Self {
        CloudEvent {
            specversion: SPEC_VERSION.into(),
            id: new_id(),
            source: source.into(),
            kind: kind.into(),
            subject: subject.into(),
            time: crate::stamp::now(),
            datacontenttype: json_type(),
            cluster: None,
            data,
        }
    }

    /// With the `cluster` extension set.
    pub fn in_cluster(mut self, cluster: impl Into<String>) -> Self {
        self.cluster = Some(cluster.into());
        self
    }

    /// Checks the required attributes; says which is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.specversion != SPEC_VERSION {
            return Err(format!(
                "specversion `{}` is not {SPEC_VERSION}",
                self.specversion
            ));
        }
        for (name, v) in [
            ("id", &self.id),
            ("source", &self.source),
            ("type", &self.kind),
        ] {
            if v.trim().is_empty() {
                return Err(format!("`{name}` is empty"));
            }
        }
        if !subject::valid(&self.subject) {
            return Err(format!(
                "subject `{}` is not a concrete subject (tokens separated by dots, no wildcards)",
                self.subject
            ));
        }
        if chrono::DateTime::parse_from_rfc3339(&self.time).is_err() {
            return Err(format!("time `{}` is not RFC 3339", self.time));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_and_validates() {
        let e = CloudEvent::new(
            "opscli/test",
            "dev.ops.taskrun.status",
            subject::object(
                "c1",
                "ops-system",
                "taskruns",
                "clean-1",
                subject::Channel::Status,
            ),
            serde_json::json!({"phase": "Succeeded"}),
        )
        .in_cluster("c1");
        e.validate().unwrap();
        let text = serde_json::to_string(&e).unwrap();
        assert!(text.contains("\"specversion\":\"1.0\""));
        assert!(text.contains("\"type\":\"dev.ops.taskrun.status\""));
        let back: CloudEvent = serde_json::from_str(&text).unwrap();
        assert_eq!(back, e);
        assert_ne!(new_id(), new_id());
        let mut bad = e.clone();
        bad.subject = "ops.*.x".into();
        assert!(
            bad.validate()
                .unwrap_err()
                .contains("not a concrete subject")
        );
        let mut bad = e;
        bad.time = "yesterday".into();
        assert!(bad.validate().unwrap_err().contains("RFC 3339"));
    }
}
