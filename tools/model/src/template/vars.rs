//! Resolving a run's variables: the declarations of a Task or Pipeline plus
//! the values given for this run, checked before anything runs.

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;

use crate::Variables;

/// What is wrong with one variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariableProblem {
    /// `required: true` and neither a value nor a default.
    Missing,
    /// The value is not one of `enums`.
    NotInEnums {
        /// The value given.
        value: String,
        /// The allowed values.
        allowed: Vec<String>,
    },
    /// The value does not match `regex`.
    NoRegexMatch {
        /// The value given.
        value: String,
        /// The pattern.
        regex: String,
    },
    /// Its value expands (through the variables it refers to) to more
    /// than the renderer produces.
    TooLarge {
        /// Bytes it would expand to (saturating).
        bytes: usize,
    },
    /// The declared `regex` itself does not compile.
    BadRegex {
        /// The pattern.
        regex: String,
        /// Why.
        error: String,
    },
}

/// A variable that fails its declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableError {
    /// The variable's name.
    pub name: String,
    /// What is wrong.
    pub problem: VariableProblem,
}

impl fmt::Display for VariableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = &self.name;
        match &self.problem {
            VariableProblem::Missing => {
                write!(
                    f,
                    "variable `{n}` is required but has no value (pass --var {n}=VALUE)"
                )
            }
            VariableProblem::NotInEnums { value, allowed } => write!(
                f,
                "variable `{n}` = `{value}` is not one of: {}",
                allowed.join(", ")
            ),
            VariableProblem::NoRegexMatch { value, regex } => {
                write!(f, "variable `{n}` = `{value}` does not match /{regex}/")
            }
            VariableProblem::TooLarge { bytes } => write!(
                f,
                "variable `{n}` expands to {bytes} bytes through the variables it refers to (at most {} are rendered)",
                super::render::MAX_RENDERED
            ),
            VariableProblem::BadRegex { regex, error } => {
                write!(
                    f,
                    "variable `{n}` declares an invalid regex /{regex}/: {error}"
                )
            }
        }
    }
}

impl std::error::Error for VariableError {}

/// Merges `given` values over `declared` defaults and checks each declared
/// variable. Given values for undeclared names pass through unchecked (the
/// anchor allows them). Empty optional variables are not checked against
/// `enums` / `regex`. Returns every problem, not just the first.
pub fn resolve_variables(
    declared: &Variables,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, Vec<VariableError>> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, decl) in declared {
        let value = given
            .get(name)
            .filter(|v| !v.is_empty())
            .map(String::as_str)
            .or_else(|| decl.effective())
            .unwrap_or_default()
            .to_owned();
        let err = |problem| VariableError {
            name: name.clone(),
            problem,
        };
        if value.is_empty() {
            if decl.is_required() {
                errors.push(err(VariableProblem::Missing));
            }
            out.insert(name.clone(), value);
            continue;
        }
        if let Some(allowed) = decl.enums.as_ref().filter(|e| !e.is_empty()) {
            if !allowed.iter().any(|a| a == &value) {
                errors.push(err(VariableProblem::NotInEnums {
                    value: value.clone(),
                    allowed: allowed.clone(),
                }));
            }
        }
        if let Some(pattern) = decl.regex.as_ref().filter(|r| !r.is_empty()) {
            match Regex::new(pattern) {
                Ok(re) if re.is_match(&value) => {}
                Ok(_) => errors.push(err(VariableProblem::NoRegexMatch {
                    value: value.clone(),
                    regex: pattern.clone(),
                })),
                Err(e) => errors.push(err(VariableProblem::BadRegex {
                    regex: pattern.clone(),
                    error: e.to_string(),
                })),
            }
        }
        out.insert(name.clone(), value);
    }
    for (name, value) in given {
        out.entry(name.clone()).or_insert_with(|| value.clone());
    }
    // Variables referring to each other twice per level double at every
    // level: refuse the run instead of rendering gigabytes.
    let mut ctx = super::Context::new();
    for (k, v) in &out {
        ctx.set_var(k.clone(), v.clone());
    }
    for (name, value) in &out {
        let bytes = super::render::rendered_len(value, &ctx);
        if bytes > super::render::MAX_RENDERED {
            errors.push(VariableError {
                name: name.clone(),
                problem: VariableProblem::TooLarge { bytes },
            });
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Variable;

    fn declared() -> Variables {
        let mut v = Variables::new();
        v.insert(
            "ip".into(),
            Variable {
                required: Some(true),
                ..Variable::default()
            },
        );
        v.insert(
            "mode".into(),
            Variable {
                default: Some("fast".into()),
                enums: Some(vec!["fast".into(), "safe".into()]),
                ..Variable::default()
            },
        );
        v.insert(
            "port".into(),
            Variable {
                regex: Some("^[0-9]+$".into()),
                ..Variable::default()
            },
        );
        v
    }

    fn given(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_fill_and_extras_pass_through() {
        let out =
            resolve_variables(&declared(), &given(&[("ip", "1.2.3.4"), ("extra", "x")])).unwrap();
        assert_eq!(out["mode"], "fast");
        assert_eq!(out["port"], "");
        assert_eq!(out["extra"], "x");
    }

    #[test]
    fn every_problem_is_reported_by_name() {
        let errs = resolve_variables(&declared(), &given(&[("mode", "yolo"), ("port", "8o")]))
            .unwrap_err();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(text[0].contains("`ip` is required"), "{text:?}");
        assert!(
            text[1].contains("`mode` = `yolo` is not one of: fast, safe"),
            "{text:?}"
        );
        assert!(text[2].contains("`port` = `8o` does not match"), "{text:?}");
    }

    #[test]
    fn an_empty_given_value_falls_back_to_the_default() {
        let out = resolve_variables(&declared(), &given(&[("ip", "h"), ("mode", "")])).unwrap();
        assert_eq!(out["mode"], "fast");
    }

    #[test]
    fn a_bad_declared_regex_is_an_error_not_a_pass() {
        let mut d = Variables::new();
        d.insert(
            "x".into(),
            Variable {
                regex: Some("(".into()),
                ..Variable::default()
            },
        );
        let errs = resolve_variables(&d, &given(&[("x", "v")])).unwrap_err();
        assert!(errs[0].to_string().contains("invalid regex"), "{}", errs[0]);
    }
}
