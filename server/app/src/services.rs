//! The real adapters, opened from [`Settings`]: the store (its audit log
//! sealed), the event feed, the engine with its SSH pool, and runbook
//! knowledge. Only this crate assembles them; every program (the CLI, the
//! eval runner, and the server, controller and workers to come) gets them
//! here.

use std::sync::Arc;

use anyhow::{Context, Result};
use ops_agent::knowledge::Knowledge;
use ops_agent::knowledge::embed::{Embedder, EndpointEmbedder, MiniLm};
use ops_engine::{Engine, EngineOptions};
use ops_exec::ssh::{SshOptions, SshPool};
use ops_store::{SqliteStore, Store, owner_alive};

use crate::settings::{Settings as Config, env};

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
            env::STORE
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
        Ok(Some(n)) => tracing::info!(
            "NATS is not reachable; {n} event(s) wait in the outbox and are sent when it is (`opscli events flush`)"
        ),
        Ok(None) => tracing::warn!("events not yet handed to NATS after 10 s"),
    }
}

/// The engine over the configured store, with crash recovery done.
/// The engine and SSH pool. `implicit_local`: an empty target means this
/// machine (a person's direct commands only; see
/// [`EngineOptions::implicit_local`]).
pub async fn engine(cfg: &Config, implicit_local: bool) -> Result<(Engine, Arc<SshPool>)> {
    let store = Arc::new(open_store(cfg)?);
    let recovered = store.mark_interrupted(&owner_alive).await?;
    if recovered > 0 {
        tracing::info!(
            "{recovered} run(s) left running by a process that stopped were marked Interrupted"
        );
    }
    let mut ssh = SshOptions::new(&cfg.home);
    ssh.policy = cfg.known_hosts;
    let pool = SshPool::new(ssh);
    let store = store as Arc<dyn Store>;
    let feed = open_feed(cfg, Arc::clone(&store)).await?;
    let engine = Engine::new(
        store,
        Arc::clone(&pool),
        EngineOptions {
            forks: cfg.forks,
            implicit_local,
            ..EngineOptions::default()
        },
    )
    .with_feed(feed);
    Ok((engine, pool))
}

/// An embedder, or why there is none.
type Chosen = (Option<Arc<dyn Embedder>>, Option<String>);

/// The embedder the settings ask for, or why there is none.
pub fn embedder(cfg: &Config) -> Result<Chosen> {
    if let Some(url) = &cfg.embed_url {
        let key = match &cfg.model_api_key {
            Some(k) => Some(ops_exec::secret::resolve(k).context("setting `model-api-key`")?),
            None => None,
        };
        let e = EndpointEmbedder::new(url, &cfg.embed_model, key)?;
        return Ok((Some(Arc::new(e)), None));
    }
    let dir = MiniLm::dir_under(&cfg.home);
    if !MiniLm::present(&dir) {
        return Ok((
            None,
            Some(format!(
                "no model at {}; run scripts/embed-model.sh or set embed-url",
                dir.display()
            )),
        ));
    }
    Ok((Some(Arc::new(MiniLm::load(&dir)?)), None))
}

/// Runbook knowledge over the configured store, embedder and index (a
/// Qdrant collection per embedding model when `qdrant-url` is set).
pub fn knowledge(cfg: &Config, store: Arc<dyn Store>) -> Result<Knowledge> {
    let (e, why) = embedder(cfg)?;
    let collection = e.as_ref().map(|e| {
        let id: String = e
            .id()
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!("ops_runbooks_{id}")
    });
    let k = Knowledge::new(store, e, why);
    match (&cfg.qdrant_url, collection) {
        (Some(url), Some(collection)) => Ok(k.with_index(Arc::new(
            ops_agent::knowledge::index::QdrantIndex::new(url, &collection, None)?,
        ))),
        _ => Ok(k),
    }
}
