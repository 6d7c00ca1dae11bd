//! `opscli shell`, `opscli file`, `opscli task` and `opscli pipeline run`:
//! everything that runs something, through the one engine.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use ops_engine::{Engine, PipelineRunRequest, Target, TaskRunRequest};
use ops_model::{
    API_VERSION, Direction, Kind, Object, ObjectKey, ObjectMeta, Step, Task, TaskSpec,
};
use ops_store::{RunRecord, SqliteStore, Store};
use tokio_util::sync::CancellationToken;

use crate::args::{
    DirectionArg, FileArgs, Format, PipelineRunArgs, SchedulerArgs, ShellArgs, TargetArgs, TaskArgs,
};
use crate::config::Config;
use crate::progress::Printer;

/// A token cancelled by Ctrl-C.
fn ctrl_c() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ncancelling: stopping remote commands...");
            t.cancel();
        }
    });
    token
}

fn synthetic_task(name: &str, step: Step) -> Task {
    Task {
        api_version: API_VERSION.into(),
        kind: "Task".into(),
        metadata: ObjectMeta {
            name: name.into(),
            ..ObjectMeta::default()
        },
        spec: TaskSpec {
            steps: Some(vec![step]),
            ..TaskSpec::default()
        },
        status: None,
    }
}

fn report(run: &RunRecord, printer: &Printer, json: bool) -> Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(run)?);
    } else {
        print!("\n{}", printer.summary(run));
        let msg = run
            .message
            .as_deref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default();
        println!("run {}: {}{msg}", run.id, run.phase);
    }
    Ok(if run.phase == ops_model::RunPhase::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn run_task_on(
    cfg: &Config,
    engine: &Engine,
    task: Task,
    name: Option<String>,
    variables: BTreeMap<String, String>,
    targets: Vec<Target>,
    t: &TargetArgs,
) -> Result<ExitCode> {
    let json = t.output == Some(Format::Json);
    let printer = Printer::new(targets.len(), json);
    let run = engine
        .run_task(
            TaskRunRequest {
                task,
                name,
                namespace: cfg.namespace.clone(),
                variables,
                targets,
                timeout: t.timeout.map(Duration::from_secs),
                sudo: t.sudo,
                parent_id: None,
            },
            &printer,
            ctrl_c(),
        )
        .await?;
    report(&run, &printer, json)
}

pub async fn shell(cfg: &Config, args: ShellArgs) -> Result<ExitCode> {
    let content = if Path::new(&args.content).is_file() {
        std::fs::read_to_string(&args.content)
            .with_context(|| format!("cannot read {}", args.content))?
    } else {
        args.content.clone()
    };
    let (engine, pool) = ops_app::services::engine(cfg, true).await?;
    let targets = ops_engine::inventory::targets(
        &engine,
        &cfg.namespace,
        &args.target.inventory(),
        None,
        &Default::default(),
    )
    .await?;
    let step = Step {
        name: Some("shell".into()),
        content: Some(content),
        ..Step::default()
    };
    let code = run_task_on(
        cfg,
        &engine,
        synthetic_task("shell", step),
        None,
        BTreeMap::new(),
        targets,
        &args.target,
    )
    .await;
    pool.close_all().await;
    code
}

pub async fn file(cfg: &Config, args: FileArgs) -> Result<ExitCode> {
    let (engine, pool) = ops_app::services::engine(cfg, true).await?;
    let targets = ops_engine::inventory::targets(
        &engine,
        &cfg.namespace,
        &args.target.inventory(),
        None,
        &Default::default(),
    )
    .await?;
    let step = Step {
        name: Some(match args.direction {
            DirectionArg::Upload => "upload".into(),
            DirectionArg::Download => "download".into(),
        }),
        localfile: Some(args.localfile.clone()),
        remotefile: Some(args.remotefile.clone()),
        direction: Some(match args.direction {
            DirectionArg::Upload => Direction::Upload,
            DirectionArg::Download => Direction::Download,
        }),
        ..Step::default()
    };
    let code = run_task_on(
        cfg,
        &engine,
        synthetic_task("file", step),
        None,
        BTreeMap::new(),
        targets,
        &args.target,
    )
    .await;
    pool.close_all().await;
    code
}

/// A Task from a file (exactly one Task in it) or from the store.
async fn load_task(cfg: &Config, store: &dyn Store, what: &str) -> Result<Task> {
    let path = Path::new(what);
    if path.is_file() {
        let file = ops_model::manifest::load_file(path).map_err(|e| anyhow!("{e}"))?;
        let mut tasks: Vec<Task> = file
            .documents
            .into_iter()
            .filter_map(|d| match d.object {
                Object::Task(t) => Some(t),
                _ => None,
            })
            .collect();
        return match tasks.len() {
            1 => Ok(tasks.remove(0)),
            0 => bail!("{what} holds no Task"),
            n => bail!("{what} holds {n} Tasks; apply it and run one by name"),
        };
    }
    let key = ObjectKey {
        kind: Kind::Task,
        namespace: cfg.namespace.clone(),
        name: what.to_owned(),
    };
    match store.get(&key).await?.map(|s| s.object) {
        Some(Object::Task(t)) => Ok(t),
        _ => bail!(
            "no Task file `{what}` and no Task named `{what}` in namespace {}",
            cfg.namespace
        ),
    }
}

pub async fn task(cfg: &Config, args: TaskArgs) -> Result<ExitCode> {
    let (engine, pool) = ops_app::services::engine(cfg, true).await?;
    let task = load_task(cfg, engine.store().as_ref(), &args.task).await?;
    let variables = crate::commands::parse_pairs(&args.vars, "variable")?;
    // Its own `host:`, else its `host` variable, as in the anchor.
    let host = task.spec.target(&variables).map(str::to_owned);
    let runtime = ops_exec::kube::PodRuntime::for_task(&task, &variables);
    let targets = ops_engine::inventory::targets(
        &engine,
        &cfg.namespace,
        &args.target.inventory(),
        host.as_deref(),
        &runtime,
    )
    .await?;
    let code = run_task_on(
        cfg,
        &engine,
        task,
        args.name.clone(),
        variables,
        targets,
        &args.target,
    )
    .await;
    pool.close_all().await;
    code
}

pub async fn pipeline_run(cfg: &Config, args: PipelineRunArgs) -> Result<ExitCode> {
    let (engine, pool) = ops_app::services::engine(cfg, true).await?;
    let key = ObjectKey {
        kind: Kind::Pipeline,
        namespace: cfg.namespace.clone(),
        name: args.name.clone(),
    };
    let Some(Object::Pipeline(p)) = engine.store().get(&key).await?.map(|s| s.object) else {
        bail!(
            "no Pipeline named `{}` in namespace {}",
            args.name,
            cfg.namespace
        );
    };
    let variables = crate::commands::parse_pairs(&args.vars, "variable")?;
    let json = args.output == Some(Format::Json);
    let printer = Printer::new(p.spec.tasks.len(), json);
    let run = engine
        .run_pipeline(
            PipelineRunRequest {
                pipeline: p,
                name: None,
                namespace: cfg.namespace.clone(),
                variables,
                host: args.host.clone(),
                allowed: None,
                timeout: args.timeout.map(Duration::from_secs),
                sudo: args.sudo,
                parent_id: None,
            },
            &printer,
            ctrl_c(),
        )
        .await;
    pool.close_all().await;
    report(&run?, &printer, json)
}

pub async fn scheduler(cfg: &Config, args: SchedulerArgs) -> Result<ExitCode> {
    use ops_engine::schedule::{Scheduler, TickEvent, describe};
    let (engine, pool) = ops_app::services::engine(cfg, true).await?;
    if args.once {
        let mut s = Scheduler::new(engine, Duration::from_secs(args.jitter));
        let events = s.tick(chrono::Utc::now()).await?;
        s.wait_idle().await;
        pool.close_all().await;
        let mut t = crate::table::Table::new(["SCHEDULE", "STATE"]);
        for (k, v) in describe(&events) {
            t.row([k, v]);
        }
        print!("{t}");
        return Ok(ExitCode::SUCCESS);
    }
    let stop = ctrl_c();
    eprintln!(
        "scheduler: checking every {}s (Ctrl-C to stop){}",
        args.interval,
        if args.heartbeat > 0 {
            format!("; heartbeats every {}s", args.heartbeat)
        } else {
            String::new()
        }
    );
    let heartbeat = (args.heartbeat > 0).then(|| {
        (
            Duration::from_secs(args.heartbeat),
            cfg.namespace.clone(),
            cfg.forks,
        )
    });
    let mut report = |now: chrono::DateTime<chrono::Utc>, events: Vec<TickEvent>| {
        let stamp = now.format("%Y-%m-%dT%H:%M:%SZ");
        for e in events {
            match e {
                TickEvent::Waiting { .. } => {}
                TickEvent::Registered { key, next } => println!(
                    "{stamp} registered {key}: next {}",
                    next.format("%Y-%m-%dT%H:%M:%SZ")
                ),
                TickEvent::Fired { key } => println!("{stamp} fired {key}"),
                TickEvent::SkippedOverlap { key, running } => {
                    println!("{stamp} skipped {key}: {running} still running")
                }
                TickEvent::Invalid { key, error } => eprintln!("{stamp} invalid {key}: {error}"),
            }
        }
    };
    ops_app::daemon::run_scheduler(
        engine,
        Duration::from_secs(args.interval),
        Duration::from_secs(args.jitter),
        heartbeat,
        stop,
        &mut report,
    )
    .await?;
    pool.close_all().await;
    Ok(ExitCode::SUCCESS)
}

/// `opscli heartbeat`: rounds of Host and Cluster heartbeats.
pub async fn heartbeat(cfg: &Config, args: crate::args::HeartbeatArgs) -> Result<ExitCode> {
    use ops_engine::heartbeat;
    let (engine, pool) = ops_app::services::engine(cfg, true).await?;
    let feed = engine.feed().clone();
    let ns = (!args.all_namespaces).then_some(cfg.namespace.as_str());
    let stop = ctrl_c();
    if args.once {
        let r = heartbeat::round(&engine, &feed, ns, cfg.forks, &stop).await?;
        pool.close_all().await;
        let mut t = crate::table::Table::new(["OBJECT", "HEARTBEAT"]);
        for (k, ok) in &r.results {
            t.row([
                k.clone(),
                if *ok { "successed" } else { "failed" }.to_owned(),
            ]);
        }
        print!("{t}");
        if r.results.is_empty() {
            eprintln!("No Hosts or Clusters.");
        }
        return Ok(if r.results.iter().all(|(_, ok)| *ok) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    eprintln!(
        "heartbeat: every {}s (Ctrl-C to stop)",
        args.interval.max(1)
    );
    heartbeat::run(
        &engine,
        &feed,
        ns,
        cfg.forks,
        Duration::from_secs(args.interval.max(1)),
        &stop,
    )
    .await;
    pool.close_all().await;
    Ok(ExitCode::SUCCESS)
}

/// The store, for the run inspection commands.
pub fn store(cfg: &Config) -> Result<SqliteStore> {
    ops_app::services::open_store(cfg)
}
