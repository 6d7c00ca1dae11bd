//! Running EventHooks: one consumer per hook, each **durable**, so a
//! restarted dispatcher resumes after the last event it handled instead of
//! skipping or repeating a backlog.
//!
//! Either way a hook's position is kept in the store (`hook_cursors`)
//! and moved in the same transaction that records a batch's deliveries:
//! a dispatcher that stops between two batches neither loses a record
//! nor delivers a recorded batch again; the batch it was delivering when
//! it died is delivered again. A new hook starts at the end (events from
//! now on).
//!
//! - Embedded: the position is in the store's event log, polled every
//!   250 ms and at once when this process publishes.
//! - NATS: the position is a stream sequence, kept with the stream's
//!   creation time (a stream made anew is delivered from its start, not
//!   skipped up to the old number);
//!   the hook follows the stream from there with an ordered consumer
//!   (`hook_{namespace}_{name}_{n}`, filtered by the hook's subject,
//!   ephemeral, no acks: the server neither tracks each event as pending
//!   nor waits for acks, which was a third of the hook path's cost).
//!
//! Events pass the hook's subject pattern and keyword filter, then go to
//! its sink ([`Deliverer`]); every sink request (delivered or failed after
//! its retries) is recorded in `hook_deliveries`, a batch's record with
//! the ids of every event it carried. Deliveries of one hook run
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

    /// Delivers the events of a batch that pass `hook`'s keywords (both
    /// readers hand over only events on the hook's subject), each with its
    /// text as published; records the deliveries and moves the hook's
    /// `cursor` in one transaction.
    async fn handle(
        &self,
        hook: &Hook,
        events: Vec<(CloudEvent, bytes::Bytes)>,
        cursor: Option<(String, i64)>,
    ) -> Result<(), String> {
        self.stats
            .seen
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        let (wanted, published): (Vec<CloudEvent>, Vec<bytes::Bytes>) =
            events.into_iter().filter(|(e, _)| hook.passes(e)).unzip();
        if wanted.is_empty() {
            return self.commit(Vec::new(), cursor).await;
        }
        self.stats
            .matched
            .fetch_add(wanted.len() as u64, Ordering::Relaxed);
        let recs: Vec<DeliveryRecord> = if Deliverer::batch_size(hook) > 1 {
            self.deliverer
                .deliver_all_as_published(hook, &wanted, &published)
                .await
        } else {
            let jobs: Vec<_> = wanted
                .iter()
                .zip(&published)
                .map(|(e, text)| Box::pin(self.deliverer.deliver_as_published(hook, e, Some(text))))
                .collect();
            futures::stream::iter(jobs)
                .buffered(Self::concurrency(hook))
                .collect()
                .await
        };
        for r in &recs {
            let n = r.events() as u64;
            if r.status == "failed" {
                self.stats.failed.fetch_add(n, Ordering::Relaxed);
                let what = match n {
                    1 => format!("event {} ({})", r.event_id, r.subject),
                    _ => format!("{n} events from {} ({})", r.event_id, r.subject),
                };
                eprintln!(
                    "warning: hook {} could not deliver {what}: {}",
                    r.hook, r.detail
                );
            } else {
                self.stats.delivered.fetch_add(n, Ordering::Relaxed);
            }
        }
        self.commit(recs, cursor).await
    }

    async fn commit(
        &self,
        recs: Vec<DeliveryRecord>,
        cursor: Option<(String, i64)>,
    ) -> Result<(), String> {
        if recs.is_empty() && cursor.is_none() {
            return Ok(());
        }
        self.feed
            .store()
            .record_deliveries(recs, cursor)
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
                let events = batch.into_iter().map(|l| (l.event, l.body)).collect();
                self.handle(hook, events, Some((hook.key.clone(), at)))
                    .await?;
                pos = at;
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

    /// Where a hook starts on the stream `now` describes: after its
    /// position there; at the end for a new hook; at the beginning when
    /// the stream was made anew since (everything in it is new to the
    /// hook). The stream's creation time is kept beside the position,
    /// under `KEY:created`.
    async fn start_at(&self, hook: &Hook, key: &str, now: nats::Position) -> Result<u64, String> {
        let store: &Arc<dyn Store> = self.feed.store();
        let err = |e: crate::store::StoreError| e.to_string();
        let created_key = format!("{key}:created");
        let saved = store.hook_cursor(key).await.map_err(err)?;
        let created = store.hook_cursor(&created_key).await.map_err(err)?;
        let start = match saved {
            None => now.last,
            Some(_) if created != Some(now.created) => {
                eprintln!(
                    "warning: hook {}: stream `{}` was made anew since this hook last ran; delivering what it holds",
                    hook.key,
                    self.feed.nats().map_or("", |n| n.cfg.stream.as_str())
                );
                0
            }
            Some(p) if p as u64 > now.last => {
                eprintln!(
                    "warning: hook {}: its position {p} is past the stream's end ({}); starting at the end",
                    hook.key, now.last
                );
                now.last
            }
            Some(p) => return Ok(p as u64),
        };
        // The position first: stopped between the two writes, the next
        // start sees an old creation time and delivers again rather than
        // skips.
        store
            .set_hook_cursor(key, start as i64)
            .await
            .map_err(err)?;
        store
            .set_hook_cursor(&created_key, now.created)
            .await
            .map_err(err)?;
        Ok(start)
    }

    async fn run_nats(
        &self,
        n: &nats::Nats,
        hook: &Hook,
        cancel: &CancellationToken,
    ) -> Result<(), String> {
        let mut backoff = Duration::from_millis(200);
        let now = loop {
            match nats::position(n).await {
                Ok(p) => break p,
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
        let key = format!("nats:{}:{}", n.cfg.stream, hook.key);
        let mut pos = self.start_at(hook, &key, now).await?;
        let stats = n.client.statistics();
        let connects = || stats.connects.load(Ordering::Relaxed);
        loop {
            // A new consumer each time (the old one, if the server still
            // has it, goes by itself when nobody pulls from it).
            let name = nats::consumer_name(&hook.key);
            let connected = connects();
            let stream = tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                s = nats::follow(n, &name, &hook.subject, pos) => s,
            };
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("warning: hook {}: {e}", hook.key);
                    tokio::select! {
                        _ = cancel.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                    continue;
                }
            };
            // Read and decoded by a task of its own, so the stream keeps
            // flowing while a chunk is delivered and recorded.
            let (mut rx, _reader) = read_ahead(stream, hook.key.clone());
            let mut check = tokio::time::interval(Duration::from_millis(250));
            loop {
                let first = tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    c = rx.recv() => c,
                    _ = check.tick() => {
                        // Reconnected (a server restart loses the consumer):
                        // follow again from what was handled, at once.
                        if connects() != connected {
                            break;
                        }
                        continue;
                    }
                };
                // The stream ended (connection lost for good): open another.
                let Some(first) = first else { break };
                // A chunk: what is read within a few milliseconds of the
                // first event, up to 500 (one transaction per chunk).
                let mut chunk = vec![first];
                let until = tokio::time::Instant::now() + CHUNK_WAIT;
                while chunk.len() < 500 && chunk.last().is_some_and(|m| m.is_ok()) {
                    match tokio::time::timeout_at(until, rx.recv()).await {
                        Ok(Some(m)) => chunk.push(m),
                        _ => break,
                    }
                }
                let mut events = Vec::with_capacity(chunk.len());
                let mut last = None;
                let mut failed = None;
                for m in chunk {
                    match m {
                        Ok((seq, e)) => {
                            last = Some(seq);
                            events.extend(e);
                        }
                        Err(e) => failed = Some(e),
                    }
                }
                self.handle(hook, events, last.map(|s| (key.clone(), s as i64)))
                    .await?;
                pos = last.unwrap_or(pos);
                // The consumer could not go on (re-creating it failed):
                // follow again from what was handled.
                if let Some(e) = failed {
                    eprintln!(
                        "warning: hook {}: {e}; following again from {pos}",
                        hook.key
                    );
                    break;
                }
            }
        }
    }
}

/// One message read ahead: its stream sequence and the event with its
/// text as published (`None` when the payload is not a CloudEvent), or
/// why the stream stopped.
type ReadAhead = Result<(u64, Option<(CloudEvent, bytes::Bytes)>), String>;

/// Reads `stream` into a bounded channel from a task of its own (ended
/// when the returned guard is dropped); the first error ends it.
fn read_ahead(
    mut stream: async_nats::jetstream::consumer::pull::Ordered,
    hook: String,
) -> (
    tokio::sync::mpsc::Receiver<ReadAhead>,
    tokio_util::task::AbortOnDropHandle<()>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(2000);
    let task = tokio::spawn(async move {
        while let Some(m) = stream.next().await {
            let item = match m {
                Ok(m) => match m.info() {
                    Ok(info) => Ok((
                        info.stream_sequence,
                        nats::decode(&m).map(|e| (e, m.payload.clone())),
                    )),
                    Err(e) => {
                        eprintln!("warning: hook {hook}: {e}");
                        continue;
                    }
                },
                Err(e) => Err(e.to_string()),
            };
            let stop = item.is_err();
            if tx.send(item).await.is_err() || stop {
                return;
            }
        }
    });
    (rx, tokio_util::task::AbortOnDropHandle::new(task))
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
