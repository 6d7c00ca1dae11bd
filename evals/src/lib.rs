//! `ops-evals`: how we know the copilot works. The lab ([`lab`]: real
//! sshd hosts in namespaces with injected faults), the case format
//! ([`case`]), the scripted model server ([`scripted`]), the runner
//! ([`run`]) that drives copilot sessions through their front door, the
//! scorer ([`score`]) whose safety rules hold for every case, and the
//! reports ([`report`]).

pub mod case;
pub mod lab;
pub mod report;
pub mod run;
pub mod score;
pub mod scripted;
pub mod transcript;

use std::path::PathBuf;

/// Everything that can go wrong around a case (not the copilot's own
/// mistakes: those are scores).
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Something this machine lacks or a bad argument; fatal for the run.
    #[error("{0}")]
    Setup(String),
    /// A lab command failed (host, what, why).
    #[error("lab: {0}")]
    Lab(String),
    /// A case file is wrong.
    #[error("{}: {message}", path.display())]
    Case {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}
