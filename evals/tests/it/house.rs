//! The house holds its shape: every workspace crate is in ARCHITECTURE.md's
//! crate table with its folder, every dependency between workspace crates
//! is one the table allows (so nothing imports upward or in a circle), the
//! test-support crate is only ever a dev-dependency, and the pure crates
//! (`ops-model`) have no I/O dependency. A new crate or a new arrow fails
//! here until the table (and so the design) says it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// External crates a pure crate may use: data, text and hashing only.
const PURE_ALLOWED: &[&str] = &[
    "chrono",
    "regex",
    "schemars",
    "serde",
    "serde_json",
    "serde_yaml",
    "sha2",
    "thiserror",
];

/// Crates that must stay pure.
const PURE: &[&str] = &["ops-model", "ops-protocol"];

/// The dev-only test-support crate.
const TESTKIT: &str = "ops-testkit";

#[derive(Debug)]
struct Row {
    folder: String,
    may_use: BTreeSet<String>,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// The table between `<!-- house:begin -->` and `<!-- house:end -->`:
/// `| crate | folder | may depend on | job |`.
fn table() -> BTreeMap<String, Row> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let start = text
        .find("<!-- house:begin -->")
        .expect("house table start");
    let end = text.find("<!-- house:end -->").expect("house table end");
    let mut rows = BTreeMap::new();
    for line in text[start..end].lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 6 || !cells[1].starts_with('`') {
            continue;
        }
        let unquote = |s: &str| s.trim_matches('`').to_owned();
        let may_use = cells[3]
            .split(',')
            .map(|s| unquote(s.trim()))
            .filter(|s| !s.is_empty() && s != "-")
            .collect();
        assert!(
            !cells[4].is_empty(),
            "ARCHITECTURE.md: crate {} has no one-line job",
            cells[1]
        );
        let prev = rows.insert(
            unquote(cells[1]),
            Row {
                folder: unquote(cells[2]).trim_end_matches('/').to_owned(),
                may_use,
            },
        );
        assert!(prev.is_none(), "ARCHITECTURE.md lists {} twice", cells[1]);
    }
    rows
}

fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn crates_and_their_arrows_match_the_architecture() {
    let rows = table();
    let meta = metadata();
    let root = root();
    let packages = meta["packages"].as_array().unwrap();
    let members: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    let listed: BTreeSet<String> = rows.keys().cloned().collect();
    assert_eq!(
        members, listed,
        "the workspace's crates and ARCHITECTURE.md's house table differ"
    );
    let mut problems = Vec::new();
    for p in packages {
        let name = p["name"].as_str().unwrap();
        let row = &rows[name];
        let dir = Path::new(p["manifest_path"].as_str().unwrap())
            .parent()
            .unwrap()
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if dir != row.folder {
            problems.push(format!(
                "{name} lives in {dir}/, the table says {}/",
                row.folder
            ));
        }
        for d in p["dependencies"].as_array().unwrap() {
            let dep = d["name"].as_str().unwrap();
            let dev = d["kind"].as_str() == Some("dev");
            if members.contains(dep) {
                if dep == TESTKIT && !dev {
                    problems.push(format!(
                        "{name} depends on {TESTKIT} outside dev-dependencies"
                    ));
                }
                if !dev && !row.may_use.contains(dep) {
                    problems.push(format!(
                        "{name} -> {dep} is not an arrow ARCHITECTURE.md allows"
                    ));
                }
            } else if PURE.contains(&name) && !dev && !PURE_ALLOWED.contains(&dep) {
                problems.push(format!(
                    "{name} must stay pure, but depends on `{dep}` (allowed: {PURE_ALLOWED:?})"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_allowed_arrows_have_no_circle() {
    let rows = table();
    // Depth-first search for a back edge.
    fn visit<'a>(
        n: &'a str,
        rows: &'a BTreeMap<String, Row>,
        state: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<String> {
        match state.get(n) {
            Some(1) => return Some(format!("{} -> {n}", path.join(" -> "))),
            Some(2) => return None,
            _ => {}
        }
        state.insert(n, 1);
        path.push(n);
        if let Some(r) = rows.get(n) {
            for d in &r.may_use {
                if let Some(c) = visit(d, rows, state, path) {
                    return Some(c);
                }
            }
        }
        path.pop();
        state.insert(n, 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in rows.keys() {
        if let Some(c) = visit(n, &rows, &mut state, &mut Vec::new()) {
            panic!("ARCHITECTURE.md's arrows go in a circle: {c}");
        }
    }
    for (n, r) in &rows {
        for d in &r.may_use {
            assert!(
                rows.contains_key(d),
                "ARCHITECTURE.md: {n} may depend on {d}, which is not a crate"
            );
        }
    }
}
