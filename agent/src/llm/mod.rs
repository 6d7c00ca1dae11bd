//! Talking to the model. Today: how tool calls are asked for and read
//! back. [`ToolCallMode`] picks native `tool_calls`, native with lenient
//! reading of calls written as text ([`parse::calls_in_text`]), or
//! JSON-schema action mode ([`action::action_schema`]). *(planned)* the
//! async-openai client with streaming, retries and timeouts.

pub mod action;
pub mod parse;

/// How the model is asked to call tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ToolCallMode {
    /// The API's `tools` / `tool_calls`, taken as given.
    Native,
    /// `tool_calls`, plus calls the model wrote into its text.
    #[default]
    Lenient,
    /// `response_format: json_schema` with one action per reply.
    JsonAction,
}

impl std::str::FromStr for ToolCallMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "native" => Ok(ToolCallMode::Native),
            "lenient" | "native-lenient" => Ok(ToolCallMode::Lenient),
            "json-action" | "json" | "action" => Ok(ToolCallMode::JsonAction),
            other => Err(format!(
                "unknown tool-call mode `{other}` (native, lenient or json-action)"
            )),
        }
    }
}
