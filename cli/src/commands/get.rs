//! `opscli get KIND [NAME...] [-l SELECTOR] [-A] [-o FORMAT]`.

use std::process::ExitCode;

use anyhow::{Result, bail};
use ops_model::{Kind, LabelSelector, ObjectKey};
use ops_store::Store;

use crate::args::{Format, GetArgs};
use crate::config::Config;
use crate::output;

pub async fn run(cfg: &Config, args: GetArgs) -> Result<ExitCode> {
    let kind: Kind = args.kind.parse()?;
    let selector: LabelSelector = args.selector.as_deref().unwrap_or("").parse()?;
    let format = args.output.unwrap_or(crate::config::output(cfg));
    let store = ops_app::services::open_store(cfg)?;
    if args.names.is_empty() {
        let ns = (!args.all_namespaces).then_some(cfg.namespace.as_str());
        let found = store.list(kind, ns, &selector).await?;
        if found.is_empty() && matches!(format, Format::Table | Format::Wide) {
            match ns {
                Some(ns) => eprintln!("No {} found in namespace {ns}.", kind.plural()),
                None => eprintln!("No {} found.", kind.plural()),
            }
            return Ok(ExitCode::SUCCESS);
        }
        print!(
            "{}",
            output::render(kind, &found, format, args.all_namespaces, true)?
        );
        return Ok(ExitCode::SUCCESS);
    }
    if args.all_namespaces {
        bail!("a name cannot be combined with --all-namespaces; use -n NAMESPACE");
    }
    if args.selector.is_some() {
        bail!("names cannot be combined with a label selector");
    }
    let mut found = Vec::new();
    let mut missing = 0;
    for name in &args.names {
        let key = ObjectKey {
            kind,
            namespace: cfg.namespace.clone(),
            name: name.clone(),
        };
        match store.get(&key).await? {
            Some(o) => found.push(o),
            None => {
                eprintln!(
                    "error: {} `{name}` not found in namespace {}",
                    kind.as_str(),
                    cfg.namespace
                );
                missing += 1;
            }
        }
    }
    if !found.is_empty() {
        print!("{}", output::render(kind, &found, format, false, false)?);
    }
    Ok(if missing == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
