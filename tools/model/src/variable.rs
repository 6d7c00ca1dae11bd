//! Task and Pipeline variables: a declared name with default, value,
//! validation (`required`, `enums`, `regex`) and help text for people and
//! for the model.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::serde_util::{opt_bool, opt_text};

/// Declared variables by name.
pub type Variables = BTreeMap<String, Variable>;

/// One declared variable.
///
/// In YAML it is a map (`ip: {required: true, display: ip}`); a bare scalar
/// (`ip: 10.0.0.1`) is read as `{value: 10.0.0.1}`.
#[derive(Serialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    /// Used when no value is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// The value; wins over `default` when non-empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Short label shown in prompts and forms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// Longer description (shown to the model as the argument's doc).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desc: Option<String>,
    /// A regular expression the value must match (whole-string search, as
    /// in the anchor: anchor it with `^...$` to match exactly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// A run without a value (or default) for this variable is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    /// The closed set of allowed values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enums: Option<Vec<String>>,
    /// Example values, for help text and for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub examples: Option<Vec<String>>,
}

impl Variable {
    /// A variable holding just a value.
    pub fn with_value(value: impl Into<String>) -> Self {
        Variable {
            value: Some(value.into()),
            ..Variable::default()
        }
    }

    /// `value` when non-empty, else `default` when non-empty (the anchor's
    /// `GetValue`).
    pub fn effective(&self) -> Option<&str> {
        match (self.value.as_deref(), self.default.as_deref()) {
            (Some(v), _) if !v.is_empty() => Some(v),
            (_, Some(d)) if !d.is_empty() => Some(d),
            _ => None,
        }
    }

    /// Whether `required: true`.
    pub fn is_required(&self) -> bool {
        self.required.unwrap_or(false)
    }
}

/// The map form, deserialized field by field so errors keep their location.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VariableFields {
    #[serde(default, deserialize_with = "opt_text")]
    default: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    value: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    display: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    desc: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    regex: Option<String>,
    #[serde(default, deserialize_with = "opt_bool")]
    required: Option<bool>,
    #[serde(default, alias = "enum")]
    enums: Option<Vec<String>>,
    #[serde(default)]
    examples: Option<Vec<String>>,
}

impl From<VariableFields> for Variable {
    fn from(f: VariableFields) -> Self {
        Variable {
            default: f.default,
            value: f.value,
            display: f.display,
            desc: f.desc,
            regex: f.regex,
            required: f.required,
            enums: f.enums,
            examples: f.examples,
        }
    }
}

struct VariableVisitor;

impl<'de> Visitor<'de> for VariableVisitor {
    type Value = Variable;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a variable: a map with default/value/display/desc/regex/required/enums/examples, or a plain value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Variable, A::Error> {
        VariableFields::deserialize(de::value::MapAccessDeserializer::new(map)).map(Variable::from)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Variable, E> {
        Ok(Variable::with_value(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Variable, E> {
        Ok(Variable::with_value(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Variable, E> {
        Ok(Variable::with_value(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Variable, E> {
        Ok(Variable::with_value(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Variable, E> {
        Ok(Variable::with_value(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Variable, E> {
        Ok(Variable::default())
    }
}

impl<'de> Deserialize<'de> for Variable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(VariableVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_and_scalar_forms() {
        let vars: Variables = serde_yaml::from_str(
            "ip: {required: true, display: ip}\nport: 22\nflag: true\nempty:\n",
        )
        .unwrap();
        assert_eq!(vars["ip"].required, Some(true));
        assert_eq!(vars["port"].effective(), Some("22"));
        assert_eq!(vars["flag"].effective(), Some("true"));
        assert_eq!(vars["empty"], Variable::default());
    }

    #[test]
    fn value_wins_over_default_only_when_non_empty() {
        let v = Variable {
            default: Some("d".into()),
            value: Some(String::new()),
            ..Variable::default()
        };
        assert_eq!(v.effective(), Some("d"));
    }

    #[test]
    fn unknown_field_in_a_variable_is_an_error_naming_it() {
        let err = serde_yaml::from_str::<Variables>("ip:\n  requird: true\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `requird`"), "{err}");
    }
}
