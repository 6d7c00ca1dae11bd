//! The embedded event log: events kept in the store (table `events`),
//! deduplicated by id, queried by subject pattern and time. This is what
//! `opscli events query|tail` read when no NATS server is configured.

use std::sync::Arc;

use super::{CloudEvent, subject};
use ops_store::{EventRecord, Store, StoreError};

/// Why an event could not be recorded or read.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The event is malformed.
    #[error("event: {0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Records `e`; `false` if an event with its id was already recorded.
pub async fn record(store: &Arc<dyn Store>, e: &CloudEvent) -> Result<bool, LogError> {
    e.validate().map_err(LogError::Invalid)?;
    let body = serde_json::to_string(e).map_err(|x| LogError::Invalid(x.to_string()))?;
    Ok(store
        .append_event(&EventRecord {
            seq: 0,
            id: e.id.clone(),
            subject: e.subject.clone(),
            time: e.time.clone(),
            body,
        })
        .await?)
}

/// Events on subjects matching `pattern` after log position `after`, at
/// or after `since`, oldest first, at most `limit`; with the position of
/// the last one read (to continue from).
pub async fn query(
    store: &Arc<dyn Store>,
    pattern: &str,
    after: i64,
    since: Option<&str>,
    limit: usize,
) -> Result<(Vec<CloudEvent>, i64), LogError> {
    if !subject::valid_pattern(pattern) {
        return Err(LogError::Invalid(format!(
            "subject pattern `{pattern}` is not valid"
        )));
    }
    let mut out = Vec::new();
    let mut pos = after;
    loop {
        let page = store.list_events(pos, since, 1000).await?;
        if page.is_empty() {
            break;
        }
        for r in page {
            if out.len() >= limit {
                return Ok((out, pos));
            }
            pos = r.seq;
            if subject::matches(pattern, &r.subject) {
                if let Ok(e) = serde_json::from_str::<CloudEvent>(&r.body) {
                    out.push(e);
                }
            }
        }
    }
    Ok((out, pos))
}

/// Like [`query`], with each event's log position and text: events on subjects
/// matching `pattern` after `after`, at most `limit`, and the position of
/// the last record looked at (matching or not).
pub async fn read(
    store: &Arc<dyn Store>,
    pattern: &str,
    after: i64,
    limit: usize,
) -> Result<(Vec<Logged>, i64), LogError> {
    let mut out = Vec::new();
    let mut pos = after;
    let page = store.list_events(after, None, limit).await?;
    for r in page {
        pos = r.seq;
        if subject::matches(pattern, &r.subject) {
            if let Ok(e) = serde_json::from_str::<CloudEvent>(&r.body) {
                out.push(Logged {
                    seq: r.seq,
                    event: e,
                    body: r.body.into(),
                });
            }
        }
    }
    Ok((out, pos))
}

/// An event read from the log.
#[derive(Debug, Clone)]
pub struct Logged {
    /// Its position in the log.
    pub seq: i64,
    /// The event.
    pub event: CloudEvent,
    /// It as it was published (JSON).
    pub body: bytes::Bytes,
}
