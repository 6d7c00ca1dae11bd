//! `opscli hook list|test|run|deliveries`: EventHooks at work. Hooks are
//! the EventHooks objects in the store (`opscli apply -f hooks/`); `run`
//! consumes the feed (the store's event log, or JetStream with
//! `nats-url`) with one durable consumer per hook.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use ops_events::hooks::{Deliverer, Hook, Retry};
use ops_model::event::CloudEvent;
use ops_model::event::filter::render;
use ops_model::event::subject;
use ops_store::{DeliveryRecord, Store};
use tokio_util::sync::CancellationToken;

use crate::args::{Format, HookCommand};
use crate::config::Config;
use crate::table::{Table, cell};

use ops_app::daemon::{HooksReport, hooks_in_store};

/// The hooks of `namespace` (every namespace with `None`) that compile.
async fn hooks(store: &Arc<dyn Store>, namespace: Option<&str>) -> Result<Vec<Hook>> {
    Ok(hooks_in_store(store, namespace).await?.0)
}
use ops_app::hooks::HookActions;

fn read_event(path: &std::path::Path) -> Result<CloudEvent> {
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    let mut v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let Some(obj) = v.as_object_mut() else {
        bail!("{}: an event is a JSON object", path.display());
    };
    let fill = |obj: &mut serde_json::Map<String, serde_json::Value>, k: &str, val: String| {
        obj.entry(k.to_owned())
            .or_insert_with(|| serde_json::Value::String(val));
    };
    fill(obj, "specversion", ops_model::event::SPEC_VERSION.into());
    fill(obj, "id", ops_model::event::new_id());
    fill(obj, "source", ops_model::event::default_source());
    fill(obj, "type", "dev.ops.test".into());
    fill(obj, "time", ops_model::stamp::now());
    let e: CloudEvent = serde_json::from_value(v)
        .with_context(|| format!("{}: not a CloudEvent", path.display()))?;
    e.validate()
        .map_err(|x| anyhow!("{}: {x}", path.display()))?;
    Ok(e)
}

fn delivery_table(recs: &[DeliveryRecord]) -> Table {
    let mut t = Table::new([
        "AT", "HOOK", "SINK", "STATUS", "EVENTS", "TRIES", "CODE", "SUBJECT", "DETAIL",
    ]);
    for r in recs {
        t.row([
            r.at.clone(),
            r.hook.clone(),
            r.sink.clone(),
            r.status.clone(),
            r.events().to_string(),
            r.attempts.to_string(),
            r.code.map(|c| c.to_string()).unwrap_or_default(),
            r.subject.clone(),
            cell(&r.detail, 60),
        ]);
    }
    t
}

pub async fn run(cfg: &Config, cmd: HookCommand) -> Result<ExitCode> {
    let store: Arc<dyn Store> = Arc::new(ops_app::services::open_store(cfg)?);
    match cmd {
        HookCommand::List(a) => {
            let ns = (!a.all_namespaces).then_some(cfg.namespace.as_str());
            let hooks = hooks(&store, ns).await?;
            let mut rows = Vec::new();
            for h in &hooks {
                let last = store.list_deliveries(Some(&h.key), None, 1).await?.pop();
                rows.push((h, last));
            }
            if a.output == Some(Format::Json) {
                let out: Vec<_> = rows
                    .iter()
                    .map(|(h, last)| {
                        serde_json::json!({
                            "hook": h.key, "type": h.sink.kind(), "subject": h.subject,
                            "last_delivery": last,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&out)?);
                return Ok(ExitCode::SUCCESS);
            }
            if rows.is_empty() {
                eprintln!("No EventHooks (apply some with `opscli apply -f FILE`).");
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = Table::new(["HOOK", "TYPE", "SUBJECT", "LAST DELIVERY"]);
            for (h, last) in rows {
                t.row([
                    h.key.clone(),
                    h.sink.kind().to_owned(),
                    h.subject.clone(),
                    last.map(|d| format!("{} {} ({})", d.at, d.status, cell(&d.detail, 40)))
                        .unwrap_or_else(|| "-".into()),
                ]);
            }
            print!("{t}");
            Ok(ExitCode::SUCCESS)
        }
        HookCommand::Test(a) => {
            let all = hooks(&store, Some(&cfg.namespace)).await?;
            let key = format!("{}/{}", cfg.namespace, a.name);
            let Some(h) = all.into_iter().find(|h| h.key == key) else {
                bail!(
                    "no EventHooks `{}` in namespace {} (opscli hook list)",
                    a.name,
                    cfg.namespace
                );
            };
            let e = read_event(&a.event)?;
            let subject_ok = subject::matches(&h.subject, &e.subject);
            let text = render(&e);
            let keywords_ok = h.filter.passes(&text);
            println!(
                "subject   {}  ({} against {})",
                if subject_ok {
                    "matches"
                } else {
                    "does not match"
                },
                e.subject,
                h.subject
            );
            println!(
                "keywords  {}",
                if keywords_ok { "pass" } else { "filtered out" }
            );
            println!("rendered as:\n{}", indent(&text));
            if !(subject_ok && keywords_ok) {
                return Ok(ExitCode::FAILURE);
            }
            if a.dry_run {
                println!("sink      {} (dry run: nothing sent)", h.sink.kind());
                return Ok(ExitCode::SUCCESS);
            }
            let feed = ops_app::services::open_feed(cfg, Arc::clone(&store)).await?;
            let actions: Arc<dyn ops_events::hooks::ActionSink> =
                Arc::new(HookActions::new(cfg, feed.clone(), true).await?);
            let d = Deliverer::new(feed, Some(actions), Retry::default());
            let mut rec = d.deliver(&h, &e).await;
            rec.detail = format!("(hook test) {}", rec.detail);
            store.record_deliveries(vec![rec.clone()], None).await?;
            println!(
                "delivery  {} after {} attempt(s){}: {}",
                rec.status,
                rec.attempts,
                rec.code.map(|c| format!(", HTTP {c}")).unwrap_or_default(),
                rec.detail
            );
            Ok(if rec.status == "failed" {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        HookCommand::Run(a) => {
            let ns = (!a.all_namespaces).then_some(cfg.namespace.as_str());
            let stop = CancellationToken::new();
            let c = stop.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    c.cancel();
                }
            });
            let mut report = |r: HooksReport| match r {
                HooksReport::Running { hooks, backend } => {
                    eprintln!(
                        "running {} hook(s) on {backend}; Ctrl-C stops (each resumes where it stopped){}",
                        hooks.len(),
                        if hooks.is_empty() {
                            "; waiting for EventHooks to be applied"
                        } else {
                            ""
                        }
                    );
                    for h in &hooks {
                        eprintln!("  {}  {} <- {}", h.key, h.sink.kind(), h.subject);
                    }
                }
                HooksReport::Reloading => eprintln!("hooks changed: reloading"),
            };
            let (seen, matched, delivered, failed) = ops_app::daemon::run_hooks(
                cfg,
                store,
                ns,
                &a.names,
                std::time::Duration::from_secs(a.reload.max(1)),
                stop,
                &mut report,
            )
            .await?;
            eprintln!(
                "stopped: {seen} event(s) seen, {matched} matched, {delivered} delivered, {failed} failed"
            );
            Ok(ExitCode::SUCCESS)
        }
        HookCommand::Deliveries(a) => {
            let key = a.name.as_ref().map(|n| format!("{}/{n}", cfg.namespace));
            let recs = store
                .list_deliveries(key.as_deref(), a.event.as_deref(), a.limit)
                .await?;
            if a.output == Some(Format::Json) {
                println!("{}", serde_json::to_string_pretty(&recs)?);
            } else if recs.is_empty() {
                eprintln!("No deliveries yet.");
            } else {
                print!("{}", delivery_table(&recs));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
