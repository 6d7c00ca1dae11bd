//! Parsers that cannot be crashed: each input here once panicked, blew
//! the stack, allocated gigabytes or took over 30 s (issue "the gate must
//! hold"). Each is now a clear error naming what and where; property
//! tests hold the parsers to "never panics" on arbitrary input.

use std::collections::BTreeMap;
use std::path::Path;

use ops_model::manifest::parse_text;
use ops_model::parse_documents;
use ops_model::template::{Context, VariableProblem, parse_expr, render, resolve_variables};
use proptest::prelude::*;

fn task(extra_step_field: &str) -> String {
    format!(
        "apiVersion: crd.chenshaowen.com/v1\nkind: Task\nmetadata: {{name: t}}\nspec:\n  steps:\n    - name: s\n      content: echo hi\n{extra_step_field}"
    )
}

#[test]
fn regression_huge_timeouts_are_refused_with_the_field() {
    for (yaml, field) in [
        (task("      timeoutSeconds: 18446744073709551615\n"), "timeoutSeconds"),
        (task("      timeoutSeconds: 99999999999\n"), "timeoutSeconds"),
        (
            "apiVersion: crd.chenshaowen.com/v1\nkind: Task\nmetadata: {name: t}\nspec:\n  timeoutSeconds: 9000000000000\n  steps: [{name: s, content: x}]\n".to_owned(),
            "timeoutSeconds",
        ),
        (
            "apiVersion: crd.chenshaowen.com/v1\nkind: Host\nmetadata: {name: h}\nspec:\n  address: 127.0.0.1\n  timeoutSeconds: -5\n".to_owned(),
            "timeoutSeconds",
        ),
    ] {
        let errs = parse_documents(&yaml).unwrap_err();
        let e = errs[0].to_string();
        assert!(e.contains("seconds"), "{field}: {e}");
        assert!(errs[0].line.is_some(), "located: {e}");
    }
    parse_documents(&task("      timeoutSeconds: 3600\n")).unwrap();
}

#[test]
fn regression_deep_yaml_is_refused_at_once() {
    let flow = format!(
        "apiVersion: ops.dev/v1\nkind: Host\nmetadata: {{name: h}}\nspec:\n  address: {}\n",
        "[".repeat(100_000)
    );
    let e = parse_documents(&flow).unwrap_err()[0].to_string();
    assert!(e.contains("nested deeper than 64"), "{e}");
    let mut block =
        String::from("apiVersion: ops.dev/v1\nkind: Host\nmetadata: {name: h}\nspec:\n");
    for depth in 1..200 {
        block.push_str(&format!("{}k{depth}:\n", "  ".repeat(depth)));
    }
    let e = parse_documents(&block).unwrap_err()[0].to_string();
    assert!(e.contains("nested deeper"), "{e}");
    let dashes = format!(
        "apiVersion: ops.dev/v1\nkind: Host\nmetadata: {{name: h}}\nspec:\n  x: {}\n",
        "- ".repeat(10_000)
    );
    assert!(parse_documents(&dashes).is_err());
    // Big but flat is fine.
    let labels: String = (0..2000).map(|i| format!("    l{i}: v\n")).collect();
    let flat = format!(
        "apiVersion: ops.dev/v1\nkind: Host\nmetadata:\n  name: h\n  labels:\n{labels}spec: {{address: 127.0.0.1}}\n"
    );
    parse_documents(&flat).unwrap();
}

#[test]
fn regression_deep_conditions_are_an_error_not_a_stack_overflow() {
    let parens = format!("{}a == b{}", "(".repeat(10_000), ")".repeat(10_000));
    let e = parse_expr(&parens).unwrap_err().to_string();
    assert!(
        e.contains("longer than") || e.contains("nested deeper"),
        "{e}"
    );
    let parens = format!("{}a == b{}", "(".repeat(5_000), ")".repeat(5_000));
    let e = parse_expr(&parens).unwrap_err().to_string();
    assert!(e.contains("nested deeper than 64"), "{e}");
    let nots = format!("{}true", "!".repeat(200_000));
    let e = parse_expr(&nots).unwrap_err().to_string();
    assert!(
        e.contains("longer than") || e.contains("nested deeper"),
        "{e}"
    );
    let nots = format!("{}true", "!".repeat(10_000));
    assert!(
        parse_expr(&nots)
            .unwrap_err()
            .to_string()
            .contains("nested deeper")
    );
    let words = format!("{}true", "not ".repeat(5_000));
    assert!(parse_expr(&words).is_err());
    assert!(parse_expr("!(a == b) && ((c != d))").is_ok());
}

#[test]
fn regression_doubling_variables_are_refused_before_a_run() {
    // Each variable refers to the next four times: 4^16 copies.
    let mut given = BTreeMap::new();
    for i in 0..20 {
        given.insert(
            format!("v{i}"),
            format!("${{v{n}}}${{v{n}}}${{v{n}}}${{v{n}}}", n = i + 1),
        );
    }
    given.insert("v20".into(), "x".repeat(100));
    let errs = resolve_variables(&Default::default(), &given).unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.name == "v0" && matches!(e.problem, VariableProblem::TooLarge { .. })),
        "{errs:?}"
    );
    assert!(errs[0].to_string().contains("bytes"), "{}", errs[0]);
    // Rendering anyway stays bounded.
    let mut ctx = Context::new();
    for (k, v) in &given {
        ctx.set_var(k.clone(), v.clone());
    }
    let out = render("${v0}", &ctx);
    assert!(out.len() <= 2 * 1024 * 1024, "{}", out.len());
}

#[test]
fn regression_broken_eventhooks_are_refused_at_apply() {
    let hook = |spec: &str| {
        format!(
            "apiVersion: crd.chenshaowen.com/v1\nkind: EventHooks\nmetadata: {{name: h}}\nspec:\n{spec}"
        )
    };
    for (spec, want) in [
        (
            "  type: webhook\n  subject: ops.>\n  url: http://127.0.0.1:9/\n  keywords: {matchType: REGEX, include: ['(unclosed']}\n",
            "keywords",
        ),
        (
            "  type: webhook\n  subject: 'ops..x'\n  url: http://127.0.0.1:9/\n",
            "subject",
        ),
        (
            "  type: webhook\n  subject: ops.>\n  url: ftp://x/\n",
            "http://",
        ),
        (
            "  type: copilot\n  subject: ops.>\n  options: {approval-ttl: '9000000000000'}\n",
            "approval-ttl",
        ),
        (
            "  type: webhook\n  subject: ops.>\n  url: http://127.0.0.1:9/\n  options: {batch: lots}\n",
            "batch",
        ),
        (
            "  type: copilot\n  subject: ops.>\n  options: {mode: yolo}\n",
            "mode",
        ),
    ] {
        let e = parse_text(Path::new("hooks.yaml"), &hook(spec))
            .unwrap_err()
            .to_string();
        assert!(e.contains(want) && e.contains("hooks.yaml"), "{want}: {e}");
    }
    parse_text(
        Path::new("hooks.yaml"),
        &hook("  type: webhook\n  subject: ops.>\n  url: http://127.0.0.1:9/\n"),
    )
    .unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn manifests_never_panic(s in "(apiVersion: ops.dev/v1\nkind: Host\n)?[ -~\n\\[\\]{}:'\"#-]{0,400}") {
        let _ = parse_documents(&s);
    }

    #[test]
    fn deep_manifests_never_panic(open in 0usize..300, close in 0usize..300, c in "[\\[{]") {
        let s = format!("kind: Host\nspec: {}{}\n", c.repeat(open), "]".repeat(close));
        let _ = parse_documents(&s);
    }

    #[test]
    fn expressions_never_panic(s in "[a-z0-9 ()!=<>&|,\"']{0,400}", depth in 0usize..200) {
        let _ = parse_expr(&format!("{}{s}", "(".repeat(depth)));
    }

    #[test]
    fn shell_lines_never_panic(s in "[ -~\n\t]{0,300}") {
        let _ = ops_model::shell::classify(&s);
        let _ = ops_model::shell::commands(&s);
    }

    #[test]
    fn shell_nesting_never_panics(depth in 0usize..2000) {
        let line = format!("{}echo{}", "$(".repeat(depth), ")".repeat(depth));
        let _ = ops_model::shell::classify(&line);
        let line = format!("{}ls", "sudo nice sh -c ".repeat(depth.min(300)));
        let _ = ops_model::shell::classify(&line);
    }

    #[test]
    fn renders_stay_bounded(n in 1usize..8, width in 1usize..6) {
        let mut ctx = Context::new();
        for i in 0..n {
            ctx.set_var(format!("v{i}"), format!("${{v{}}}", i + 1).repeat(width));
        }
        ctx.set_var(format!("v{n}"), "y".repeat(1000));
        let len = render("${v0}", &ctx).len();
        prop_assert!(len <= 2 * 1024 * 1024, "rendered {} bytes", len);
    }
}
