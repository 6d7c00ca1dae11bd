//! The template and expression language of Tasks and Pipelines.
//!
//! * [`render`] — `${name}` substitution. Unlike the anchor, an unknown
//!   `${FOO}` is left exactly as written so shell variables survive, and
//!   `$${x}` writes a literal `${x}`.
//! * [`eval_condition`] — the `when` / `allowfailure` expression language.
//! * [`resolve_variables`] — declared variables plus given values, checked
//!   (`required`, `enums`, `regex`) before anything runs.
//!
//! ```
//! use ops_model::template::{Context, eval_condition, render};
//!
//! let mut ctx = Context::new();
//! ctx.set_var("namespace", "all").set_var("pod", "web-1");
//! assert_eq!(render("kubectl delete pod ${pod} # ${RED}", &ctx), "kubectl delete pod web-1 # ${RED}");
//! assert_eq!(eval_condition(&render("${namespace} == \"all\"", &ctx)), Ok(true));
//! assert!(eval_condition("10 >= ").is_err());
//! ```

mod expr;
mod render;
mod vars;

pub use expr::{Expr, ExprError, eval_condition, parse_expr};
pub use render::{Builtins, Context, render};
pub use vars::{VariableError, VariableProblem, resolve_variables};
