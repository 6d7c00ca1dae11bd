//! Keeping secrets out of what `ops` prints: Host passwords and private
//! keys, Cluster kubeconfigs and tokens, and the values of variables whose
//! names say they are secret (`*_password`, `*_token`, `sk`, ...). A
//! variable named `kubeconfig` holds a path in practice (the anchor's
//! library uses it so) and is not redacted.

use std::collections::BTreeMap;

use super::{Object, Variables};

/// What a secret value is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Whether a variable or option name denotes a secret. The last `-`/`_`/`.`
/// separated word decides, so `secret_name` is not a secret but
/// `db_password`, `api-token` and `sk` are.
pub fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let last = lower.rsplit(['-', '_', '.']).next().unwrap_or_default();
    matches!(
        last,
        "password"
            | "passwd"
            | "pwd"
            | "pass"
            | "token"
            | "secret"
            | "sk"
            | "apikey"
            | "credential"
            | "credentials"
            | "privatekey"
    ) || lower.ends_with("password")
        || lower.ends_with("secretkey")
        || lower.ends_with("secret_key")
        || lower.ends_with("secret_access_key")
        || lower.ends_with("access_token")
}

/// A credential field that points at its secret instead of holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `${env:NAME}`: an environment variable of the process that connects.
    Env(String),
    /// `${file:PATH}`: a file on the machine that connects (`~/` allowed).
    File(String),
}

impl SecretRef {
    /// Parses `${env:NAME}` or `${file:PATH}`; anything else is `None`.
    pub fn parse(value: &str) -> Option<SecretRef> {
        let inner = value.trim().strip_prefix("${")?.strip_suffix('}')?;
        let (scheme, rest) = inner.split_once(':')?;
        if rest.is_empty() || rest.contains('}') {
            return None;
        }
        match scheme {
            "env" if rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                Some(SecretRef::Env(rest.to_owned()))
            }
            "file" => Some(SecretRef::File(rest.to_owned())),
            _ => None,
        }
    }
}

fn mask(field: &mut Option<String>) {
    let is_reference = field.as_deref().and_then(SecretRef::parse).is_some();
    if !is_reference && field.as_deref().is_some_and(|v| !v.is_empty()) {
        *field = Some(REDACTED.to_owned());
    }
}

fn mask_map(map: &mut Option<BTreeMap<String, String>>) {
    for (k, v) in map.iter_mut().flatten() {
        if is_secret_name(k) && !v.is_empty() && SecretRef::parse(v).is_none() {
            *v = REDACTED.to_owned();
        }
    }
}

fn mask_vars(vars: &mut Option<Variables>) {
    for (k, v) in vars.iter_mut().flatten() {
        if is_secret_name(k) {
            mask(&mut v.value);
            mask(&mut v.default);
        }
    }
}

impl Object {
    /// A copy safe to print: every secret value replaced by `<redacted>`.
    /// Presence is kept, so a reader can see that a password is set.
    pub fn redacted(&self) -> Object {
        let mut o = self.clone();
        match &mut o {
            Object::Host(h) => {
                mask(&mut h.spec.password);
                mask(&mut h.spec.private_key);
            }
            Object::Cluster(c) => {
                mask(&mut c.spec.config);
                mask(&mut c.spec.token);
            }
            Object::Task(t) => mask_vars(&mut t.spec.variables),
            Object::Pipeline(p) => {
                mask_vars(&mut p.spec.variables);
                for t in &mut p.spec.tasks {
                    mask_map(&mut t.variables);
                }
            }
            Object::TaskRun(r) => mask_map(&mut r.spec.variables),
            Object::PipelineRun(r) => mask_map(&mut r.spec.variables),
            Object::EventHooks(e) => mask_map(&mut e.spec.options),
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_recognised_and_not_redacted() {
        assert_eq!(
            SecretRef::parse("${env:WEB_PASS}"),
            Some(SecretRef::Env("WEB_PASS".into()))
        );
        assert_eq!(
            SecretRef::parse("${file:~/.pw}"),
            Some(SecretRef::File("~/.pw".into()))
        );
        for not_ref in [
            "hunter2",
            "${env:}",
            "${env:A B}",
            "${vault:x}",
            "${env:A}x",
            "$env:A",
        ] {
            assert_eq!(SecretRef::parse(not_ref), None, "{not_ref}");
        }
        let mut inline = Some("hunter2".to_string());
        mask(&mut inline);
        assert_eq!(inline.as_deref(), Some(REDACTED));
        let mut reference = Some("${env:WEB_PASS}".to_string());
        mask(&mut reference);
        assert_eq!(reference.as_deref(), Some("${env:WEB_PASS}"));
    }

    #[test]
    fn secret_names() {
        for yes in [
            "password",
            "DB_PASSWORD",
            "api-token",
            "sk",
            "client_secret",
            "aws_secret_access_key",
            "mysqlpassword",
        ] {
            assert!(is_secret_name(yes), "{yes}");
        }
        for no in [
            "kubeconfig",
            "secret_name",
            "ak",
            "keyword",
            "namespace",
            "token_count_limit",
            "host",
        ] {
            assert!(!is_secret_name(no), "{no}");
        }
    }
}
