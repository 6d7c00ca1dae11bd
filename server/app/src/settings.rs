//! Settings: one resolved struct from overrides (a program's flags) >
//! environment > config file > default, with the source of every value
//! kept for `config list`. No clap here: the CLI maps its flags onto
//! [`Overrides`]; a server or controller maps its own.
//!
//! The home directory is `--home`, else `$OPS_HOME`, else `~/.ops`; the
//! config file is `$OPS_HOME/config.yaml`, a flat map of setting names to
//! values. Environment variable names are the constants in [`env`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

/// Values given by the program's caller (the CLI's global flags), over
/// everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// State and config directory.
    pub home: Option<PathBuf>,
    /// Store file.
    pub store: Option<PathBuf>,
    /// Namespace.
    pub namespace: Option<String>,
    /// SSH unknown-host policy.
    pub known_hosts: Option<String>,
    /// Targets worked on at once.
    pub forks: Option<usize>,
    /// NATS server(s) of the event feed.
    pub nats: Option<String>,
}

/// How long an approval request waits for a decision unless the
/// `approval-ttl` setting says otherwise.
pub const DEFAULT_APPROVAL_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The output formats `output` may name.
pub const OUTPUT_FORMATS: &[&str] = &["table", "wide", "yaml", "json", "name"];

/// Environment variable names, in one place.
pub mod env {
    /// Home directory.
    pub const HOME: &str = "OPS_HOME";
    /// Store file.
    pub const STORE: &str = "OPS_STORE";
    /// Default namespace.
    pub const NAMESPACE: &str = "OPS_NAMESPACE";
    /// Default output format.
    pub const OUTPUT: &str = "OPS_OUTPUT";
    /// Unknown-host policy for SSH.
    pub const KNOWN_HOSTS: &str = "OPS_KNOWN_HOSTS";
    /// Targets run at once.
    pub const FORKS: &str = "OPS_FORKS";
    /// The model endpoint (the usual OpenAI variable).
    pub const MODEL_URL: &str = "OPENAI_BASE_URL";
    /// The model endpoint's key (the usual OpenAI variable).
    pub const MODEL_API_KEY: &str = "OPENAI_API_KEY";
    /// The model name.
    pub const MODEL: &str = "OPS_MODEL";
    /// How tool calls are asked for.
    pub const TOOL_CALLS: &str = "OPS_TOOL_CALLS";
    /// An OpenAI-compatible embeddings endpoint for runbook search.
    pub const EMBED_URL: &str = "OPS_EMBED_URL";
    /// The embedding model's name there.
    pub const EMBED_MODEL: &str = "OPS_EMBED_MODEL";
    /// A Qdrant gRPC endpoint for runbook vectors.
    pub const QDRANT_URL: &str = "OPS_QDRANT_URL";
    /// A NATS server for the event feed.
    pub const NATS_URL: &str = "OPS_NATS_URL";
    /// The JetStream stream's name.
    pub const NATS_STREAM: &str = "OPS_NATS_STREAM";
    /// How long the stream keeps events.
    pub const NATS_RETENTION: &str = "OPS_NATS_RETENTION";
    /// How long the stream remembers event ids.
    pub const NATS_DEDUP_WINDOW: &str = "OPS_NATS_DEDUP_WINDOW";
    /// Where the built-in model is installed when not under `$OPS_HOME`
    /// (`scripts/local-model.sh` installs it under `~/.ops`).
    pub const LOCAL_MODEL_HOME: &str = "OPS_LOCAL_MODEL_HOME";
    /// How long an approval request waits for a decision.
    pub const APPROVAL_TTL: &str = "OPS_APPROVAL_TTL";
}

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A command-line flag.
    Flag,
    /// An environment variable.
    Env,
    /// The config file.
    File,
    /// The built-in default.
    Default,
}

/// A known setting.
#[derive(Debug)]
pub struct Setting {
    /// Name in the config file and in `config get/set`.
    pub key: &'static str,
    /// Environment variable.
    pub env: &'static str,
    /// What it does.
    pub doc: &'static str,
}

/// Every setting this build knows.
pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "namespace",
        env: env::NAMESPACE,
        doc: "namespace used when a command or object names none",
    },
    Setting {
        key: "store",
        env: env::STORE,
        doc: "SQLite store file (relative paths in the config file are relative to OPS_HOME)",
    },
    Setting {
        key: "output",
        env: env::OUTPUT,
        doc: "default output format of get: table, wide, yaml, json or name",
    },
    Setting {
        key: "known-hosts",
        env: env::KNOWN_HOSTS,
        doc: "SSH unknown-host policy: strict (refuse) or accept-new (trust on first use); a changed key is always refused",
    },
    Setting {
        key: "forks",
        env: env::FORKS,
        doc: "how many targets a run works on at once",
    },
    Setting {
        key: "model-url",
        env: env::MODEL_URL,
        doc: "OpenAI-compatible endpoint of the copilot's model (OpenAI, Azure, vLLM, Ollama, llama-server), e.g. http://127.0.0.1:8080/v1",
    },
    Setting {
        key: "model",
        env: env::MODEL,
        doc: "model name sent to the endpoint",
    },
    Setting {
        key: "model-api-key",
        env: env::MODEL_API_KEY,
        doc: "API key for the endpoint (a ${env:NAME} or ${file:PATH} reference keeps it out of this file); never shown",
    },
    Setting {
        key: "tool-calls",
        env: env::TOOL_CALLS,
        doc: "how the model calls tools: auto (detected per endpoint), native, lenient (also calls written as text) or json-action (schema-enforced)",
    },
    Setting {
        key: "embed-url",
        env: env::EMBED_URL,
        doc: "OpenAI-compatible /v1/embeddings endpoint for runbook search (key: model-api-key); empty: the built-in all-MiniLM-L6-v2",
    },
    Setting {
        key: "embed-model",
        env: env::EMBED_MODEL,
        doc: "embedding model name at embed-url",
    },
    Setting {
        key: "qdrant-url",
        env: env::QDRANT_URL,
        doc: "Qdrant gRPC endpoint (http://host:6334) for runbook vectors; empty: in-process index",
    },
    Setting {
        key: "nats-url",
        env: env::NATS_URL,
        doc: "NATS server(s) of the event feed (nats://host:4222, comma-separated for a cluster; JetStream on); empty: the store's event log. Also read as events.nats_url",
    },
    Setting {
        key: "nats-stream",
        env: env::NATS_STREAM,
        doc: "JetStream stream holding events on ops.> (created when missing)",
    },
    Setting {
        key: "nats-retention",
        env: env::NATS_RETENTION,
        doc: "how long a stream created by ops keeps events (30s, 10m, 2h, 7d)",
    },
    Setting {
        key: "nats-dedup-window",
        env: env::NATS_DEDUP_WINDOW,
        doc: "how long a stream created by ops remembers event ids, dropping re-sent duplicates (at most nats-retention)",
    },
    Setting {
        key: "approval-ttl",
        env: env::APPROVAL_TTL,
        doc: "how long an approval request waits for a decision before it lapses (a no); an EventHooks object's options.approval-ttl overrides it for its calls",
    },
];

/// Older or dotted names accepted in the config file.
const ALIASES: &[(&str, &str)] = &[("events.nats_url", "nats-url")];

/// Settings whose values are never shown.
pub const SECRET_SETTINGS: &[&str] = &["model-api-key"];

/// A value as it may be shown.
pub fn shown(key: &str, value: &str) -> String {
    if SECRET_SETTINGS.contains(&key) && !value.is_empty() && !value.starts_with("${") {
        "<redacted>".to_owned()
    } else {
        value.to_owned()
    }
}

const DEFAULT_NAMESPACE: &str = "ops-system";

fn setting(key: &str) -> Result<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key).ok_or_else(|| {
        anyhow!(
            "unknown setting `{key}`; known settings: {}",
            SETTINGS
                .iter()
                .map(|s| s.key)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// Checks a value for a setting.
fn validate(key: &str, value: &str) -> Result<()> {
    match key {
        "namespace" => {
            let ok = !value.is_empty()
                && value.len() <= 253
                && value
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-._".contains(c));
            if !ok {
                bail!(
                    "namespace `{value}` is not valid: use lower-case letters, digits, `-`, `.` or `_`"
                );
            }
        }
        "output" if !OUTPUT_FORMATS.contains(&value.to_ascii_lowercase().as_str()) => {
            bail!("output `{value}` is not one of table, wide, yaml, json, name");
        }
        "store" if value.trim().is_empty() => bail!("store path is empty"),
        "nats-url"
            if !value.is_empty()
                && !value.split(',').all(|u| {
                    let u = u.trim();
                    (u.starts_with("nats://") || u.starts_with("tls://")) && u.len() > 7
                }) =>
        {
            bail!("nats-url `{value}` must be nats://host:port (or tls://), comma-separated");
        }
        "nats-retention" | "nats-dedup-window" | "approval-ttl" => {
            let d = parse_duration(value).map_err(|_| {
                anyhow!("{key} `{value}` is not a duration like 30s, 10m, 2h or 7d")
            })?;
            if key == "approval-ttl" && d.is_zero() {
                bail!("approval-ttl must be at least 1s");
            }
        }
        "nats-stream"
            if value.is_empty()
                || !value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            bail!("nats-stream `{value}` must be letters, digits, `-` or `_`");
        }
        "model-url" | "embed-url" | "qdrant-url"
            if !(value.is_empty()
                || value.starts_with("http://")
                || value.starts_with("https://")) =>
        {
            bail!("{key} `{value}` must start with http:// or https://");
        }
        "tool-calls" => {
            ops_agent::llm::ToolCallMode::parse_setting(value).map_err(|e| anyhow!(e))?;
        }
        "known-hosts" => {
            value
                .parse::<ops_exec::ssh::HostKeyPolicy>()
                .map_err(|e| anyhow!(e))?;
        }
        "forks" => {
            let n: usize = value
                .parse()
                .map_err(|_| anyhow!("forks `{value}` is not a number"))?;
            if n == 0 || n > 10_000 {
                bail!("forks must be between 1 and 10000, not {n}");
            }
        }
        _ => {}
    }
    Ok(())
}

/// The settings in force for this invocation.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `$OPS_HOME`.
    pub home: PathBuf,
    /// `$OPS_HOME/config.yaml`.
    pub file: PathBuf,
    /// Default namespace.
    pub namespace: String,
    /// Store file.
    pub store: PathBuf,
    /// Default output format (one of [`OUTPUT_FORMATS`]).
    pub output: String,
    /// SSH unknown-host policy.
    pub known_hosts: ops_exec::ssh::HostKeyPolicy,
    /// Targets at once.
    pub forks: usize,
    /// The model endpoint, if configured.
    pub model_url: Option<String>,
    /// The model name.
    pub model: String,
    /// The endpoint's key (possibly a `${env:}`/`${file:}` reference).
    pub model_api_key: Option<String>,
    /// Tool-call mode.
    pub tool_calls: Option<ops_agent::llm::ToolCallMode>,
    /// Embeddings endpoint (none: the built-in model).
    pub embed_url: Option<String>,
    /// Embedding model name at `embed_url`.
    pub embed_model: String,
    /// Qdrant endpoint for runbook vectors (none: in-process).
    pub qdrant_url: Option<String>,
    /// NATS server(s) for the event feed (none: the store's event log).
    pub nats_url: Option<String>,
    /// JetStream stream name.
    pub nats_stream: String,
    /// How long a created stream keeps events.
    pub nats_retention: std::time::Duration,
    /// How long a created stream remembers event ids.
    pub nats_dedup_window: std::time::Duration,
    /// How long an approval request waits for a decision.
    pub approval_ttl: std::time::Duration,
    /// Every setting's value and source, for `config list`.
    pub values: Vec<(&'static str, String, Source)>,
}

/// Reads the config file (absent is empty).
pub fn read_file(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let raw: BTreeMap<String, serde_yaml::Value> =
        serde_yaml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let mut out = BTreeMap::new();
    for (k, v) in raw {
        let v = match v {
            serde_yaml::Value::String(s) => s,
            serde_yaml::Value::Number(n) => n.to_string(),
            serde_yaml::Value::Bool(b) => b.to_string(),
            other => bail!(
                "{}: setting `{k}` must be a plain value, got {other:?}",
                path.display()
            ),
        };
        let k = ALIASES
            .iter()
            .find(|(alias, _)| *alias == k)
            .map_or(k, |(_, key)| (*key).to_owned());
        out.insert(k, v);
    }
    Ok(out)
}

fn write_file(path: &Path, values: &BTreeMap<String, String>) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let text = serde_yaml::to_string(values)?;
    let tmp = path.with_extension("yaml.tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.create(true).write(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::io::Write::write_all(&mut f, text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

fn default_value(key: &str, home: &Path) -> String {
    match key {
        "namespace" => DEFAULT_NAMESPACE.to_owned(),
        "store" => home.join("ops.db").display().to_string(),
        "known-hosts" => "strict".to_owned(),
        "forks" => "50".to_owned(),
        "model-url" | "model-api-key" | "embed-url" | "qdrant-url" | "nats-url" => String::new(),
        "nats-stream" => "ops".to_owned(),
        "nats-retention" => "7d".to_owned(),
        "nats-dedup-window" => "10m".to_owned(),
        "embed-model" => "text-embedding-3-small".to_owned(),
        "model" => "gpt-4o-mini".to_owned(),
        "tool-calls" => "auto".to_owned(),
        "approval-ttl" => "15m".to_owned(),
        _ => "table".to_owned(),
    }
}

fn home_dir(global: &Overrides) -> Result<PathBuf> {
    if let Some(h) = &global.home {
        return Ok(h.clone());
    }
    if let Some(h) = std::env::var_os(env::HOME).filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(h));
    }
    dirs::home_dir()
        .map(|h| h.join(".ops"))
        .ok_or_else(|| anyhow!("cannot find a home directory; set {}", env::HOME))
}

impl Settings {
    /// Resolves every setting. With `strict`, an invalid value is an error
    /// naming where it came from; without, it is a warning and the default
    /// is used, so that `config set`/`unset` can repair a broken file.
    pub fn resolve(global: &Overrides, strict: bool) -> Result<Settings> {
        let home = home_dir(global)?;
        let file = home.join("config.yaml");
        let from_file = read_file(&file)?;
        for key in from_file.keys() {
            if setting(key).is_err() {
                tracing::warn!("{}: unknown setting `{key}` ignored", file.display());
            }
        }
        let flag = |key: &str| -> Option<String> {
            match key {
                "namespace" => global.namespace.clone(),
                "store" => global.store.as_ref().map(|p| p.display().to_string()),
                "known-hosts" => global.known_hosts.clone(),
                "forks" => global.forks.map(|f| f.to_string()),
                "nats-url" => global.nats.clone(),
                _ => None,
            }
        };
        let mut values = Vec::new();
        for s in SETTINGS {
            let (value, source) = if let Some(v) = flag(s.key) {
                (v, Source::Flag)
            } else if let Some(v) = std::env::var(s.env).ok().filter(|v| !v.is_empty()) {
                (v, Source::Env)
            } else if let Some(v) = from_file.get(s.key) {
                let v = if s.key == "store" && Path::new(v).is_relative() {
                    home.join(v).display().to_string()
                } else {
                    v.clone()
                };
                (v, Source::File)
            } else {
                (default_value(s.key, &home), Source::Default)
            };
            let checked = validate(s.key, &value).with_context(|| {
                let origin = match source {
                    Source::Flag => "command line".to_owned(),
                    Source::Env => format!("${}", s.env),
                    Source::File => file.display().to_string(),
                    Source::Default => "default".to_owned(),
                };
                format!("setting `{}` from {origin}", s.key)
            });
            match checked {
                Ok(()) => values.push((s.key, value, source)),
                Err(e) if strict => return Err(e),
                Err(e) => {
                    tracing::warn!("{e:#}; using the default");
                    values.push((s.key, default_value(s.key, &home), Source::Default));
                }
            }
        }
        let get = |k: &str| {
            values
                .iter()
                .find(|(key, _, _)| *key == k)
                .map(|(_, v, _)| v.clone())
                .unwrap_or_default()
        };
        Ok(Settings {
            namespace: get("namespace"),
            store: PathBuf::from(get("store")),
            output: get("output").to_ascii_lowercase(),
            known_hosts: get("known-hosts").parse().unwrap_or_default(),
            forks: get("forks").parse().unwrap_or(50),
            model_url: Some(get("model-url")).filter(|v| !v.is_empty()),
            model: get("model"),
            model_api_key: Some(get("model-api-key")).filter(|v| !v.is_empty()),
            tool_calls: ops_agent::llm::ToolCallMode::parse_setting(&get("tool-calls"))
                .unwrap_or_default(),
            embed_url: Some(get("embed-url")).filter(|v| !v.is_empty()),
            embed_model: get("embed-model"),
            qdrant_url: Some(get("qdrant-url")).filter(|v| !v.is_empty()),
            nats_url: Some(get("nats-url")).filter(|v| !v.is_empty()),
            nats_stream: get("nats-stream"),
            nats_retention: parse_duration(&get("nats-retention"))
                .unwrap_or(std::time::Duration::from_secs(7 * 86400)),
            nats_dedup_window: parse_duration(&get("nats-dedup-window"))
                .unwrap_or(std::time::Duration::from_secs(600)),
            // Checked above: a zero or broken value never gets here.
            approval_ttl: parse_duration(&get("approval-ttl")).unwrap_or(DEFAULT_APPROVAL_TTL),
            home,
            file,
            values,
        })
    }

    /// A setting's resolved value and source.
    pub fn get(&self, key: &str) -> Result<(String, Source)> {
        setting(key)?;
        self.values
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, v, s)| (v.clone(), *s))
            .ok_or_else(|| anyhow!("setting `{key}` has no value"))
    }

    /// Writes `key: value` to the config file.
    pub fn set(&self, key: &str, value: &str) -> Result<()> {
        setting(key)?;
        validate(key, value)?;
        let mut values = read_file(&self.file)?;
        values.insert(key.to_owned(), value.to_owned());
        write_file(&self.file, &values)
    }

    /// Removes `key` from the config file; `false` when it was not there.
    pub fn unset(&self, key: &str) -> Result<bool> {
        setting(key)?;
        let mut values = read_file(&self.file)?;
        let had = values.remove(key).is_some();
        if had {
            write_file(&self.file, &values)?;
        }
        Ok(had)
    }
}

/// The longest duration a flag takes (100 years): past it, clocks overflow.
pub const MAX_DURATION_SECS: u64 = 100 * 366 * 86_400;

/// `1h30m`, `10m`, `45s`, `2d`, or plain seconds; at most 100 years.
pub fn parse_duration(text: &str) -> Result<std::time::Duration> {
    let t = text.trim();
    let too_long = || anyhow::anyhow!("duration `{text}` is longer than 100 years");
    if let Ok(secs) = t.parse::<u64>() {
        if secs > MAX_DURATION_SECS {
            return Err(too_long());
        }
        return Ok(std::time::Duration::from_secs(secs));
    }
    let mut total = 0u64;
    let mut num = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => bail!("duration `{text}`: unknown unit `{c}` (use s, m, h or d)"),
        };
        let n: u64 = num
            .parse()
            .with_context(|| format!("duration `{text}`: a number must come before `{c}`"))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .filter(|v| *v <= MAX_DURATION_SECS)
            .ok_or_else(too_long)?;
        num.clear();
    }
    if !num.is_empty() || total == 0 {
        bail!("duration `{text}`: give one like 30s, 10m, 2h or 1h30m");
    }
    Ok(std::time::Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::parse_duration as parse_since;

    #[test]
    fn since_durations() {
        assert_eq!(parse_since("90").unwrap().as_secs(), 90);
        assert_eq!(parse_since("10m").unwrap().as_secs(), 600);
        assert_eq!(parse_since("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(parse_since("2d").unwrap().as_secs(), 172_800);
        assert!(
            parse_since("5x")
                .unwrap_err()
                .to_string()
                .contains("unknown unit `x`")
        );
        assert!(parse_since("m").is_err());
        assert!(parse_since("10m5").is_err());
        // Found by attack: these panicked (overflow adding to the clock).
        for big in [
            "9000000000000",
            "99999999999999999999d",
            "18446744073709551615",
            "300000000000000h",
        ] {
            let e = parse_since(big).unwrap_err().to_string();
            assert!(
                e.contains("longer than 100 years") || e.contains("a number"),
                "{big}: {e}"
            );
        }
    }
}
