//! Results a step reports: `OPS_RESULT:key=value` lines anywhere in its
//! standard output, and the anchor's implicit form, a last line
//! `key:value`. Markers win over the implicit form.

use std::collections::BTreeMap;

/// The marker prefix.
pub const RESULT_MARKER: &str = "OPS_RESULT:";

fn is_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 64
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

/// Results in `stdout`.
pub fn parse_results(stdout: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(last) = stdout.lines().rev().find(|l| !l.trim().is_empty()) {
        if !last.contains(RESULT_MARKER) {
            if let Some((k, v)) = last.split_once(':') {
                let k = k.trim();
                if is_key(k) && !v.starts_with("//") {
                    out.insert(k.to_owned(), v.trim().to_owned());
                }
            }
        }
    }
    for line in stdout.lines() {
        if let Some(rest) = line.trim_start().strip_prefix(RESULT_MARKER) {
            if let Some((k, v)) = rest.split_once('=') {
                let k = k.trim();
                if is_key(k) {
                    out.insert(k.to_owned(), v.trim().to_owned());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_and_implicit_last_line() {
        let r =
            parse_results("working\nOPS_RESULT: ip=10.1.2.3\nOPS_RESULT:count = 4\nstatus: ok\n\n");
        assert_eq!(r["ip"], "10.1.2.3");
        assert_eq!(r["count"], "4");
        assert_eq!(r["status"], "ok");
        let r = parse_results("see http://example.com/x\n");
        assert!(r.is_empty(), "{r:?}");
        let r = parse_results("key:implicit\nOPS_RESULT:key=marker\n");
        assert_eq!(r["key"], "marker");
        assert!(parse_results("a b: c\n").is_empty());
    }
}
