//! The template and expression language of Tasks and Pipelines.
//!
//! * [`render`] — `${name}` substitution. Unlike the anchor, an unknown
//!   `${FOO}` is left exactly as written so shell variables survive, and
//!   `$${x}` writes a literal `${x}`.
//! * [`eval_condition`] — the `when` / `allowfailure` expression language.
//! * [`resolve_variables`] — declared variables plus given values, checked
//!   (`required`, `enums`, `regex`) before anything runs.

mod expr;
mod render;
mod vars;

pub use expr::{Expr, ExprError, eval_condition, parse_expr};
pub use render::{Builtins, Context, render};
pub use vars::{VariableError, VariableProblem, resolve_variables};
