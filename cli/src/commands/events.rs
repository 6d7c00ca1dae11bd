//! `opscli events publish|query|tail|flush|prune`: the event feed. Embedded (no
//! `nats-url`): events are recorded in the store's event log, which
//! `query` and `tail` read (tail polls it twice a second). With NATS:
//! events go to JetStream (through the outbox when it is down), `query`
//! reads the stream and `tail` subscribes.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use ops_events::log;
use ops_events::nats::{self, Nats};
use ops_model::event::{CloudEvent, subject};
use ops_store::Store;

use crate::args::{EventsCommand, EventsTailArgs, Format};
use crate::config::Config;

fn line(e: &CloudEvent, json: bool) -> String {
    if json {
        return serde_json::to_string(e).unwrap_or_default();
    }
    let data = ops_model::clip(&e.data.to_string(), 160).replace('\n', " ");
    format!("{}  {}  {}  {data}", e.time, e.subject, e.kind)
}

fn since_stamp(since: Option<&str>) -> Result<Option<String>> {
    let Some(s) = since else {
        return Ok(None);
    };
    let d = ops_app::settings::parse_duration(s).context("--since")?;
    Ok(Some(ops_model::stamp::ago(d)))
}

fn check_pattern(p: &str) -> Result<()> {
    if !subject::valid_pattern(p) {
        bail!(
            "subject pattern `{p}` is not valid: dot-separated tokens, `*` for one token, `>` only last"
        );
    }
    Ok(())
}

/// A connection for reading (the server must answer now).
pub async fn reader(cfg: &Config) -> Result<Option<Nats>> {
    let Some(url) = &cfg.nats_url else {
        return Ok(None);
    };
    let ncfg = ops_app::services::nats_config(cfg, url);
    Ok(Some(Nats::connect(ncfg, true).await?))
}

pub async fn run(cfg: &Config, cmd: EventsCommand) -> Result<ExitCode> {
    let store: Arc<dyn Store> = Arc::new(ops_app::services::open_store(cfg)?);
    match cmd {
        EventsCommand::Publish(a) => {
            let raw = if a.data == "-" {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s)?;
                s
            } else {
                a.data.clone()
            };
            let data: serde_json::Value =
                serde_json::from_str(&raw).context("--data is not valid JSON")?;
            if !subject::valid(&a.subject) {
                bail!(
                    "subject `{}` is not a concrete subject: dot-separated tokens, no spaces, no `*` or `>`",
                    a.subject
                );
            }
            let source = a
                .source
                .clone()
                .unwrap_or_else(ops_model::event::default_source);
            let mut e = CloudEvent::new(source, a.kind, a.subject, data);
            e.cluster = a.cluster;
            let id = e.id.clone();
            let feed = ops_app::services::open_feed(cfg, store).await?;
            feed.publish(e).await?;
            println!("{id}");
            Ok(ExitCode::SUCCESS)
        }
        EventsCommand::Query(a) => {
            check_pattern(&a.subject)?;
            let since = since_stamp(a.since.as_deref())?;
            let events = match reader(cfg).await? {
                Some(n) => nats::query(&n, &a.subject, since.as_deref(), a.limit).await?,
                None => {
                    let (mut events, _) =
                        log::query(&store, &a.subject, 0, since.as_deref(), usize::MAX).await?;
                    // The newest `limit`, oldest first.
                    let skip = events.len().saturating_sub(a.limit);
                    events.drain(..skip);
                    events
                }
            };
            let json = a.output == Some(Format::Json);
            if events.is_empty() && !json {
                eprintln!("No events on {}.", a.subject);
            }
            for e in &events {
                println!("{}", line(e, json));
            }
            Ok(ExitCode::SUCCESS)
        }
        EventsCommand::Tail(a) => {
            check_pattern(&a.subject)?;
            match reader(cfg).await? {
                Some(n) => tail_nats(&n, &a).await,
                None => tail_log(&store, &a).await,
            }
        }
        EventsCommand::Prune(a) => {
            let age = ops_app::settings::parse_duration(&a.older_than).context("--older-than")?;
            let before = ops_model::stamp::ago(age);
            let (events, deliveries) = store.prune_events(&before).await?;
            println!(
                "removed {events} event(s) and {deliveries} delivery record(s) older than {} ({before})",
                a.older_than
            );
            Ok(ExitCode::SUCCESS)
        }
        EventsCommand::Flush => {
            let Some(_) = &cfg.nats_url else {
                println!("No NATS configured (nats-url): events go to the store's event log.");
                return Ok(ExitCode::SUCCESS);
            };
            let feed = ops_app::services::open_feed(cfg, Arc::clone(&store)).await?;
            let before = store.outbox_len().await?;
            let left = feed.flush(Duration::from_secs(60)).await?;
            let left = match left {
                Some(n) => n,
                None => store.outbox_len().await?,
            };
            println!(
                "{} event(s) sent, {left} waiting in the outbox",
                before.saturating_sub(left)
            );
            Ok(if left == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

async fn tail_log(store: &Arc<dyn Store>, a: &EventsTailArgs) -> Result<ExitCode> {
    let json = a.output == Some(Format::Json);
    let (recent, mut pos) = log::query(store, &a.subject, 0, None, usize::MAX).await?;
    let skip = recent.len().saturating_sub(a.last);
    let mut seen = 0usize;
    for e in &recent[skip..] {
        println!("{}", line(e, json));
    }
    loop {
        let (new, at) = log::query(store, &a.subject, pos, None, 1000).await?;
        pos = at;
        for e in &new {
            println!("{}", line(e, json));
            seen += 1;
            if a.count > 0 && seen >= a.count {
                return Ok(ExitCode::SUCCESS);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
    }
}

async fn tail_nats(n: &Nats, a: &EventsTailArgs) -> Result<ExitCode> {
    let json = a.output == Some(Format::Json);
    // Subscribe first, so nothing published between the two is missed.
    let mut sub = n
        .client
        .subscribe(a.subject.clone())
        .await
        .with_context(|| format!("cannot subscribe to {}", a.subject))?;
    n.client.flush().await.ok();
    if a.last > 0 {
        for e in nats::query(n, &a.subject, None, a.last).await? {
            println!("{}", line(&e, json));
        }
    }
    let mut seen = 0usize;
    loop {
        tokio::select! {
            m = sub.next() => {
                let Some(m) = m else { bail!("the NATS subscription ended") };
                let Ok(e) = serde_json::from_slice::<CloudEvent>(&m.payload) else { continue };
                println!("{}", line(&e, json));
                seen += 1;
                if a.count > 0 && seen >= a.count {
                    return Ok(ExitCode::SUCCESS);
                }
            }
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
    }
}
