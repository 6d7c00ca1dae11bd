//! The event feed at scale: NATS JetStream. One long-lived connection per
//! process (reconnecting in the background), a stream (default `ops`) on
//! `ops.>` created when missing, publishes carrying the event id as
//! `Nats-Msg-Id` so the stream drops a re-sent duplicate, and acks awaited
//! with a timeout. Readers: [`query`] (an ephemeral consumer that reads
//! what is there and stops) and [`follow`] (hooks: an ordered consumer
//! from a sequence the reader keeps, so it resumes where it stopped after
//! a restart).

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;

use super::CloudEvent;

/// Stream and connection settings.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// `nats://host:port` (several, comma-separated, for a cluster).
    pub url: String,
    /// The stream's name.
    pub stream: String,
    /// How long the stream keeps events.
    pub max_age: Duration,
    /// How long the stream remembers message ids (a re-send within it is
    /// dropped as a duplicate).
    pub duplicate_window: Duration,
    /// How long to wait for the server to ack a publish.
    pub ack_timeout: Duration,
}

impl NatsConfig {
    /// Defaults for `url`: stream `ops`, events kept 7 days, duplicates
    /// detected for 10 minutes, acks awaited 5 s.
    pub fn new(url: impl Into<String>) -> Self {
        NatsConfig {
            url: url.into(),
            stream: "ops".into(),
            max_age: Duration::from_secs(7 * 24 * 3600),
            duplicate_window: Duration::from_secs(600),
            ack_timeout: Duration::from_secs(5),
        }
    }
}

/// Why talking to NATS failed.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// The URL or options are wrong (nothing was tried).
    #[error("NATS {url}: {detail}")]
    Config {
        /// The URL.
        url: String,
        /// What is wrong.
        detail: String,
    },
    /// The server did not answer or refused.
    #[error("NATS {url}: {what}: {detail}")]
    Server {
        /// The URL.
        url: String,
        /// What was being done.
        what: String,
        /// The error.
        detail: String,
    },
}

/// A connection and its JetStream context.
#[derive(Debug, Clone)]
pub struct Nats {
    /// Settings.
    pub cfg: NatsConfig,
    /// The client (one connection).
    pub client: async_nats::Client,
    /// JetStream, with the ack timeout applied.
    pub js: jetstream::Context,
}

impl Nats {
    /// Connects. With `wait`, the server must answer within 5 s; without,
    /// the connection is made (and remade) in the background, so a
    /// publisher can start while NATS is down.
    pub async fn connect(cfg: NatsConfig, wait: bool) -> Result<Nats, NatsError> {
        let mut opts = async_nats::ConnectOptions::new()
            .name("opscli")
            .connection_timeout(Duration::from_secs(5))
            .request_timeout(Some(cfg.ack_timeout))
            .max_reconnects(None)
            .client_capacity(16 * 1024)
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((100 * attempts as u64).clamp(100, 2000))
            });
        if !wait {
            opts = opts.retry_on_initial_connect();
        }
        let client = opts.connect(cfg.url.as_str()).await.map_err(|e| {
            let detail = e.to_string();
            if matches!(e.kind(), async_nats::ConnectErrorKind::ServerParse) {
                NatsError::Config {
                    url: cfg.url.clone(),
                    detail,
                }
            } else {
                NatsError::Server {
                    url: cfg.url.clone(),
                    what: "connect".into(),
                    detail,
                }
            }
        })?;
        let js = jetstream::context::ContextBuilder::new()
            .timeout(cfg.ack_timeout)
            .max_ack_inflight(8192)
            .build(client.clone());
        Ok(Nats { cfg, client, js })
    }

    /// Whether the connection is up now.
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    fn server_err(&self, what: &str, e: impl std::fmt::Display) -> NatsError {
        NatsError::Server {
            url: self.cfg.url.clone(),
            what: what.into(),
            detail: e.to_string(),
        }
    }

    /// The stream, created on `ops.>` when missing (an existing stream's
    /// settings are left as the operator set them).
    pub async fn stream(&self) -> Result<stream::Stream, NatsError> {
        self.js
            .get_or_create_stream(stream::Config {
                name: self.cfg.stream.clone(),
                subjects: vec!["ops.>".into()],
                max_age: self.cfg.max_age,
                duplicate_window: self.cfg.duplicate_window,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| self.server_err(&format!("stream `{}`", self.cfg.stream), e))
    }

    /// Publishes `events` pipelined (every publish sent, then the acks
    /// awaited). Returns how many from the start were acked; the first
    /// failure ends the count (later ones may have been stored too: a
    /// re-send is deduplicated by id) and its error. Duplicates the server
    /// dropped count as acked; their number is the third value.
    pub async fn publish_all(&self, events: &[(String, String, bytes::Bytes)]) -> PublishOutcome {
        let mut acks = Vec::with_capacity(events.len());
        let mut error = None;
        for (id, subject, body) in events {
            let msg = jetstream::message::PublishMessage::build()
                .payload(body.clone())
                .message_id(id);
            match self.js.send_publish(subject.clone(), msg).await {
                Ok(ack) => acks.push(ack),
                Err(e) => {
                    error = Some(e.to_string());
                    break;
                }
            }
        }
        // Acks come back in order: awaited one after another (most are
        // already in when their turn comes), stopping at the first failure.
        let mut out = PublishOutcome::default();
        for ack in acks {
            match ack.await {
                Ok(ack) => {
                    out.acked += 1;
                    if ack.duplicate {
                        out.duplicates += 1;
                    }
                }
                Err(e) => {
                    error = Some(e.to_string());
                    break;
                }
            }
        }
        out.error = error;
        out
    }
}

/// What [`Nats::publish_all`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PublishOutcome {
    /// Events acked, counted from the first.
    pub acked: usize,
    /// Of those, how many the stream already had.
    pub duplicates: usize,
    /// Why the rest were not acked.
    pub error: Option<String>,
}

/// The CloudEvent in a message (`None`: not one).
pub fn decode(m: &jetstream::Message) -> Option<CloudEvent> {
    serde_json::from_slice::<CloudEvent>(&m.payload).ok()
}

fn start_time(since: Option<&str>) -> Option<time::OffsetDateTime> {
    let t = chrono::DateTime::parse_from_rfc3339(since?).ok()?;
    time::OffsetDateTime::from_unix_timestamp_nanos(t.timestamp_nanos_opt()? as i128).ok()
}

/// Events on subjects matching `pattern` stored at or after `since`,
/// oldest first, the newest `limit`. Reads what the stream holds now and
/// stops (an ephemeral consumer, removed by the server afterwards).
pub async fn query(
    nats: &Nats,
    pattern: &str,
    since: Option<&str>,
    limit: usize,
) -> Result<Vec<CloudEvent>, NatsError> {
    let stream = nats.stream().await?;
    let deliver_policy = match start_time(since) {
        Some(start_time) => consumer::DeliverPolicy::ByStartTime { start_time },
        None => consumer::DeliverPolicy::All,
    };
    let c = stream
        .create_consumer(consumer::pull::Config {
            filter_subject: pattern.to_owned(),
            deliver_policy,
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .map_err(|e| nats.server_err("query consumer", e))?;
    let mut out = std::collections::VecDeque::new();
    loop {
        let mut batch = c
            .fetch()
            .max_messages(1000)
            .messages()
            .await
            .map_err(|e| nats.server_err("fetch", e))?;
        let mut n = 0;
        while let Some(m) = batch.next().await {
            let m = m.map_err(|e| nats.server_err("fetch", e))?;
            n += 1;
            if let Some(e) = decode(&m) {
                out.push_back(e);
                if out.len() > limit {
                    out.pop_front();
                }
            }
        }
        if n == 0 {
            break;
        }
    }
    Ok(out.into())
}

/// Where the stream stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// When the stream was made (Unix ns): a stream deleted and made
    /// again, or one on a new server, numbers its events from 1 again.
    pub created: i64,
    /// Its last sequence (0 when empty).
    pub last: u64,
}

/// See [`Position`].
pub async fn position(nats: &Nats) -> Result<Position, NatsError> {
    let stream = nats.stream().await?;
    let info = stream.cached_info();
    Ok(Position {
        created: info.created.unix_timestamp_nanos() as i64,
        last: info.state.last_sequence,
    })
}

/// Follows the stream's events after sequence `after`, on `filter` (a
/// subject pattern; `None`: every event in the stream, for a reader that
/// filters itself): an ordered consumer (ephemeral, no acks, in the
/// server's memory; the client re-creates it from the last sequence it
/// saw on a gap or a lost heartbeat, but only slowly after a server
/// restart, so a reader that sees a reconnect follows again itself).
/// Where a reader stands is the reader's to keep (hooks keep it in the
/// store, with their delivery records); the server forgets the consumer
/// 30 s after the reader goes.
pub async fn follow(
    nats: &Nats,
    name: &str,
    filter: Option<&str>,
    after: u64,
) -> Result<consumer::pull::Ordered, NatsError> {
    let stream = nats.stream().await?;
    let c = stream
        .create_consumer(consumer::pull::OrderedConfig {
            name: Some(name.to_owned()),
            filter_subject: filter.unwrap_or_default().to_owned(),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: after + 1,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| nats.server_err(&format!("consumer `{name}`"), e))?;
    c.messages()
        .await
        .map_err(|e| nats.server_err(&format!("consumer `{name}`"), e))
}

/// A hook's consumer name (`namespace/name`): `hook_{namespace}_{name}_{n}`
/// in characters NATS accepts, `n` unique to this process and call (two
/// `hook run` processes each follow the stream on their own).
pub fn consumer_name(hook: &str) -> String {
    format!(
        "hook_{}_{}",
        super::subject::token(hook),
        crate::id::unique_hex("consumer", 4)
    )
}
