//! `ops-tools`: what `ops` can do to the world.
//!
//! * [`engine`] — TaskRun and PipelineRun execution over executors.
//! * [`exec`] — the `Executor` trait: run commands and move files on a
//!   target (local, SSH).
//! * [`model`] — the vocabulary: Host, Cluster, Task, Pipeline, TaskRun,
//!   PipelineRun and EventHooks as typed Rust values. Pure: no I/O, no async.
//! * [`manifest`] — reading those objects from YAML files and directories,
//!   with file/line/column errors.
//! * [`template`] — `${var}` rendering and the `when` / `allowfailure`
//!   expression language.
//! * [`store`] — the `Store` trait and its embedded SQLite implementation.
//! * [`tool`] — the [`tool::Effect`] of a call and the shell command
//!   classifier behind it.
//! * [`secret`] — resolving `${env:NAME}` / `${file:PATH}` credential
//!   references at the moment of use.
//!
//! Executors, the run engine, events and the model-facing tools arrive with
//! their own issues and build on these modules; see `ARCHITECTURE.md`.

pub mod engine;
pub mod events;
pub mod exec;
pub mod id;
pub mod manifest;
pub mod model;
pub mod redact;
pub mod secret;
pub mod stamp;
pub mod store;
pub mod template;
pub mod tool;
