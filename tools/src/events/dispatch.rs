//! Running EventHooks: one consumer per hook, each **durable**, so a
//! restarted dispatcher resumes after the last event it handled instead of
//! skipping or repeating a backlog.
//!
//! - Embedded: the consumer is a position in the store's event log
//!   (`hook_cursors`), moved after every batch; a new hook starts at the
//!   end of the log (events from now on). The log is polled every 250 ms
//!   and at once when this process publishes.
//! - NATS: a JetStream durable pull consumer per hook
//!   (`hook_{namespace}_{name}`, filtered by the hook's subject,
//!   cumulative acks); a batch is acked after its deliveries are recorded,
//!   so events being delivered when the process died are delivered again.
//!
//! Events pass the hook's subject pattern and keyword filter, then go to
//! its sink ([`Deliverer`]); every delivery (delivered or failed after its
//! retries) is recorded in `hook_deliveries`. Deliveries of one hook run
//! in event order; `options.concurrency` (default 1) lets a hook deliver
//! that many events of a batch at once, and batching sinks (Elasticsearch
//! `_bulk`, webhooks with `options.batch`) take a chunk per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::feed::Feed;
use super::hooks::{Deliverer, Hook};
use super::{CloudEvent, log, nats};
use crate::store::{DeliveryRecord, Store};

/// How long a chunk waits for more events after its first.
const CHUNK_WAIT: Duration = Duration::from_millis(5);

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
        let recs: Vec<DeliveryRecord> = if Deliverer::batch_size(hook) > 1 {
            self.deliverer.deliver_all(hook, &wanted).await
        } else {
            let jobs: Vec<_> = wanted
                .iter()
                .map(|e| Box::pin(self.deliverer.deliver(hook, e)))
                .collect();
            futures::stream::iter(jobs)
                .buffered(Self::concurrency(hook))
                .collect()
                .await
        };
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
        let mut pos = match store
            .hook_cursor(&hook.key)
            .await
            .map_err(|e| e.to_string())?
        {
            Some(p) => p,
            None => {
                let end = store.last_event_seq().await.map_err(|e| e.to_string())?;
                store
                    .set_hook_cursor(&hook.key, end)
                    .await
                    .map_err(|e| e.to_string())?;
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
                .map_err(|e| e.to_string())?;
            if at != pos {
                self.handle(hook, batch.into_iter().map(|(_, e)| e).collect())
                    .await?;
                pos = at;
                store
                    .set_hook_cursor(&hook.key, pos)
                    .await
                    .map_err(|e| e.to_string())?;
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
            let stream = tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                s = nats::messages(n, &consumer) => s,
            };
            let mut stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("warning: hook {}: {e}", hook.key);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            loop {
                let first = tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    c = stream.next() => c,
                };
                // The stream ended (connection lost for good): open another.
                let Some(first) = first else { break };
                // A chunk: what arrives within a few milliseconds of the
                // first event, up to 500 (one record write and one ack per
                // chunk instead of per event).
                let mut chunk = vec![first];
                let until = tokio::time::Instant::now() + CHUNK_WAIT;
                while chunk.len() < 500 {
                    match tokio::time::timeout_at(until, stream.next()).await {
                        Ok(Some(m)) => chunk.push(m),
                        _ => break,
                    }
                }
                let mut events = Vec::with_capacity(chunk.len());
                let mut last = None;
                for m in chunk {
                    match m {
                        Ok(m) => {
                            events.extend(nats::decode(&m));
                            last = Some(m);
                        }
                        Err(e) => eprintln!("warning: hook {}: {e}", hook.key),
                    }
                }
                self.handle(hook, events).await?;
                // Acked once handled and recorded: the chunk's last event,
                // which acks the whole chunk (cumulative acks), confirmed by
                // the server.
                if let Some(last) = last {
                    if let Err(e) = last.double_ack().await {
                        eprintln!("warning: hook {}: ack: {e}", hook.key);
                    }
                }
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
