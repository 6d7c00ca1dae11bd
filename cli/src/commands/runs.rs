//! `opscli run list|get|logs|cancel`: recorded runs.

use std::process::ExitCode;

use anyhow::{Result, anyhow};
use ops_model::RunPhase;
use ops_store::{RunFilter, RunRecord, Store};

use crate::args::{Format, RunCommand};
use crate::config::Config;
use crate::table::{Table, cell};

fn dur(r: &RunRecord) -> String {
    match crate::output::seconds_between(r.started_at.as_deref(), r.finished_at.as_deref()) {
        Some(secs) => format!("{secs:.1}s"),
        None if r.started_at.is_some() && r.finished_at.is_none() => "running".into(),
        None => "-".into(),
    }
}

pub async fn run(cfg: &Config, cmd: RunCommand) -> Result<ExitCode> {
    let store = crate::commands::execute::store(cfg)?;
    // A run whose process died reads as Interrupted at once, not when
    // the next run starts.
    store.mark_interrupted(&ops_store::owner_alive).await?;
    match cmd {
        RunCommand::List {
            status,
            ref_name,
            limit,
            output,
        } => {
            let phase = status
                .map(|s| s.parse::<RunPhase>().map_err(|e| anyhow!(e)))
                .transpose()?;
            let runs = store
                .list_runs(&RunFilter {
                    namespace: Some(cfg.namespace.clone()),
                    ref_name,
                    phase,
                    limit: Some(limit),
                    parent_id: None,
                })
                .await?;
            match output {
                Some(Format::Json) => println!("{}", serde_json::to_string_pretty(&runs)?),
                Some(Format::Yaml) => print!("{}", serde_yaml::to_string(&runs)?),
                _ => {
                    if runs.is_empty() {
                        eprintln!("No runs found in namespace {}.", cfg.namespace);
                        return Ok(ExitCode::SUCCESS);
                    }
                    let mut t = Table::new([
                        "ID", "KIND", "REF", "STATUS", "CREATED", "DURATION", "MESSAGE",
                    ]);
                    for r in &runs {
                        t.row([
                            r.id.clone(),
                            r.kind.clone(),
                            r.ref_name.clone(),
                            r.phase.to_string(),
                            r.created_at.clone(),
                            dur(r),
                            cell(r.message.as_deref().unwrap_or("-"), 50),
                        ]);
                    }
                    print!("{t}");
                }
            }
        }
        RunCommand::Get { id, output } => {
            let r = store
                .get_run(&id)
                .await?
                .ok_or_else(|| anyhow!("run `{id}` not found"))?;
            match output {
                Some(Format::Json) => println!("{}", serde_json::to_string_pretty(&r)?),
                Some(Format::Yaml) => print!("{}", serde_yaml::to_string(&r)?),
                _ => {
                    println!(
                        "ID:        {}\nKind:      {}\nRef:       {}\nStatus:    {}",
                        r.id, r.kind, r.ref_name, r.phase
                    );
                    println!(
                        "Message:   {}\nCreated:   {}\nDuration:  {}",
                        r.message.as_deref().unwrap_or("-"),
                        r.created_at,
                        dur(&r)
                    );
                    println!("Spec:      {}", serde_json::to_string(&r.spec)?);
                    let mut t =
                        Table::new(["TASK", "TARGET", "#", "STEP", "STATUS", "EXIT", "OUTPUT"]);
                    for s in &r.steps {
                        let out = if s.stdout.is_empty() {
                            &s.stderr
                        } else {
                            &s.stdout
                        };
                        t.row([
                            if s.task.is_empty() {
                                "-".into()
                            } else {
                                s.task.clone()
                            },
                            s.target.clone(),
                            (s.index + 1).to_string(),
                            s.name.clone(),
                            s.phase.to_string(),
                            s.exit_code.map_or("-".into(), |c| c.to_string()),
                            cell(out, 40),
                        ]);
                    }
                    print!("Steps:\n{t}");
                }
            }
        }
        RunCommand::Logs { id, target } => {
            let r = store
                .get_run(&id)
                .await?
                .ok_or_else(|| anyhow!("run `{id}` not found"))?;
            for s in r
                .steps
                .iter()
                .filter(|s| target.as_deref().is_none_or(|t| t == s.target))
            {
                let task = if s.task.is_empty() {
                    String::new()
                } else {
                    format!("{} | ", s.task)
                };
                println!("==> {task}{} | {}: {}", s.target, s.name, s.phase);
                for text in [&s.stdout, &s.stderr] {
                    if !text.is_empty() {
                        print!("{text}");
                        if !text.ends_with('\n') {
                            println!();
                        }
                    }
                }
            }
        }
        RunCommand::Cancel { id } => {
            if store.request_cancel(&id).await? {
                println!(
                    "cancellation requested for run {id}; the process running it stops it within a second"
                );
            } else {
                println!("run {id} is not running");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
