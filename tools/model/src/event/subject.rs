//! Event subjects, on the anchor's scheme:
//! `ops.clusters.{cluster}.namespaces.{ns}.{kind}.{name}.{status|events|findings|alerts}`
//! and `ops.clusters.{cluster}.nodes.{node}.{...}`. Every name is one
//! token: lower-cased, with anything but letters, digits, `-` and `_`
//! replaced by `_`, so a dot, a space, `*` or `>` in a name can never add
//! a token or turn into a wildcard. [`matches`] is NATS matching: `*` is
//! one token, `>` one or more at the end.

/// The cluster token for runs on hosts (not a Kubernetes cluster).
pub const LOCAL_CLUSTER: &str = "local";

/// What an event on a subject is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// State changes (a run's phase, a heartbeat).
    Status,
    /// Things that happened (Kubernetes-style events).
    Events,
    /// Inspection results (the anchor's `TaskRunReport`).
    Findings,
    /// Conditions someone must act on.
    Alerts,
}

impl Channel {
    /// Its subject token.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Status => "status",
            Channel::Events => "events",
            Channel::Findings => "findings",
            Channel::Alerts => "alerts",
        }
    }
}

/// One name as one safe subject token.
pub fn token(name: &str) -> String {
    let t: String = name
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if t.is_empty() { "_".into() } else { t }
}

/// `ops.clusters.{cluster}.namespaces.{ns}.{kind}.{name}.{channel}`.
pub fn object(cluster: &str, namespace: &str, kind: &str, name: &str, channel: Channel) -> String {
    format!(
        "ops.clusters.{}.namespaces.{}.{}.{}.{}",
        token(cluster),
        token(namespace),
        token(kind),
        token(name),
        channel.as_str()
    )
}

/// `ops.clusters.{cluster}.nodes.{node}.{channel}`.
pub fn node(cluster: &str, node: &str, channel: Channel) -> String {
    format!(
        "ops.clusters.{}.nodes.{}.{}",
        token(cluster),
        token(node),
        channel.as_str()
    )
}

/// Whether `subject` is a valid concrete subject (no wildcards, no empty
/// tokens).
pub fn valid(subject: &str) -> bool {
    !subject.is_empty()
        && subject
            .split('.')
            .all(|t| !t.is_empty() && t != "*" && t != ">" && !t.contains(char::is_whitespace))
}

/// Whether `pattern` is a valid pattern (`>` only last).
pub fn valid_pattern(pattern: &str) -> bool {
    let toks: Vec<&str> = pattern.split('.').collect();
    !pattern.is_empty()
        && toks.iter().enumerate().all(|(i, t)| {
            !t.is_empty() && !t.contains(char::is_whitespace) && (*t != ">" || i == toks.len() - 1)
        })
}

/// NATS subject matching.
pub fn matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The anchor's events -> alerts rewrite: `target` with each `*` filled
/// by the token at the same position of `source` (a `>` in `target` takes
/// the rest of `source` from there).
pub fn rewrite(target: &str, source: &str) -> String {
    let src: Vec<&str> = source.split('.').collect();
    let mut out = Vec::new();
    for (i, t) in target.split('.').enumerate() {
        match t {
            "*" => out.push(src.get(i).copied().unwrap_or("_").to_owned()),
            ">" => {
                out.extend(src.iter().skip(i).map(|s| (*s).to_owned()));
                break;
            }
            other => out.push(other.to_owned()),
        }
    }
    out.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_forge_tokens_or_wildcards() {
        assert_eq!(token("Web.1 prod"), "web_1_prod");
        assert_eq!(token("*"), "_");
        assert_eq!(token(">"), "_");
        assert_eq!(token(""), "_");
        let s = object(
            "Prod.EU",
            "ops-system",
            "hosts",
            "db.1 > x",
            Channel::Findings,
        );
        assert_eq!(
            s,
            "ops.clusters.prod_eu.namespaces.ops-system.hosts.db_1___x.findings"
        );
        assert!(valid(&s));
        assert_eq!(s.split('.').count(), 8);
        assert_eq!(
            node("c1", "gpu-12", Channel::Alerts),
            "ops.clusters.c1.nodes.gpu-12.alerts"
        );
    }

    #[test]
    fn nats_wildcards() {
        let s = "ops.clusters.c1.namespaces.ops-system.hosts.web-1.findings";
        assert!(matches(
            "ops.clusters.*.namespaces.ops-system.hosts.*.findings",
            s
        ));
        assert!(matches("ops.>", s));
        assert!(matches(">", s));
        assert!(!matches("ops.clusters.*.nodes.*.findings", s));
        assert!(!matches("ops.clusters.*", s));
        assert!(!matches(
            "ops.clusters.c1.namespaces.ops-system.hosts.web-1.findings.x",
            s
        ));
        assert!(!matches("ops.clusters.c1.>", "ops.clusters.c1"));
        assert!(valid_pattern("ops.*.>"));
        assert!(!valid_pattern("ops.>.x"));
        assert!(!valid_pattern("ops..x"));
        assert!(!valid("ops.*.x"));
    }

    #[test]
    fn rewrite_fills_wildcards_from_the_source() {
        assert_eq!(
            rewrite(
                "ops.clusters.*.nodes.*.alerts",
                "ops.clusters.c1.nodes.gpu-3.findings"
            ),
            "ops.clusters.c1.nodes.gpu-3.alerts"
        );
        assert_eq!(
            rewrite("alerts.>", "ops.clusters.c1.x"),
            "alerts.clusters.c1.x"
        );
    }
}
