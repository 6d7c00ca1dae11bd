//! `opscli completion bash|zsh|fish|...`.

use std::process::ExitCode;

use clap::CommandFactory;

use crate::args::{Cli, CompletionArgs};

pub fn run(args: &CompletionArgs) -> ExitCode {
    clap_complete::generate(
        args.shell,
        &mut Cli::command(),
        "opscli",
        &mut std::io::stdout(),
    );
    ExitCode::SUCCESS
}
