//! Talking to the model. Today: how tool calls are asked for and read
//! back. [`ToolCallMode`] picks native `tool_calls`, native with lenient
//! reading of calls written as text ([`parse::calls_in_text`]), or
//! JSON-schema action mode ([`action::action_schema`]). [`ChatModel`] is
//! the one interface; [`openai::OpenAiModel`] implements it for any
//! OpenAI-compatible endpoint (streaming, timeouts, retries, clear errors,
//! mode detection). [`stream::AnswerStream`] turns streamed text into what
//! a person should see while it arrives.

pub mod action;
pub mod local;
pub mod openai;
pub mod parse;
pub mod stream;

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

impl ToolCallMode {
    /// The name used in config.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolCallMode::Native => "native",
            ToolCallMode::Lenient => "lenient",
            ToolCallMode::JsonAction => "json-action",
        }
    }

    /// A configured mode: `auto` is `None` (detect it).
    pub fn parse_setting(s: &str) -> Result<Option<Self>, String> {
        match s {
            "auto" | "" => Ok(None),
            other => other.parse().map(Some).map_err(|_| {
                format!("unknown tool-call mode `{other}` (auto, native, lenient or json-action)")
            }),
        }
    }
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

/// Who said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions.
    System,
    /// The person (or the alert).
    User,
    /// The model.
    Assistant,
    /// A tool's result.
    Tool,
}

/// A tool call as the model made it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ToolCall {
    /// Call id (made up when the model gave none).
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Arguments as sent (JSON text).
    pub arguments: String,
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    /// Who.
    pub role: Role,
    /// Text.
    pub content: String,
    /// The assistant's tool calls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a tool result: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A message with text only.
    pub fn text(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

pub use ops_protocol::Usage;

/// The model's reply.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reply {
    /// Text.
    pub content: String,
    /// Native tool calls.
    pub tool_calls: Vec<ToolCall>,
    /// Tokens.
    pub usage: Usage,
    /// The mode the endpoint was really asked in, when the model changed
    /// it (an endpoint that rejects `tools` is asked in JSON-action mode);
    /// `None`: as requested.
    pub mode: Option<ToolCallMode>,
}

/// Why the model could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// Unreachable, timed out, refused.
    #[error("model endpoint {endpoint}: {detail}")]
    Transport {
        /// Where.
        endpoint: String,
        /// What happened.
        detail: String,
    },
    /// The endpoint answered with an error (bad key, context too long).
    #[error("model endpoint {endpoint} refused the request: {detail}")]
    Api {
        /// Where.
        endpoint: String,
        /// Its message.
        detail: String,
    },
}

/// Something that answers a conversation: an OpenAI-compatible endpoint,
/// or a scripted one in tests.
#[async_trait::async_trait]
pub trait ChatModel: Send + Sync {
    /// One completion for `messages` with `tools` offered in `mode`.
    async fn chat(
        &self,
        messages: &[Message],
        tools: &[ops_tools::ToolSpec],
        mode: ToolCallMode,
    ) -> Result<Reply, LlmError>;

    /// [`chat`](Self::chat), sending the reply's text to `deltas` as it is
    /// generated. The default sends it in one piece at the end; the
    /// channel closes when the reply is complete.
    async fn chat_streamed(
        &self,
        messages: &[Message],
        tools: &[ops_tools::ToolSpec],
        mode: ToolCallMode,
        deltas: Deltas,
    ) -> Result<Reply, LlmError> {
        let r = self.chat(messages, tools, mode).await?;
        if !r.content.is_empty() {
            let _ = deltas.send(r.content.clone());
        }
        Ok(r)
    }
}

/// Where streamed text goes, piece by piece.
pub type Deltas = tokio::sync::mpsc::UnboundedSender<String>;
