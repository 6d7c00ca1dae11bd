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

fn flatten(prefix: &str, v: &Value, out: &mut String) {
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, v, out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        Value::String(s) => out.push_str(&format!("{prefix}: {s}\n")),
        Value::Null => out.push_str(&format!("{prefix}: null\n")),
        other => out.push_str(&format!("{prefix}: {other}\n")),
    }
}

/// The readable text filters and chat sinks see.
pub fn render(e: &CloudEvent) -> String {
    let mut out = format!(
        "subject: {}\ntype: {}\nsource: {}\n",
        e.subject, e.kind, e.source
    );
    if let Some(c) = &e.cluster {
        out.push_str(&format!("cluster: {c}\n"));
    }
    flatten("", &e.data, &mut out);
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
    }
}
