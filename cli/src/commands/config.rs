//! `opscli config get|set|unset|list`.

use std::process::ExitCode;

use anyhow::Result;

use crate::args::{ConfigCommand, Format};
use crate::config::{Config, SETTINGS, Source};
use crate::table::Table;

fn source_name(s: Source) -> &'static str {
    match s {
        Source::Flag => "flag",
        Source::Env => "env",
        Source::File => "file",
        Source::Default => "default",
    }
}

pub fn run(cfg: &Config, cmd: ConfigCommand) -> Result<ExitCode> {
    match cmd {
        ConfigCommand::Get { key } => {
            let (value, _) = cfg.get(&key)?;
            println!("{}", crate::config::shown(&key, &value));
        }
        ConfigCommand::Set { key, value } => {
            cfg.set(&key, &value)?;
            println!(
                "{key} = {} (written to {})",
                crate::config::shown(&key, &value),
                cfg.file.display()
            );
            if let Ok((_, src @ (Source::Env | Source::Flag))) = cfg.get(&key) {
                eprintln!(
                    "note: `{key}` is currently overridden by the {}",
                    source_name(src)
                );
            }
        }
        ConfigCommand::Unset { key } => {
            if cfg.unset(&key)? {
                println!("{key} removed from {}", cfg.file.display());
            } else {
                println!("{key} was not set in {}", cfg.file.display());
            }
        }
        ConfigCommand::List { output } => {
            let rows: Vec<serde_json::Value> = cfg
                .values
                .iter()
                .map(|(k, v, s)| {
                    let env = SETTINGS.iter().find(|x| x.key == *k).map_or("", |x| x.env);
                    serde_json::json!({"key": k, "value": crate::config::shown(k, v), "source": source_name(*s), "env": env})
                })
                .collect();
            match output {
                Some(Format::Json) => println!("{}", serde_json::to_string_pretty(&rows)?),
                Some(Format::Yaml) => print!("{}", serde_yaml::to_string(&rows)?),
                _ => {
                    let mut t = Table::new(["KEY", "VALUE", "SOURCE", "ENV", "DESCRIPTION"]);
                    for ((k, v, s), setting) in cfg.values.iter().zip(SETTINGS) {
                        let v = crate::config::shown(k, v);
                        t.row([*k, v.as_str(), source_name(*s), setting.env, setting.doc]);
                    }
                    println!(
                        "home: {}\nfile: {}\n",
                        cfg.home.display(),
                        cfg.file.display()
                    );
                    print!("{t}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
