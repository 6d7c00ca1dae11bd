//! Tool calls from text. Small local models often answer a tool call in
//! the message content instead of `tool_calls`: bare JSON, inside
//! ```` ```json ```` fences, inside `<tool_call>`/`<tools>` tags, as an
//! array of calls, or (JSON-schema action mode) as
//! `{"action": TOOL, ...args}` / `{"action": "final_answer", "answer": ...}`.
//! [`calls_in_text`] finds them all; anything it cannot read as a call is
//! left as text. Only names in `known` count as calls, so prose that
//! happens to contain JSON is not run.

use serde_json::{Map, Value};

/// A tool call recovered from text.
#[derive(Debug, Clone, PartialEq)]
pub struct TextCall {
    /// Tool name.
    pub name: String,
    /// Arguments (an object).
    pub arguments: Value,
}

/// What a message's text holds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parsed {
    /// Tool calls, in order.
    pub calls: Vec<TextCall>,
    /// A final answer given in action form.
    pub final_answer: Option<String>,
    /// Text left over (prose around the calls), trimmed.
    pub text: String,
}

/// Finds every JSON object or array in `s` that parses, with its span.
fn json_spans(s: &str) -> Vec<(usize, usize, Value)> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'{' || bytes[i] == b'[' {
            let mut stream = serde_json::Deserializer::from_str(&s[i..]).into_iter::<Value>();
            if let Some(Ok(v)) = stream.next() {
                let end = i + stream.byte_offset();
                if v.is_object() || v.is_array() {
                    out.push((i, end, v));
                    i = end;
                    continue;
                }
            }
        }
        i += 1;
    }
    out
}

/// Arguments may arrive as an object or as a JSON string of one.
fn args_of(v: Option<&Value>) -> Value {
    match v {
        Some(Value::String(s)) => serde_json::from_str::<Value>(s)
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(|| Value::Object(Map::new())),
        Some(v @ Value::Object(_)) => v.clone(),
        _ => Value::Object(Map::new()),
    }
}

enum Found {
    Call(TextCall),
    Final(String),
}

fn interpret(v: &Value, known: &[&str]) -> Vec<Found> {
    match v {
        Value::Array(items) => items.iter().flat_map(|x| interpret(x, known)).collect(),
        Value::Object(m) => {
            // OpenAI shape inside text: {"type": "function", "function": {...}}
            if let Some(f) = m.get("function").filter(|f| f.is_object()) {
                return interpret(f, known);
            }
            if let Some(Value::String(action)) = m.get("action") {
                if action == "final_answer" {
                    let answer = m
                        .get("answer")
                        .map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_owned))
                        .unwrap_or_default();
                    return vec![Found::Final(answer)];
                }
                if known.contains(&action.as_str()) {
                    // Arguments are the other keys, or a nested object.
                    let args = match m.get("arguments").or(m.get("args")) {
                        Some(a) => args_of(Some(a)),
                        None => {
                            let mut rest = m.clone();
                            rest.remove("action");
                            Value::Object(rest)
                        }
                    };
                    return vec![Found::Call(TextCall {
                        name: action.clone(),
                        arguments: args,
                    })];
                }
                return Vec::new();
            }
            let name = m
                .get("name")
                .or(m.get("tool"))
                .or(m.get("tool_name"))
                .and_then(Value::as_str);
            match name {
                Some(n) if known.contains(&n) => vec![Found::Call(TextCall {
                    name: n.to_owned(),
                    arguments: args_of(
                        m.get("arguments")
                            .or(m.get("parameters"))
                            .or(m.get("args"))
                            .or(m.get("input")),
                    ),
                })],
                _ => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}

/// Tool calls (and a final answer) written in `content`, for the tools
/// named in `known`.
pub fn calls_in_text(content: &str, known: &[&str]) -> Parsed {
    let mut parsed = Parsed::default();
    let mut keep = String::new();
    let mut last = 0;
    for (start, end, v) in json_spans(content) {
        let found = interpret(&v, known);
        if found.is_empty() {
            continue;
        }
        keep.push_str(&content[last..start]);
        last = end;
        for f in found {
            match f {
                Found::Call(c) => parsed.calls.push(c),
                Found::Final(a) => parsed.final_answer = Some(a),
            }
        }
    }
    keep.push_str(&content[last..]);
    // Remove the wrappers the calls sat in.
    let mut text = keep;
    for wrapper in [
        "<tool_call>",
        "</tool_call>",
        "<tools>",
        "</tools>",
        "<function_call>",
        "</function_call>",
    ] {
        text = text.replace(wrapper, "");
    }
    if !parsed.calls.is_empty() || parsed.final_answer.is_some() {
        text = text.replace("```json", "").replace("```", "");
    }
    parsed.text = text.trim().to_owned();
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KNOWN: &[&str] = &["host_list", "host_run_shell", "host_status"];

    #[test]
    fn every_shape_small_models_use() {
        let cases = [
            r#"{"name": "host_status", "arguments": {"host": "web-1"}}"#,
            "```json\n{\"name\": \"host_status\", \"arguments\": {\"host\": \"web-1\"}}\n```",
            "<tool_call>\n{\"name\": \"host_status\", \"arguments\": {\"host\": \"web-1\"}}\n</tool_call>",
            "<tools>{\"name\": \"host_status\", \"parameters\": {\"host\": \"web-1\"}}</tools>",
            r#"{"name": "host_status", "arguments": "{\"host\": \"web-1\"}"}"#,
            r#"{"type": "function", "function": {"name": "host_status", "arguments": {"host": "web-1"}}}"#,
            r#"{"action": "host_status", "host": "web-1"}"#,
            "Let me check.\n{\"tool\": \"host_status\", \"args\": {\"host\": \"web-1\"}}",
        ];
        for c in cases {
            let p = calls_in_text(c, KNOWN);
            assert_eq!(p.calls.len(), 1, "{c}");
            assert_eq!(p.calls[0].name, "host_status", "{c}");
            assert_eq!(p.calls[0].arguments, json!({"host": "web-1"}), "{c}");
        }
        let p = calls_in_text(
            "Let me check.\n<tool_call>{\"name\": \"host_list\", \"arguments\": {}}</tool_call>",
            KNOWN,
        );
        assert_eq!(p.text, "Let me check.");
    }

    #[test]
    fn several_calls_final_answers_and_prose() {
        let p = calls_in_text(
            r#"[{"name": "host_list", "arguments": {}}, {"name": "host_status", "arguments": {"host": "a"}}]"#,
            KNOWN,
        );
        assert_eq!(p.calls.len(), 2);
        let p = calls_in_text(
            r#"{"action": "final_answer", "answer": "disk / is 96% full"}"#,
            KNOWN,
        );
        assert_eq!(p.final_answer.as_deref(), Some("disk / is 96% full"));
        assert!(p.calls.is_empty());
        // JSON that is not a call of a known tool stays text.
        let prose = r#"The config is {"listen": 80, "name": "nginx"} and it looks fine."#;
        let p = calls_in_text(prose, KNOWN);
        assert!(p.calls.is_empty());
        assert_eq!(p.text, prose);
        let p = calls_in_text(r#"{"name": "rm_everything", "arguments": {}}"#, KNOWN);
        assert!(p.calls.is_empty(), "unknown tools are not calls");
        let p = calls_in_text(r#"{"name": "host_status", "arguments": {"host": "#, KNOWN);
        assert!(p.calls.is_empty(), "truncated JSON is not a call");
    }
}
