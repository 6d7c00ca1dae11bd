//! The run loop shared by TaskRuns and PipelineRuns.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{
    Engine, EngineError, PipelineRunRequest, RunObserver, Target, TaskRunRequest, parse_results,
};
use ops_exec::{ExecError, ExecRequest, ExitStatus, Stream};
use ops_model::template::{Builtins, Context, eval_condition, render, resolve_variables};
use ops_model::{Direction, Kind, ObjectKey, RunPhase, Step, Task, Variables, is_secret_name};
use ops_store::{RunRecord, StepRecord, Store, process_owner};

use ops_model::stamp::now;

/// `NAME-xxxxxxxx`: unique across processes and calls.
pub(super) fn new_run_id(name: &str) -> String {
    let short: String = name.chars().take(40).collect();
    format!("{short}-{}", ops_model::id::unique_hex(name, 4))
}

fn redacted_vars(vars: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    vars.iter()
        .map(|(k, v)| {
            let shown = if is_secret_name(k) && !v.is_empty() {
                ops_model::REDACTED.to_owned()
            } else {
                v.clone()
            };
            (k.clone(), shown)
        })
        .collect()
}

/// What one run shares with all its targets.
struct RunCtx<'a> {
    engine: &'a Engine,
    run_id: String,
    run_name: String,
    namespace: String,
    started: chrono::DateTime<Utc>,
    observer: &'a dyn RunObserver,
    cancel: CancellationToken,
    sudo: bool,
}

struct Outcome {
    phase: RunPhase,
    results: BTreeMap<String, String>,
}

impl RunCtx<'_> {
    async fn record(&self, rec: &StepRecord) -> Result<(), EngineError> {
        // Stored redacted: a run record outlives the terminal that showed
        // the output, and `run logs` and the copilot's `run_status` read it.
        let mut stored = rec.clone();
        stored.stdout = ops_model::redact::redact_text(&rec.stdout);
        stored.stderr = ops_model::redact::redact_text(&rec.stderr);
        self.engine.store.record_step(&stored).await?;
        Ok(())
    }

    async fn finish_step(&self, rec: &StepRecord) -> Result<(), EngineError> {
        self.record(rec).await?;
        self.observer.step_finished(rec);
        Ok(())
    }
}

fn step_name(step: &Step, i: usize) -> String {
    step.name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("step-{}", i + 1))
}

fn unreachable(e: &ExecError) -> bool {
    matches!(
        e,
        ExecError::Resolve { .. }
            | ExecError::Connect { .. }
            | ExecError::ConnectTimeout { .. }
            | ExecError::Auth { .. }
            | ExecError::HostKeyUnknown { .. }
            | ExecError::HostKeyChanged { .. }
            | ExecError::Key { .. }
            | ExecError::Secret { .. }
    )
}

async fn run_file_step(
    rc: &RunCtx<'_>,
    target: &Target,
    step: &Step,
    ctx: &Context,
) -> Result<String, ExecError> {
    let local = render(step.localfile.as_deref().unwrap_or(""), ctx);
    let remote = render(step.remotefile.as_deref().unwrap_or(""), ctx);
    let invalid = |detail: String| ExecError::Invalid {
        target: target.name.clone(),
        detail,
    };
    if local.is_empty() || remote.is_empty() {
        return Err(invalid(
            "a file step needs both localfile and remotefile".into(),
        ));
    }
    if remote.contains("://") || local.contains("://") {
        return Err(invalid(format!(
            "object-storage paths are not supported by file steps (`{}`)",
            if remote.contains("://") {
                &remote
            } else {
                &local
            }
        )));
    }
    let local_path = ops_exec::expand_home(&local);
    match step.direction.unwrap_or(Direction::Upload) {
        Direction::Upload => {
            let t = target
                .executor
                .upload(Path::new(&local_path), &remote, None, &rc.cancel)
                .await?;
            Ok(format!(
                "uploaded {local} -> {remote}: {} bytes, sha256 {}\n",
                t.bytes, t.sha256
            ))
        }
        Direction::Download => {
            if let Some(dir) = local_path.parent().filter(|d| !d.as_os_str().is_empty()) {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| ExecError::File {
                        target: target.name.clone(),
                        path: dir.display().to_string(),
                        detail: e.to_string(),
                    })?;
            }
            let t = target
                .executor
                .download(&remote, &local_path, &rc.cancel)
                .await?;
            Ok(format!(
                "downloaded {remote} -> {local}: {} bytes, sha256 {}\n",
                t.bytes, t.sha256
            ))
        }
    }
}

/// Runs a task's steps on one target.
async fn run_target(
    rc: &RunCtx<'_>,
    entry: &str,
    task: &Task,
    vars: &BTreeMap<String, String>,
    target: &Target,
) -> Result<Outcome, EngineError> {
    let mut ctx = Context::new();
    for (k, v) in vars {
        ctx.set_var(k.clone(), v.clone());
    }
    ctx.set_builtins(&Builtins {
        task: task.metadata.name.clone(),
        taskrun: rc.run_name.clone(),
        hostname: target.name.clone(),
        namespace: rc.namespace.clone(),
        time: rc.started,
    });
    ctx.set_labels(&target.labels);
    let mut failed = false;
    let mut cancelled = false;
    let mut results = BTreeMap::new();
    for (i, step) in task.spec.steps().iter().enumerate() {
        let name = step_name(step, i);
        let mut rec = StepRecord {
            run_id: rc.run_id.clone(),
            task: entry.to_owned(),
            target: target.name.clone(),
            index: u32::try_from(i).unwrap_or(u32::MAX),
            name: name.clone(),
            phase: RunPhase::Skipped,
            exit_code: None,
            started_at: None,
            finished_at: None,
            stdout: String::new(),
            stderr: String::new(),
        };
        if failed || cancelled || rc.cancel.is_cancelled() {
            rc.finish_step(&rec).await?;
            continue;
        }
        if let Some(when) = step.when.as_deref().filter(|w| !w.trim().is_empty()) {
            let rendered = render(when, &ctx);
            match eval_condition(&rendered) {
                Ok(true) => {}
                Ok(false) => {
                    ctx.set_step(&name, "", RunPhase::Skipped.as_str(), None);
                    rc.finish_step(&rec).await?;
                    continue;
                }
                Err(e) => {
                    rec.phase = RunPhase::Failed;
                    rec.stderr = format!("step `{name}`: when: {e}");
                    failed = true;
                    rc.finish_step(&rec).await?;
                    continue;
                }
            }
        }
        rec.phase = RunPhase::Running;
        rec.started_at = Some(now());
        rc.record(&rec).await?;
        rc.observer.step_started(entry, &target.name, &name);
        let result = if step.is_file_step() {
            run_file_step(rc, target, step, &ctx)
                .await
                .map(|msg| (ExitStatus::Code(0), msg, String::new()))
        } else {
            let mut req = ExecRequest::script(render(step.content.as_deref().unwrap_or(""), &ctx));
            req.timeout = step
                .timeout_seconds
                .filter(|t| *t > 0)
                .map(Duration::from_secs);
            req.sudo = rc.sudo;
            let sink =
                |stream: Stream, data: &[u8]| rc.observer.output(entry, &target.name, stream, data);
            target
                .executor
                .run(&req, Some(&sink), &rc.cancel)
                .await
                .map(|o| (o.status, o.stdout.text(), o.stderr.text()))
        };
        rec.finished_at = Some(now());
        let mut lost = false;
        match result {
            Ok((status, stdout, stderr)) => {
                rec.exit_code = status.code();
                rec.stdout = stdout;
                rec.stderr = stderr;
                rec.phase = match &status {
                    ExitStatus::Code(0) => RunPhase::Succeeded,
                    ExitStatus::Cancelled => RunPhase::Cancelled,
                    ExitStatus::TimedOut => {
                        let secs = step.timeout_seconds.unwrap_or_default();
                        rec.stderr.push_str(&format!(
                            "\n[step timed out after {secs}s; its processes were stopped]\n"
                        ));
                        RunPhase::Failed
                    }
                    _ => RunPhase::Failed,
                };
            }
            Err(e) => {
                lost = unreachable(&e);
                rec.phase = if matches!(e, ExecError::Cancelled { .. }) {
                    RunPhase::Cancelled
                } else {
                    RunPhase::Failed
                };
                rec.stderr = e.to_string();
            }
        }
        match rec.phase {
            RunPhase::Cancelled => cancelled = true,
            RunPhase::Failed => {
                let allowed = !lost
                    && step
                        .allow_failure
                        .as_deref()
                        .filter(|a| !a.trim().is_empty())
                        .map(|a| eval_condition(&render(a, &ctx)))
                        .is_some_and(|r| r.unwrap_or(false));
                if allowed {
                    rec.stderr.push_str("\n[failure allowed by allowfailure]\n");
                } else {
                    failed = true;
                }
            }
            _ => {}
        }
        for (k, v) in parse_results(&rec.stdout) {
            ctx.set_literal(format!("steps.{name}.results.{k}"), v.as_str());
            results.insert(k, v);
        }
        ctx.set_step(&name, &rec.stdout, rec.phase.as_str(), rec.exit_code);
        rc.finish_step(&rec).await?;
    }
    let phase = if failed {
        RunPhase::Failed
    } else if cancelled || rc.cancel.is_cancelled() {
        RunPhase::Cancelled
    } else {
        RunPhase::Succeeded
    };
    rc.observer.target_finished(entry, &target.name, phase);
    Ok(Outcome { phase, results })
}

/// Runs a task on all its targets, `forks` at a time.
async fn run_task_body(
    rc: &RunCtx<'_>,
    entry: &str,
    task: &Task,
    vars: &BTreeMap<String, String>,
    targets: &[Target],
) -> Result<Outcome, EngineError> {
    let forks = rc.engine.options.forks.max(1);
    // Indices, not `&Target`s, in the closure: a closure taking a borrowed
    // argument trips the compiler's Send inference when a run is spawned.
    let outcomes: Vec<Result<Outcome, EngineError>> = futures::stream::iter(0..targets.len())
        .map(|i| run_target(rc, entry, task, vars, &targets[i]))
        .buffered(forks)
        .collect()
        .await;
    let mut phase = RunPhase::Succeeded;
    let mut results = BTreeMap::new();
    for o in outcomes {
        let o = o?;
        phase = match (phase, o.phase) {
            (RunPhase::Failed, _) | (_, RunPhase::Failed) => RunPhase::Failed,
            (RunPhase::Cancelled, _) | (_, RunPhase::Cancelled) => RunPhase::Cancelled,
            _ => RunPhase::Succeeded,
        };
        for (k, v) in o.results {
            results.entry(k).or_insert(v);
        }
    }
    Ok(Outcome { phase, results })
}

/// Watches for a run timeout and for cancellation requested through the
/// store; both cancel `token`.
/// How long a run's lease lasts, and how often its owner renews it: a run
/// whose owner died anywhere reads as Interrupted at most this long after.
const LEASE: Duration = Duration::from_secs(30);
const LEASE_RENEW: Duration = Duration::from_secs(10);

/// The end of a lease taken now.
fn lease_until() -> String {
    ops_model::stamp::of(Utc::now() + chrono::Duration::from_std(LEASE).unwrap_or_default())
}

struct Watchers {
    handles: Vec<tokio::task::JoinHandle<()>>,
    timed_out: Arc<AtomicBool>,
    timeout: Option<Duration>,
}

impl Watchers {
    fn start(
        store: Arc<dyn Store>,
        run_id: String,
        token: CancellationToken,
        timeout: Option<Duration>,
    ) -> Self {
        let timed_out = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        if let Some(t) = timeout {
            let (token, flag) = (token.clone(), Arc::clone(&timed_out));
            handles.push(tokio::spawn(async move {
                tokio::time::sleep(t).await;
                flag.store(true, Ordering::SeqCst);
                token.cancel();
            }));
        }
        handles.push(tokio::spawn(async move {
            let mut renewed = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                // The lease says this process still works on the run.
                if renewed.elapsed() >= LEASE_RENEW {
                    renewed = tokio::time::Instant::now();
                    let _ = store.renew_lease(&run_id, &lease_until()).await;
                }
                if let Ok(Some(r)) = store.get_run(&run_id).await {
                    if r.cancel_requested {
                        token.cancel();
                        return;
                    }
                }
            }
        }));
        Watchers {
            handles,
            timed_out,
            timeout,
        }
    }
}

impl Drop for Watchers {
    fn drop(&mut self) {
        for h in &self.handles {
            h.abort();
        }
    }
}

/// What a run is, for recording it.
struct RunStart {
    kind: Kind,
    name: String,
    namespace: String,
    ref_name: String,
    spec: serde_json::Value,
    parent_id: Option<String>,
    timeout: Option<Duration>,
    sudo: bool,
}

/// Records the run (Pending, then Running), starts its timeout and
/// cancel-request watchers, and tells the observer.
async fn begin<'a>(
    engine: &'a Engine,
    s: RunStart,
    observer: &'a dyn RunObserver,
    cancel: &CancellationToken,
) -> Result<(RunCtx<'a>, Watchers), EngineError> {
    let run = RunRecord {
        id: new_run_id(&s.name),
        kind: s.kind.as_str().into(),
        namespace: s.namespace.clone(),
        name: s.name.clone(),
        ref_name: s.ref_name,
        phase: RunPhase::Pending,
        message: None,
        spec: s.spec,
        parent_id: s.parent_id,
        owner: Some(process_owner()),
        cancel_requested: false,
        created_at: now(),
        started_at: None,
        finished_at: None,
        steps: Vec::new(),
    };
    engine.store.create_run(&run).await?;
    engine
        .store
        .set_run_phase(&run.id, RunPhase::Running, None)
        .await?;
    engine.store.renew_lease(&run.id, &lease_until()).await?;
    let run = engine.store.get_run(&run.id).await?.unwrap_or(run);
    let token = cancel.child_token();
    let watchers = Watchers::start(
        Arc::clone(&engine.store),
        run.id.clone(),
        token.clone(),
        s.timeout,
    );
    let rc = RunCtx {
        engine,
        run_id: run.id.clone(),
        run_name: s.name,
        namespace: s.namespace,
        started: Utc::now(),
        observer,
        cancel: token,
        sudo: s.sudo,
    };
    observer.run_started(&run);
    Ok((rc, watchers))
}

async fn finish_run(
    rc: &RunCtx<'_>,
    outcome: RunPhase,
    watchers: &Watchers,
    outer_cancel: &CancellationToken,
    failure_note: Option<String>,
) -> Result<RunRecord, EngineError> {
    let (phase, message) = if watchers.timed_out.load(Ordering::SeqCst) {
        (
            RunPhase::Failed,
            Some(format!(
                "run timed out after {}s",
                watchers.timeout.map_or(0, |t| t.as_secs())
            )),
        )
    } else if outcome == RunPhase::Cancelled
        || outer_cancel.is_cancelled()
        || rc.cancel.is_cancelled()
    {
        (RunPhase::Cancelled, Some("cancelled".to_owned()))
    } else if outcome == RunPhase::Failed {
        (
            RunPhase::Failed,
            failure_note.or(Some("one or more targets failed".into())),
        )
    } else {
        (outcome, None)
    };
    rc.engine
        .store
        .set_run_phase(&rc.run_id, phase, message.as_deref())
        .await?;
    let run =
        rc.engine.store.get_run(&rc.run_id).await?.ok_or_else(|| {
            EngineError::Store(ops_store::StoreError::RunNotFound(rc.run_id.clone()))
        })?;
    rc.observer.run_finished(&run);
    Ok(run)
}

pub(super) async fn run_task(
    engine: &Engine,
    req: TaskRunRequest,
    observer: &dyn RunObserver,
    cancel: CancellationToken,
) -> Result<RunRecord, EngineError> {
    let declared: Variables = req.task.spec.variables.clone().unwrap_or_default();
    let vars = resolve_variables(&declared, &req.variables).map_err(EngineError::Variables)?;
    if req.targets.is_empty() {
        return Err(EngineError::Target(format!(
            "task `{}`: no target to run on",
            req.task.metadata.name
        )));
    }
    let name = req
        .name
        .clone()
        .unwrap_or_else(|| req.task.metadata.name.clone());
    let spec = serde_json::json!({
        "taskRef": req.task.metadata.name,
        "variables": redacted_vars(&vars),
        "targets": req.targets.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
        "sudo": req.sudo,
    });
    let timeout = req.timeout.or(req
        .task
        .spec
        .timeout_seconds
        .filter(|t| *t > 0)
        .map(Duration::from_secs));
    let start = RunStart {
        kind: Kind::TaskRun,
        name,
        namespace: req.namespace.clone(),
        ref_name: req.task.metadata.name.clone(),
        spec,
        parent_id: req.parent_id.clone(),
        timeout,
        sudo: req.sudo,
    };
    let (rc, watchers) = begin(engine, start, observer, &cancel).await?;
    let outcome = run_task_body(&rc, "", &req.task, &vars, &req.targets).await?;
    finish_run(&rc, outcome.phase, &watchers, &cancel, None).await
}

pub(super) async fn run_pipeline(
    engine: &Engine,
    req: PipelineRunRequest,
    observer: &dyn RunObserver,
    cancel: CancellationToken,
) -> Result<RunRecord, EngineError> {
    let p = &req.pipeline;
    let pname = p.metadata.name.clone();
    // Every reference resolves before anything runs.
    let mut tasks = Vec::new();
    for entry in &p.spec.tasks {
        let task_ref = entry
            .task_ref
            .clone()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| EngineError::NoTaskRef {
                pipeline: pname.clone(),
                entry: entry.name.clone(),
            })?;
        let key = ObjectKey {
            kind: Kind::Task,
            namespace: req.namespace.clone(),
            name: task_ref.clone(),
        };
        let task = match engine.store.get(&key).await?.map(|s| s.object) {
            Some(ops_model::Object::Task(t)) => t,
            _ => {
                return Err(EngineError::MissingTask {
                    pipeline: pname.clone(),
                    entry: entry.name.clone(),
                    task: task_ref,
                    namespace: req.namespace.clone(),
                });
            }
        };
        tasks.push(task);
    }
    let declared: Variables = p.spec.variables.clone().unwrap_or_default();
    let pvars = resolve_variables(&declared, &req.variables).map_err(EngineError::Variables)?;
    let mut pctx = Context::new();
    for (k, v) in &pvars {
        pctx.set_var(k.clone(), v.clone());
    }
    // Targets resolve before anything runs too.
    let mut targets = Vec::new();
    for task in &tasks {
        let expr = req
            .host
            .clone()
            .or_else(|| task.spec.target(&pvars).map(str::to_owned))
            .map(|h| render(&h, &pctx))
            .unwrap_or_default();
        let runtime = ops_exec::kube::PodRuntime::for_task(task, &pvars);
        let resolved = engine.targets_with(&req.namespace, &expr, &runtime).await?;
        if let Some(allowed) = &req.allowed {
            crate::check_allowed(&resolved, allowed)?;
        }
        targets.push(resolved);
    }
    let name = req.name.clone().unwrap_or_else(|| pname.clone());
    let spec = serde_json::json!({
        "pipelineRef": pname,
        "variables": redacted_vars(&pvars),
        "tasks": p.spec.tasks.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
        "sudo": req.sudo,
    });
    let timeout = req.timeout.or(p
        .spec
        .timeout_seconds
        .filter(|t| *t > 0)
        .map(Duration::from_secs));
    let start = RunStart {
        kind: Kind::PipelineRun,
        name,
        namespace: req.namespace.clone(),
        ref_name: pname.clone(),
        spec,
        parent_id: req.parent_id.clone(),
        timeout,
        sudo: req.sudo,
    };
    let (rc, watchers) = begin(engine, start, observer, &cancel).await?;
    let mut failed = false;
    let mut failure_note = None;
    for ((entry, task), task_targets) in p.spec.tasks.iter().zip(&tasks).zip(&targets) {
        let skip = |rc: &RunCtx<'_>, phase: RunPhase, note: String| StepRecord {
            run_id: rc.run_id.clone(),
            task: entry.name.clone(),
            target: "-".into(),
            index: 0,
            name: entry.name.clone(),
            phase,
            exit_code: None,
            started_at: None,
            finished_at: Some(now()),
            stdout: String::new(),
            stderr: note,
        };
        if (failed && !entry.run_always.unwrap_or(false)) || rc.cancel.is_cancelled() {
            rc.finish_step(&skip(&rc, RunPhase::Skipped, String::new()))
                .await?;
            pctx.set_literal(
                format!("tasks.{}.status", entry.name),
                RunPhase::Skipped.as_str(),
            );
            continue;
        }
        let mut given = pvars.clone();
        for (k, v) in entry.variables.clone().unwrap_or_default() {
            given.insert(k, render(&v, &pctx));
        }
        let vars = match resolve_variables(&task.spec.variables.clone().unwrap_or_default(), &given)
        {
            Ok(v) => v,
            Err(errs) => {
                let note = EngineError::Variables(errs).to_string();
                rc.finish_step(&skip(&rc, RunPhase::Failed, note.clone()))
                    .await?;
                pctx.set_literal(
                    format!("tasks.{}.status", entry.name),
                    RunPhase::Failed.as_str(),
                );
                if !entry.allow_failure.unwrap_or(false) {
                    failed = true;
                    failure_note = Some(format!("task `{}`: {note}", entry.name));
                }
                continue;
            }
        };
        let outcome = run_task_body(&rc, &entry.name, task, &vars, task_targets).await?;
        let mut rctx = pctx.clone();
        for (k, v) in &outcome.results {
            pctx.set_task_result(&entry.name, k, v);
            rctx.set_literal(format!("results.{k}"), v.as_str());
        }
        for (k, template) in entry.results.clone().unwrap_or_default() {
            pctx.set_task_result(&entry.name, &k, &render(&template, &rctx));
        }
        pctx.set_literal(
            format!("tasks.{}.status", entry.name),
            outcome.phase.as_str(),
        );
        if outcome.phase == RunPhase::Failed && !entry.allow_failure.unwrap_or(false) {
            failed = true;
            failure_note.get_or_insert_with(|| format!("task `{}` failed", entry.name));
        }
        if outcome.phase == RunPhase::Cancelled {
            break;
        }
    }
    let phase = if failed {
        RunPhase::Failed
    } else if rc.cancel.is_cancelled() {
        RunPhase::Cancelled
    } else {
        RunPhase::Succeeded
    };
    finish_run(&rc, phase, &watchers, &cancel, failure_note).await
}
