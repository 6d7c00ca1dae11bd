//! JSON schemas for tool arguments, from the argument types (schemars),
//! sanitised once into the subset every function-calling API and
//! llama.cpp's grammar converter accept: no `$ref`/`$defs` (inlined), no
//! `$schema`, an explicit `type` on every node, `Option<T>` as an optional
//! `T` (not `["T", "null"]`), unit enums as `{"type": "string", "enum":
//! [...]}`, integer formats dropped, `additionalProperties: false` on
//! objects, and descriptions kept.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

/// The sanitised schema of `T`.
pub fn schema_for<T: JsonSchema>() -> Value {
    let mut settings = SchemaSettings::draft07();
    settings.inline_subschemas = true;
    settings.meta_schema = None;
    let root = settings
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    let defs = root
        .get("definitions")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut out = sanitize(&root, &defs, 0);
    if let Value::Object(m) = &mut out {
        m.remove("title");
        m.remove("definitions");
    }
    out
}

fn sanitize(v: &Value, defs: &Map<String, Value>, depth: usize) -> Value {
    let Value::Object(m) = v else {
        return v.clone();
    };
    if depth > 32 {
        return serde_json::json!({"type": "object"});
    }
    if let Some(r) = m.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or("");
        let mut target = defs.get(name).cloned().unwrap_or(Value::Object(Map::new()));
        if let (Value::Object(t), Some(d)) = (&mut target, m.get("description")) {
            t.insert("description".into(), d.clone());
        }
        return sanitize(&target, defs, depth + 1);
    }
    // `Option<T>`: `anyOf: [T, {type: null}]` or `type: [T, "null"]`.
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(alts)) = m.get(key) {
            let non_null: Vec<&Value> = alts
                .iter()
                .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
                .collect();
            if non_null.len() == 1 && alts.len() == 2 {
                let mut inner = sanitize(non_null[0], defs, depth + 1);
                if let (Value::Object(i), Some(d)) = (&mut inner, m.get("description")) {
                    i.insert("description".into(), d.clone());
                }
                return inner;
            }
            // A unit-variant enum that schemars wrote as `oneOf` of consts.
            let consts: Option<Vec<Value>> = alts
                .iter()
                .map(|a| {
                    a.get("const")
                        .cloned()
                        .or_else(|| a.get("enum").and_then(|e| e.get(0)).cloned())
                })
                .collect();
            if let Some(values) = consts.filter(|v| v.iter().all(Value::is_string)) {
                let mut o = Map::new();
                o.insert("type".into(), "string".into());
                o.insert("enum".into(), Value::Array(values));
                if let Some(d) = m.get("description") {
                    o.insert("description".into(), d.clone());
                }
                return Value::Object(o);
            }
        }
    }
    let mut o = Map::new();
    for (k, val) in m {
        match k.as_str() {
            "$schema" | "definitions" | "$defs" | "title" | "format" | "default" | "examples" => {}
            "type" => {
                let t = match val {
                    Value::Array(ts) => ts
                        .iter()
                        .find(|t| t.as_str() != Some("null"))
                        .cloned()
                        .unwrap_or(Value::String("string".into())),
                    other => other.clone(),
                };
                o.insert("type".into(), t);
            }
            "properties" => {
                let props: Map<String, Value> = val
                    .as_object()
                    .map(|p| {
                        p.iter()
                            .map(|(pk, pv)| (pk.clone(), sanitize(pv, defs, depth + 1)))
                            .collect()
                    })
                    .unwrap_or_default();
                o.insert("properties".into(), Value::Object(props));
            }
            "items" => {
                o.insert("items".into(), sanitize(val, defs, depth + 1));
            }
            "additionalProperties" if val.is_object() => {
                o.insert(
                    "additionalProperties".into(),
                    sanitize(val, defs, depth + 1),
                );
            }
            "anyOf" | "oneOf" | "allOf" => {
                let alts: Vec<Value> = val
                    .as_array()
                    .map(|a| a.iter().map(|x| sanitize(x, defs, depth + 1)).collect())
                    .unwrap_or_default();
                o.insert(k.clone(), Value::Array(alts));
            }
            _ => {
                o.insert(k.clone(), val.clone());
            }
        }
    }
    if !o.contains_key("type") {
        if o.contains_key("properties") {
            o.insert("type".into(), "object".into());
        } else if o.contains_key("enum") {
            o.insert("type".into(), "string".into());
        } else if o.contains_key("items") {
            o.insert("type".into(), "array".into());
        }
    }
    if o.get("type").and_then(Value::as_str) == Some("object") {
        o.entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        if !o.contains_key("additionalProperties") {
            o.insert("additionalProperties".into(), Value::Bool(false));
        }
    }
    Value::Object(o)
}
