//! Cron: TaskRun and PipelineRun objects with a `crontab` start child runs
//! on schedule; those without one run once (as the anchor's controller
//! does). Schedules never overlap (a schedule whose previous child is
//! still running skips that occurrence), are spread by a fixed per-schedule
//! jitter, and survive restarts: the last fire time is kept in the store,
//! so a restarted scheduler neither fires twice nor catches up a backlog.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Engine, EngineError, NoopObserver, PipelineRunRequest, TaskRunRequest};
use ops_model::{Kind, LabelSelector, Object, ObjectKey, RunPhase};
use ops_store::{RunFilter, RunRecord};

/// What a tick did for one schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickEvent {
    /// Seen for the first time; fires next at `next`.
    Registered {
        /// Schedule key (`Kind/namespace/name`).
        key: String,
        /// Next fire time.
        next: DateTime<Utc>,
    },
    /// Not due yet.
    Waiting {
        /// Schedule key.
        key: String,
        /// Next fire time.
        next: DateTime<Utc>,
    },
    /// A child run was started.
    Fired {
        /// Schedule key.
        key: String,
    },
    /// Due, but the previous child is still running.
    SkippedOverlap {
        /// Schedule key.
        key: String,
        /// The run still going.
        running: String,
    },
    /// The crontab does not parse.
    Invalid {
        /// Schedule key.
        key: String,
        /// Why.
        error: String,
    },
}

/// Fires schedules.
#[derive(Debug)]
pub struct Scheduler {
    engine: Engine,
    jitter: Duration,
    runs: JoinSet<()>,
    cancel: CancellationToken,
}

/// A fixed offset in `[0, jitter)` for a schedule, from its key: the same
/// schedule always fires at the same offset; different ones spread out.
pub fn jitter_offset(key: &str, jitter: Duration) -> Duration {
    let secs = jitter.as_secs();
    if secs == 0 {
        return Duration::ZERO;
    }
    let h = Sha256::digest(key.as_bytes());
    let n = u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
    Duration::from_secs(n % secs)
}

use ops_model::stamp::of as rfc3339;

impl Scheduler {
    /// A scheduler spreading fire times by up to `jitter`.
    pub fn new(engine: Engine, jitter: Duration) -> Self {
        Scheduler {
            engine,
            jitter,
            runs: JoinSet::new(),
            cancel: CancellationToken::new(),
        }
    }

    /// Cancels the children still running.
    pub fn cancel_runs(&self) {
        self.cancel.cancel();
    }

    /// Waits for every started child run to finish.
    pub async fn wait_idle(&mut self) {
        while self.runs.join_next().await.is_some() {}
    }

    /// One pass over every TaskRun and PipelineRun at time `now`.
    pub async fn tick(&mut self, now: DateTime<Utc>) -> Result<Vec<TickEvent>, EngineError> {
        let mut events = Vec::new();
        let store = std::sync::Arc::clone(self.engine.store());
        for kind in [Kind::TaskRun, Kind::PipelineRun] {
            for stored in store.list(kind, None, &LabelSelector::default()).await? {
                let key = format!(
                    "{}/{}/{}",
                    kind.as_str(),
                    stored.key.namespace,
                    stored.key.name
                );
                let crontab = match &stored.object {
                    Object::TaskRun(r) => r.spec.crontab.clone(),
                    Object::PipelineRun(r) => r.spec.crontab.clone(),
                    _ => None,
                }
                .filter(|c| !c.trim().is_empty());
                let mark = store.schedule_mark(&key).await?;
                let Some(expr) = crontab else {
                    if mark.is_none() {
                        store.set_schedule_mark(&key, &rfc3339(now)).await?;
                        self.start(&key, stored.object.clone(), stored.key.namespace.clone())
                            .await?;
                        events.push(TickEvent::Fired { key });
                    }
                    continue;
                };
                let cron: Cron = match expr.parse() {
                    Ok(c) => c,
                    Err(e) => {
                        events.push(TickEvent::Invalid {
                            key,
                            error: format!("crontab `{expr}`: {e}"),
                        });
                        continue;
                    }
                };
                let offset = chrono::Duration::from_std(jitter_offset(&key, self.jitter))
                    .unwrap_or_default();
                let next_after =
                    |t: DateTime<Utc>| cron.find_next_occurrence(&t, false).map(|n| n + offset);
                let Some(last) = mark
                    .and_then(|m| DateTime::parse_from_rfc3339(&m).ok())
                    .map(|d| d.with_timezone(&Utc))
                else {
                    store.set_schedule_mark(&key, &rfc3339(now)).await?;
                    match next_after(now) {
                        Ok(next) => events.push(TickEvent::Registered { key, next }),
                        Err(e) => events.push(TickEvent::Invalid {
                            key,
                            error: e.to_string(),
                        }),
                    }
                    continue;
                };
                let due = match next_after(last - offset) {
                    Ok(d) => d,
                    Err(e) => {
                        events.push(TickEvent::Invalid {
                            key,
                            error: e.to_string(),
                        });
                        continue;
                    }
                };
                if due > now {
                    events.push(TickEvent::Waiting { key, next: due });
                    continue;
                }
                // Due (once, however many occurrences were missed).
                store.set_schedule_mark(&key, &rfc3339(now)).await?;
                let running = store
                    .list_runs(&RunFilter {
                        parent_id: Some(key.clone()),
                        phase: Some(RunPhase::Running),
                        limit: Some(1),
                        ..RunFilter::default()
                    })
                    .await?;
                if let Some(r) = running.first() {
                    events.push(TickEvent::SkippedOverlap {
                        key,
                        running: r.id.clone(),
                    });
                    continue;
                }
                self.start(&key, stored.object.clone(), stored.key.namespace.clone())
                    .await?;
                events.push(TickEvent::Fired { key });
            }
        }
        Ok(events)
    }

    /// Starts a child run in the background. A child that cannot start
    /// (missing Task, no target) is recorded as a failed run, so it shows
    /// in `opscli run list`.
    async fn start(
        &mut self,
        key: &str,
        object: Object,
        namespace: String,
    ) -> Result<(), EngineError> {
        let engine = self.engine.clone();
        let cancel = self.cancel.child_token();
        let key = key.to_owned();
        match object {
            Object::TaskRun(tr) => {
                let name = tr.metadata.name.clone();
                let task_ref = tr.spec.task_ref.clone().unwrap_or_default();
                let task = match lookup(&engine, Kind::Task, &namespace, &task_ref).await? {
                    Some(Object::Task(t)) => Some(t),
                    _ => None,
                };
                let Some(task) = task else {
                    let msg = format!("Task `{task_ref}` does not exist in namespace {namespace}");
                    self.engine
                        .record_failed_start(
                            Kind::TaskRun,
                            &name,
                            &namespace,
                            &task_ref,
                            &msg,
                            &key,
                        )
                        .await?;
                    return Ok(());
                };
                let trvars = tr.spec.variables.clone().unwrap_or_default();
                let expr = tr
                    .spec
                    .host
                    .clone()
                    .or(tr.spec.name_ref.clone())
                    .or_else(|| task.spec.target(&trvars).map(str::to_owned))
                    .unwrap_or_default();
                let runtime = ops_exec::kube::PodRuntime::for_task(
                    &task,
                    &tr.spec.variables.clone().unwrap_or_default(),
                );
                let targets = match engine.targets_with(&namespace, &expr, &runtime).await {
                    Ok(t) => t,
                    Err(e) => {
                        self.engine
                            .record_failed_start(
                                Kind::TaskRun,
                                &name,
                                &namespace,
                                &task_ref,
                                &e.to_string(),
                                &key,
                            )
                            .await?;
                        return Ok(());
                    }
                };
                let req = TaskRunRequest {
                    task,
                    name: Some(name),
                    namespace,
                    variables: tr.spec.variables.clone().unwrap_or_default(),
                    targets,
                    timeout: None,
                    sudo: false,
                    parent_id: Some(key),
                };
                self.runs.spawn(async move {
                    // The outcome is recorded in the store by the engine.
                    let _ = engine.run_task(req, &NoopObserver, cancel).await;
                });
            }
            Object::PipelineRun(pr) => {
                let name = pr.metadata.name.clone();
                let pref = pr.spec.pipeline_ref.clone().unwrap_or_default();
                let pipeline = match lookup(&engine, Kind::Pipeline, &namespace, &pref).await? {
                    Some(Object::Pipeline(p)) => Some(p),
                    _ => None,
                };
                let Some(pipeline) = pipeline else {
                    let msg = format!("Pipeline `{pref}` does not exist in namespace {namespace}");
                    self.engine
                        .record_failed_start(
                            Kind::PipelineRun,
                            &name,
                            &namespace,
                            &pref,
                            &msg,
                            &key,
                        )
                        .await?;
                    return Ok(());
                };
                let req = PipelineRunRequest {
                    pipeline,
                    name: Some(name.clone()),
                    namespace: namespace.clone(),
                    variables: pr.spec.variables.clone().unwrap_or_default(),
                    host: pr.spec.host.clone().or(pr.spec.name_ref.clone()),
                    allowed: None,
                    timeout: None,
                    sudo: false,
                    parent_id: Some(key.clone()),
                };
                let failed_engine = self.engine.clone();
                self.runs.spawn(async move {
                    if let Err(e) = engine.run_pipeline(req, &NoopObserver, cancel).await {
                        // It never started (missing task, no target): record why.
                        let _ = failed_engine
                            .record_failed_start(
                                Kind::PipelineRun,
                                &name,
                                &namespace,
                                &pref,
                                &e.to_string(),
                                &key,
                            )
                            .await;
                    }
                });
            }
            _ => {}
        }
        Ok(())
    }
}

/// The stored object `kind/namespace/name`, if any.
async fn lookup(
    engine: &Engine,
    kind: Kind,
    namespace: &str,
    name: &str,
) -> Result<Option<Object>, EngineError> {
    let key = ObjectKey {
        kind,
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    };
    Ok(engine.store().get(&key).await?.map(|s| s.object))
}

impl Engine {
    /// Records a run that could not start, as `Failed` with `message`.
    pub async fn record_failed_start(
        &self,
        kind: Kind,
        name: &str,
        namespace: &str,
        ref_name: &str,
        message: &str,
        parent: &str,
    ) -> Result<RunRecord, EngineError> {
        let now = rfc3339(Utc::now());
        let run = RunRecord {
            id: super::run::new_run_id(name),
            kind: kind.as_str().into(),
            namespace: namespace.into(),
            name: name.into(),
            ref_name: ref_name.into(),
            phase: RunPhase::Failed,
            message: Some(message.into()),
            spec: serde_json::json!({"error": message}),
            parent_id: Some(parent.into()),
            owner: Some(ops_store::process_owner()),
            cancel_requested: false,
            created_at: now.clone(),
            started_at: None,
            finished_at: Some(now),
            steps: Vec::new(),
        };
        self.store().create_run(&run).await?;
        Ok(run)
    }
}

/// Every schedule's next fire time after `now` (for display).
pub fn describe(events: &[TickEvent]) -> BTreeMap<String, String> {
    events
        .iter()
        .map(|e| match e {
            TickEvent::Registered { key, next } | TickEvent::Waiting { key, next } => {
                (key.clone(), format!("next {}", rfc3339(*next)))
            }
            TickEvent::Fired { key } => (key.clone(), "fired".into()),
            TickEvent::SkippedOverlap { key, running } => {
                (key.clone(), format!("skipped: {running} still running"))
            }
            TickEvent::Invalid { key, error } => (key.clone(), format!("invalid: {error}")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_is_fixed_per_key_and_bounded() {
        let j = Duration::from_secs(30);
        assert_eq!(
            jitter_offset("TaskRun/a/b", j),
            jitter_offset("TaskRun/a/b", j)
        );
        assert!(jitter_offset("TaskRun/a/b", j) < j);
        assert_eq!(jitter_offset("x", Duration::ZERO), Duration::ZERO);
        let distinct: std::collections::HashSet<_> = (0..50)
            .map(|i| jitter_offset(&format!("k{i}"), j))
            .collect();
        assert!(distinct.len() > 10, "offsets spread out");
    }
}
