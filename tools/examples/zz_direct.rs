#![allow(clippy::unwrap_used)]
#[path = "../tests/support/nats.rs"]
mod nats_server;
use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use std::time::Instant;

fn ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |r| r.1);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    f[11] + f[12]
}

#[tokio::main]
async fn main() {
    let n = 200_000usize;
    let server = nats_server::NatsServer::start();
    let spid = server.pid().unwrap().to_string();
    let client = async_nats::connect(&server.url).await.unwrap();
    let js = jetstream::new(client.clone());
    let st = js
        .create_stream(stream::Config {
            name: "ops".into(),
            subjects: vec!["ops.>".into()],
            allow_direct: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let payload = bytes::Bytes::from(vec![b'x'; 321]);
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut acks = vec![];
        for i in chunk {
            acks.push(
                js.publish(
                    format!("ops.clusters.c1.nodes.gpu-{}.findings", i % 64),
                    payload.clone(),
                )
                .await
                .unwrap(),
            );
        }
        for a in acks {
            a.await.unwrap();
        }
    }
    let filter = "ops.clusters.*.nodes.*.findings";
    for round in 0..2 {
        // (a) ordered consumer
        let (s0, o0, t) = (ticks(&spid), ticks("self"), Instant::now());
        let c = st
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: filter.into(),
                deliver_policy: consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut m = c.messages().await.unwrap();
        let mut k = 0;
        while let Some(x) = m.next().await {
            let x = x.unwrap();
            let _ = x.info().unwrap().stream_sequence;
            k += 1;
            if k == n {
                break;
            }
        }
        let dt = t.elapsed().as_secs_f64();
        println!(
            "round {round} ordered: {:.0}/s server {:.2} µs/msg ours {:.2}",
            n as f64 / dt,
            (ticks(&spid) - s0) as f64 * 1e4 / n as f64,
            (ticks("self") - o0) as f64 * 1e4 / n as f64
        );
        drop(m);
        // (b) direct get batches
        let (s0, o0, t) = (ticks(&spid), ticks("self"), Instant::now());
        let mut seq = 1u64;
        let mut k = 0;
        while k < n {
            let inbox = client.new_inbox();
            let mut sub = client.subscribe(inbox.clone()).await.unwrap();
            let body =
                serde_json::json!({"seq": seq, "batch": 500, "next_by_subj": filter}).to_string();
            client
                .publish_with_reply("$JS.API.DIRECT.GET.ops", inbox, body.into())
                .await
                .unwrap();
            loop {
                let msg = sub.next().await.unwrap();
                if msg.status.is_some()
                    && msg.payload.is_empty()
                    && msg
                        .headers
                        .as_ref()
                        .and_then(|h| h.get("Nats-Sequence"))
                        .is_none()
                {
                    break;
                }
                let s: u64 = msg
                    .headers
                    .as_ref()
                    .unwrap()
                    .get("Nats-Sequence")
                    .unwrap()
                    .as_str()
                    .parse()
                    .unwrap();
                seq = s + 1;
                k += 1;
            }
        }
        let dt = t.elapsed().as_secs_f64();
        println!(
            "round {round} direct:  {:.0}/s server {:.2} µs/msg ours {:.2}",
            n as f64 / dt,
            (ticks(&spid) - s0) as f64 * 1e4 / n as f64,
            (ticks("self") - o0) as f64 * 1e4 / n as f64
        );
    }
}
