//! `opscli events publish|query|tail`: the event feed. Embedded (no NATS
//! configured): events are recorded in the store's event log, which
//! `query` and `tail` read (tail polls it twice a second).

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ops_tools::events::{CloudEvent, log, subject};
use ops_tools::store::Store;

use crate::args::{EventsCommand, Format};
use crate::config::Config;

fn line(e: &CloudEvent, json: bool) -> String {
    if json {
        return serde_json::to_string(e).unwrap_or_default();
    }
    let data = ops_tools::tool::clip(&e.data.to_string(), 160).replace('\n', " ");
    format!("{}  {}  {}  {data}", e.time, e.subject, e.kind)
}

pub async fn run(cfg: &Config, cmd: EventsCommand) -> Result<ExitCode> {
    let store: Arc<dyn Store> = Arc::new(crate::commands::open_store(cfg)?);
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
                .unwrap_or_else(ops_tools::events::default_source);
            let mut e = CloudEvent::new(source, a.kind, a.subject, data);
            e.cluster = a.cluster;
            log::record(&store, &e).await?;
            println!("{}", e.id);
            Ok(ExitCode::SUCCESS)
        }
        EventsCommand::Query(a) => {
            let since = match &a.since {
                Some(s) => {
                    let d = crate::commands::cluster::parse_since(s)?;
                    let t = chrono::Utc::now()
                        - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero());
                    Some(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                }
                None => None,
            };
            let (events, _) =
                log::query(&store, &a.subject, 0, since.as_deref(), usize::MAX).await?;
            // The newest `limit`, oldest first.
            let skip = events.len().saturating_sub(a.limit);
            let json = a.output == Some(Format::Json);
            if events.is_empty() && !json {
                eprintln!("No events on {}.", a.subject);
            }
            for e in &events[skip..] {
                println!("{}", line(e, json));
            }
            Ok(ExitCode::SUCCESS)
        }
        EventsCommand::Tail(a) => {
            let json = a.output == Some(Format::Json);
            let (recent, mut pos) = log::query(&store, &a.subject, 0, None, usize::MAX).await?;
            let skip = recent.len().saturating_sub(a.last);
            let mut seen = 0usize;
            for e in &recent[skip..] {
                println!("{}", line(e, json));
            }
            loop {
                let (new, at) = log::query(&store, &a.subject, pos, None, 1000).await?;
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
    }
}
