//! Run events: every TaskRun / PipelineRun records `started`, one `step`
//! event per finished (or skipped) step with its phase and exit code, and
//! `finished` with the per-step results, on
//! `ops.clusters.local.namespaces.{ns}.{taskruns|pipelineruns}.{name}.status`.
//! The engine tees its observer ([`Tee::to_feed`]); a writer task publishes
//! the events in order and [`Tee::finish`] waits until all are published.
//! Step output is not put in events (it may hold secrets; the run record
//! keeps it).

use serde_json::json;
use tokio::sync::mpsc;

use crate::RunObserver;
use ops_events::feed::Feed;
use ops_exec::Stream;
use ops_model::RunPhase;
use ops_model::event::CloudEvent;
use ops_model::event::subject::{self, LOCAL_CLUSTER};
use ops_store::{RunRecord, StepRecord};

/// Turns a run's progress into events.
#[derive(Debug, Clone)]
struct RunEvents {
    tx: mpsc::UnboundedSender<CloudEvent>,
    source: String,
}

impl RunEvents {
    fn subject(run: &RunRecord) -> String {
        let kind = if run.kind == "PipelineRun" {
            "pipelineruns"
        } else {
            "taskruns"
        };
        subject::object(
            LOCAL_CLUSTER,
            &run.namespace,
            kind,
            &run.name,
            subject::Channel::Status,
        )
    }

    fn send(&self, kind: &str, subject: String, data: serde_json::Value) {
        let e = CloudEvent::new(self.source.clone(), kind, subject, data).in_cluster(LOCAL_CLUSTER);
        let _ = self.tx.send(e);
    }
}

fn step_json(s: &StepRecord) -> serde_json::Value {
    json!({
        "task": s.task,
        "target": s.target,
        "index": s.index,
        "step": s.name,
        "phase": s.phase.as_str(),
        "exit_code": s.exit_code,
        "started_at": s.started_at,
        "finished_at": s.finished_at,
    })
}

/// An observer that tells `inner` and records events.
pub struct Tee<'a> {
    inner: &'a dyn RunObserver,
    events: RunEvents,
    writer: tokio::task::JoinHandle<()>,
    /// The run's subject and id, once started.
    run: std::sync::Mutex<Option<(String, String)>>,
}

impl std::fmt::Debug for Tee<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tee")
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl<'a> Tee<'a> {
    /// Tees `inner` into events published to `feed` by a background task,
    /// in order.
    pub fn to_feed(inner: &'a dyn RunObserver, feed: Feed) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<CloudEvent>();
        let writer = tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                let subject = e.subject.clone();
                if let Err(err) = feed.publish(e).await {
                    tracing::warn!("event {subject} not published: {err}");
                }
            }
        });
        Tee {
            inner,
            events: RunEvents {
                tx,
                source: ops_model::event::default_source(),
            },
            writer,
            run: std::sync::Mutex::new(None),
        }
    }

    /// Waits until every event of the run is written.
    pub async fn finish(self) {
        let Tee { events, writer, .. } = self;
        drop(events);
        let _ = writer.await;
    }
}

impl RunObserver for Tee<'_> {
    fn run_started(&self, run: &RunRecord) {
        self.inner.run_started(run);
        let subject = RunEvents::subject(run);
        if let Ok(mut r) = self.run.lock() {
            *r = Some((subject.clone(), run.id.clone()));
        }
        self.events.send(
            "dev.ops.run.started",
            subject,
            json!({"id": run.id, "kind": run.kind, "name": run.name, "ref": run.ref_name, "phase": RunPhase::Running.as_str()}),
        );
    }

    fn step_started(&self, task: &str, target: &str, step: &str) {
        self.inner.step_started(task, target, step);
    }

    fn output(&self, task: &str, target: &str, stream: Stream, data: &[u8]) {
        self.inner.output(task, target, stream, data);
    }

    fn step_finished(&self, step: &StepRecord) {
        self.inner.step_finished(step);
        let run = self.run.lock().ok().and_then(|r| r.clone());
        if let Some((subject, id)) = run {
            let mut data = step_json(step);
            data["run"] = json!(id);
            self.events.send("dev.ops.run.step", subject, data);
        }
    }

    fn target_finished(&self, task: &str, target: &str, phase: RunPhase) {
        self.inner.target_finished(task, target, phase);
    }

    fn run_finished(&self, run: &RunRecord) {
        self.inner.run_finished(run);
        self.events.send(
            "dev.ops.run.finished",
            RunEvents::subject(run),
            json!({
                "id": run.id,
                "kind": run.kind,
                "name": run.name,
                "ref": run.ref_name,
                "phase": run.phase.as_str(),
                "message": run.message,
                "steps": run.steps.iter().map(step_json).collect::<Vec<_>>(),
            }),
        );
    }
}
