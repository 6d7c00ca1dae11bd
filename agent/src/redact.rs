//! Redaction: secrets are removed from text before it reaches the model, a
//! log or the audit record. Patterns, most specific first:
//!
//! * PEM private keys (any type, OpenSSH included), whole block;
//! * kubeconfig credentials (`client-key-data`, `client-certificate-data`,
//!   `certificate-authority-data`, `token`, `password`);
//! * `Authorization:` headers and `Bearer` tokens, JWTs;
//! * cloud and SaaS keys: AWS access key ids and secret keys, Google API
//!   keys, GitHub, GitLab, Slack and OpenAI-style tokens, Azure account
//!   keys and SAS signatures;
//! * passwords in URLs (`scheme://user:PASSWORD@host`);
//! * values of variables and fields named like secrets: `*_TOKEN`,
//!   `*_SECRET`, `*_PASSWORD`, `*_API_KEY`, `password`, `passwd`, `secret`,
//!   `token`, `apikey`, in `K=V`, `K: V`, `"k": "v"` and `--k V` forms.
//!
//! Every match becomes `[REDACTED:<kind>]`, so the reader still sees that
//! something was there and what it was.

use std::sync::LazyLock;

use regex::{Captures, Regex};

struct Pattern {
    kind: &'static str,
    re: Regex,
    /// Capture group holding the secret; 0 = the whole match.
    group: usize,
}

fn pat(kind: &'static str, re: &str, group: usize) -> Option<Pattern> {
    // The patterns are constants checked by the tests; a bad one is
    // skipped rather than taking the process down.
    Regex::new(re).ok().map(|re| Pattern { kind, re, group })
}

static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    [
        pat(
            "private-key",
            r"(?s)-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(-----END ([A-Z0-9 ]*)PRIVATE KEY-----|\z)",
            0,
        ),
        pat(
            "kubeconfig",
            r"(?m)\b(?:client-key-data|client-certificate-data|certificate-authority-data)\s*:\s*([A-Za-z0-9+/=]{16,})",
            1,
        ),
        pat(
            "authorization",
            r"(?i)\bauthorization\s*[:=]\s*(?:bearer|basic|token|digest)?\s*([^\s'\x22,;]{6,})",
            1,
        ),
        pat("bearer", r"(?i)\bbearer\s+([A-Za-z0-9\-._~+/]{12,}=*)", 1),
        pat("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", 0),
        pat("aws-access-key-id", r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b", 0),
        pat(
            "aws-secret-access-key",
            r"(?i)\baws_?secret_?access_?key\b[\x22']?\s*[:=]\s*[\x22']?([A-Za-z0-9/+=]{30,})",
            1,
        ),
        pat("google-api-key", r"\bAIza[0-9A-Za-z_-]{30,}", 0),
        pat("github-token", r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})\b", 0),
        pat("gitlab-token", r"\bglpat-[A-Za-z0-9_-]{20,}\b", 0),
        pat("slack-token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b", 0),
        pat("slack-webhook", r"https://hooks\.slack\.com/services/[A-Za-z0-9/]+", 0),
        pat("api-key", r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}\b", 0),
        pat("azure-key", r"(?i)\bAccountKey=([A-Za-z0-9+/=]{20,})", 1),
        pat("azure-sas", r"(?i)[?&]sig=([A-Za-z0-9%+/=]{20,})", 1),
        pat(
            "url-password",
            r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:([^\s@/]+)@",
            1,
        ),
        // `DB_PASSWORD=x`, `export API_TOKEN="x"`, `password: x`,
        // `"client_secret": "x"`.
        pat(
            "secret-value",
            r#"(?i)(?:\b[A-Z0-9_]*(?:TOKEN|SECRET|PASSWORD|PASSWD|PWD|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?)\b|\b(?:password|passwd|secret|token|api[_-]?key|client[_-]secret)\b)[\x22']?\s*[:=]\s*[\x22']?([^\s\x22',;}{]{3,})"#,
            1,
        ),
        // `--password x`, `--token=x`, `-p x` is too ambiguous to touch.
        pat(
            "secret-flag",
            r#"(?i)--(?:password|passwd|token|secret|api-key|client-secret|access-key|secret-key)(?:=|\s+)[\x22']?([^\s\x22']{3,})"#,
            1,
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
});

/// The redacted text and how many secrets were removed, by kind.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Redacted {
    /// The text with secrets replaced.
    pub text: String,
    /// `(kind, count)` for each kind found.
    pub found: Vec<(&'static str, usize)>,
}

/// Removes secrets from `text`.
pub fn redact(text: &str) -> Redacted {
    let mut out = text.to_owned();
    let mut found = Vec::new();
    for p in PATTERNS.iter() {
        let mut n = 0;
        let replaced = p.re.replace_all(&out, |c: &Captures<'_>| {
            let whole = c.get(0).map_or("", |m| m.as_str());
            let Some(secret) = c.get(p.group) else {
                return whole.to_owned();
            };
            // Already redacted, or a placeholder: leave it.
            if secret.as_str().starts_with("[REDACTED") || is_placeholder(secret.as_str()) {
                return whole.to_owned();
            }
            n += 1;
            let m0 = c.get(0).map_or(0, |m| m.start());
            let (s, e) = (secret.start() - m0, secret.end() - m0);
            format!("{}[REDACTED:{}]{}", &whole[..s], p.kind, &whole[e..])
        });
        if n > 0 {
            out = replaced.into_owned();
            found.push((p.kind, n));
        }
    }
    Redacted { text: out, found }
}

/// Values that are clearly not secrets: references and placeholders.
fn is_placeholder(v: &str) -> bool {
    v.starts_with("${")
        || v.starts_with("$(")
        || v.starts_with('$')
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
