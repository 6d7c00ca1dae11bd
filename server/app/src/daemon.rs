//! The long-running loops: the EventHooks dispatcher (reloading hooks as
//! they are applied, changed or deleted) and the scheduler (cron
//! TaskRuns and PipelineRuns, with heartbeats beside it). `opscli hook
//! run` and `opscli scheduler` run them in the foreground; the server will
//! run them beside its routes. Each stops cleanly on its token: runs the
//! scheduler started are cancelled and waited for, each hook consumer
//! resumes later where it stopped.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use ops_engine::Engine;
use ops_engine::schedule::{Scheduler, TickEvent};
use ops_events::dispatch::Dispatcher;
use ops_events::hooks::{ActionSink, Deliverer, Hook, Retry};
use ops_model::{Kind, LabelSelector, Object};
use ops_store::Store;
use tokio_util::sync::CancellationToken;

use crate::hooks::HookActions;
use crate::settings::Settings;

/// The EventHooks of `namespace` (every namespace with `None`) that
/// compile, and a fingerprint of their versions (to notice changes). A
/// hook that does not compile (stored before `apply` checked hooks, or
/// written behind its back) is skipped with a warning naming it: it never
/// stops the others.
pub async fn hooks_in_store(
    store: &Arc<dyn Store>,
    namespace: Option<&str>,
) -> Result<(Vec<Hook>, String)> {
    let objs = store
        .list(Kind::EventHooks, namespace, &LabelSelector::default())
        .await?;
    let fingerprint = objs
        .iter()
        .map(|o| format!("{}@{}", o.key, o.generation))
        .collect::<Vec<_>>()
        .join(",");
    let hooks = objs
        .into_iter()
        .filter_map(|o| match o.object {
            Object::EventHooks(h) => Some(h),
            _ => None,
        })
        .filter_map(|h| match Hook::compile(&h) {
            Ok(hook) => Some(hook),
            Err(e) => {
                tracing::warn!("{e}; this hook is skipped");
                None
            }
        })
        .collect();
    Ok((hooks, fingerprint))
}

/// What the hook loop tells its caller.
#[derive(Debug)]
pub enum HooksReport {
    /// These hooks run now, on this feed.
    Running {
        /// The hooks.
        hooks: Vec<Hook>,
        /// `JetStream at URL, stream S` or `the store's event log`.
        backend: String,
    },
    /// The stored hooks changed; the consumers restart with the new set.
    Reloading,
}

/// Runs the hooks of `namespace` (only `names` when any are given) until
/// `stop`, checking every `reload` whether hooks were applied, changed or
/// deleted. Returns the dispatcher's totals: events seen, matched,
/// delivered, failed.
pub async fn run_hooks(
    cfg: &Settings,
    store: Arc<dyn Store>,
    namespace: Option<&str>,
    names: &[String],
    reload: Duration,
    stop: CancellationToken,
    report: &mut (dyn FnMut(HooksReport) + Send),
) -> Result<(u64, u64, u64, u64)> {
    let select = |mut hooks: Vec<Hook>| {
        if !names.is_empty() {
            hooks.retain(|h| names.iter().any(|n| h.key.ends_with(&format!("/{n}"))));
        }
        hooks
    };
    let (all, mut fingerprint) = hooks_in_store(&store, namespace).await?;
    for n in names {
        if !all.iter().any(|h| h.key.ends_with(&format!("/{n}"))) {
            bail!("no EventHooks `{n}` in namespace {}", cfg.namespace);
        }
    }
    let mut hooks = select(all);
    if hooks.is_empty() {
        bail!("no EventHooks to run (apply some with `opscli apply -f FILE`)");
    }
    let feed = crate::services::open_feed(cfg, Arc::clone(&store)).await?;
    let backend = match &cfg.nats_url {
        Some(u) => format!("JetStream at {u}, stream {}", cfg.nats_stream),
        None => "the store's event log".into(),
    };
    let actions: Arc<dyn ActionSink> = Arc::new(HookActions::new(cfg, feed.clone(), false).await?);
    let d = Dispatcher::new(
        feed.clone(),
        Deliverer::new(feed, Some(actions), Retry::default()),
    );
    loop {
        report(HooksReport::Running {
            hooks: hooks.clone(),
            backend: backend.clone(),
        });
        let round = stop.child_token();
        let (d2, r2, set) = (d.clone(), round.clone(), hooks.clone());
        let mut task = tokio::spawn(async move { d2.run(set, r2).await });
        let mut done = false;
        let next = loop {
            tokio::select! {
                _ = &mut task, if !done => {
                    done = true;
                    // Stopped, or every consumer ended with an error
                    // (logged): nothing left to run.
                    if stop.is_cancelled() || !hooks.is_empty() {
                        break None;
                    }
                }
                _ = stop.cancelled() => {}
                _ = tokio::time::sleep(reload) => {}
            }
            if stop.is_cancelled() {
                break None;
            }
            match hooks_in_store(&store, namespace).await {
                Ok((all, f)) if f != fingerprint => {
                    fingerprint = f;
                    break Some(select(all));
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("hooks not reloaded: {e:#}"),
            }
        };
        round.cancel();
        if !done {
            let _ = task.await;
        }
        match next {
            Some(h) if !stop.is_cancelled() => {
                report(HooksReport::Reloading);
                hooks = h;
            }
            _ => break,
        }
    }
    Ok(d.stats().snapshot())
}

/// Runs the scheduler until `stop`, looking for due schedules every
/// `interval` (each fired at a fixed jitter of up to `jitter`), and with
/// `heartbeat` set, heartbeat rounds of `namespace` that often beside it.
/// `report` hears each tick's events. On stop, the runs it started are
/// cancelled and waited for.
pub async fn run_scheduler(
    engine: Engine,
    interval: Duration,
    jitter: Duration,
    heartbeat: Option<(Duration, String, usize)>,
    stop: CancellationToken,
    report: &mut (dyn FnMut(chrono::DateTime<chrono::Utc>, Vec<TickEvent>) + Send),
) -> Result<()> {
    let beats = heartbeat.map(|(every, ns, forks)| {
        let (engine, stop) = (engine.clone(), stop.clone());
        tokio::spawn(async move {
            let feed = engine.feed().clone();
            ops_engine::heartbeat::run(&engine, &feed, Some(&ns), forks, every, &stop).await;
        })
    });
    let mut s = Scheduler::new(engine, jitter);
    loop {
        let now = chrono::Utc::now();
        report(now, s.tick(now).await?);
        tokio::select! {
            _ = tokio::time::sleep(interval.max(Duration::from_secs(1))) => {}
            _ = stop.cancelled() => break,
        }
    }
    s.cancel_runs();
    s.wait_idle().await;
    if let Some(b) = beats {
        let _ = b.await;
    }
    Ok(())
}
