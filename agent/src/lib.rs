//! `ops-agent`: how the copilot decides.
//!
//! * [`policy`] — the pure approval policy: effect x mode x rules ->
//!   `Allow | Ask | Forbid`, with a rules file whose examples are checked at
//!   load.
//! * [`redact`] — secrets removed from text before it reaches a model or a
//!   log.
//! * [`approvals`] — requests bound to a hash of tool + arguments +
//!   targets; approve once, for the session, deny, expire.
//! * [`llm`] — tool-call modes: native, lenient (calls written as text),
//!   JSON-schema action mode.
//! * [`session`] — the agent loop: [`session::Op`] in, [`session::Event`]
//!   out, every tool call through the policy and, where it asks, an
//!   approval bound to the call.
//! * [`audit`] — typed audit events, redacted, appended to the store's
//!   hash-chained log.
//!
//! The HTTP client for the model (async-openai) and `opscli copilot` arrive
//! with the copilot issue; see `ARCHITECTURE.md`.

pub mod approvals;
pub mod audit;
pub mod gate;
pub mod headless;
pub mod hub;
pub mod knowledge;
pub mod llm;
pub mod policy;
pub use ops_model::redact;
pub mod session;
