//! The event feed against a real `nats-server` with JetStream (started
//! here on a free loopback port): events land in the `ops` stream once
//! each (message-id dedup), a publisher started while the server is down
//! keeps its events in the outbox, and killing the server mid-stream then
//! starting it again loses nothing and duplicates nothing.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer;
use futures::StreamExt;
use ops_events::feed::{Feed, FeedConfig};
use ops_events::nats::{self as ev_nats, Nats, NatsConfig};
use ops_model::event::CloudEvent;
use ops_store::{SqliteStore, Store};
use ops_testkit::nats::NatsServer;
use serde_json::json;

fn store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open(&dir.path().join("ops.db")).unwrap())
}

fn event(i: usize) -> CloudEvent {
    CloudEvent::new(
        "test",
        "dev.ops.test",
        format!("ops.clusters.c1.nodes.n{}.findings", i % 7),
        json!({"i": i}),
    )
}

fn cfg(url: &str) -> FeedConfig {
    FeedConfig {
        nats: Some(NatsConfig {
            ack_timeout: Duration::from_secs(2),
            ..NatsConfig::new(url)
        }),
        ..FeedConfig::default()
    }
}

/// Every message in the stream, in stream order: (event id, data.i).
async fn stream_contents(url: &str) -> Vec<(String, u64)> {
    let n = Nats::connect(NatsConfig::new(url), true).await.unwrap();
    let stream = n.stream().await.unwrap();
    let c = stream
        .create_consumer(consumer::pull::Config {
            ack_policy: consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut out = Vec::new();
    loop {
        let mut batch = c.fetch().max_messages(1000).messages().await.unwrap();
        let mut got = 0;
        while let Some(m) = batch.next().await {
            let m = m.unwrap();
            got += 1;
            let e: CloudEvent = serde_json::from_slice(&m.payload).unwrap();
            out.push((e.id, e.data["i"].as_u64().unwrap()));
        }
        if got == 0 {
            return out;
        }
    }
}

#[tokio::test]
async fn events_land_once_and_resends_are_deduplicated() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let feed = Feed::open(cfg(&server.url), store(&dir)).await.unwrap();
    let events: Vec<CloudEvent> = (0..200).map(event).collect();
    for e in &events {
        feed.publish(e.clone()).await.unwrap();
    }
    assert_eq!(feed.flush(Duration::from_secs(20)).await.unwrap(), Some(0));
    assert_eq!(feed.counts().published, 200);

    // The same ids again (what an outbox re-send after a lost ack does).
    let n = feed.nats().unwrap();
    let again: Vec<(String, String, bytes::Bytes)> = events[..50]
        .iter()
        .map(|e| {
            (
                e.id.clone(),
                e.subject.clone(),
                serde_json::to_vec(e).unwrap().into(),
            )
        })
        .collect();
    let out = n.publish_all(&again).await;
    assert_eq!((out.acked, out.duplicates, out.error), (50, 50, None));

    let got = stream_contents(&server.url).await;
    assert_eq!(got.len(), 200);
    let order: Vec<u64> = got.iter().map(|(_, i)| *i).collect();
    assert_eq!(order, (0..200).collect::<Vec<u64>>(), "stream order");

    // Query by pattern reads the stream: node n3's events, newest 5.
    let q = ev_nats::query(n, "ops.clusters.*.nodes.n3.findings", None, 5)
        .await
        .unwrap();
    let is: Vec<u64> = q.iter().map(|e| e.data["i"].as_u64().unwrap()).collect();
    assert_eq!(is, vec![171, 178, 185, 192, 199]);
}

#[tokio::test]
async fn a_publisher_started_while_nats_is_down_sends_its_outbox_later() {
    let mut server = NatsServer::start();
    server.kill();
    let dir = tempfile::tempdir().unwrap();
    let st = store(&dir);
    let feed = Feed::open(cfg(&server.url), Arc::clone(&st)).await.unwrap();
    for i in 0..30 {
        feed.publish(event(i)).await.unwrap();
    }
    assert_eq!(feed.flush(Duration::from_secs(10)).await.unwrap(), Some(30));
    assert_eq!(st.outbox_len().await.unwrap(), 30);
    server.restart();
    let mut left = Some(30);
    for _ in 0..100 {
        left = feed.flush(Duration::from_secs(10)).await.unwrap();
        if left == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, Some(0));
    assert_eq!(st.outbox_len().await.unwrap(), 0);
    let got = stream_contents(&server.url).await;
    let order: Vec<u64> = got.iter().map(|(_, i)| *i).collect();
    assert_eq!(order, (0..30).collect::<Vec<u64>>());
}

/// Kill nats-server in the middle of a stream of events, keep publishing
/// while it is down, start it again: every event is in the stream exactly
/// once, and the runs publishing them never waited for NATS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_nats_mid_stream_loses_nothing_and_duplicates_nothing() {
    let mut server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let st = store(&dir);
    let feed = Feed::open(cfg(&server.url), Arc::clone(&st)).await.unwrap();
    let total = 3000;
    let mut slowest = Duration::ZERO;
    for i in 0..total {
        if i == 1000 {
            // Acks of the last batches may still be in flight.
            server.kill();
        }
        if i == 2000 {
            // Keep the server down until the feed has noticed (a publish
            // failed or an ack timed out), however fast this machine
            // pushed the first events into the client's buffer; otherwise
            // a quick restart lets the buffered publishes through and the
            // test proves nothing about the outbox.
            for _ in 0..300 {
                if feed.counts().outboxed > 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            server.restart();
        }
        let t = std::time::Instant::now();
        feed.publish(event(i)).await.unwrap();
        slowest = slowest.max(t.elapsed());
        if i % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut left = None;
    for _ in 0..100 {
        left = feed.flush(Duration::from_secs(20)).await.unwrap();
        if left == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(left, Some(0), "outbox not drained: {:?}", feed.counts());
    let counts = feed.counts();
    assert!(
        counts.outboxed > 0,
        "the outage was not noticed: {counts:?}"
    );
    assert_eq!(counts.dropped, 0);

    let got = stream_contents(&server.url).await;
    let ids: HashSet<&str> = got.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), got.len(), "duplicates in the stream");
    let mut is: Vec<u64> = got.iter().map(|(_, i)| *i).collect();
    is.sort_unstable();
    assert_eq!(
        is,
        (0..total as u64).collect::<Vec<_>>(),
        "lost events; counts {counts:?}"
    );
    // A publish is a queue push: it never waited out the outage.
    assert!(
        slowest < Duration::from_secs(1),
        "a publish waited {slowest:?} for NATS"
    );
}
