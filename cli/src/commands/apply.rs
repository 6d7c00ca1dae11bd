//! `opscli apply -f FILE|DIR|-`: every file is all-or-nothing; every bad
//! file is reported with file:line:column; good files are applied even
//! when others are bad, and the exit code says whether all were.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use ops_model::manifest::{LoadReport, load_path, parse_text};
use ops_store::Store;

use crate::args::{ApplyArgs, Format};
use crate::config::Config;

/// Reads every path given with `-f`.
pub fn load_all(paths: &[std::path::PathBuf]) -> Result<LoadReport> {
    let mut report = LoadReport::default();
    for p in paths {
        if p.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read standard input")?;
            match parse_text(Path::new("-"), &text) {
                Ok(f) => report.files.push(f),
                Err(e) => report.errors.push(e),
            }
        } else {
            let r = load_path(p);
            report.files.extend(r.files);
            report.errors.extend(r.errors);
        }
    }
    Ok(report)
}

#[derive(serde::Serialize)]
struct Line {
    kind: &'static str,
    namespace: String,
    name: String,
    result: String,
    file: String,
}

pub async fn run(cfg: &Config, args: ApplyArgs) -> Result<ExitCode> {
    let report = load_all(&args.files)?;
    for e in &report.errors {
        eprintln!("error: {e}");
    }
    let mut rejected = report.errors.len();
    let mut lines = Vec::new();
    let store = if args.dry_run {
        None
    } else {
        Some(ops_app::services::open_store(cfg)?)
    };
    for file in &report.files {
        let objects: Vec<_> = file.documents.iter().map(|d| d.object.clone()).collect();
        let outcomes: Vec<String> = match &store {
            None => objects
                .iter()
                .map(|_| "valid (dry run)".to_owned())
                .collect(),
            Some(store) => match store.apply(objects.clone(), &cfg.namespace).await {
                Ok(o) => o.iter().map(|o| o.as_str().to_owned()).collect(),
                Err(e) => {
                    eprintln!(
                        "error: {}: nothing applied from this file: {e}",
                        file.path.display()
                    );
                    rejected += 1;
                    continue;
                }
            },
        };
        for (o, result) in objects.iter().zip(outcomes) {
            lines.push(Line {
                kind: o.kind().as_str(),
                namespace: o.namespace().unwrap_or(&cfg.namespace).to_owned(),
                name: o.name().to_owned(),
                result,
                file: file.path.display().to_string(),
            });
        }
    }
    match args.output {
        Some(Format::Json) => println!("{}", serde_json::to_string_pretty(&lines)?),
        Some(Format::Yaml) => print!("{}", serde_yaml::to_string(&lines)?),
        _ => {
            for l in &lines {
                println!("{}/{} {}", l.kind.to_ascii_lowercase(), l.name, l.result);
            }
        }
    }
    let files = report.files.len() + report.errors.len();
    if files > 1 || rejected > 0 {
        eprintln!(
            "{} {} objects from {} files; {rejected} files rejected",
            if args.dry_run { "validated" } else { "applied" },
            lines.len(),
            files - rejected.min(files),
        );
    }
    Ok(if rejected == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
