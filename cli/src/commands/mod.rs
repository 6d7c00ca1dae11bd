//! One module per top-level command. Each returns the process exit code;
//! errors that stop a command early are returned as `anyhow::Error` and
//! printed by `main`.

pub mod apply;
pub mod audit;
pub mod cluster;
pub mod completion;
pub mod config;
pub mod copilot;
pub mod create;
pub mod delete;
pub mod describe;
pub mod events;
pub mod execute;
pub mod get;
pub mod runbook;
pub mod runs;

use anyhow::{Context, Result};
use ops_tools::store::SqliteStore;

use crate::config::Config;

/// Opens the configured store.
pub fn open_store(cfg: &Config) -> Result<SqliteStore> {
    SqliteStore::open(&cfg.store).with_context(|| {
        format!(
            "cannot open the store (set it with --store, ${} or `opscli config set store PATH`)",
            crate::config::env::STORE
        )
    })
}

/// `k=v` pairs from repeated flags.
pub fn parse_pairs(
    pairs: &[String],
    what: &str,
) -> Result<std::collections::BTreeMap<String, String>> {
    let mut out = std::collections::BTreeMap::new();
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .filter(|(k, _)| !k.trim().is_empty())
            .with_context(|| format!("{what} `{p}` must look like key=value"))?;
        out.insert(k.trim().to_owned(), v.to_owned());
    }
    Ok(out)
}
