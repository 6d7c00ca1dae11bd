//! Redaction against a corpus of real-looking (fake) secrets: every one
//! must come out, and ordinary operations text must come through intact.

use ops_agent::redact::{redact, redact_text};

#[test]
fn every_secret_in_the_corpus_is_removed() {
    let corpus = include_str!("data/secrets.txt");
    let expect = include_str!("data/secrets.expect");
    let out = redact(corpus);
    let leaked: Vec<&str> = expect
        .lines()
        .filter(|s| !s.trim().is_empty() && out.text.contains(s.trim()))
        .collect();
    assert!(leaked.is_empty(), "leaked: {leaked:#?}\n---\n{}", out.text);
    assert!(out.text.contains("[REDACTED:private-key]"));
    assert!(out.text.contains("[REDACTED:url-password]"));
    assert!(
        out.text
            .contains("postgres://app:[REDACTED:url-password]@db.internal")
    );
    let kinds: Vec<&str> = out.found.iter().map(|(k, _)| *k).collect();
    for k in [
        "private-key",
        "kubeconfig",
        "aws-access-key-id",
        "github-token",
        "secret-value",
    ] {
        assert!(kinds.contains(&k), "{k} not reported: {kinds:?}");
    }
}

#[test]
fn ordinary_text_is_untouched() {
    let text = "Filesystem      Size  Used Avail Use% Mounted on\n/dev/sda1        50G   48G  2.0G  96% /\n\
nginx.service - A high performance web server\n   Active: failed (Result: exit-code)\n\
token bucket rate limiter: 100 req/s\nkey: value\npassword policy: see docs\n\
ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZha2VwdWJsaWNrZXlmb3J0ZXN0aW5n ops@host\n\
DB_PASSWORD=${env:DB_PASSWORD}\nhttps://example.com/path?q=1\n";
    let out = redact(text);
    // `password policy: see docs` has the word but `see` is not a secret
    // value we can tell apart; everything else must be intact.
    for keep in [
        "/dev/sda1        50G   48G  2.0G  96% /",
        "Active: failed (Result: exit-code)",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZha2VwdWJsaWNrZXlmb3J0ZXN0aW5n",
        "DB_PASSWORD=${env:DB_PASSWORD}",
        "https://example.com/path?q=1",
        "key: value",
    ] {
        assert!(
            out.text.contains(keep),
            "{keep:?} was changed:\n{}",
            out.text
        );
    }
}

#[test]
fn redaction_is_idempotent() {
    let once = redact_text(include_str!("data/secrets.txt"));
    assert_eq!(redact_text(&once), once);
}
