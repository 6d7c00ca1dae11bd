//! Redaction: secrets are removed from text before it reaches the model, a
//! log, the session store, an approval or the audit record.
//!
//! It works on **values, before serialisation**: [`redact_value`] walks a
//! JSON value and redacts each string (and each value whose key is named
//! like a secret), so a secret's neighbours in a JSON string (escaped
//! newlines and quotes) can never make a pattern run past it. Text is
//! redacted in two passes:
//!
//! 1. blocks: PEM and PGP private keys (whole block), and the `data` /
//!    `stringData` of Kubernetes Secrets (YAML, JSON, and the one-line
//!    `last-applied-configuration`);
//! 2. **line by line**, never across lines: kubeconfig credentials,
//!    `Authorization:` headers, bearer tokens, JWTs, cloud and SaaS keys
//!    (AWS ids and secrets, also in credential CSVs, Google, GitHub,
//!    GitLab, Slack bot/app/webhook, OpenAI-style, Stripe, Hugging Face,
//!    SendGrid, Vault, Azure), passwords in URLs and `curl -u`, secret
//!    query parameters, base64-encoded private keys, `.netrc` and
//!    `.pgpass` lines, shadow password hashes, and the values of
//!    variables, fields and flags named like secrets (`*_TOKEN`,
//!    `db_pass`, `passphrase`, `client_secret`, `--password`, ...).
//!
//! Every match becomes `[REDACTED:<kind>]`, so the reader still sees that
//! something was there and what it was. Redaction is idempotent.

use std::sync::LazyLock;

use regex::{Captures, Regex};

struct Pattern {
    kind: &'static str,
    re: Regex,
    /// Capture groups that may hold the secret, the first that matched is
    /// replaced; `[0]` = the whole match.
    groups: &'static [usize],
}

fn pat(kind: &'static str, re: &str, groups: &'static [usize]) -> Option<Pattern> {
    // The patterns are constants checked by the tests; a bad one is
    // skipped rather than taking the process down.
    Regex::new(re).ok().map(|re| Pattern { kind, re, groups })
}

/// Words that make a name a secret's name.
const SECRET_WORDS: &str = r"token|secret|passw(?:or)?d|passphrase|pwd|api[_-]?key|apikey|access[_-]?key|private[_-]?key|secret[_-]?key|signing[_-]?key|encryption[_-]?key|master[_-]?key|auth[_-]?key|credentials?|connection[_-]?string";

static BLOCK: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    [pat(
        "private-key",
        r"(?s)-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY(?: BLOCK)?-----.*?(-----END ([A-Z0-9 ]*)PRIVATE KEY(?: BLOCK)?-----|\z)",
        &[0],
    )]
    .into_iter()
    .flatten()
    .collect()
});

static LINE: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    let name =
        format!(r"(?:[A-Za-z0-9_.-]*(?:{SECRET_WORDS})[A-Za-z0-9_.-]*|[A-Za-z0-9_.-]*_pass|pass)");
    [
        pat(
            "kubeconfig",
            r"\b(?:client-key-data|client-certificate-data|certificate-authority-data)[ \t]*:[ \t]*([A-Za-z0-9+/=]{16,})",
            &[1],
        ),
        pat(
            "private-key",
            // `-----BEGIN ... PRIVATE KEY` in base64, in any alignment.
            r"\b(?:LS0tLS1CRUdJTi|0tLS0tQkVHSU4g|tLS0tLUJFR0lOI)[A-Za-z0-9+/=]{16,}",
            &[0],
        ),
        pat(
            "authorization",
            r"(?i)\bauthorization[ \t]*[:=][ \t]*(?:bearer|basic|token|digest)?[ \t]*([^\s'\x22,;]{6,})",
            &[1],
        ),
        pat("bearer", r"(?i)\bbearer[ \t]+([A-Za-z0-9\-._~+/]{12,}=*)", &[1]),
        pat("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", &[0]),
        pat(
            "aws-credentials",
            // A credentials CSV row: `user,AKIA...,SECRET`.
            r"\b(?:AKIA|ASIA)[0-9A-Z]{16}[ \t]*,[ \t]*([A-Za-z0-9/+=]{36,44})\b",
            &[1],
        ),
        pat("aws-access-key-id", r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b", &[0]),
        pat("google-api-key", r"\bAIza[0-9A-Za-z_-]{30,}", &[0]),
        pat("github-token", r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})\b", &[0]),
        pat("gitlab-token", r"\bglpat-[A-Za-z0-9_-]{20,}\b", &[0]),
        pat("slack-token", r"\b(?:xox[abposre]|xapp)-[A-Za-z0-9-]{10,}\b", &[0]),
        pat("slack-webhook", r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/]+", &[0]),
        pat("api-key", r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}\b", &[0]),
        pat("stripe-key", r"\b(?:[rs]k|whsec)_(?:live_|test_)?[0-9A-Za-z]{16,}\b", &[0]),
        pat("huggingface-token", r"\bhf_[A-Za-z0-9]{30,}\b", &[0]),
        pat("sendgrid-key", r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}", &[0]),
        pat("vault-token", r"\bhv[sbr]\.[A-Za-z0-9_-]{20,}", &[0]),
        pat("azure-key", r"(?i)\bAccountKey=([A-Za-z0-9+/=]{20,})", &[1]),
        pat("azure-sas", r"(?i)[?&]sig=([A-Za-z0-9%+/=]{20,})", &[1]),
        pat(
            "url-password",
            r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:([^\s@/]+)@",
            &[1],
        ),
        pat(
            "url-secret",
            // Provider keys in query strings (`?api_key=`, `&token=`,
            // `X-Amz-Signature=`), as error messages print URLs.
            r"(?i)[?&](?:key|api[_-]?key|apikey|access[_-]?token|token|secret|password|client[_-]secret|x-amz-signature|x-amz-credential|x-amz-security-token|signature|auth)=([^&\s\x22'#]{3,})",
            &[1],
        ),
        pat(
            "basic-auth",
            // `curl -u user:pass`, `--user user:pass`.
            r#"(?:^|[ \t])(?:-u|--user|--proxy-user)(?:[ \t]+|=)[\x22']?[^\s:\x22']+:([^\s\x22']+)"#,
            &[1],
        ),
        pat(
            "shadow-hash",
            r"(?m)^[a-z_][a-z0-9_.-]*\$?:(\$(?:1|2[abxy]?|5|6|7|y|gy|sha1|md5)\$[^:\s]+)",
            &[1],
        ),
        pat(
            "pgpass",
            // `host:port:database:user:password`.
            r"^[ \t]*[^:\s#]+:(?:[0-9]+|\*):[^:\s]+:[^:\s]+:(\S+)[ \t]*$",
            &[1],
        ),
        pat(
            "netrc-password",
            r"(?i)(?:^|\b(?:machine|login|default)\b.*?)\b(?:password|passwd)[ \t]+(\S+)",
            &[1],
        ),
        // `DB_PASSWORD=x`, `export API_TOKEN="x y"`, `password: x`,
        // `"client_secret": "x"`, `db_pass=x`, `passphrase: x`.
        pat(
            "secret-value",
            &format!(
                r#"(?i)(?:^|[^A-Za-z0-9_.-])[\x22']?{name}[\x22']?[ \t]*(?:[:=]|=>)[ \t]*(?:\x22([^\x22]{{3,}})\x22|'([^']{{3,}})'|([^\s\x22',;}}{{]{{3,}}))"#
            ),
            &[1, 2, 3],
        ),
        // `--password x`, `--token=x`; `-p x` is too ambiguous to touch.
        pat(
            "secret-flag",
            r#"(?i)--(?:password|passwd|pass|token|secret|api-key|client-secret|access-key|secret-key|passphrase|auth-token)(?:=|[ \t]+)[\x22']?([^\s\x22']{3,})"#,
            &[1],
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
});

/// Whether a field or variable name names a secret (`password`,
/// `DB_PASS`, `client_secret`, `apiKey`, ...).
pub fn secret_name(name: &str) -> bool {
    static RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
        Regex::new(&format!(
            r"(?i)^(?:[A-Za-z0-9_.-]*(?:{SECRET_WORDS})[A-Za-z0-9_.-]*|[A-Za-z0-9_.-]*_pass|pass)$"
        ))
        .ok()
    });
    // `max_tokens`, `prompt_tokens`: counts, not credentials.
    RE.as_ref().is_some_and(|re| re.is_match(name)) && !name.to_ascii_lowercase().contains("tokens")
}

/// The redacted text and how many secrets were removed, by kind.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Redacted {
    /// The text with secrets replaced.
    pub text: String,
    /// `(kind, count)` for each kind found.
    pub found: Vec<(&'static str, usize)>,
}

fn count(found: &mut Vec<(&'static str, usize)>, kind: &'static str, n: usize) {
    if n == 0 {
        return;
    }
    match found.iter_mut().find(|(k, _)| *k == kind) {
        Some((_, c)) => *c += n,
        None => found.push((kind, n)),
    }
}

fn apply(p: &Pattern, text: &str, found: &mut Vec<(&'static str, usize)>) -> Option<String> {
    let mut n = 0;
    let replaced = p.re.replace_all(text, |c: &Captures<'_>| {
        let whole = c.get(0).map_or("", |m| m.as_str());
        let Some(secret) = p.groups.iter().find_map(|g| c.get(*g)) else {
            return whole.to_owned();
        };
        // Already redacted, or a placeholder: leave it.
        if secret.as_str().contains("[REDACTED") || is_placeholder(secret.as_str()) {
            return whole.to_owned();
        }
        n += 1;
        let m0 = c.get(0).map_or(0, |m| m.start());
        let (s, e) = (secret.start() - m0, secret.end() - m0);
        format!("{}[REDACTED:{}]{}", &whole[..s], p.kind, &whole[e..])
    });
    count(found, p.kind, n);
    (n > 0).then(|| replaced.into_owned())
}

/// Removes secrets from `text`.
pub fn redact(text: &str) -> Redacted {
    let mut found = Vec::new();
    let mut out = text.to_owned();
    for p in BLOCK.iter() {
        if let Some(r) = apply(p, &out, &mut found) {
            out = r;
        }
    }
    out = kubernetes_secrets(&out, &mut found);
    let mut lines = String::with_capacity(out.len());
    for line in out.split_inclusive('\n') {
        let (body, end) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let mut l = body.to_owned();
        for p in LINE.iter() {
            if let Some(r) = apply(p, &l, &mut found) {
                l = r;
            }
        }
        lines.push_str(&l);
        lines.push_str(end);
    }
    Redacted { text: lines, found }
}

/// The values under `data:` / `stringData:` of Kubernetes Secrets in YAML
/// or JSON text (`kubectl get secret -o yaml|json`), and in one-line JSON
/// (`last-applied-configuration`).
fn kubernetes_secrets(text: &str, found: &mut Vec<(&'static str, usize)>) -> String {
    static KIND: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(r#"(?m)^\s*(?:kind:\s*Secret\s*$|"kind":\s*"Secret")"#).ok());
    static ONE_LINE: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(r#"("(?:data|stringData)":\{)([^{}]*)(\})"#).ok());
    static PAIR: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(r#"("[^"]*":)"((?:[^"\\]|\\.)*)""#).ok());
    let (Some(kind), Some(one), Some(pair)) = (&*KIND, &*ONE_LINE, &*PAIR) else {
        return text.to_owned();
    };
    let mut n = 0;
    let mut out = String::with_capacity(text.len());
    // (indent of the `data:` line, JSON block) while inside one.
    let mut block: Option<(usize, bool)> = None;
    let secret_doc = kind.is_match(text);
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        let mut l = line.to_owned();
        if line.contains("\"kind\":\"Secret\"") || line.contains("\\\"kind\\\":\\\"Secret\\\"") {
            l = one
                .replace_all(&l, |c: &Captures<'_>| {
                    let inner = pair.replace_all(&c[2], |p: &Captures<'_>| {
                        n += 1;
                        format!("{}\"[REDACTED:kubernetes-secret]\"", &p[1])
                    });
                    format!("{}{}{}", &c[1], inner, &c[3])
                })
                .into_owned();
        }
        if secret_doc {
            match block {
                Some((at, json))
                    if !t.is_empty() && (indent > at || (json && t != "}" && t != "},")) =>
                {
                    if json && t.starts_with('}') {
                        block = None;
                    } else if let Some((k, v)) = t.split_once(':')
                        && !v.trim().is_empty()
                        && !v.contains("[REDACTED")
                    {
                        n += 1;
                        let comma = if json && t.ends_with(',') { "," } else { "" };
                        l = format!(
                            "{}{k}: {}[REDACTED:kubernetes-secret]{}{comma}{}",
                            " ".repeat(indent),
                            if json { "\"" } else { "" },
                            if json { "\"" } else { "" },
                            if line.ends_with('\n') { "\n" } else { "" }
                        );
                    }
                }
                Some(_) if t.is_empty() => {}
                Some(_) => block = None,
                None => {}
            }
            if block.is_none() {
                let yaml = t == "data:" || t == "stringData:";
                let json = t == "\"data\": {" || t == "\"stringData\": {";
                if yaml || json {
                    block = Some((indent, json));
                }
            }
        }
        out.push_str(&l);
    }
    count(found, "kubernetes-secret", n);
    out
}

/// Values that are clearly not secrets: references and placeholders.
fn is_placeholder(v: &str) -> bool {
    let v = v.trim();
    v.starts_with("${")
        || v.starts_with("$(")
        || v.starts_with('$')
            && !v.starts_with("$1$")
            && !v.starts_with("$6$")
            && !v.starts_with("$y$")
            && !v.starts_with("$5$")
            && !v.starts_with("$2")
        || v.starts_with('<')
        || v.chars().all(|c| c == '*' || c == 'x' || c == 'X')
        || matches!(
            v.to_ascii_lowercase().as_str(),
            "null" | "none" | "true" | "false" | "required" | "optional" | "changeme" | "redacted"
        )
}

/// Shorthand: the redacted text only.
pub fn redact_text(text: &str) -> String {
    redact(text).text
}

/// `value` with every string redacted, and every string or number whose
/// key names a secret replaced; a Kubernetes Secret's `data` and
/// `stringData` values are replaced too. Use it on anything before it is
/// serialised.
pub fn redact_value(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(redact_text(s)),
        Value::Array(items) => Value::Array(items.iter().map(redact_value).collect()),
        Value::Object(map) => {
            let k8s_secret = map.get("kind").and_then(Value::as_str) == Some("Secret");
            let mut out = serde_json::Map::with_capacity(map.len());
            for (k, v) in map {
                let whole = |kind: &str| Value::String(format!("[REDACTED:{kind}]"));
                let redacted = match v {
                    Value::Object(data) if k8s_secret && (k == "data" || k == "stringData") => {
                        Value::Object(
                            data.keys()
                                .map(|dk| (dk.clone(), whole("kubernetes-secret")))
                                .collect(),
                        )
                    }
                    Value::String(s)
                        if secret_name(k)
                            && !is_placeholder(s)
                            && s.len() >= 3
                            && !s.contains("[REDACTED") =>
                    {
                        whole("secret-value")
                    }
                    Value::Number(_) if secret_name(k) => whole("secret-value"),
                    other => redact_value(other),
                };
                out.insert(k.clone(), redacted);
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// `value` serialised after [`redact_value`].
pub fn redacted_json<T: serde::Serialize>(value: &T) -> Result<String, serde_json::Error> {
    serde_json::to_value(value).and_then(|v| serde_json::to_string(&redact_value(&v)))
}

#[cfg(test)]
mod tests {
    use super::{redact_value, secret_name};

    #[test]
    fn names_of_secrets() {
        for n in [
            "password",
            "DB_PASS",
            "db_pass",
            "client_secret",
            "apiKey",
            "api_key",
            "GITHUB_TOKEN",
            "passphrase",
            "pass",
            "AWS_SECRET_ACCESS_KEY",
        ] {
            assert!(secret_name(n), "{n}");
        }
        for n in [
            "name",
            "command",
            "hosts",
            "bypass",
            "compass",
            "passenger",
            "key",
            "prompt_tokens",
        ] {
            assert!(!secret_name(n), "{n}");
        }
    }

    #[test]
    fn values_are_redacted_before_serialisation() {
        let v = serde_json::json!({
            "output": "DB_PASSWORD=one\nAPI_TOKEN=two\nplain line\n",
            "password": "three",
            "nested": [{"secret": 42}],
        });
        let r = redact_value(&v).to_string();
        for s in ["one", "two", "three", "42"] {
            assert!(
                !r.contains(&format!("\"{s}")) && !r.contains(&format!("={s}")),
                "{s}: {r}"
            );
        }
        assert!(r.contains("plain line"), "{r}");
    }
}
