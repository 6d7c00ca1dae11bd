//! Live run display: each finished step's output as one block (never
//! interleaved between hosts), a progress bar on a terminal, plain lines
//! when piped, and a summary table at the end.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use ops_engine::RunObserver;
use ops_model::RunPhase;
use ops_store::{RunRecord, StepRecord};

use crate::table::Table;

/// Prints a run as it goes.
pub struct Printer {
    quiet: bool,
    bar: Option<ProgressBar>,
    targets: Mutex<BTreeMap<(String, String), RunPhase>>,
}

impl std::fmt::Debug for Printer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Printer")
            .field("quiet", &self.quiet)
            .finish_non_exhaustive()
    }
}

impl Printer {
    /// A printer for `total` target-task pairs; `quiet` prints nothing
    /// live (JSON output).
    pub fn new(total: usize, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::new(total as u64);
            if let Ok(style) =
                ProgressStyle::with_template("{spinner} {pos}/{len} targets done {elapsed} {msg}")
            {
                b.set_style(style);
            }
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            b
        });
        Printer {
            quiet,
            bar,
            targets: Mutex::new(BTreeMap::new()),
        }
    }

    fn say(&self, text: &str) {
        match &self.bar {
            Some(b) => b.println(text.trim_end_matches('\n')),
            None => print!("{text}"),
        }
    }

    /// The per-target summary table.
    pub fn summary(&self, run: &RunRecord) -> String {
        let phases = self.targets.lock().map(|t| t.clone()).unwrap_or_default();
        let pipeline = phases.keys().any(|(task, _)| !task.is_empty());
        let mut t = Table::new(if pipeline {
            vec!["TASK", "TARGET", "STATUS", "OK", "FAILED", "SKIPPED"]
        } else {
            vec!["TARGET", "STATUS", "OK", "FAILED", "SKIPPED"]
        });
        for ((task, target), phase) in &phases {
            let steps = run
                .steps
                .iter()
                .filter(|s| &s.task == task && &s.target == target);
            let (mut ok, mut failed, mut skipped) = (0, 0, 0);
            for s in steps {
                match s.phase {
                    RunPhase::Succeeded => ok += 1,
                    RunPhase::Skipped => skipped += 1,
                    _ => failed += 1,
                }
            }
            let mut row = vec![
                target.clone(),
                phase.to_string(),
                ok.to_string(),
                failed.to_string(),
                skipped.to_string(),
            ];
            if pipeline {
                row.insert(0, task.clone());
            }
            t.row(row);
        }
        t.to_string()
    }
}

fn duration(s: &StepRecord) -> String {
    crate::output::seconds_between(s.started_at.as_deref(), s.finished_at.as_deref())
        .map(|secs| format!(", {secs:.1}s"))
        .unwrap_or_default()
}

impl RunObserver for Printer {
    fn step_started(&self, task: &str, target: &str, step: &str) {
        if let Some(b) = &self.bar {
            let prefix = if task.is_empty() {
                String::new()
            } else {
                format!("{task} ")
            };
            b.set_message(format!("{prefix}{target}: {step}"));
        }
    }

    fn step_finished(&self, s: &StepRecord) {
        if self.quiet {
            return;
        }
        let task = if s.task.is_empty() {
            String::new()
        } else {
            format!("{} | ", s.task)
        };
        let exit = s.exit_code.map(|c| format!("exit {c}")).unwrap_or_default();
        let detail = match (exit.is_empty(), duration(s)) {
            (true, d) if d.is_empty() => String::new(),
            (true, d) => format!(" ({})", d.trim_start_matches(", ")),
            (false, d) => format!(" ({exit}{d})"),
        };
        let mut block = format!("==> {task}{} | {}: {}{detail}\n", s.target, s.name, s.phase);
        for text in [&s.stdout, &s.stderr] {
            if !text.is_empty() {
                block.push_str(text);
                if !text.ends_with('\n') {
                    block.push('\n');
                }
            }
        }
        self.say(&block);
    }

    fn target_finished(&self, task: &str, target: &str, phase: RunPhase) {
        if let Ok(mut t) = self.targets.lock() {
            t.insert((task.to_owned(), target.to_owned()), phase);
        }
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }

    fn run_finished(&self, _run: &RunRecord) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
