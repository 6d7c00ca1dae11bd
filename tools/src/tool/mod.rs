//! The model-facing tools: the [`Effect`] every call declares, the shell
//! classifier behind `host_run_shell`'s effect, the typed [`registry`]
//! (trait, erased twin, sanitised schemas), and the [`builtin`] tools.

pub mod builtin;
mod effect;
pub mod registry;
pub mod schema;
pub mod shell;
pub mod targets;

pub use effect::Effect;
pub use registry::{
    CallFacts, DynTool, Prepared, Registry, Tool, ToolContext, ToolError, ToolSpec,
};
pub use targets::{TargetRef, plan, resolve_targets};

/// `s` cut to about `max` bytes, keeping its head and tail with a note of
/// how much was cut in between (never splitting a character). What a model
/// or a person is shown of long output.
pub fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let half = max / 2;
    let mut a = half;
    while !s.is_char_boundary(a) {
        a -= 1;
    }
    let mut b = s.len() - half;
    while !s.is_char_boundary(b) {
        b += 1;
    }
    format!("{}\n[... {} bytes cut ...]\n{}", &s[..a], b - a, &s[b..])
}

#[cfg(test)]
mod tests {
    use super::clip;

    #[test]
    fn clip_keeps_head_and_tail() {
        assert_eq!(clip("short", 10), "short");
        let c = clip(&"é".repeat(100), 20);
        assert!(c.starts_with("éééé") && c.ends_with("éééé"), "{c}");
        assert!(c.contains("bytes cut"), "{c}");
    }
}
