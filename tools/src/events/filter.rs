//! EventHooks keyword filters, as the anchor applies them: to a readable
//! rendering of the event ([`render`]: `subject`, `type`, `source`,
//! `cluster`, then every data field as `path: value`, one per line),
//! `include` keywords with `matchMode` ANY (default) or ALL, `exclude`
//! keywords that reject on any match, and `matchType` CONTAINS (default,
//! substring), EXACT (a whole line's value or a whole word equals the
//! keyword) or REGEX (searched anywhere). Regexes compile once, when the
//! hook is loaded; a bad one is an error naming the hook.

use regex::Regex;
use serde_json::Value;

use super::CloudEvent;
use crate::model::{KeywordMatchMode, KeywordMatchType, Keywords};

/// A compiled keyword filter.
#[derive(Debug, Clone)]
pub struct KeywordFilter {
    include: Vec<Matcher>,
    exclude: Vec<Matcher>,
    all: bool,
}

#[derive(Debug, Clone)]
enum Matcher {
    Contains(String),
    Exact(String),
    Regex(Regex),
}

impl Matcher {
    fn new(kind: KeywordMatchType, kw: &str) -> Result<Self, String> {
        Ok(match kind {
            KeywordMatchType::Contains => Matcher::Contains(kw.to_owned()),
            KeywordMatchType::Exact => Matcher::Exact(kw.to_owned()),
            KeywordMatchType::Regex => Matcher::Regex(
                Regex::new(kw).map_err(|e| format!("keyword `{kw}` is not a valid regex: {e}"))?,
            ),
        })
    }

    fn hit(&self, text: &str) -> bool {
        match self {
            Matcher::Contains(k) => text.contains(k.as_str()),
            Matcher::Regex(r) => r.is_match(text),
            Matcher::Exact(k) => text.lines().any(|l| {
                l == k
                    || l.split_once(": ").is_some_and(|(_, v)| v == k)
                    || l.split(|c: char| c.is_whitespace() || c == ',')
                        .any(|w| w == k)
            }),
        }
    }
}

impl KeywordFilter {
    /// Compiles a hook's keywords (none: everything passes).
    pub fn new(k: Option<&Keywords>) -> Result<Self, String> {
        let Some(k) = k else {
            return Ok(KeywordFilter {
                include: Vec::new(),
                exclude: Vec::new(),
                all: false,
            });
        };
        let kind = k.match_type.unwrap_or(KeywordMatchType::Contains);
        let build = |list: &Option<Vec<String>>| -> Result<Vec<Matcher>, String> {
            list.iter()
                .flatten()
                .filter(|s| !s.is_empty())
                .map(|s| Matcher::new(kind, s))
                .collect()
        };
        Ok(KeywordFilter {
            include: build(&k.include)?,
            exclude: build(&k.exclude)?,
            all: k.match_mode == Some(KeywordMatchMode::All),
        })
    }

    /// Whether every event passes (no keywords: nothing to render).
    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// Whether a rendered event passes.
    pub fn passes(&self, text: &str) -> bool {
        if self.exclude.iter().any(|m| m.hit(text)) {
            return false;
        }
        if self.include.is_empty() {
            return true;
        }
        if self.all {
            self.include.iter().all(|m| m.hit(text))
        } else {
            self.include.iter().any(|m| m.hit(text))
        }
    }
}

/// Appends `path: value` lines for `v`; `path` is the prefix so far (a
/// buffer grown and cut back, not a new string per field).
fn flatten(path: &mut String, v: &Value, out: &mut String) {
    use std::fmt::Write;
    let at = path.len();
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                if at > 0 {
                    path.push('.');
                }
                path.push_str(k);
                flatten(path, v, out);
                path.truncate(at);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                let _ = write!(path, "[{i}]");
                flatten(path, v, out);
                path.truncate(at);
            }
        }
        leaf => {
            out.push_str(path);
            out.push_str(": ");
            match leaf {
                Value::String(s) => out.push_str(s),
                Value::Null => out.push_str("null"),
                other => {
                    let _ = write!(out, "{other}");
                }
            }
            out.push('\n');
        }
    }
}

/// The readable text filters and chat sinks see.
pub fn render(e: &CloudEvent) -> String {
    let mut out = String::with_capacity(256);
    let attributes = [
        ("subject", Some(&e.subject)),
        ("type", Some(&e.kind)),
        ("source", Some(&e.source)),
        ("cluster", e.cluster.as_ref()),
    ];
    for (name, value) in attributes {
        if let Some(value) = value {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push('\n');
        }
    }
    flatten(&mut String::new(), &e.data, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(
        include: &[&str],
        exclude: &[&str],
        mode: Option<KeywordMatchMode>,
        kind: Option<KeywordMatchType>,
    ) -> Keywords {
        Keywords {
            include: Some(include.iter().map(|s| (*s).to_owned()).collect()),
            exclude: Some(exclude.iter().map(|s| (*s).to_owned()).collect()),
            match_mode: mode,
            match_type: kind,
        }
    }

    #[test]
    fn modes_and_types() {
        let text = "subject: ops.clusters.c1.nodes.gpu-1.findings\nstatus: alerting\ntask: alert-gpu-xid\nmessage: Xid 79 on GPU 3\n";
        let f = |k: Keywords| KeywordFilter::new(Some(&k)).unwrap().passes(text);
        assert!(f(kw(
            &["alerting", "alert-gpu-xid"],
            &[],
            Some(KeywordMatchMode::All),
            None
        )));
        assert!(!f(kw(
            &["alerting", "alert-hosts-disk"],
            &[],
            Some(KeywordMatchMode::All),
            None
        )));
        assert!(f(kw(&["alerting", "alert-hosts-disk"], &[], None, None)));
        assert!(!f(kw(&["alerting"], &["Xid 79"], None, None)));
        assert!(f(kw(
            &["alerting", ".*alert-gpu-.*"],
            &[],
            Some(KeywordMatchMode::All),
            Some(KeywordMatchType::Regex)
        )));
        assert!(f(kw(
            &["alerting"],
            &[],
            None,
            Some(KeywordMatchType::Exact)
        )));
        assert!(!f(kw(&["alert"], &[], None, Some(KeywordMatchType::Exact))));
        assert!(KeywordFilter::new(None).unwrap().passes(text));
        let bad = KeywordFilter::new(Some(&kw(
            &["(unclosed"],
            &[],
            None,
            Some(KeywordMatchType::Regex),
        )));
        assert!(bad.unwrap_err().contains("not a valid regex"));
        assert!(KeywordFilter::new(None).unwrap().is_empty());
        assert!(
            !KeywordFilter::new(Some(&kw(&[], &["x"], None, None)))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn render_lists_attributes_then_every_data_path() {
        let e = CloudEvent::new(
            "opscli/h",
            "dev.ops.taskrun.report",
            "ops.clusters.c1.nodes.n1.findings",
            serde_json::json!({
                "status": "alerting",
                "gpu": {"ids": [3, null], "ok": false},
                "note": "two\nlines",
            }),
        )
        .in_cluster("c1");
        assert_eq!(
            render(&e),
            "subject: ops.clusters.c1.nodes.n1.findings\ntype: dev.ops.taskrun.report\nsource: opscli/h\ncluster: c1\n\
             gpu.ids[0]: 3\ngpu.ids[1]: null\ngpu.ok: false\nnote: two\nlines\nstatus: alerting\n"
        );
        let scalar = CloudEvent {
            cluster: None,
            data: serde_json::json!([1.5, "x"]),
            ..e
        };
        assert!(render(&scalar).ends_with("source: opscli/h\n[0]: 1.5\n[1]: x\n"));
    }
}
