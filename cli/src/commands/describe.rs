//! `opscli describe KIND NAME`: one object in detail, for people.
//! Secrets show as `<redacted>`; a Pipeline's or TaskRun's references are
//! checked against the store so a missing Task is visible before a run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use ops_model::{Kind, Object, ObjectKey, Step, Variables};
use ops_store::{SqliteStore, Store, StoredObject};

use crate::args::DescribeArgs;
use crate::config::Config;
use crate::output::host_auth;
use crate::table::{Table, cell};

struct Doc(String);

impl Doc {
    fn field(&mut self, label: &str, value: impl AsRef<str>) {
        let v = value.as_ref();
        let v = if v.is_empty() { "<none>" } else { v };
        let _ = writeln!(self.0, "{:<16}{v}", format!("{label}:"));
    }
    fn opt(&mut self, label: &str, value: Option<impl AsRef<str>>) {
        match value {
            Some(v) => self.field(label, v),
            None => self.field(label, ""),
        }
    }
    fn section(&mut self, title: &str) {
        let _ = writeln!(self.0, "{title}:");
    }
    fn indented(&mut self, text: &str, prefix: &str) {
        for line in text.lines() {
            let _ = writeln!(self.0, "{prefix}{line}");
        }
    }
}

fn pairs(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn variables(doc: &mut Doc, vars: &Option<Variables>) {
    let Some(vars) = vars.as_ref().filter(|v| !v.is_empty()) else {
        doc.field("Variables", "");
        return;
    };
    doc.section("Variables");
    let mut t = Table::new(["NAME", "REQUIRED", "DEFAULT", "VALUE", "ALLOWED", "DESC"]);
    for (name, v) in vars {
        let dash = |s: Option<&String>| {
            s.filter(|s| !s.is_empty())
                .map_or("-".to_owned(), |s| cell(s, 30))
        };
        let allowed = match (&v.enums, &v.regex) {
            (Some(e), _) if !e.is_empty() => e.join("|"),
            (_, Some(r)) if !r.is_empty() => format!("/{r}/"),
            _ => "-".into(),
        };
        let desc = v.desc.as_ref().or(v.display.as_ref());
        t.row([
            name.clone(),
            if v.is_required() {
                "yes".into()
            } else {
                "no".into()
            },
            dash(v.default.as_ref()),
            dash(v.value.as_ref()),
            cell(&allowed, 30),
            dash(desc),
        ]);
    }
    doc.indented(&t.to_string(), "  ");
}

fn steps(doc: &mut Doc, steps: &[Step]) {
    if steps.is_empty() {
        doc.field("Steps", "");
        return;
    }
    doc.section("Steps");
    for (i, s) in steps.iter().enumerate() {
        let kind = if s.is_file_step() {
            match s.direction {
                Some(ops_model::Direction::Download) => "download",
                _ => "upload",
            }
        } else if s
            .content
            .as_deref()
            .and_then(|c| c.lines().next())
            .is_some_and(|l| l.starts_with("#!") && l.contains("python"))
        {
            "python"
        } else {
            "shell"
        };
        let _ = writeln!(
            doc.0,
            "  {}. {} ({kind})",
            i + 1,
            s.name.as_deref().unwrap_or("<unnamed>")
        );
        if let Some(w) = &s.when {
            let _ = writeln!(doc.0, "     when: {w}");
        }
        if let Some(a) = &s.allow_failure {
            let _ = writeln!(doc.0, "     allowfailure: {a}");
        }
        if let Some(t) = s.timeout_seconds {
            let _ = writeln!(doc.0, "     timeout: {t}s");
        }
        if s.is_file_step() {
            let _ = writeln!(
                doc.0,
                "     local: {}  remote: {}",
                s.localfile.as_deref().unwrap_or("-"),
                s.remotefile.as_deref().unwrap_or("-")
            );
        } else if let Some(c) = &s.content {
            doc.indented(c.trim_end(), "     | ");
        }
    }
}

async fn exists(store: &SqliteStore, kind: Kind, ns: &str, name: &str) -> Result<bool> {
    let key = ObjectKey {
        kind,
        namespace: ns.to_owned(),
        name: name.to_owned(),
    };
    Ok(store.get(&key).await?.is_some())
}

async fn reference(
    store: &SqliteStore,
    kind: Kind,
    ns: &str,
    name: Option<&str>,
) -> Result<String> {
    Ok(match name {
        None | Some("") => "<none>".into(),
        Some(n) if exists(store, kind, ns, n).await? => n.to_owned(),
        Some(n) => format!(
            "{n} (MISSING: no {} `{n}` in namespace {ns})",
            kind.as_str()
        ),
    })
}

async fn render(store: &SqliteStore, stored: &StoredObject) -> Result<String> {
    let o = stored.object.redacted();
    let ns = stored.key.namespace.as_str();
    let m = o.metadata();
    let mut d = Doc(String::new());
    d.field("Name", &m.name);
    d.field("Namespace", ns);
    d.field("Kind", o.kind().as_str());
    d.field("API Version", o.api_version());
    d.field("Labels", m.labels.as_ref().map(pairs).unwrap_or_default());
    d.field(
        "Annotations",
        m.annotations.as_ref().map(pairs).unwrap_or_default(),
    );
    d.field("Generation", stored.generation.to_string());
    d.field("Created", &stored.created_at);
    d.field("Updated", &stored.updated_at);
    match &o {
        Object::Host(h) => {
            let s = &h.spec;
            d.opt("Description", s.desc.as_ref());
            d.opt("Address", s.address.as_ref());
            d.field("Port", s.port.unwrap_or(22).to_string());
            d.opt("Username", s.username.as_ref());
            d.field("Auth", host_auth(s));
            d.opt("Password", s.password.as_ref());
            d.opt("Private Key", s.private_key.as_ref());
            d.opt("Key File", s.private_key_path.as_ref());
            d.opt("Secret Ref", s.secret_ref.as_ref());
            d.opt("Timeout", s.timeout_seconds.map(|t| format!("{t}s")));
            if let Some(st) = &h.status {
                d.section("Status");
                d.indented(serde_yaml::to_string(st)?.trim_end(), "  ");
            }
        }
        Object::Cluster(c) => {
            let s = &c.spec;
            d.opt("Description", s.desc.as_ref());
            d.opt("Server", s.server.as_ref());
            d.opt("Kubeconfig", s.kubeconfig_path.as_ref());
            d.opt("Config", s.config.as_ref());
            d.opt("Token", s.token.as_ref());
            if let Some(st) = &c.status {
                d.section("Status");
                d.indented(serde_yaml::to_string(st)?.trim_end(), "  ");
            }
        }
        Object::Task(t) => {
            let s = &t.spec;
            d.opt("Description", s.desc.as_ref());
            d.opt("Host", s.host.as_ref());
            d.opt("Runtime Image", s.runtime_image.as_ref());
            d.opt("Timeout", s.timeout_seconds.map(|t| format!("{t}s")));
            variables(&mut d, &s.variables);
            steps(&mut d, s.steps());
        }
        Object::Pipeline(p) => {
            let s = &p.spec;
            d.opt("Description", s.desc.as_ref());
            d.field(
                "Copilot SOP",
                if p.metadata.label("ops/copilot") == Some("enabled") {
                    "yes"
                } else {
                    "no"
                },
            );
            variables(&mut d, &s.variables);
            d.section("Tasks");
            let mut t = Table::new([
                "#",
                "NAME",
                "TASKREF",
                "ALLOW-FAILURE",
                "RUN-ALWAYS",
                "DESC",
            ]);
            for (i, task) in s.tasks.iter().enumerate() {
                let r = reference(store, Kind::Task, ns, task.task_ref.as_deref()).await?;
                let yes = |b: Option<bool>| if b.unwrap_or(false) { "yes" } else { "no" };
                t.row([
                    (i + 1).to_string(),
                    task.name.clone(),
                    r,
                    yes(task.allow_failure).into(),
                    yes(task.run_always).into(),
                    cell(task.desc.as_deref().unwrap_or("-"), 50),
                ]);
            }
            d.indented(&t.to_string(), "  ");
        }
        Object::TaskRun(r) => {
            let s = &r.spec;
            d.opt("Description", s.desc.as_ref());
            d.field(
                "Task",
                reference(store, Kind::Task, ns, s.task_ref.as_deref()).await?,
            );
            d.opt("Crontab", s.crontab.as_ref());
            d.opt("Host", s.host.as_ref().or(s.name_ref.as_ref()));
            d.opt("Variables", s.variables.as_ref().map(pairs));
            d.opt(
                "Run Status",
                r.status.as_ref().and_then(|s| s.run_status.as_ref()),
            );
        }
        Object::PipelineRun(r) => {
            let s = &r.spec;
            d.opt("Description", s.desc.as_ref());
            d.field(
                "Pipeline",
                reference(store, Kind::Pipeline, ns, s.pipeline_ref.as_deref()).await?,
            );
            d.opt("Crontab", s.crontab.as_ref());
            d.opt("Host", s.host.as_ref().or(s.name_ref.as_ref()));
            d.opt("Variables", s.variables.as_ref().map(pairs));
            d.opt(
                "Run Status",
                r.status.as_ref().and_then(|s| s.run_status.as_ref()),
            );
        }
        Object::EventHooks(e) => {
            let s = &e.spec;
            d.opt("Type", s.type_.as_ref());
            d.opt("Subject", s.subject.as_ref());
            d.opt("URL", s.url.as_ref());
            if let Some(k) = &s.keywords {
                d.section("Keywords");
                d.indented(serde_yaml::to_string(k)?.trim_end(), "  ");
            } else {
                d.field("Keywords", "");
            }
            d.opt("Options", s.options.as_ref().map(pairs));
            d.opt("Additional", s.additional.as_ref());
        }
    }
    Ok(d.0)
}

pub async fn run(cfg: &Config, args: DescribeArgs) -> Result<ExitCode> {
    let kind: Kind = args.kind.parse()?;
    let store = ops_app::services::open_store(cfg)?;
    let key = ObjectKey {
        kind,
        namespace: cfg.namespace.clone(),
        name: args.name.clone(),
    };
    let stored = store.get(&key).await?.ok_or_else(|| {
        anyhow!(
            "{} `{}` not found in namespace {}",
            kind.as_str(),
            args.name,
            cfg.namespace
        )
    })?;
    print!("{}", render(&store, &stored).await?);
    Ok(ExitCode::SUCCESS)
}
