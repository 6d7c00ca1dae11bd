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
    ///
    /// The JetStream publish protocol, batched: each event is a core
    /// publish with `Nats-Msg-Id` and a reply subject `INBOX.i` under one
    /// inbox subscribed for the batch, and its ack is the stream's answer
    /// there; one deadline covers the batch. (async-nats' JetStream
    /// publish gives every message its own inbox, reply channel, permit
    /// and two timers: publishing was 12% of this process's CPU in the
    /// benchmark's publish -> hook path, 8% this way.)
    pub async fn publish_all(&self, events: &[(String, String, bytes::Bytes)]) -> PublishOutcome {
        let mut out = PublishOutcome::default();
        if events.is_empty() {
            return out;
        }
        let timeout = self.cfg.ack_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let inbox = self.client.new_inbox();
        let mut replies =
            match tokio::time::timeout_at(deadline, self.client.subscribe(format!("{inbox}.*")))
                .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    out.error = Some(format!("subscribing to acks: {e}"));
                    return out;
                }
                Err(_) => {
                    out.error = Some(format!("subscribing to acks: timed out after {timeout:?}"));
                    return out;
                }
            };
        let mut sent = 0;
        let mut error = None;
        let send_all = async {
            for (i, (id, subject, body)) in events.iter().enumerate() {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", id.as_str());
                self.client
                    .publish_with_reply_and_headers(
                        subject.clone(),
                        format!("{inbox}.{i}"),
                        headers,
                        body.clone(),
                    )
                    .await
                    .map_err(|e| format!("event {id} on `{subject}`: {e}"))?;
                sent += 1;
            }
            Ok::<(), String>(())
        };
        match tokio::time::timeout_at(deadline, send_all).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error = Some(e),
            Err(_) => {
                error = Some(format!(
                    "sending {} events: timed out after {timeout:?} with {sent} sent",
                    events.len()
                ))
            }
        }
        // Acks normally come back in order; each is put in its place.
        let mut acks: Vec<Option<Result<bool, String>>> = vec![None; sent];
        let mut missing = sent;
        while missing > 0 {
            let Ok(Some(m)) = tokio::time::timeout_at(deadline, replies.next()).await else {
                // Timed out, or the connection went: what was not acked
                // is not known.
                break;
            };
            let Some(i) = m
                .subject
                .rsplit('.')
                .next()
                .and_then(|t| t.parse::<usize>().ok())
                .filter(|i| *i < sent)
            else {
                continue;
            };
            if acks[i].is_none() {
                missing -= 1;
            }
            acks[i] = Some(read_ack(&m));
        }
        // Unsubscribed when dropped (without waiting on the connection).
        drop(replies);
        for (ack, (id, subject, _)) in acks.into_iter().zip(events) {
            match ack {
                Some(Ok(duplicate)) => {
                    out.acked += 1;
                    out.duplicates += usize::from(duplicate);
                }
                Some(Err(e)) => {
                    error = Some(format!("event {id} on `{subject}`: {e}"));
                    break;
                }
                None => {
                    error = Some(format!(
                        "event {id} on `{subject}`: no ack within {timeout:?} (connection lost, or the server is overloaded)"
                    ));
                    break;
                }
            }
        }
        out.error = error;
        out
    }
}

/// The stream's answer to one publish: `Ok(duplicate)` or why it was not
/// stored (the caller names the event and its subject).
fn read_ack(m: &async_nats::Message) -> Result<bool, String> {
    if m.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
        return Err("no stream stores this subject (no responders)".into());
    }
    if let Some(code) = m.status.filter(|c| !c.is_success()) {
        return Err(format!(
            "status {code}: {}",
            m.description.as_deref().unwrap_or("")
        ));
    }
    #[derive(serde::Deserialize)]
    struct Ack {
        #[serde(default)]
        duplicate: bool,
        #[serde(default)]
        error: Option<ApiError>,
        #[serde(default)]
        seq: Option<u64>,
    }
    #[derive(serde::Deserialize)]
    struct ApiError {
        #[serde(default)]
        code: u16,
        #[serde(default)]
        description: String,
    }
    match serde_json::from_slice::<Ack>(&m.payload) {
        Ok(Ack { error: Some(e), .. }) => {
            Err(format!("JetStream error {}: {}", e.code, e.description))
        }
        Ok(Ack {
            seq: Some(_),
            duplicate,
            ..
        }) => Ok(duplicate),
        Ok(_) | Err(_) => Err(format!(
            "unexpected ack `{}`",
            String::from_utf8_lossy(&m.payload)
        )),
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
        ops_model::id::unique_hex("consumer", 4)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(payload: &str, status: Option<u16>) -> async_nats::Message {
        async_nats::Message {
            subject: "_INBOX.x.3".into(),
            reply: None,
            payload: bytes::Bytes::copy_from_slice(payload.as_bytes()),
            headers: None,
            status: status.map(|s| async_nats::StatusCode::from_u16(s).unwrap()),
            description: status.map(|_| "no responders".to_owned()),
            length: payload.len(),
        }
    }

    #[test]
    fn acks_say_stored_duplicate_or_why_not() {
        let read = |payload: &str, status| read_ack(&ack(payload, status));
        assert_eq!(read(r#"{"stream":"ops","seq":7}"#, None), Ok(false));
        assert_eq!(
            read(r#"{"stream":"ops","seq":7,"duplicate":true}"#, None),
            Ok(true)
        );
        let e = read("", Some(503)).unwrap_err();
        assert_eq!(e, "no stream stores this subject (no responders)");
        let e = read(
            r#"{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}"#,
            None,
        )
        .unwrap_err();
        assert_eq!(e, "JetStream error 503: maximum messages exceeded");
        let e = read("+OK", None).unwrap_err();
        assert!(e.contains("unexpected ack `+OK`"), "{e}");
    }
}
