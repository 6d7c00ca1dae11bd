//! `opscli cluster get|describe|logs|events|exec`: reading a Kubernetes
//! cluster the way kubectl does (any resource type by any of its names),
//! with Secret values redacted, and running a command in a pod.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ops_exec::kube::read::{self, ListQuery, LogQuery};
use ops_exec::kube::{PodExecutor, client};
use ops_exec::{ExecRequest, Executor, ExitStatus, Stream};
use ops_model::Cluster;

use crate::args::{ClusterCommand, Format, KubeArgs};
use crate::config::Config;
use crate::table::Table;

pub async fn run(cfg: &Config, cmd: ClusterCommand) -> Result<ExitCode> {
    match cmd {
        ClusterCommand::Get(a) => get(cfg, a).await,
        ClusterCommand::Describe(a) => describe(cfg, a).await,
        ClusterCommand::Logs(a) => logs(cfg, a).await,
        ClusterCommand::Events(a) => events(cfg, a).await,
        ClusterCommand::Exec(a) => exec(cfg, a).await,
    }
}

async fn connect(cfg: &Config, k: &KubeArgs) -> Result<(Cluster, kube::Client)> {
    let store = ops_app::services::open_store(cfg)?;
    let kubeconfig = k.kubeconfig.as_ref().map(|p| p.display().to_string());
    if let Some(p) = &kubeconfig {
        if !std::path::Path::new(p).is_file() {
            bail!("kubeconfig {p}: no such file");
        }
    }
    let cluster = ops_engine::inventory::select_cluster(
        &store,
        &cfg.namespace,
        k.cluster.as_deref(),
        kubeconfig.as_deref(),
        true,
    )
    .await?
    .context("no cluster chosen")?;
    let c = client(&cluster).await?;
    Ok((cluster, c))
}

fn kube_ns(k: &KubeArgs) -> String {
    k.kube_namespace
        .clone()
        .unwrap_or_else(|| "default".to_owned())
}

fn age(o: &kube::api::DynamicObject) -> String {
    let Some(ts) = o.metadata.creation_timestamp.as_ref() else {
        return "-".into();
    };
    let secs = (jiff_now_secs() - ts.0.as_second()).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn jiff_now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

async fn get(cfg: &Config, a: crate::args::ClusterGetArgs) -> Result<ExitCode> {
    let (cluster, c) = connect(cfg, &a.kube).await?;
    let name = cluster.metadata.name.as_str();
    let r = read::resolve(&c, name, &a.resource).await?;
    let ns = kube_ns(&a.kube);
    let objects = if a.names.is_empty() {
        let q = ListQuery {
            namespace: (r.namespaced && !a.all_namespaces).then(|| ns.clone()),
            labels: a.selector.clone(),
            fields: a.field_selector.clone(),
            limit: a.limit,
        };
        read::list(&c, name, &r, &q).await?
    } else {
        let mut v = Vec::new();
        for n in &a.names {
            v.push(read::get(&c, name, &r, r.namespaced.then_some(ns.as_str()), n).await?);
        }
        v
    };
    let format = a.output.unwrap_or(Format::Table);
    match format {
        Format::Yaml => {
            for (i, o) in objects.iter().enumerate() {
                if i > 0 {
                    println!("---");
                }
                print!("{}", serde_yaml::to_string(o)?);
            }
        }
        Format::Json => println!("{}", serde_json::to_string_pretty(&objects)?),
        Format::Name => {
            for o in &objects {
                println!(
                    "{}/{}",
                    r.api.plural,
                    o.metadata.name.as_deref().unwrap_or("")
                );
            }
        }
        Format::Table | Format::Wide => {
            if objects.is_empty() {
                if r.namespaced && !a.all_namespaces {
                    eprintln!("No {} found in namespace {ns}.", r.display_name());
                } else {
                    eprintln!("No {} found.", r.display_name());
                }
                return Ok(ExitCode::SUCCESS);
            }
            let all = r.namespaced && a.all_namespaces;
            let mut headers = Vec::new();
            if all {
                headers.push("NAMESPACE");
            }
            headers.extend(["NAME", "STATUS", "AGE"]);
            if format == Format::Wide {
                headers.push("LABELS");
            }
            let mut t = Table::new(headers);
            for o in &objects {
                let mut row = Vec::new();
                if all {
                    row.push(o.metadata.namespace.clone().unwrap_or_default());
                }
                row.push(o.metadata.name.clone().unwrap_or_default());
                row.push(read::status_of(&r.api.kind, o));
                row.push(age(o));
                if format == Format::Wide {
                    row.push(read::labels_text(o.metadata.labels.as_ref()));
                }
                t.row(row);
            }
            print!("{t}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn describe(cfg: &Config, a: crate::args::ClusterDescribeArgs) -> Result<ExitCode> {
    let (cluster, c) = connect(cfg, &a.kube).await?;
    let name = cluster.metadata.name.as_str();
    let r = read::resolve(&c, name, &a.resource).await?;
    let ns = kube_ns(&a.kube);
    let text = read::describe(&c, name, &r, r.namespaced.then_some(ns.as_str()), &a.name).await?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

async fn logs(cfg: &Config, a: crate::args::ClusterLogsArgs) -> Result<ExitCode> {
    let since = a
        .since
        .as_deref()
        .map(ops_app::settings::parse_duration)
        .transpose()
        .context("--since")?;
    let (cluster, c) = connect(cfg, &a.kube).await?;
    let q = LogQuery {
        container: a.container.clone(),
        tail: a.tail,
        since,
        previous: a.previous,
        limit_bytes: None,
    };
    let text = read::logs(&c, &cluster.metadata.name, &kube_ns(&a.kube), &a.pod, &q).await?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

async fn events(cfg: &Config, a: crate::args::ClusterEventsArgs) -> Result<ExitCode> {
    let (cluster, c) = connect(cfg, &a.kube).await?;
    let name = cluster.metadata.name.as_str();
    let object = match a.object.as_deref() {
        Some(o) => {
            let (kind, obj) = o
                .split_once('/')
                .with_context(|| format!("`{o}`: give the object as KIND/NAME (pod/web-1)"))?;
            // `pod`, `po`, `deploy` → the kind events name (`Pod`, `Deployment`).
            let r = read::resolve(&c, name, kind).await?;
            Some((r.api.kind, obj.to_owned()))
        }
        None => None,
    };
    let ns = kube_ns(&a.kube);
    let list = read::events(
        &c,
        name,
        (!a.all_namespaces).then_some(ns.as_str()),
        object.as_ref().map(|(k, n)| (k.as_str(), n.as_str())),
    )
    .await?;
    if a.output == Some(Format::Json) {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        eprintln!("No events found.");
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(["LAST SEEN", "TYPE", "REASON", "OBJECT", "COUNT", "MESSAGE"]);
    for e in list {
        t.row([
            e.last_seen.unwrap_or_else(|| "-".into()),
            e.type_,
            e.reason,
            e.object,
            e.count.to_string(),
            e.message,
        ]);
    }
    print!("{t}");
    Ok(ExitCode::SUCCESS)
}

async fn exec(cfg: &Config, a: crate::args::ClusterExecArgs) -> Result<ExitCode> {
    let (cluster, c) = connect(cfg, &a.kube).await?;
    let ns = kube_ns(&a.kube);
    let exec = PodExecutor::new(
        c,
        &cluster.metadata.name,
        &ns,
        &a.pod,
        a.container.as_deref(),
    );
    let mut req = ExecRequest::argv(a.command.clone());
    req.timeout = a.timeout.map(Duration::from_secs);
    if a.stdin {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading standard input")?;
        req.stdin = Some(buf);
    }
    let cancel = tokio_util::sync::CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    let sink = |s: Stream, d: &[u8]| {
        let _ = match s {
            Stream::Stdout => std::io::stdout().write_all(d),
            Stream::Stderr => std::io::stderr().write_all(d),
        };
    };
    let out = exec.run(&req, Some(&sink), &cancel).await?;
    let _ = std::io::stdout().flush();
    Ok(match out.status {
        ExitStatus::Code(0) => ExitCode::SUCCESS,
        ExitStatus::Code(c) => ExitCode::from(u8::try_from(c.clamp(1, 255)).unwrap_or(1)),
        ExitStatus::TimedOut => {
            eprintln!("opscli: the command timed out and was stopped");
            ExitCode::from(124)
        }
        ExitStatus::Cancelled => ExitCode::from(130),
        ExitStatus::Signal(s) => {
            eprintln!("opscli: the command was killed by {s}");
            ExitCode::from(137)
        }
    })
}
