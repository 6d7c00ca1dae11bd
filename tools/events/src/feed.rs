//! [`Feed`]: where every event is published, whatever the backend.
//!
//! - Embedded (no NATS URL): the event is recorded in the store's event
//!   log and handed to in-process subscribers ([`super::Bus`]).
//! - NATS: the event is serialised by the caller and queued to one
//!   publisher task per process (in-process readers consume NATS), which
//!   publishes batches to JetStream pipelined and awaits the acks. When
//!   NATS is down (not connected, or an ack times out) the event and every
//!   later one go to the store's **outbox**, a bounded on-disk queue; the
//!   task re-sends the outbox in order as soon as the connection is back,
//!   then returns to direct publishing. Publishing therefore never waits
//!   for NATS: a run's events cost a queue push (and, during an outage, a
//!   local write). Events are deduplicated by id in the stream, so an
//!   event whose ack was lost but which the server stored is not stored
//!   twice when it is re-sent.
//!
//! [`Feed::flush`] waits until everything published so far is acked or
//! in the outbox (a CLI calls it before exiting; what is in the outbox is
//! sent by the next process that publishes, or by `opscli events flush`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::nats::{Nats, NatsConfig, NatsError};
use super::{Bus, CloudEvent, log};
use ops_store::{EventRecord, Store};

/// Default bound of the outbox (events).
pub const OUTBOX_MAX: usize = 100_000;

/// How the feed publishes.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// JetStream settings; `None`: the embedded log.
    pub nats: Option<NatsConfig>,
    /// Most events the outbox holds; beyond that new events are dropped
    /// (counted and reported), never blocking the publisher.
    pub outbox_max: usize,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            nats: None,
            outbox_max: OUTBOX_MAX,
        }
    }
}

/// Counters since the feed started.
#[derive(Debug, Default)]
pub struct FeedStats {
    /// Events acked by JetStream when first published.
    pub published: AtomicU64,
    /// Events that went to the outbox.
    pub outboxed: AtomicU64,
    /// Outbox events re-sent and acked.
    pub resent: AtomicU64,
    /// Acks that said the stream already had the event.
    pub duplicates: AtomicU64,
    /// Events dropped because the outbox was full.
    pub dropped: AtomicU64,
    /// Events recorded in the embedded log.
    pub logged: AtomicU64,
}

/// A snapshot of [`FeedStats`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FeedCounts {
    /// See [`FeedStats::published`].
    pub published: u64,
    /// See [`FeedStats::outboxed`].
    pub outboxed: u64,
    /// See [`FeedStats::resent`].
    pub resent: u64,
    /// See [`FeedStats::duplicates`].
    pub duplicates: u64,
    /// See [`FeedStats::dropped`].
    pub dropped: u64,
    /// See [`FeedStats::logged`].
    pub logged: u64,
}

impl FeedStats {
    fn snapshot(&self) -> FeedCounts {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        FeedCounts {
            published: g(&self.published),
            outboxed: g(&self.outboxed),
            resent: g(&self.resent),
            duplicates: g(&self.duplicates),
            dropped: g(&self.dropped),
            logged: g(&self.logged),
        }
    }
}

/// Why an event was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The event is malformed.
    #[error("event: {0}")]
    Invalid(String),
    /// The embedded log could not record it.
    #[error(transparent)]
    Log(#[from] log::LogError),
    /// NATS settings are wrong.
    #[error(transparent)]
    Nats(#[from] NatsError),
    /// The publisher task is gone (the feed was closed).
    #[error("the event feed is closed")]
    Closed,
}

/// An event ready to send: id, subject, JSON body (serialised once, by
/// the publishing task).
type Wire = (String, String, bytes::Bytes);

enum Cmd {
    Event(Wire),
    Flush(oneshot::Sender<usize>),
}

/// The event feed: cheap to clone, one per process.
#[derive(Clone)]
pub struct Feed {
    store: Arc<dyn Store>,
    bus: Bus,
    nats: Option<(Nats, mpsc::Sender<Cmd>)>,
    stats: Arc<FeedStats>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("nats", &self.nats.as_ref().map(|(n, _)| &n.cfg.url))
            .finish_non_exhaustive()
    }
}

impl Feed {
    /// The embedded feed: the store's log and an in-process bus.
    pub fn embedded(store: Arc<dyn Store>) -> Feed {
        Feed {
            store,
            bus: Bus::new(4096),
            nats: None,
            stats: Arc::default(),
        }
    }

    /// The feed `cfg` asks for. With NATS the connection is made in the
    /// background: a server that is down now does not fail this (events
    /// wait in the outbox), a malformed URL does.
    pub async fn open(cfg: FeedConfig, store: Arc<dyn Store>) -> Result<Feed, FeedError> {
        let Some(ncfg) = cfg.nats.clone() else {
            return Ok(Feed::embedded(store));
        };
        let nats = Nats::connect(ncfg, false).await?;
        // Give a reachable server a moment, so a short-lived process does
        // not park its few events in the outbox just because the
        // connection was still being made.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while !nats.connected() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (tx, rx) = mpsc::channel(16 * 1024);
        let stats: Arc<FeedStats> = Arc::default();
        let worker = Publisher {
            nats: nats.clone(),
            store: Arc::clone(&store),
            stats: Arc::clone(&stats),
            outbox_max: cfg.outbox_max.max(1),
            stream_ready: false,
            backoff: Duration::from_millis(100),
            failing: false,
        };
        tokio::spawn(worker.run(rx));
        Ok(Feed {
            store,
            bus: Bus::new(4096),
            nats: Some((nats, tx)),
            stats,
        })
    }

    /// The NATS side, when configured.
    pub fn nats(&self) -> Option<&Nats> {
        self.nats.as_ref().map(|(n, _)| n)
    }

    /// The store behind the feed.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// In-process subscribers (what this process publishes).
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// Counters since the feed was opened.
    pub fn counts(&self) -> FeedCounts {
        self.stats.snapshot()
    }

    /// Publishes one event (validated first). Embedded: recorded before
    /// this returns. NATS: queued to the publisher (see the module docs).
    pub async fn publish(&self, e: CloudEvent) -> Result<(), FeedError> {
        e.validate().map_err(FeedError::Invalid)?;
        match &self.nats {
            None => {
                log::record(&self.store, &e).await?;
                self.stats.logged.fetch_add(1, Ordering::Relaxed);
                let _ = self.bus.publish(e);
            }
            Some((_, tx)) => {
                // In-process subscribers hear NATS events through NATS.
                let body = serde_json::to_vec(&e).map_err(|x| FeedError::Invalid(x.to_string()))?;
                tx.send(Cmd::Event((e.id, e.subject, body.into())))
                    .await
                    .map_err(|_| FeedError::Closed)?;
            }
        }
        Ok(())
    }

    /// Waits (at most `timeout`) until everything published so far is
    /// acked or in the outbox; returns how many events the outbox holds
    /// (`None`: the wait timed out).
    pub async fn flush(&self, timeout: Duration) -> Result<Option<usize>, FeedError> {
        let Some((_, tx)) = &self.nats else {
            return Ok(Some(0));
        };
        let (done, wait) = oneshot::channel();
        tx.send(Cmd::Flush(done))
            .await
            .map_err(|_| FeedError::Closed)?;
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(n)) => Ok(Some(n)),
            Ok(Err(_)) => Err(FeedError::Closed),
            Err(_) => Ok(None),
        }
    }
}

/// The one task per process that talks to JetStream.
struct Publisher {
    nats: Nats,
    store: Arc<dyn Store>,
    stats: Arc<FeedStats>,
    outbox_max: usize,
    stream_ready: bool,
    backoff: Duration,
    /// Publishing failed since the last success (said once, not per
    /// batch).
    failing: bool,
}

const BATCH: usize = 512;

fn record((id, subject, body): &Wire) -> EventRecord {
    EventRecord {
        seq: 0,
        id: id.clone(),
        subject: subject.clone(),
        time: String::new(),
        body: String::from_utf8_lossy(body).into_owned(),
    }
}

impl Publisher {
    async fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        let mut outbox = self.store.outbox_len().await.unwrap_or(0);
        loop {
            let first = if outbox > 0 {
                match tokio::time::timeout(self.backoff, rx.recv()).await {
                    Ok(c) => c.map(Some),
                    Err(_) => Some(None),
                }
            } else {
                rx.recv().await.map(Some)
            };
            let Some(first) = first else {
                // Every sender is gone: one last attempt to send the
                // outbox, then stop.
                if outbox > 0 && self.online().await {
                    self.drain(&mut outbox).await;
                }
                return;
            };
            let mut events = Vec::new();
            let mut flushes = Vec::new();
            let mut next = first;
            loop {
                match next {
                    Some(Cmd::Event(e)) => events.push(e),
                    Some(Cmd::Flush(d)) => flushes.push(d),
                    None => {}
                }
                if events.len() >= BATCH {
                    break;
                }
                match rx.try_recv() {
                    Ok(c) => next = Some(c),
                    Err(_) => break,
                }
            }
            let online = self.online().await;
            if outbox == 0 && online && !events.is_empty() {
                let sent = self.publish(&events).await.acked;
                self.stats
                    .published
                    .fetch_add(sent as u64, Ordering::Relaxed);
                events.drain(..sent);
            }
            if !events.is_empty() {
                outbox += self.park(&events).await;
            }
            if outbox > 0 && online {
                self.drain(&mut outbox).await;
            }
            if outbox > 0 {
                self.backoff = (self.backoff * 2).min(Duration::from_secs(2));
            } else {
                self.backoff = Duration::from_millis(100);
            }
            for f in flushes {
                let _ = f.send(outbox);
            }
        }
    }

    /// Connected, with the stream in place.
    async fn online(&mut self) -> bool {
        if !self.nats.connected() {
            return false;
        }
        if !self.stream_ready {
            match self.nats.stream().await {
                Ok(_) => self.stream_ready = true,
                Err(e) => tracing::warn!("{e}"),
            }
        }
        self.stream_ready
    }

    /// [`Nats::publish_all`], counting duplicates; on a failure the stream
    /// is checked again before the next try (a stream deleted under us is
    /// re-created), and the first failure after a success says why the
    /// events go to (or stay in) the outbox.
    async fn publish(&mut self, events: &[Wire]) -> super::nats::PublishOutcome {
        let out = self.nats.publish_all(events).await;
        self.stats
            .duplicates
            .fetch_add(out.duplicates as u64, Ordering::Relaxed);
        match &out.error {
            Some(e) => {
                self.stream_ready = false;
                if !self.failing {
                    tracing::warn!(
                        "NATS {}: {e}; events wait in the outbox until it takes them",
                        self.nats.cfg.url
                    );
                    self.failing = true;
                }
            }
            None => self.failing = false,
        }
        out
    }

    /// Appends to the outbox; how many fitted.
    async fn park(&mut self, events: &[Wire]) -> usize {
        let recs: Vec<EventRecord> = events.iter().map(record).collect();
        match self.store.outbox_push(&recs, self.outbox_max).await {
            Ok(n) => {
                self.stats.outboxed.fetch_add(n as u64, Ordering::Relaxed);
                if n < recs.len() {
                    let lost = (recs.len() - n) as u64;
                    self.stats.dropped.fetch_add(lost, Ordering::Relaxed);
                    tracing::warn!(
                        "event outbox is full ({} events): {lost} events dropped",
                        self.outbox_max
                    );
                }
                n
            }
            Err(e) => {
                self.stats
                    .dropped
                    .fetch_add(recs.len() as u64, Ordering::Relaxed);
                tracing::warn!(
                    "event outbox not written ({e}): {} events dropped",
                    recs.len()
                );
                0
            }
        }
    }

    /// Re-sends the outbox in order until it is empty or a publish fails.
    async fn drain(&mut self, outbox: &mut usize) {
        loop {
            let page = match self.store.outbox_peek(BATCH).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!("event outbox not readable: {e}");
                    return;
                }
            };
            if page.is_empty() {
                *outbox = 0;
                return;
            }
            let items: Vec<Wire> = page
                .iter()
                .map(|r| (r.id.clone(), r.subject.clone(), r.body.clone().into()))
                .collect();
            let out = self.publish(&items).await;
            if out.acked > 0 {
                let upto = page[out.acked - 1].seq;
                if let Err(e) = self.store.outbox_remove(upto).await {
                    tracing::warn!("event outbox not trimmed: {e}");
                    return;
                }
                self.stats
                    .resent
                    .fetch_add(out.acked as u64, Ordering::Relaxed);
                *outbox = outbox.saturating_sub(out.acked);
            }
            if out.error.is_some() {
                *outbox = self.store.outbox_len().await.unwrap_or(*outbox);
                return;
            }
        }
    }
}
