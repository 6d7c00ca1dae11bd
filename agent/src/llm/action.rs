//! JSON-schema action mode: the model must answer with one JSON object,
//! `{"action": TOOL, ...that tool's arguments}` or
//! `{"action": "final_answer", "answer": "..."}`, enforced by the server
//! through `response_format: json_schema` (a grammar on llama.cpp). The
//! robust choice for small local models.

use ops_tools::ToolSpec;
use serde_json::{Map, Value, json};

/// The name of the action that ends a turn.
pub const FINAL_ANSWER: &str = "final_answer";

/// The response schema for `specs`: a `oneOf` with one branch per tool
/// (its arguments beside `action`) and one for the final answer. A tool
/// with an argument named `action` would be ambiguous and is refused.
pub fn action_schema(specs: &[ToolSpec]) -> Result<Value, String> {
    let mut branches = Vec::new();
    for s in specs {
        let params = s.parameters.as_object().cloned().unwrap_or_default();
        let mut props: Map<String, Value> = params
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if props.contains_key("action") {
            return Err(format!(
                "tool `{}` has an argument named `action`, which action mode reserves",
                s.name
            ));
        }
        props.insert(
            "action".into(),
            json!({"type": "string", "const": s.name, "description": s.description}),
        );
        let mut required = vec![Value::String("action".into())];
        if let Some(Value::Array(r)) = params.get("required") {
            required.extend(r.iter().cloned());
        }
        branches.push(json!({
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": false,
        }));
    }
    branches.push(json!({
        "type": "object",
        "properties": {
            "action": {"type": "string", "const": FINAL_ANSWER, "description": "Answer the user; ends the turn."},
            "answer": {"type": "string", "description": "The answer, citing what was checked."},
        },
        "required": ["action", "answer"],
        "additionalProperties": false,
    }));
    Ok(json!({"type": "object", "oneOf": branches}))
}

/// The actions in words, for the system prompt: in this mode the request
/// has no `tools`, so without it the model would know the actions only as
/// a grammar (a small model then never picks `final_answer`). One line per
/// tool: name, arguments (`*` required) and what it does.
pub fn action_prompt(specs: &[ToolSpec]) -> String {
    let mut out = String::from(
        "\n\nReply with exactly one JSON object each time:\n\
         - to use a tool: {\"action\": \"TOOL\", ...its arguments}\n\
         - to answer the user (ends your turn): {\"action\": \"final_answer\", \"answer\": \"...\"}\n\
         Answer with final_answer as soon as you can; do not call a tool the question does not need, \
         and never repeat a call that failed the same way. Use only host names that host_list returned.\n\
         Tools:\n",
    );
    for s in specs {
        let required: Vec<&str> = s
            .parameters
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let args: Vec<String> = s
            .parameters
            .get("properties")
            .and_then(Value::as_object)
            .map(|props| {
                props
                    .iter()
                    .map(|(k, v)| {
                        let ty = v.get("type").and_then(Value::as_str).unwrap_or("any");
                        let star = if required.contains(&k.as_str()) {
                            "*"
                        } else {
                            ""
                        };
                        format!("{k}{star}: {ty}")
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push_str(&format!(
            "- {}({}): {}\n",
            s.name,
            args.join(", "),
            s.description
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_branch_per_tool_and_a_final_answer() {
        let reg = ops_tools::builtin::registry().unwrap();
        let specs = reg.specs();
        let schema = action_schema(&specs).unwrap();
        let branches = schema["oneOf"].as_array().unwrap();
        assert_eq!(branches.len(), specs.len() + 1);
        let shell = branches
            .iter()
            .find(|b| b["properties"]["action"]["const"] == "host_run_shell")
            .unwrap();
        assert_eq!(shell["required"], json!(["action", "hosts", "command"]));
        assert_eq!(shell["additionalProperties"], false);
        let last = branches.last().unwrap();
        assert_eq!(last["properties"]["action"]["const"], FINAL_ANSWER);
        let clash = ToolSpec {
            name: "x".into(),
            description: String::new(),
            parameters: json!({"type": "object", "properties": {"action": {"type": "string"}}}),
        };
        assert!(action_schema(&[clash]).unwrap_err().contains("reserves"));
    }

    #[test]
    fn the_prompt_names_every_action() {
        let reg = ops_tools::builtin::registry().unwrap();
        let specs = reg.specs();
        let p = action_prompt(&specs);
        for s in &specs {
            assert!(p.contains(&format!("- {}(", s.name)), "{}", s.name);
        }
        assert!(p.contains("final_answer"));
        assert!(
            p.contains("host_run_shell(") && p.contains("command*: string"),
            "{p}"
        );
    }
}
