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
use ops_store::SqliteStore;

use crate::config::Config;

/// Opens the configured store, its audit log sealed with the key in
/// `$OPS_HOME/audit.key` and its head in `STORE.audit-head`. `$OPS_HOME`
/// and the store's files become secret paths for the shell classifier.
pub fn open_store(cfg: &Config) -> Result<SqliteStore> {
    use ops_model::shell::secret;
    secret::protect(&cfg.home.display().to_string());
    for suffix in ["", "-wal", "-shm", ".audit-head"] {
        secret::protect(&format!("{}{suffix}", cfg.store.display()));
    }
    let store = SqliteStore::open(&cfg.store).with_context(|| {
        format!(
            "cannot open the store (set it with --store, ${} or `opscli config set store PATH`)",
            crate::config::env::STORE
        )
    })?;
    let mut head = cfg.store.clone().into_os_string();
    head.push(".audit-head");
    let seal =
        ops_store::seal::AuditSeal::open(&cfg.home.join("audit.key"), std::path::Path::new(&head))
            .context("cannot open the audit key")?;
    Ok(store.with_audit_seal(seal))
}

static FEED: std::sync::OnceLock<ops_events::feed::Feed> = std::sync::OnceLock::new();

/// The event feed this process publishes to (opened once): NATS JetStream
/// when `nats-url` is set, else the store's event log.
pub async fn open_feed(
    cfg: &Config,
    store: std::sync::Arc<dyn ops_store::Store>,
) -> Result<ops_events::feed::Feed> {
    use ops_events::feed::{Feed, FeedConfig};
    if let Some(f) = FEED.get() {
        return Ok(f.clone());
    }
    let nats = cfg.nats_url.as_ref().map(|url| nats_config(cfg, url));
    let feed = Feed::open(
        FeedConfig {
            nats,
            ..FeedConfig::default()
        },
        store,
    )
    .await
    .context("cannot open the event feed (nats-url)")?;
    Ok(FEED.get_or_init(|| feed).clone())
}

/// The JetStream settings for `url`.
pub fn nats_config(cfg: &Config, url: &str) -> ops_events::nats::NatsConfig {
    ops_events::nats::NatsConfig {
        stream: cfg.nats_stream.clone(),
        max_age: cfg.nats_retention,
        duplicate_window: cfg.nats_dedup_window.min(cfg.nats_retention),
        ..ops_events::nats::NatsConfig::new(url)
    }
}

/// Before exiting: waits (10 s at most) until this process's events are
/// acked by NATS or kept in the outbox, and says what is left.
pub async fn flush_feed() {
    let Some(feed) = FEED.get() else {
        return;
    };
    match feed.flush(std::time::Duration::from_secs(10)).await {
        Ok(Some(0)) | Err(_) => {}
        Ok(Some(n)) => eprintln!(
            "note: NATS is not reachable; {n} event(s) wait in the outbox and are sent when it is (`opscli events flush`)"
        ),
        Ok(None) => eprintln!("warning: events not yet handed to NATS after 10 s"),
    }
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
