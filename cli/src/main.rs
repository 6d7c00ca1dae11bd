//! `opscli`: the composition root. Parses the command line, resolves the
//! settings, wires the real adapters (the SQLite store today) and runs one
//! command. Exit codes: 0 success, 1 failure, 2 usage error.

mod anchor;
mod args;
mod commands;
mod config;
mod logging;
mod output;
mod progress;
mod table;

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use crate::args::{Cli, Command, CreateCommand, PipelineCommand};

async fn run(cli: Cli) -> Result<ExitCode> {
    if let Command::Completion(args) = &cli.command {
        return Ok(commands::completion::run(args));
    }
    let lenient = matches!(cli.command, Command::Config(_));
    let cfg = config::resolve(&cli.global, !lenient)?;
    let code = match cli.command {
        Command::Apply(a) => commands::apply::run(&cfg, a).await,
        Command::Get(a) => commands::get::run(&cfg, a).await,
        Command::Describe(a) => commands::describe::run(&cfg, a).await,
        Command::Delete(a) => commands::delete::run(&cfg, a).await,
        Command::Create(CreateCommand::Host(a)) => commands::create::host(&cfg, a).await,
        Command::Create(CreateCommand::Cluster(a)) => commands::create::cluster(&cfg, a).await,
        Command::Config(c) => commands::config::run(&cfg, c),
        Command::Shell(a) => commands::execute::shell(&cfg, a).await,
        Command::File(a) => commands::execute::file(&cfg, a).await,
        Command::Task(a) => commands::execute::task(&cfg, a).await,
        Command::Pipeline(PipelineCommand::Run(a)) => {
            commands::execute::pipeline_run(&cfg, a).await
        }
        Command::Run(c) => commands::runs::run(&cfg, c).await,
        Command::Scheduler(a) => commands::execute::scheduler(&cfg, a).await,
        Command::Cluster(c) => commands::cluster::run(&cfg, c).await,
        Command::Audit(c) => commands::audit::run(&cfg, c).await,
        Command::Copilot(a) => commands::copilot::run(&cfg, a).await,
        Command::Runbook(c) => commands::runbook::run(&cfg, c).await,
        Command::Events(c) => commands::events::run(&cfg, c).await,
        Command::Approval(c) => commands::approval::run(&cfg, c).await,
        Command::Heartbeat(a) => commands::execute::heartbeat(&cfg, a).await,
        Command::Hook(c) => commands::hook::run(&cfg, c).await,
        Command::Lab(c) => commands::lab::run(&cfg, c).await,
        Command::Eval(c) => commands::eval::run(&cfg, c).await,
        Command::Completion(_) => Ok(ExitCode::SUCCESS),
    };
    ops_app::services::flush_feed().await;
    code
}

/// `opscli get tasks | head` closes stdout early; printing then panics
/// with "Broken pipe". Exit quietly with the shell's SIGPIPE status
/// instead (restoring SIGPIPE's default needs `unsafe`, forbidden here).
fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

/// mimalloc, not the system allocator: the event feed and the hooks
/// allocate per event, and glibc's malloc cost a fifth of the hook path's
/// CPU (`tools/examples/events_bench.rs` uses the same allocator). Its
/// eagerly committed arena is backed by transparent huge pages where the
/// kernel offers them, which raised a 50-host fan-out's peak RSS from 33
/// to 55 MB: `main` turns THP off for this process.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    quiet_broken_pipe();
    // A short-lived CLI gains nothing from huge pages and pays for each
    // 2 MiB page the allocator touches; an error (an old kernel) is fine.
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_thp_disable(true);
    // Several TLS stacks (kube, later NATS and Qdrant) share rustls; pick
    // its crypto provider once, before any client is built. An error means
    // one is already installed, which is fine.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    logging::init();
    let cli = Cli::parse_from(anchor::task_vars(std::env::args_os().collect()));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
