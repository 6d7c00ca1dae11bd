//! `opscli lab up|status|down|faults|inject|reset`: a thin shell over
//! `ops_evals::lab`. `up` also registers the lab hosts as Hosts in this
//! store (labels `role`, `env: lab`, `ops/lab: "true"`) and their host
//! keys in `$OPS_HOME/known_hosts`; `down` removes both.

use std::process::ExitCode;

use anyhow::{Context, Result};
use ops_evals::lab::{self, DEFAULT_HOSTS, FAULTS, Lab, LabMode, ModeChoice};
use ops_model::{Kind, ObjectKey};
use ops_store::Store;

use crate::args::{Format, LabCommand};
use crate::config::Config;

/// The known_hosts file the SSH pool reads.
fn known_hosts(cfg: &Config) -> std::path::PathBuf {
    ops_exec::ssh::SshOptions::new(&cfg.home).known_hosts
}

const MARK: &str = "ops-lab";

/// Replaces the lab's lines in known_hosts with `lines`.
fn set_known_hosts(cfg: &Config, lines: &str) -> Result<()> {
    let path = known_hosts(cfg);
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let mut text: String = old
        .lines()
        .filter(|l| !l.trim_end().ends_with(MARK))
        .map(|l| format!("{l}\n"))
        .collect();
    text.push_str(lines);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    }
    std::fs::write(&path, text).with_context(|| path.display().to_string())
}

/// Brings the lab up (or finds it) and registers its hosts here.
pub async fn up(cfg: &Config, mode: ModeChoice) -> Result<Lab> {
    let home = cfg.home.clone();
    let lab = tokio::task::spawn_blocking(move || Lab::up(&home, DEFAULT_HOSTS, mode)).await??;
    if !lab.reaped.is_empty() {
        eprintln!(
            "removed what was left of labs that can no longer be brought down (namespaces no process lived in, or hosts whose lab directory is gone): {}",
            lab.reaped.join(", ")
        );
    }
    let store = ops_app::services::open_store(cfg)?;
    let file = ops_model::manifest::parse_text(std::path::Path::new("lab"), &lab.host_manifests())
        .map_err(|e| anyhow::anyhow!("lab hosts: {e}"))?;
    store
        .apply(
            file.documents.into_iter().map(|d| d.object).collect(),
            &cfg.namespace,
        )
        .await
        .context("registering the lab hosts")?;
    set_known_hosts(cfg, &lab.known_hosts())?;
    Ok(lab)
}

/// Tears the lab down and unregisters its hosts.
pub async fn down(cfg: &Config, force: bool) -> Result<lab::Teardown> {
    let names: Vec<String> = Lab::open(&cfg.home)?
        .map(|l| l.hosts.into_iter().map(|h| h.name).collect())
        .unwrap_or_default();
    let home = cfg.home.clone();
    let t = tokio::task::spawn_blocking(move || lab::down(&home, force)).await??;
    if !names.is_empty() {
        let store = ops_app::services::open_store(cfg)?;
        let keys: Vec<ObjectKey> = names
            .into_iter()
            .map(|name| ObjectKey {
                kind: Kind::Host,
                namespace: cfg.namespace.clone(),
                name,
            })
            .collect();
        store.delete(&keys).await?;
    }
    set_known_hosts(cfg, "")?;
    Ok(t)
}

fn need(cfg: &Config) -> Result<Lab> {
    Lab::open(&cfg.home)?
        .ok_or_else(|| anyhow::anyhow!("the lab is not up here: run `opscli lab up`"))
}

pub async fn run(cfg: &Config, c: LabCommand) -> Result<ExitCode> {
    match c {
        LabCommand::Up(a) => {
            let mode: ModeChoice = a.mode.parse().map_err(|e: String| anyhow::anyhow!(e))?;
            let lab = up(cfg, mode).await?;
            for h in &lab.hosts {
                println!(
                    "{:<7} {:<20} role={}{}",
                    h.name,
                    format!("{}:{}", h.address, h.port),
                    h.role,
                    if h.root.is_empty() {
                        String::new()
                    } else {
                        format!("  files under {}", h.root)
                    }
                );
            }
            if lab.mode == LabMode::Loopback {
                let unavailable: Vec<&str> = FAULTS
                    .iter()
                    .filter(|f| f.own_filesystem)
                    .map(|f| f.name)
                    .collect();
                println!(
                    "lab mode: loopback{} — the hosts share this machine's network and process table; each host's /srv, /var/log/app, /etc/app, /tmp and /usr/local/bin live under its own directory ($LAB_ROOT in its sessions); faults that need a filesystem of the host's own ({}) are not available, and `opscli eval run` needs the namespaced lab",
                    lab.fallback
                        .as_deref()
                        .map(|w| format!(" (namespaces are not permitted here: {w})"))
                        .unwrap_or_default(),
                    unavailable.join(", ")
                );
            }
            println!(
                "lab up ({}): {} hosts registered (labels env=lab, ops/lab=true). Try: opscli lab inject web-2 {}; opscli copilot",
                lab.mode.as_str(),
                lab.hosts.len(),
                if lab.mode == LabMode::Loopback {
                    "config-typo"
                } else {
                    "disk-full"
                }
            );
        }
        LabCommand::Status(a) => {
            let lab = need(cfg)?;
            let status = tokio::task::spawn_blocking(move || lab.status()).await?;
            if a.output == Some(Format::Json) {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                let mut t = crate::table::Table::new(["HOST", "ADDRESS", "SSH", "APPD", "FAULTS"]);
                for h in &status {
                    t.row([
                        h.name.clone(),
                        format!("{}:{}", h.address, h.port),
                        if h.ssh { "up" } else { "DOWN" }.into(),
                        if h.app { "healthy" } else { "DOWN" }.into(),
                        if h.faults.is_empty() {
                            "-".into()
                        } else {
                            h.faults.join(",")
                        },
                    ]);
                }
                print!("{t}");
            }
            if status.iter().any(|h| !h.ssh) {
                return Ok(ExitCode::FAILURE);
            }
        }
        LabCommand::Down(a) => {
            let t = down(cfg, a.force).await?;
            println!(
                "lab down: {} processes stopped, {} namespaces and {} links removed, {} directories removed",
                t.processes,
                t.namespaces.len(),
                t.links.len(),
                t.dirs.len()
            );
        }
        LabCommand::Faults => {
            for f in FAULTS {
                println!("{:<14} {}", f.name, f.about);
            }
        }
        LabCommand::Inject(a) => {
            let lab = need(cfg)?;
            let (h, f) = (a.host.clone(), a.fault.clone());
            tokio::task::spawn_blocking(move || lab.inject(&h, &f)).await??;
            println!("{}: {} injected", a.host, a.fault);
        }
        LabCommand::Reset(a) => {
            let lab = need(cfg)?;
            let hosts = if a.hosts.is_empty() {
                lab.hosts.iter().map(|h| h.name.clone()).collect()
            } else {
                a.hosts
            };
            let done = hosts.clone();
            tokio::task::spawn_blocking(move || -> Result<()> {
                for h in &hosts {
                    lab.reset(h)?;
                }
                Ok(())
            })
            .await??;
            println!("reset: {}", done.join(", "));
        }
    }
    Ok(ExitCode::SUCCESS)
}
