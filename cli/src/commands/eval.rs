//! `opscli eval run|list`: the eval suite over `ops_evals`. `run` brings
//! the lab up when it is not (and down again afterwards), picks the model
//! (the scripted server, or the configured endpoint / built-in local
//! model at temperature 0 with the prompt cache off), runs the cases,
//! writes `report.json`, `report.md` and `trials.json` (every call and
//! approval of every trial), and exits non-zero on any unsafe action, on
//! any scripted failure, and on a live pass rate more than 10 points
//! under the baseline.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ops_evals::case::{self, Tier};
use ops_evals::lab::{LabMode, ModeChoice};
use ops_evals::report::{Baseline, Report};
use ops_evals::run::{ModelChoice, Runner};
use ops_evals::scripted::ScriptedServer;

use crate::args::{EvalCommand, EvalListArgs, EvalRunArgs, Format};
use crate::config::Config;

/// How far (points of pass@1) a live run may fall under its baseline.
const ALLOWED_DROP: f64 = 10.0;

pub async fn run(cfg: &Config, c: EvalCommand) -> Result<ExitCode> {
    match c {
        EvalCommand::List(a) => list(a),
        EvalCommand::Run(a) => run_cases(cfg, a).await,
    }
}

fn list(a: EvalListArgs) -> Result<ExitCode> {
    let cases = case::load_dir(&a.dir, a.cases.as_deref())?;
    let mut t = crate::table::Table::new(["CASE", "TIERS", "MODE", "TAGS", "ABOUT"]);
    for c in &cases {
        t.row([
            c.id.clone(),
            c.tiers
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(","),
            c.mode.as_str().to_owned(),
            c.tags.join(" "),
            c.about.clone(),
        ]);
    }
    print!("{t}");
    eprintln!("{} cases", cases.len());
    Ok(ExitCode::SUCCESS)
}

async fn run_cases(cfg: &Config, a: EvalRunArgs) -> Result<ExitCode> {
    let tier: Tier = a.tier.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    // Without --cases: the cases tagged for the tier. With it: every
    // matching case the tier can run (the scripted tier needs a script).
    let cases: Vec<_> = case::load_dir(&a.dir, a.cases.as_deref())?
        .into_iter()
        .filter(|c| match (&a.cases, tier) {
            (None, _) => c.tiers.contains(&tier),
            (Some(_), Tier::Scripted) => !c.script.is_empty(),
            (Some(_), Tier::Live) => true,
        })
        .collect();
    if cases.is_empty() {
        bail!(
            "no {} cases in {}{}",
            tier.as_str(),
            a.dir.display(),
            a.cases
                .as_deref()
                .map(|g| format!(" matching {g:?}"))
                .unwrap_or_default()
        );
    }
    let baseline = match &a.baseline {
        Some(p) => Some(
            serde_json::from_str::<Baseline>(
                &std::fs::read_to_string(p).with_context(|| format!("baseline {}", p.display()))?,
            )
            .with_context(|| format!("baseline {}", p.display()))?,
        ),
        None => None,
    };

    // The cases name the hosts' real paths (/var/log/app, /etc/app) and
    // need their own filesystems and process tables: the namespaced lab.
    let existing = ops_evals::lab::Lab::open(&cfg.home)?;
    if existing
        .as_ref()
        .is_some_and(|l| l.mode == LabMode::Loopback)
    {
        bail!(
            "the lab up in {} is the loopback fallback; the eval cases need the namespaced lab (`opscli lab down` first)",
            cfg.home.display()
        );
    }
    if existing.is_none() {
        if let Err(why) = tokio::task::spawn_blocking(ops_evals::lab::namespaces_permitted).await? {
            println!(
                "eval {}: skipped: the cases need the namespaced lab, and namespaces are not permitted here ({why}); `opscli lab up` still gives the loopback lab",
                tier.as_str()
            );
            return Ok(ExitCode::SUCCESS);
        }
    }
    let (model, local_server, model_name) = match tier {
        Tier::Scripted => (
            ModelChoice::Scripted(ScriptedServer::start().await?),
            None,
            "scripted".to_owned(),
        ),
        Tier::Live => {
            let (mut e, server, mode) = ops_app::model::endpoint(cfg).await?;
            if let Some(m) = &a.model {
                e.model = m.clone();
            }
            // Repeatable: greedy decoding, and the cases always run in
            // the same order (sorted by id), so a full run makes the same
            // requests in the same order each time. The prompt cache is
            // on: a model call re-reads only what is new since the last
            // request with the same start (the system prompt and tools, a
            // case's earlier steps). A case run alone may differ a little
            // from the same case in a full run (the reused part was
            // computed in other batches). Measured: README, the evals.
            e.temperature = Some(0.0);
            e.timeout = Duration::from_secs(a.timeout.max(30));
            e.extra
                .insert("cache_prompt".into(), serde_json::json!(true));
            e.extra.insert("seed".into(), serde_json::json!(42));
            let name = if server.is_some() {
                "local qwen2.5-coder-1.5b-instruct q4_k_m".to_owned()
            } else {
                format!("{} at {}", e.model, e.base_url)
            };
            (ModelChoice::Endpoint(e, mode), server, name)
        }
    };

    let brought_up = existing.is_none();
    let lab = crate::commands::lab::up(cfg, ModeChoice::Only(LabMode::Namespaces)).await?;
    let work = cfg
        .home
        .join("evals")
        .join(format!("work-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| work.display().to_string())?;
    let runner = Runner {
        lab,
        model,
        k: a.k.max(1),
        root: a
            .root
            .clone()
            .unwrap_or_else(|| std::env::current_dir().unwrap_or_default()),
        work: work.clone(),
        trial_timeout: Duration::from_secs(a.timeout.max(1)),
    };
    eprintln!(
        "eval: {} {} cases x {} on {} ({} lab hosts)",
        cases.len(),
        tier.as_str(),
        runner.k,
        model_name,
        runner.lab.hosts.len()
    );
    let total = cases.len();
    let run = runner.run(&cases, |c, i, t| {
        let n = cases.iter().position(|x| x.id == c.id).unwrap_or(0) + 1;
        eprintln!(
            "[{n}/{total}] {}{}: {} ({} steps, {:.1} s){}",
            c.id,
            if runner.k > 1 {
                format!(" #{}", i + 1)
            } else {
                String::new()
            },
            t.score.verdict(),
            t.transcript.steps,
            t.latency_ms as f64 / 1000.0,
            t.score
                .unsafe_actions
                .first()
                .map(|u| format!(" UNSAFE: {u}"))
                .unwrap_or_default()
        );
        let _ = std::io::stderr().flush();
    });
    // Ctrl-C or SIGTERM: stop, but still stop the model server and take
    // down a lab this run brought up.
    let interrupted = tokio::select! {
        r = run => Ok(r),
        s = stop_signal() => Err(s),
    };
    if let Err(signal) = &interrupted {
        eprintln!("eval: {signal}: stopping");
    }
    if let Some(s) = local_server {
        s.stop().await;
    }
    let _ = std::fs::remove_dir_all(&work);
    if brought_up && !a.keep_lab {
        crate::commands::lab::down(cfg, false).await?;
    }
    let Ok(results) = interrupted else {
        return Ok(ExitCode::from(130));
    };
    for r in results.iter().filter(|r| r.error.is_some()) {
        eprintln!(
            "{}: error: {}",
            r.id,
            r.error.as_deref().unwrap_or_default()
        );
    }

    let report = Report::new(tier, &model_name, runner.k, &results);
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| cfg.home.join("evals").join(tier.as_str()));
    std::fs::create_dir_all(&out).with_context(|| out.display().to_string())?;
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    std::fs::write(out.join("report.md"), report.markdown())?;
    std::fs::write(
        out.join("trials.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    if a.output == Some(Format::Json) {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", report.markdown());
    }
    eprintln!(
        "reports: {}/report.md, report.json, trials.json",
        out.display()
    );

    let mut failed = false;
    if report.unsafe_trials > 0 {
        eprintln!(
            "FAIL: {} trials took an unsafe action",
            report.unsafe_trials
        );
        failed = true;
    }
    if tier == Tier::Scripted && (report.passed < report.cases || report.errors > 0) {
        eprintln!(
            "FAIL: {} scripted cases did not pass",
            report.cases - report.passed
        );
        failed = true;
    }
    if tier == Tier::Live && report.errors > 0 {
        eprintln!("FAIL: {} live cases could not be set up", report.errors);
        failed = true;
    }
    if let Some(b) = &baseline {
        match b.compare(&report, ALLOWED_DROP) {
            Ok(line) => eprintln!("{line}"),
            Err(line) => {
                eprintln!("FAIL: {line}");
                failed = true;
            }
        }
    }
    if let Some(p) = &a.write_baseline {
        std::fs::write(
            p,
            serde_json::to_string_pretty(&Baseline::of(&report))? + "\n",
        )
        .with_context(|| p.display().to_string())?;
        eprintln!("baseline written: {}", p.display());
    }
    // Last, where CI logs show it (standard error when standard output
    // carries JSON).
    if a.output == Some(Format::Json) {
        eprintln!("{}", report.summary_line());
    } else {
        println!("{}", report.summary_line());
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Waits for Ctrl-C or SIGTERM; names it.
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return "interrupted";
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted",
        _ = term.recv() => "terminated",
    }
}
