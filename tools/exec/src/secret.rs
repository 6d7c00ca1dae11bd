//! Secret references: a credential field may hold `${env:NAME}` or
//! `${file:PATH}` instead of the secret itself. The reference is stored and
//! printed as is (it reveals nothing); [`resolve`] reads the value only when
//! a connection needs it. Any other value is an inline secret, used as
//! given and never printed.

use std::path::PathBuf;

use ops_model::SecretRef;

/// A reference that cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The environment variable is unset or not UTF-8.
    #[error("secret reference ${{env:{0}}}: environment variable `{0}` is not set")]
    EnvMissing(String),
    /// The file cannot be read.
    #[error("secret reference ${{file:{path}}}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The secret a field stands for: the referenced value, or the inline value
/// itself. A file's trailing newline is dropped.
pub fn resolve(value: &str) -> Result<String, SecretError> {
    match SecretRef::parse(value) {
        None => Ok(value.to_owned()),
        Some(SecretRef::Env(name)) => {
            std::env::var(&name).map_err(|_| SecretError::EnvMissing(name))
        }
        Some(SecretRef::File(path)) => {
            let expanded = crate::expand_home(&path);
            std::fs::read_to_string(&expanded)
                .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
                .map_err(|source| SecretError::File {
                    path: expanded,
                    source,
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_env_and_file() {
        assert_eq!(resolve("plain").unwrap(), "plain");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "from-file\n").unwrap();
        assert_eq!(
            resolve(&format!("${{file:{}}}", f.display())).unwrap(),
            "from-file"
        );
        // PATH is always set in a test process.
        assert!(!resolve("${env:PATH}").unwrap().is_empty());
        let e = resolve("${env:OPS_TEST_SURELY_UNSET_VAR}").unwrap_err();
        assert!(
            e.to_string()
                .contains("`OPS_TEST_SURELY_UNSET_VAR` is not set"),
            "{e}"
        );
        let e = resolve("${file:/nonexistent/pw}").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/pw"), "{e}");
    }
}
