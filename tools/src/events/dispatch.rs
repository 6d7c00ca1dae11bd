//! Running EventHooks: one consumer per hook, each **durable**, so a
//! restarted dispatcher resumes after the last event it handled instead of
//! skipping or repeating a backlog.
//!
//! - Embedded: the consumer is a position in the store's event log
//!   (`hook_cursors`), moved after every batch; a new hook starts at the
//!   end of the log (events from now on). The log is polled every 250 ms
//!   and at once when this process publishes.
//! - NATS: a JetStream durable pull consumer per hook
//!   (`hook_{namespace}_{name}`, filtered by the hook's subject, explicit
//!   acks); an event is acked after its delivery is recorded, so one that
//!   was being delivered when the process died is delivered again.
//!
//! Events pass the hook's subject pattern and keyword filter, then go to
//! its sink ([`Deliverer`]); every delivery (delivered or failed after its
//! retries) is recorded in `hook_deliveries`. Deliveries of one hook run
//! in event order; `options.concurrency` (default 1) lets a hook deliver
//! that many events of a batch at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::feed::Feed;
use super::hooks::{Deliverer, Hook};
use super::{CloudEvent, log, nats};
use crate::store::{DeliveryRecord, Store};

/// Counters of one dispatcher.
#[derive(Debug, Default)]
pub struct DispatchStats {
    /// Events looked at.
    pub seen: AtomicU64,
    /// Events that passed a hook's filter.
    pub matched: AtomicU64,
    /// Deliveries that succeeded (or were started, for actions).
    pub delivered: AtomicU64,
    /// Deliveries that failed after their retries.
    pub failed: AtomicU64,
}

/// Runs hooks until cancelled.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    feed: Feed,
    deliverer: Deliverer,
    stats: Arc<DispatchStats>,
    poll: Duration,
}

impl Dispatcher {
    /// A dispatcher reading `feed` and delivering with `deliverer`.
    pub fn new(feed: Feed, deliverer: Deliverer) -> Self {
        Dispatcher {
            feed,
            deliverer,
            stats: Arc::default(),
            poll: Duration::from_millis(250),
        }
    }

    /// Its counters.
    pub fn stats(&self) -> &Arc<DispatchStats> {
        &self.stats
    }

    /// Runs every hook until `cancel`; returns when all consumers stopped.
    pub async fn run(&self, hooks: Vec<Hook>, cancel: CancellationToken) {
        let mut set = tokio::task::JoinSet::new();
        for hook in hooks {
            let me = self.clone();
            let cancel = cancel.clone();
            set.spawn(async move {
                let key = hook.key.clone();
                let result = match me.feed.nats().cloned() {
                    Some(n) => me.run_nats(&n, &hook, &cancel).await,
                    None => me.run_log(&hook, &cancel).await,
                };
                if let Err(e) = result {
                    eprintln!("error: hook {key} stopped: {e}");
                }
            });
        }
        while set.join_next().await.is_some() {}
    }

    fn concurrency(hook: &Hook) -> usize {
        hook.options
            .get("concurrency")
            .and_then(|c| c.parse::<usize>().ok())
            .unwrap_or(1)
            .clamp(1, 256)
    }

    /// Delivers the events of a batch that `hook` wants; records them.
    async fn handle(&self, hook: &Hook, events: Vec<CloudEvent>) -> Result<(), String> {
        self.stats
            .seen
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        let wanted: Vec<CloudEvent> = events.into_iter().filter(|e| hook.wants(e)).collect();
        if wanted.is_empty() {
            return Ok(());
        }
        self.stats
            .matched
            .fetch_add(wanted.len() as u64, Ordering::Relaxed);
        let jobs: Vec<_> = wanted
            .iter()
            .map(|e| Box::pin(self.deliverer.deliver(hook, e)))
            .collect();
        let recs: Vec<DeliveryRecord> = futures::stream::iter(jobs)
            .buffered(Self::concurrency(hook))
            .collect()
            .await;
        let failed = recs.iter().filter(|r| r.status == "failed").count() as u64;
        self.stats.failed.fetch_add(failed, Ordering::Relaxed);
        self.stats
            .delivered
            .fetch_add(recs.len() as u64 - failed, Ordering::Relaxed);
        for r in recs.iter().filter(|r| r.status == "failed") {
            eprintln!(
                "warning: hook {} could not deliver event {} ({}): {}",
                r.hook, r.event_id, r.subject, r.detail
            );
        }
        self.feed
            .store()
            .record_deliveries(&recs)
            .await
            .map_err(|e| e.to_string())
    }

    async fn run_log(&self, hook: &Hook, cancel: &CancellationToken) -> Result<(), String> {
        let store: &Arc<dyn Store> = self.feed.store();
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let mut pos = match store.hook_cursor(&hook.key).await.map_err(|e| err(&e))? {
            Some(p) => p,
            None => {
                let end = store.last_event_seq().await.map_err(|e| err(&e))?;
                store
                    .set_hook_cursor(&hook.key, end)
                    .await
                    .map_err(|e| err(&e))?;
                end
            }
        };
        let mut wake = self.feed.bus().subscribe(&hook.subject).ok();
        loop {
            if cancel.is_cancelled() {
                return Ok(());
            }
            let (batch, at) = log::read(store, &hook.subject, pos, 500)
                .await
                .map_err(|e| err(&e))?;
            if at != pos {
                self.handle(hook, batch.into_iter().map(|(_, e)| e).collect())
                    .await?;
                pos = at;
                store
                    .set_hook_cursor(&hook.key, pos)
                    .await
                    .map_err(|e| err(&e))?;
                continue;
            }
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(self.poll) => {}
                _ = async {
                    match wake.as_mut() {
                        Some(w) => { w.next().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => {}
            }
        }
    }

    async fn run_nats(
        &self,
        n: &nats::Nats,
        hook: &Hook,
        cancel: &CancellationToken,
    ) -> Result<(), String> {
        let name = nats::consumer_name(&hook.key);
        let mut backoff = Duration::from_millis(200);
        let consumer = loop {
            match nats::durable(n, &name, &hook.subject, Duration::from_secs(120)).await {
                Ok(c) => break c,
                Err(e) => {
                    eprintln!("warning: hook {}: {e}; retrying", hook.key);
                    tokio::select! {
                        _ = cancel.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        };
        loop {
            let batch = tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                b = nats::next_batch(n, &consumer, 500, Duration::from_secs(1)) => b,
            };
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("warning: hook {}: {e}", hook.key);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            if batch.is_empty() {
                continue;
            }
            let (events, msgs): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            self.handle(hook, events.into_iter().flatten().collect())
                .await?;
            // Acked once handled and recorded; the last ack is awaited so a
            // batch is settled before the next is fetched.
            if let Some((last, rest)) = msgs.split_last() {
                for m in rest {
                    let _ = m.ack().await;
                }
                let _ = last.double_ack().await;
            }
        }
    }
}

/// Counters as plain numbers.
impl DispatchStats {
    /// `(seen, matched, delivered, failed)`.
    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        (
            g(&self.seen),
            g(&self.matched),
            g(&self.delivered),
            g(&self.failed),
        )
    }
}
