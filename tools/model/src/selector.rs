//! Label selectors: `k=v,k2!=v2,k3,!k4`, as kubectl's equality-based
//! selectors.
//!
//! ```
//! use ops_model::LabelSelector;
//! let sel: LabelSelector = "role=web,env!=dev".parse().unwrap();
//! let labels = [("role".to_string(), "web".to_string())].into_iter().collect();
//! assert!(sel.matches(&labels));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// One requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    NotExists(String),
}

/// A parsed selector; the empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    reqs: Vec<Requirement>,
}

/// A selector that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid label selector `{selector}`: {reason} (expected k=v, k!=v, k or !k, comma separated)"
)]
pub struct SelectorError {
    selector: String,
    reason: String,
}

fn check_key(sel: &str, key: &str) -> Result<String, SelectorError> {
    let key = key.trim();
    let valid = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._/".contains(c));
    if valid {
        Ok(key.to_owned())
    } else {
        Err(SelectorError {
            selector: sel.to_owned(),
            reason: format!("bad key `{key}`"),
        })
    }
}

impl FromStr for LabelSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut reqs = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let req = if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEquals(check_key(s, k)?, v.trim().to_owned())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::Equals(check_key(s, k)?, v.trim().to_owned())
            } else if let Some(k) = part.strip_prefix('!') {
                Requirement::NotExists(check_key(s, k)?)
            } else {
                Requirement::Exists(check_key(s, part)?)
            };
            reqs.push(req);
        }
        Ok(LabelSelector { reqs })
    }
}

impl LabelSelector {
    /// A selector requiring every `k=v` of `labels`.
    pub fn from_map(labels: &BTreeMap<String, String>) -> Self {
        LabelSelector {
            reqs: labels
                .iter()
                .map(|(k, v)| Requirement::Equals(k.clone(), v.clone()))
                .collect(),
        }
    }

    /// Whether the selector has no requirement.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.reqs.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
        })
    }

    /// Whether `s` looks like a selector rather than a plain name.
    pub fn looks_like_selector(s: &str) -> bool {
        s.contains('=') || s.contains(',') || s.starts_with('!')
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .reqs
            .iter()
            .map(|r| match r {
                Requirement::Equals(k, v) => format!("{k}={v}"),
                Requirement::NotEquals(k, v) => format!("{k}!={v}"),
                Requirement::Exists(k) => k.clone(),
                Requirement::NotExists(k) => format!("!{k}"),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn table() {
        let l = labels(&[("role", "web"), ("env", "prod")]);
        for (sel, want) in [
            ("", true),
            ("role=web", true),
            ("role==web", true),
            ("role=db", false),
            ("role=web,env=prod", true),
            ("role=web,env=dev", false),
            ("role!=db", true),
            ("env", true),
            ("gpu", false),
            ("!gpu", true),
            ("!env", false),
        ] {
            let s: LabelSelector = sel.parse().unwrap();
            assert_eq!(s.matches(&l), want, "{sel}");
        }
    }

    #[test]
    fn bad_selector_explains() {
        let e = "=x".parse::<LabelSelector>().unwrap_err();
        assert!(e.to_string().contains("bad key"), "{e}");
    }
}
