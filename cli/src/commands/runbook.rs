//! `opscli runbook add|list|show|rm|search`: the team's runbooks in the
//! store, searched by words and by meaning. The embedding model is the
//! configured `embed-url` endpoint, else the built-in all-MiniLM-L6-v2
//! (`scripts/embed-model.sh`), else none: search is then BM25 alone and
//! says so.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use ops_agent::knowledge::{Knowledge, Method, Query};
use ops_store::Store;

use crate::args::{Format, RunbookCommand, RunbookSearchArgs};
use crate::config::Config;
use crate::table::{Table, cell};

/// An alert from an Alertmanager webhook payload (or a bare alert): the
/// query text and labels.
fn alert_query(raw: &str) -> Result<(String, std::collections::BTreeMap<String, String>)> {
    let v: serde_json::Value = serde_json::from_str(raw).context("the alert is not valid JSON")?;
    let alert = v.get("alerts").and_then(|a| a.get(0)).unwrap_or(&v);
    let labels: std::collections::BTreeMap<String, String> = alert
        .get("labels")
        .and_then(|l| l.as_object())
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    if labels.is_empty() {
        bail!(
            "the alert has no labels (want an Alertmanager webhook payload or one of its alerts)"
        );
    }
    let mut text: Vec<String> = labels.get("alertname").cloned().into_iter().collect();
    if let Some(a) = alert.get("annotations").and_then(|a| a.as_object()) {
        for k in ["summary", "description", "message"] {
            if let Some(s) = a.get(k).and_then(|s| s.as_str()) {
                text.push(s.to_owned());
            }
        }
    }
    Ok((text.join(". "), labels))
}

async fn search(k: &Knowledge, a: RunbookSearchArgs) -> Result<ExitCode> {
    let method = match a.method.as_str() {
        "hybrid" => Method::Hybrid,
        "bm25" => Method::Bm25,
        "vector" => Method::Vector,
        other => bail!("unknown method `{other}` (hybrid, bm25 or vector)"),
    };
    let mut text = a.query.clone();
    let mut labels = crate::commands::parse_pairs(&a.labels, "label")?;
    if let Some(path) = &a.alert {
        let raw = if path.as_os_str() == "-" {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            s
        } else {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        };
        let (t, l) = alert_query(&raw).with_context(|| format!("alert {}", path.display()))?;
        if text.is_empty() {
            text = t;
        } else {
            text = format!("{text}. {t}");
        }
        for (k, v) in l {
            labels.entry(k).or_insert(v);
        }
    }
    if text.trim().is_empty() && labels.is_empty() {
        bail!("nothing to search for: give a query, --label or --alert");
    }
    let r = k
        .search(&Query {
            text,
            labels,
            k: a.k.max(1),
            method,
            only: Vec::new(),
            vector: None,
        })
        .await?;
    if a.output == Some(Format::Json) {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(n) = &r.note {
        eprintln!("note: {n}");
    }
    if r.hits.is_empty() {
        eprintln!("No runbook matches.");
        return Ok(ExitCode::SUCCESS);
    }
    for (i, h) in r.hits.iter().enumerate() {
        println!(
            "{}. {}  [score {:.4}{}]",
            i + 1,
            h.citation(),
            h.score,
            if h.matched.is_empty() {
                String::new()
            } else {
                format!("; {}", h.matched.join(", "))
            }
        );
        for line in h.text.lines().take(8) {
            println!("   | {line}");
        }
        if h.text.lines().count() > 8 {
            println!("   | ...");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run(cfg: &Config, cmd: RunbookCommand) -> Result<ExitCode> {
    let store: Arc<dyn Store> = Arc::new(ops_app::services::open_store(cfg)?);
    let k = ops_app::services::knowledge(cfg, store)?;
    match cmd {
        RunbookCommand::Add(a) => {
            let mut all = Vec::new();
            for p in &a.paths {
                all.extend(k.add(p).await?);
            }
            if a.output == Some(Format::Json) {
                println!("{}", serde_json::to_string_pretty(&all)?);
                return Ok(ExitCode::SUCCESS);
            }
            for x in &all {
                let c = x.change;
                let what = if c.unchanged {
                    "unchanged".to_owned()
                } else if c.created {
                    format!("added ({} sections)", c.added)
                } else {
                    format!(
                        "updated ({} sections new, {} kept, {} removed)",
                        c.added, c.kept, c.removed
                    )
                };
                println!("runbook/{} {what}", x.name);
            }
            if k.embedder().is_none() {
                eprintln!(
                    "note: no embedding model; search will be BM25 only (run scripts/embed-model.sh)"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        RunbookCommand::List(a) => {
            let list = k.list().await?;
            if a.output == Some(Format::Json) {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(ExitCode::SUCCESS);
            }
            if list.is_empty() {
                eprintln!("No runbooks. Add some: opscli runbook add DIR");
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = Table::new(["NAME", "TITLE", "SECTIONS", "MATCHES", "UPDATED"]);
            for r in list {
                let meta: serde_json::Value = serde_json::from_str(&r.meta).unwrap_or_default();
                let mut m = Vec::new();
                for key in ["alerts", "services", "hosts"] {
                    if let Some(a) = meta.get(key).and_then(|a| a.as_array()) {
                        m.extend(a.iter().filter_map(|x| x.as_str()).map(str::to_owned));
                    }
                }
                t.row([
                    r.name,
                    cell(&r.title, 40),
                    r.chunks.to_string(),
                    cell(&m.join(","), 50),
                    r.updated_at,
                ]);
            }
            print!("{t}");
            Ok(ExitCode::SUCCESS)
        }
        RunbookCommand::Show(a) => {
            let (rb, chunks) = k.show(&a.name).await?;
            if a.output == Some(Format::Json) {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"runbook": rb, "sections": chunks})
                    )?
                );
                return Ok(ExitCode::SUCCESS);
            }
            println!("{} ({}), from {}", rb.title, rb.name, rb.source);
            if rb.meta != "{}" {
                println!("front matter: {}", rb.meta);
            }
            let mut t = Table::new(["LINES", "SECTION", "CODE"]);
            for c in chunks {
                t.row([
                    format!("{}-{}", c.start_line, c.end_line),
                    c.heading,
                    if c.code { "yes".into() } else { String::new() },
                ]);
            }
            print!("{t}");
            Ok(ExitCode::SUCCESS)
        }
        RunbookCommand::Rm(a) => {
            for n in &a.names {
                k.remove(n).await?;
                println!("runbook/{n} removed");
            }
            Ok(ExitCode::SUCCESS)
        }
        RunbookCommand::Search(a) => search(&k, a).await,
    }
}
