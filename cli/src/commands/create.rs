//! `opscli create host|cluster`: objects from flags, as in the anchor.

use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use ops_model::{
    API_VERSION, Cluster, ClusterSpec, Host, HostSpec, Object, ObjectMeta, SecretRef, check_name,
};
use ops_store::Store;

use crate::args::{CreateClusterArgs, CreateHostArgs, Format};
use crate::config::Config;
use crate::output;

/// Addresses from `IP`, `IP,IP`, or a file with one address per line
/// (`#` comments and blank lines ignored).
fn addresses(inventory: &str) -> Result<Vec<String>> {
    let path = Path::new(inventory);
    let list: Vec<String> = if path.is_file() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read inventory file {inventory}"))?;
        text.lines()
            .map(|l| l.split('#').next().unwrap_or("").trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect()
    } else {
        inventory
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    if list.is_empty() {
        bail!("no address in `{inventory}`");
    }
    for a in &list {
        if a.chars().any(char::is_whitespace) || a.contains('/') {
            bail!("`{a}` is not a host address (inventory `{inventory}`)");
        }
    }
    Ok(list)
}

fn name_for(address: &str) -> String {
    address
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_matches('-')
        .to_owned()
}

fn meta(name: String, cfg: &Config, labels: &[String]) -> Result<ObjectMeta> {
    check_name(&name).map_err(|e| anyhow!(e))?;
    let labels = crate::commands::parse_pairs(labels, "label")?;
    Ok(ObjectMeta {
        name,
        namespace: Some(cfg.namespace.clone()),
        labels: (!labels.is_empty()).then_some(labels),
        ..ObjectMeta::default()
    })
}

async fn store_or_print(
    cfg: &Config,
    objects: Vec<Object>,
    dry_run: bool,
    format: Option<Format>,
) -> Result<ExitCode> {
    if dry_run {
        match format.unwrap_or(Format::Yaml) {
            Format::Json => print!("{}", output::json(&objects, objects.len() != 1)?),
            _ => print!("{}", output::yaml(&objects)?),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let store = ops_app::services::open_store(cfg)?;
    let outcomes = store.apply(objects.clone(), &cfg.namespace).await?;
    for (o, r) in objects.iter().zip(outcomes) {
        println!(
            "{}/{} {}",
            o.kind().as_str().to_ascii_lowercase(),
            o.name(),
            r.as_str()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn host(cfg: &Config, args: CreateHostArgs) -> Result<ExitCode> {
    let addrs = addresses(&args.inventory)?;
    let key_file = match &args.key_file {
        Some(p) => Some(
            std::fs::canonicalize(p)
                .with_context(|| format!("key file {} not found", p.display()))?
                .display()
                .to_string(),
        ),
        None => None,
    };
    let password = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        Some(line.trim_end_matches(['\n', '\r']).to_owned())
    } else if let Some(name) = &args.password_env {
        let reference = format!("${{env:{name}}}");
        if SecretRef::parse(&reference).is_none() {
            bail!(
                "--password-env `{name}` is not an environment variable name (letters, digits, `_`)"
            );
        }
        Some(reference)
    } else {
        args.password.clone()
    };
    if args.password.is_some() {
        eprintln!(
            "warning: a password on the command line may be kept in shell history; prefer --key-file or --password-stdin"
        );
    }
    let mut objects = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let name = match (&args.name, addrs.len()) {
            (Some(n), 1) => n.clone(),
            (Some(n), _) => format!("{n}-{}", i + 1),
            (None, _) => name_for(addr),
        };
        let host = Host {
            api_version: API_VERSION.into(),
            kind: "Host".into(),
            metadata: meta(name, cfg, &args.labels)?,
            spec: HostSpec {
                desc: args.desc.clone(),
                address: Some(addr.clone()),
                port: args.port,
                username: args.username.clone(),
                password: password.clone(),
                private_key_path: key_file.clone(),
                timeout_seconds: args.timeout,
                ..HostSpec::default()
            },
            status: None,
        };
        objects.push(Object::Host(host));
    }
    store_or_print(cfg, objects, args.dry_run, args.output).await
}

/// The API server of a kubeconfig's current context.
fn kubeconfig_server(path: &Path, text: &str) -> Result<String> {
    let shown = path.display();
    let doc: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| anyhow!("{shown}: not a kubeconfig: {e}"))?;
    let context_name = doc
        .get("current-context")
        .and_then(|v| v.as_str())
        .ok_or_else(|| anyhow!("{shown}: kubeconfig has no current-context"))?;
    let named = |list: &str, name: &str| {
        doc.get(list)?
            .as_sequence()?
            .iter()
            .find(|e| e.get("name").and_then(|n| n.as_str()) == Some(name))
            .cloned()
    };
    let context = named("contexts", context_name)
        .ok_or_else(|| anyhow!("{shown}: current-context `{context_name}` is not in contexts"))?;
    let cluster_name = context
        .get("context")
        .and_then(|c| c.get("cluster"))
        .and_then(|c| c.as_str())
        .ok_or_else(|| anyhow!("{shown}: context `{context_name}` names no cluster"))?;
    let cluster = named("clusters", cluster_name)
        .ok_or_else(|| anyhow!("{shown}: cluster `{cluster_name}` is not in clusters"))?;
    cluster
        .get("cluster")
        .and_then(|c| c.get("server"))
        .and_then(|s| s.as_str())
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("{shown}: cluster `{cluster_name}` has no server"))
}

pub async fn cluster(cfg: &Config, args: CreateClusterArgs) -> Result<ExitCode> {
    let path = &args.kubeconfig;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
    let server = kubeconfig_server(path, &text)?;
    let absolute = std::fs::canonicalize(path)?.display().to_string();
    let cluster = Cluster {
        api_version: API_VERSION.into(),
        kind: "Cluster".into(),
        metadata: meta(args.name.clone(), cfg, &args.labels)?,
        spec: ClusterSpec {
            desc: args.desc.clone(),
            server: Some(server),
            config: args.embed.then_some(text),
            kubeconfig_path: (!args.embed).then_some(absolute),
            ..ClusterSpec::default()
        },
        status: None,
    };
    store_or_print(
        cfg,
        vec![Object::Cluster(cluster)],
        args.dry_run,
        args.output,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_addresses() {
        assert_eq!(name_for("10.0.0.1"), "10-0-0-1");
        assert_eq!(name_for("Web.Example.com"), "web-example-com");
        assert_eq!(name_for("::1"), "1");
    }

    #[test]
    fn address_lists() {
        assert_eq!(addresses("a, b,,c").unwrap(), ["a", "b", "c"]);
        assert!(addresses(" , ").is_err());
        assert!(addresses("a b").is_err());
    }

    #[test]
    fn kubeconfig_server_follows_the_current_context() {
        let kc = "apiVersion: v1\nkind: Config\ncurrent-context: b\ncontexts:\n- name: a\n  context: {cluster: one}\n- name: b\n  context: {cluster: two}\nclusters:\n- name: one\n  cluster: {server: 'https://one:6443'}\n- name: two\n  cluster: {server: 'https://two:6443'}\n";
        assert_eq!(
            kubeconfig_server(Path::new("kc"), kc).unwrap(),
            "https://two:6443"
        );
        let err = kubeconfig_server(Path::new("kc"), "clusters: []\n").unwrap_err();
        assert!(err.to_string().contains("no current-context"), "{err}");
    }
}
