//! `${name}` rendering.
//!
//! Names are made of letters, digits, `_`, `-` and `.`; dotted names reach
//! step outputs (`${steps.NAME.output}`), task results
//! (`${tasks.NAME.results.KEY}`) and host labels (`${labels.KEY}`). Values
//! of variables are themselves rendered (nested values), with cycles left
//! as written; step outputs and results are inserted verbatim.

use std::collections::BTreeMap;

/// Deepest chain of variables referring to variables that is followed.
const MAX_DEPTH: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    text: String,
    /// Whether the value may itself contain `${...}` to expand.
    template: bool,
}

/// Built-in values every step sees, set by the engine per target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Builtins {
    /// `${TASK}`: the Task's name.
    pub task: String,
    /// `${TASKRUN}`: the TaskRun's name.
    pub taskrun: String,
    /// `${HOSTNAME}`: the target's name (host name, or node name).
    pub hostname: String,
    /// `${NAMESPACE}`: the run's namespace.
    pub namespace: String,
    /// `${TIME}`: when the run started.
    pub time: chrono::DateTime<chrono::Utc>,
}

impl Builtins {
    /// `${TIME}` as written into scripts: UTC `YYYYMMDDhhmmss`, safe in
    /// file names (the anchor's tasks build archive names with it).
    pub fn time_stamp(&self) -> String {
        self.time.format("%Y%m%d%H%M%S").to_string()
    }
}

/// Values visible to a template.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    values: BTreeMap<String, Entry>,
}

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a variable; its value may refer to other variables.
    pub fn set_var(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.values.insert(
            name.into(),
            Entry {
                text: value.into(),
                template: true,
            },
        );
        self
    }

    /// Sets a value inserted verbatim (outputs, results, built-ins).
    pub fn set_literal(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.values.insert(
            name.into(),
            Entry {
                text: value.into(),
                template: false,
            },
        );
        self
    }

    /// Records a finished step: `${steps.NAME.output}`, `.status`,
    /// `.exitcode`, and the previous-step shorthands `${output}`,
    /// `${status}` and `${result}` (the output's last non-empty line; the
    /// engine overrides it with a step's reported result).
    pub fn set_step(
        &mut self,
        name: &str,
        output: &str,
        status: &str,
        exit_code: Option<i32>,
    ) -> &mut Self {
        let output = output.trim_end_matches(['\n', '\r']);
        self.set_literal(format!("steps.{name}.output"), output);
        self.set_literal(format!("steps.{name}.status"), status);
        if let Some(code) = exit_code {
            self.set_literal(format!("steps.{name}.exitcode"), code.to_string());
        }
        let result = output
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        self.set_literal("result", result);
        self.set_literal("output", output);
        self.set_literal("status", status);
        self
    }

    /// Records a task result: `${tasks.TASK.results.KEY}`.
    pub fn set_task_result(&mut self, task: &str, key: &str, value: &str) -> &mut Self {
        self.set_literal(format!("tasks.{task}.results.{key}"), value)
    }

    /// Exposes host labels as `${labels.KEY}`.
    pub fn set_labels(&mut self, labels: &BTreeMap<String, String>) -> &mut Self {
        for (k, v) in labels {
            self.set_literal(format!("labels.{k}"), v.as_str());
        }
        self
    }

    /// Sets `${TASK}`, `${TASKRUN}`, `${HOSTNAME}`, `${NAMESPACE}` and
    /// `${TIME}` (verbatim values).
    pub fn set_builtins(&mut self, b: &Builtins) -> &mut Self {
        self.set_literal("TASK", b.task.as_str())
            .set_literal("TASKRUN", b.taskrun.as_str())
            .set_literal("HOSTNAME", b.hostname.as_str())
            .set_literal("NAMESPACE", b.namespace.as_str())
            .set_literal("TIME", b.time_stamp())
    }

    /// A value, unrendered.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|e| e.text.as_str())
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// The most bytes a rendering may produce. Variables that refer to each
/// other twice per level double at every level (`a=${b}${b}`, ...): past
/// this, further references are left as written instead of expanded.
pub const MAX_RENDERED: usize = 1024 * 1024;

fn render_into(text: &str, ctx: &Context, out: &mut String, stack: &mut Vec<String>) {
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        if out.len() > MAX_RENDERED {
            break;
        }
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
            continue;
        }
        let Some(after) = tail.strip_prefix("${") else {
            out.push('$');
            rest = &tail[1..];
            continue;
        };
        let name_len = after
            .find(|c: char| !is_name_char(c))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        let closed = after[name_len..].starts_with('}');
        if !closed || name.is_empty() {
            // Not a reference (`${a b}`, `${x:-y}`, unterminated): keep the
            // `${` and scan on from just after it.
            out.push_str("${");
            rest = after;
            continue;
        }
        let whole = &tail[..name_len + 3];
        rest = &after[name_len + 1..];
        match ctx.values.get(name) {
            Some(entry) if entry.template => {
                if stack.len() >= MAX_DEPTH
                    || stack.iter().any(|s| s == name)
                    || out.len() + entry.text.len() > MAX_RENDERED
                {
                    out.push_str(whole);
                } else {
                    stack.push(name.to_owned());
                    render_into(&entry.text, ctx, out, stack);
                    stack.pop();
                }
            }
            Some(entry) if out.len() + entry.text.len() <= MAX_RENDERED => {
                out.push_str(&entry.text)
            }
            Some(_) | None => out.push_str(whole),
        }
    }
    out.push_str(rest);
}

/// How many bytes rendering `text` would produce (saturating), without
/// producing them: what a check uses to refuse a variable before a run.
pub fn rendered_len(text: &str, ctx: &Context) -> usize {
    fn walk(
        text: &str,
        ctx: &Context,
        stack: &mut Vec<String>,
        memo: &mut std::collections::HashMap<String, usize>,
    ) -> usize {
        let mut n = 0usize;
        let mut rest = text;
        while let Some(pos) = rest.find("${") {
            n = n.saturating_add(pos);
            let after = &rest[pos + 2..];
            let name_len = after
                .find(|c: char| !is_name_char(c))
                .unwrap_or(after.len());
            let name = &after[..name_len];
            if name.is_empty() || !after[name_len..].starts_with('}') {
                n = n.saturating_add(2);
                rest = after;
                continue;
            }
            rest = &after[name_len + 1..];
            let whole = name_len + 3;
            n = n.saturating_add(match ctx.values.get(name) {
                Some(e) if e.template => {
                    if stack.len() >= MAX_DEPTH || stack.iter().any(|s| s == name) {
                        whole
                    } else if let Some(m) = memo.get(name) {
                        *m
                    } else {
                        stack.push(name.to_owned());
                        let m = walk(&e.text, ctx, stack, memo);
                        stack.pop();
                        memo.insert(name.to_owned(), m);
                        m
                    }
                }
                Some(e) => e.text.len(),
                None => whole,
            });
        }
        n.saturating_add(rest.len())
    }
    walk(
        text,
        ctx,
        &mut Vec::new(),
        &mut std::collections::HashMap::new(),
    )
}

/// Renders `text`: every `${name}` known to `ctx` is replaced, every other
/// `${...}` is left exactly as written, and `$${x}` becomes `${x}`.
pub fn render(text: &str, ctx: &Context) -> String {
    let mut out = String::with_capacity(text.len());
    render_into(text, ctx, &mut out, &mut Vec::new());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ctx() -> Context {
        let mut c = Context::new();
        c.set_var("ip", "10.1.2.3")
            .set_var("card-num", "8")
            .set_var("url", "http://${ip}:${port}/")
            .set_var("port", "80")
            .set_var("a", "${b}")
            .set_var("b", "${a}")
            .set_literal("HOSTNAME", "web-1")
            .set_step("check", "checking\nok\n\n", "Succeeded", Some(0))
            .set_task_result("probe", "ip", "1.1.1.1");
        c
    }

    #[test]
    fn table() {
        let c = ctx();
        for (input, want) in [
            ("echo ${ip}", "echo 10.1.2.3"),
            ("n=${card-num}", "n=8"),
            ("curl ${url}", "curl http://10.1.2.3:80/"),
            ("${HOSTNAME}", "web-1"),
            (
                "${steps.check.output}|${status}",
                "checking
ok|Succeeded",
            ),
            ("${result}", "ok"),
            ("${steps.check.exitcode}", "0"),
            ("${tasks.probe.results.ip}", "1.1.1.1"),
            ("echo ${RED}x${NC}", "echo ${RED}x${NC}"),
            ("${percent:-80}", "${percent:-80}"),
            ("$${ip}", "${ip}"),
            ("$$ ${ip}", "$$ 10.1.2.3"),
            ("${a}", "${a}"),
            ("${", "${"),
            ("${ip", "${ip"),
            ("${}", "${}"),
            ("cost: $5 ${ip}", "cost: $5 10.1.2.3"),
            ("${a b} ${ip}", "${a b} 10.1.2.3"),
            ("ünï ${ip} ✓", "ünï 10.1.2.3 ✓"),
        ] {
            assert_eq!(render(input, &c), want, "{input}");
        }
    }

    #[test]
    fn builtins() {
        use chrono::TimeZone;
        let mut c = Context::new();
        c.set_builtins(&Builtins {
            task: "collect-gpu-log".into(),
            taskrun: "collect-gpu-log-x1".into(),
            hostname: "gpu-7".into(),
            namespace: "ops-system".into(),
            time: chrono::Utc.with_ymd_and_hms(2026, 11, 22, 5, 4, 3).unwrap(),
        });
        assert_eq!(
            render(
                "/tmp/${TASK}-${HOSTNAME}-${TIME}.tar.gz ${TASKRUN} ${NAMESPACE}",
                &c
            ),
            "/tmp/collect-gpu-log-gpu-7-20261122050403.tar.gz collect-gpu-log-x1 ops-system"
        );
    }

    #[test]
    fn step_output_is_not_re_rendered() {
        let mut c = Context::new();
        c.set_var("ip", "1.2.3.4")
            .set_step("s", "literal ${ip}", "Succeeded", None);
        assert_eq!(render("${steps.s.output}", &c), "literal ${ip}");
    }

    proptest! {
        #[test]
        fn never_panics(s in any::<String>()) {
            let _ = render(&s, &ctx());
        }

        #[test]
        fn empty_context_only_unescapes(s in "[a-z$\\{\\}: -]{0,40}") {
            prop_assert_eq!(render(&s, &Context::new()), s.replace("$${", "${"));
        }

        #[test]
        fn text_without_dollar_is_unchanged(s in "[^$]{0,60}") {
            prop_assert_eq!(render(&s, &ctx()), s);
        }

        #[test]
        fn known_names_are_replaced(name in "[a-z][a-z0-9_-]{0,10}", value in "[^$]{0,20}", pre in "[^$]{0,10}") {
            let mut c = Context::new();
            c.set_var(name.clone(), value.clone());
            prop_assert_eq!(render(&format!("{pre}${{{name}}}{pre}"), &c), format!("{pre}{value}{pre}"));
        }
    }
}
