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
//!   (`hook_{namespace}_{name}_{n}`, ephemeral, no acks: the server
//!   neither tracks each event as pending nor waits for acks, which was a
//!   third of the hook path's cost).
//! - Where the subject filter runs ([`Filtering`]): the consumer starts
//!   filtered by the hook's subject, so the server sends only what the
//!   hook wants. But the server finds each next event by matching a
//!   wildcard pattern against every subject of the stream's block, and
//!   when most events match that costs it more than delivering them
//!   (measured: 2.8 - 4.8 instead of 6.5 - 10.6 µs of server CPU per
//!   event for a hook on `ops.clusters.*.nodes.*.findings` reading a
//!   backlog of 64 such subjects). So the reader measures the share of
//!   the stream's sequence the hook wants, over windows of 4,096
//!   ([`Share`]): at half or more it follows the whole stream and matches
//!   subjects itself (an event the hook does not want is skipped before
//!   its payload is decoded); under a quarter it goes back to the
//!   server's filter. Switching follows again from the last event
//!   handled, as a reconnect does.
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
use super::{CloudEvent, log, nats, subject};
use ops_model::event::filter::Published;
use ops_store::{DeliveryRecord, Store};

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
    /// Times a hook's subject filter moved between the server and the
    /// reader (JetStream; see the module's notes).
    pub refiltered: AtomicU64,
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
            let span = tracing::info_span!("hook", hook = %hook.key);
            set.spawn(tracing::Instrument::instrument(
                async move {
                    let key = hook.key.clone();
                    let result = match me.feed.nats().cloned() {
                        Some(n) => me.run_nats(&n, &hook, &cancel).await,
                        None => me.run_log(&hook, &cancel).await,
                    };
                    if let Err(e) = result {
                        tracing::error!("hook {key} stopped: {e}");
                    }
                },
                span,
            ));
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

    /// Delivers the events of a batch that pass `hook`'s keywords (the
    /// reader hands over only events on the hook's subject), each with its
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
        let wanted = events.into_iter().filter(|(e, _)| hook.passes(e));
        self.deliver(hook, wanted.collect(), cursor).await
    }

    /// [`Self::handle`] for events that passed the hook's keywords (the
    /// JetStream reader filters as it reads; it counts what it saw).
    async fn deliver(
        &self,
        hook: &Hook,
        events: Vec<(CloudEvent, bytes::Bytes)>,
        cursor: Option<(String, i64)>,
    ) -> Result<(), String> {
        let (wanted, published): (Vec<CloudEvent>, Vec<bytes::Bytes>) = events.into_iter().unzip();
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
                tracing::warn!("hook {} could not deliver {what}: {}", r.hook, r.detail);
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
        let err = |e: ops_store::StoreError| e.to_string();
        let created_key = format!("{key}:created");
        let saved = store.hook_cursor(key).await.map_err(err)?;
        let created = store.hook_cursor(&created_key).await.map_err(err)?;
        let start = match saved {
            None => now.last,
            Some(_) if created != Some(now.created) => {
                tracing::warn!(
                    "hook {}: stream `{}` was made anew since this hook last ran; delivering what it holds",
                    hook.key,
                    self.feed.nats().map_or("", |n| n.cfg.stream.as_str())
                );
                0
            }
            Some(p) if p as u64 > now.last => {
                tracing::warn!(
                    "hook {}: its position {p} is past the stream's end ({}); starting at the end",
                    hook.key,
                    now.last
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
                    tracing::warn!("hook {}: {e}; retrying", hook.key);
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
        let mut filtering = Filtering::Server;
        let stats = n.client.statistics();
        let connects = || stats.connects.load(Ordering::Relaxed);
        loop {
            // A new consumer each time (the old one, if the server still
            // has it, goes by itself when nobody pulls from it).
            let name = nats::consumer_name(&hook.key);
            let connected = connects();
            let stream = tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                s = nats::follow(n, &name, filtering.server_filter(hook), pos) => s,
            };
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("hook {}: {e}", hook.key);
                    tokio::select! {
                        _ = cancel.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                    continue;
                }
            };
            // Read and decoded by a task of its own, so the stream keeps
            // flowing while a chunk is delivered and recorded.
            let (mut rx, _reader) =
                read_ahead(stream, hook, filtering, pos, Arc::clone(&self.stats));
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
                let Some(mut chunk) = first else { break };
                // A chunk: what is read within a few milliseconds of the
                // first event, about 500 (one transaction per chunk).
                let until = tokio::time::Instant::now() + CHUNK_WAIT;
                while chunk.len() < 500 && matches!(chunk.last(), Some(Ahead::Msg(..))) {
                    match tokio::time::timeout_at(until, rx.recv()).await {
                        Ok(Some(more)) => chunk.extend(more),
                        _ => break,
                    }
                }
                let mut events = Vec::with_capacity(chunk.len());
                let mut last = None;
                let mut failed = None;
                let mut refilter = None;
                for m in chunk {
                    match m {
                        Ahead::Msg(seq, e) => {
                            last = Some(seq);
                            events.extend(e);
                        }
                        Ahead::Refilter(f) => refilter = Some(f),
                        Ahead::Failed(e) => failed = Some(e),
                    }
                }
                self.deliver(hook, events, last.map(|s| (key.clone(), s as i64)))
                    .await?;
                pos = last.unwrap_or(pos);
                // The hook's share of the stream says its subject filter
                // is cheaper on the other side: follow again from here.
                if let Some(f) = refilter {
                    filtering = f;
                    self.stats.refiltered.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                // The consumer could not go on (re-creating it failed):
                // follow again from what was handled.
                if let Some(e) = failed {
                    tracing::warn!("hook {}: {e}; following again from {pos}", hook.key);
                    break;
                }
            }
        }
    }
}

/// Where a hook's subject filter runs while it follows the stream (see
/// the module's notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filtering {
    /// The consumer is filtered by the hook's subject.
    Server,
    /// The consumer sends every event of the stream; the reader matches.
    Reader,
}

impl Filtering {
    /// The consumer's filter for `hook`.
    fn server_filter(self, hook: &Hook) -> Option<&str> {
        match self {
            Filtering::Server => Some(&hook.subject),
            Filtering::Reader => None,
        }
    }
}

/// The share of the stream's events a hook wants, measured over windows
/// of [`Share::WINDOW`] stream sequence numbers, and where its filter
/// should run for that share.
#[derive(Debug)]
struct Share {
    now: Filtering,
    /// The sequence the window starts after.
    from: u64,
    /// Events in the window the hook wants.
    wanted: u64,
}

impl Share {
    const WINDOW: u64 = 4096;

    fn new(now: Filtering, after: u64) -> Self {
        Share {
            now,
            from: after,
            wanted: 0,
        }
    }

    /// Sequence `seq` was delivered (`wanted`: on the hook's subject);
    /// at the end of a window, the other side when the share says so: the
    /// reader at half or more, the server under a quarter (in between, it
    /// stays where it is). A filtered consumer delivers only what is
    /// wanted, so the share is what it delivered over the sequence
    /// numbers the window spans, either way.
    fn saw(&mut self, seq: u64, wanted: bool) -> Option<Filtering> {
        self.wanted += u64::from(wanted);
        let span = seq.saturating_sub(self.from);
        if span < Self::WINDOW {
            return None;
        }
        let wanted = std::mem::take(&mut self.wanted);
        self.from = seq;
        match self.now {
            Filtering::Server if wanted * 2 >= span => Some(Filtering::Reader),
            Filtering::Reader if wanted * 4 < span => Some(Filtering::Server),
            _ => None,
        }
    }
}

/// What the reader hands over.
// Nearly every item is a `Msg`: boxing it would cost an allocation per
// event to save space on the rare others.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Ahead {
    /// A message: its stream sequence, and the event with its text as
    /// published (`None`: not on the hook's subject, not a CloudEvent, or
    /// it did not pass the hook's keywords).
    Msg(u64, Option<(CloudEvent, bytes::Bytes)>),
    /// The filter should run on the other side; the reader stopped.
    Refilter(Filtering),
    /// Why the stream stopped.
    Failed(String),
}

/// Reads `stream` (following the hook's events after `after`, filtered as
/// `filtering` says) into a bounded channel from a task of its own (ended
/// when the returned guard is dropped); the first error, or a change of
/// where the filter should run, ends it. What the stream has ready at
/// once travels together: one wake-up and one channel send per run of
/// messages, not per message (live, where messages come one by one, this
/// process's CPU per event in the benchmark's publish -> hook path fell
/// from 13.2 to 10.6 - 11.8 µs).
fn read_ahead(
    stream: async_nats::jetstream::consumer::pull::Ordered,
    hook: &Hook,
    filtering: Filtering,
    after: u64,
    stats: Arc<DispatchStats>,
) -> (
    tokio::sync::mpsc::Receiver<Vec<Ahead>>,
    tokio_util::task::AbortOnDropHandle<()>,
) {
    // Up to 8 runs of up to 500 messages read ahead.
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let hook = hook.clone();
    let task = tokio::spawn(async move {
        let (key, pattern) = (&hook.key, &hook.subject);
        let mut share = Share::new(filtering, after);
        let mut pick = Pick::default();
        let mut runs = stream.ready_chunks(500);
        while let Some(run) = runs.next().await {
            let mut out = Vec::with_capacity(run.len());
            let mut stop = false;
            for m in run {
                let m = match m {
                    Ok(m) => m,
                    Err(e) => {
                        out.push(Ahead::Failed(e.to_string()));
                        stop = true;
                        break;
                    }
                };
                let seq = match m.info() {
                    Ok(info) => info.stream_sequence,
                    Err(e) => {
                        tracing::warn!("hook {key}: {e}");
                        continue;
                    }
                };
                let wanted =
                    filtering == Filtering::Server || subject::matches(pattern, &m.subject);
                let event = if wanted {
                    pick.pick(&hook, &m.payload, &stats)
                } else {
                    None
                };
                let refilter = share.saw(seq, wanted);
                out.push(Ahead::Msg(seq, event));
                if let Some(f) = refilter {
                    out.push(Ahead::Refilter(f));
                    stop = true;
                    break;
                }
            }
            if out.is_empty() {
                continue;
            }
            if tx.send(out).await.is_err() || stop {
                return;
            }
        }
    });
    (rx, tokio_util::task::AbortOnDropHandle::new(task))
}

/// What a reader keeps from one event to the next to pick events.
#[derive(Default)]
struct Pick {
    text: String,
    path: String,
}

impl Pick {
    /// The event in `payload` with its text, if it is a CloudEvent that
    /// passes `hook`'s keywords (counted in `seen` if it is one): read
    /// without building its `data` ([`Published`]), rendered and
    /// matched from its text, and made into a [`CloudEvent`] only if it
    /// passes, with its `data` only if the sink reads it.
    fn pick(
        &mut self,
        hook: &Hook,
        payload: &bytes::Bytes,
        stats: &DispatchStats,
    ) -> Option<(CloudEvent, bytes::Bytes)> {
        let p = Published::read(payload)?;
        stats.seen.fetch_add(1, Ordering::Relaxed);
        // Rendering `data` and decoding it fail alike: nested deeper than
        // the JSON reader goes (128 levels).
        let unreadable = || {
            tracing::warn!(
                "hook {}: {} skipped: its data is nested too deep to read",
                hook.key,
                p.name()
            );
        };
        if hook.has_keywords() {
            if !p.render_into(&mut self.text, &mut self.path) {
                unreadable();
                return None;
            }
            if !hook.passes_text(&self.text) {
                return None;
            }
        }
        let Some(e) = p.event(super::hooks::reads_data(hook, payload)) else {
            unreadable();
            return None;
        };
        Some((e, payload.clone()))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `share` the sequences `seqs` (wanted when `wanted(seq)`),
    /// returning the first move it asks for and at which sequence.
    fn first_move(
        share: &mut Share,
        seqs: impl IntoIterator<Item = u64>,
        wanted: impl Fn(u64) -> bool,
    ) -> Option<(u64, Filtering)> {
        seqs.into_iter()
            .find_map(|s| share.saw(s, wanted(s)).map(|f| (s, f)))
    }

    #[test]
    fn the_filter_moves_with_the_hooks_share_of_the_stream() {
        // Filtered by the server, every sequence delivered: the reader
        // takes over at the end of the first window.
        let mut s = Share::new(Filtering::Server, 100);
        assert_eq!(
            first_move(&mut s, 101..20_000, |_| true),
            Some((100 + Share::WINDOW, Filtering::Reader))
        );
        // Filtered by the server, one in three delivered (the gaps are
        // other subjects): a third is not half, it stays.
        let mut s = Share::new(Filtering::Server, 0);
        assert_eq!(first_move(&mut s, (3..60_000).step_by(3), |_| true), None);
        // Half is enough.
        let mut s = Share::new(Filtering::Server, 0);
        assert_eq!(
            first_move(&mut s, (2..60_000).step_by(2), |_| true),
            Some((Share::WINDOW, Filtering::Reader))
        );
        // The reader sees everything: a fifth wanted goes back to the
        // server, a third stays.
        let mut s = Share::new(Filtering::Reader, 0);
        assert_eq!(
            first_move(&mut s, 1..60_000, |q| q % 5 == 0),
            Some((Share::WINDOW, Filtering::Server))
        );
        let mut s = Share::new(Filtering::Reader, 0);
        assert_eq!(first_move(&mut s, 1..60_000, |q| q % 3 == 0), None);
        // Windows are measured afresh: a dense stretch after a sparse one
        // moves the filter only once a window of its own says so (the one
        // from 4,100 to 8,196 was mostly sparse).
        let mut s = Share::new(Filtering::Server, 0);
        let sparse = (50..8_192).step_by(50);
        assert_eq!(first_move(&mut s, sparse, |_| true), None);
        assert_eq!(
            first_move(&mut s, 8_193..20_000, |_| true),
            Some((8_196 + Share::WINDOW, Filtering::Reader))
        );
    }
}
