//! `opscli delete KIND NAME...` or `opscli delete -f FILE|DIR`.

use std::process::ExitCode;

use anyhow::{Result, bail};
use ops_model::{Kind, ObjectKey};
use ops_store::Store;

use crate::args::DeleteArgs;
use crate::config::Config;

pub async fn run(cfg: &Config, args: DeleteArgs) -> Result<ExitCode> {
    let mut keys = Vec::new();
    let mut failed = false;
    if !args.files.is_empty() {
        if args.kind.is_some() {
            bail!("give either KIND NAME... or -f FILE, not both");
        }
        let report = crate::commands::apply::load_all(&args.files)?;
        for e in &report.errors {
            eprintln!("error: {e}");
            failed = true;
        }
        for f in &report.files {
            keys.extend(f.documents.iter().map(|d| d.object.key(&cfg.namespace)));
        }
    } else {
        let Some(kind) = &args.kind else {
            bail!("say what to delete: KIND NAME... or -f FILE");
        };
        let kind: Kind = kind.parse()?;
        if args.names.is_empty() {
            bail!("name the {} to delete", kind.plural());
        }
        keys.extend(args.names.iter().map(|n| ObjectKey {
            kind,
            namespace: cfg.namespace.clone(),
            name: n.clone(),
        }));
    }
    let store = ops_app::services::open_store(cfg)?;
    let existed = store.delete(&keys).await?;
    for (key, existed) in keys.iter().zip(existed) {
        let shown = format!("{}/{}", key.kind.as_str().to_ascii_lowercase(), key.name);
        if existed {
            println!("{shown} deleted");
        } else if !args.ignore_not_found {
            eprintln!(
                "error: {} `{}` not found in namespace {}",
                key.kind.as_str(),
                key.name,
                key.namespace
            );
            failed = true;
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
