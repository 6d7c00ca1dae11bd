//! `ops-agent`: how the copilot decides.
//!
//! * [`policy`] — the pure approval policy: effect x mode x rules ->
//!   `Allow | Ask | Forbid`, with a rules file whose examples are checked at
//!   load.
//! * [`redact`] — secrets removed from text before it reaches a model or a
//!   log.
//!
//! The LLM client, the session loop, approvals and the audit log arrive
//! with the copilot issue; see `ARCHITECTURE.md`.

pub mod policy;
pub mod redact;
