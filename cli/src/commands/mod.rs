//! One module per top-level command. Each returns the process exit code;
//! errors that stop a command early are returned as `anyhow::Error` and
//! printed by `main`.

pub mod apply;
pub mod approval;
pub mod audit;
pub mod cluster;
pub mod completion;
pub mod config;
pub mod copilot;
pub mod create;
pub mod delete;
pub mod describe;
pub mod eval;
pub mod events;
pub mod execute;
pub mod get;
pub mod hook;
pub mod lab;
pub mod runbook;
pub mod runs;

use anyhow::{Context, Result};
use ops_protocol::Principal;

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

/// Who this process acts for: the local OS account of its real uid, as
/// the kernel reports it (not `$USER`, which anyone can set). Every call
/// the CLI asks for and every decision it records carries it.
pub fn local_principal() -> Principal {
    let uid = nix::unistd::getuid();
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| format!("uid-{uid}"), |u| u.name);
    Principal::local_user(name, uid.as_raw())
}
