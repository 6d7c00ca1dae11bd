//! Where events go: [`feed::Feed`] publishes every event embedded (no NATS
//! URL) into the in-process [`Bus`] and the event log in the store
//! ([`log`]); at scale into NATS JetStream ([`nats`]) with an on-disk
//! outbox for outages. [`hooks`] delivers events to EventHooks' sinks and
//! [`dispatch`] runs the hooks over the feed. The vocabulary (CloudEvent,
//! subjects, keyword filters, compiled hooks) is `ops_model::event`.

pub mod dispatch;
pub mod feed;
pub mod hooks;
pub mod log;
pub mod nats;

use std::sync::Arc;

use ops_model::event::{CloudEvent, subject};
use tokio::sync::broadcast;

/// The embedded bus: publish to every live subscriber whose pattern
/// matches. Bounded: a subscriber that falls more than `capacity` events
/// behind is told how many it missed ([`Received::Lagged`]), never
/// blocks publishers.
#[derive(Debug, Clone)]
pub struct Bus {
    tx: broadcast::Sender<Arc<CloudEvent>>,
}

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// An event on a matching subject.
    Event(Arc<CloudEvent>),
    /// This many events were dropped because the subscriber was slow.
    Lagged(u64),
}

/// A subscription to a subject pattern.
#[derive(Debug)]
pub struct Subscription {
    pattern: String,
    rx: broadcast::Receiver<Arc<CloudEvent>>,
}

impl Subscription {
    /// The next matching event; `None` when the bus is gone.
    pub async fn next(&mut self) -> Option<Received> {
        loop {
            match self.rx.recv().await {
                Ok(e) if subject::matches(&self.pattern, &e.subject) => {
                    return Some(Received::Event(e));
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => return Some(Received::Lagged(n)),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

impl Bus {
    /// A bus that buffers `capacity` events per subscriber.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Bus { tx }
    }

    /// Publishes a valid event; returns how many subscribers got it.
    pub fn publish(&self, e: CloudEvent) -> Result<usize, String> {
        e.validate()?;
        Ok(self.tx.send(Arc::new(e)).unwrap_or(0))
    }

    /// Subscribes to `pattern` (`*`, `>` as in NATS).
    pub fn subscribe(&self, pattern: &str) -> Result<Subscription, String> {
        if !subject::valid_pattern(pattern) {
            return Err(format!("subject pattern `{pattern}` is not valid"));
        }
        Ok(Subscription {
            pattern: pattern.to_owned(),
            rx: self.tx.subscribe(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ops_model::event::subject;
    use serde_json::Value;

    #[tokio::test]
    async fn subscribers_get_matching_events_and_hear_about_lag() {
        let bus = Bus::new(4);
        let mut nodes = bus.subscribe("ops.clusters.*.nodes.*.findings").unwrap();
        let mut all = bus.subscribe("ops.>").unwrap();
        let ev = |s: String| CloudEvent::new("t", "dev.ops.test", s, Value::Null);
        bus.publish(ev(subject::node("c1", "n1", subject::Channel::Findings)))
            .unwrap();
        bus.publish(ev(subject::object(
            "c1",
            "ns",
            "hosts",
            "h",
            subject::Channel::Findings,
        )))
        .unwrap();
        let Some(Received::Event(e)) = nodes.next().await else {
            panic!()
        };
        assert_eq!(e.subject, "ops.clusters.c1.nodes.n1.findings");
        let Some(Received::Event(_)) = all.next().await else {
            panic!()
        };
        let Some(Received::Event(e)) = all.next().await else {
            panic!()
        };
        assert!(e.subject.contains(".hosts.h."));
        for i in 0..6 {
            bus.publish(ev(format!("ops.x.{i}"))).unwrap();
        }
        assert_eq!(all.next().await, Some(Received::Lagged(2)));
        assert!(bus.subscribe("ops.>.x").is_err());
    }
}
