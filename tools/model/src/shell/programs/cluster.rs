//! Cluster and container readers: `kubectl` (read verbs and true dry
//! runs), the container runtimes' CLIs, `helm`.

use super::super::Effect::Read;
use super::super::secret;
use super::Outcome;

pub(super) fn kubectl(words: &[&str], dynamic: bool) -> Outcome {
    if dynamic {
        return Outcome::mutate("`kubectl` with arguments known only at run time");
    }
    const FLAG: &[&str] = &[
        "-A",
        "--all-namespaces",
        "--show-labels",
        "--no-headers",
        "--show-kind",
        "--ignore-not-found",
        "--previous",
        "-p",
        "--timestamps",
        "--all-containers",
        "--prefix",
        "-R",
        "--recursive",
        "--raw-output",
        "--containers",
        "--show-managed-fields",
        "--watch",
        "-w",
        "--follow",
        "-f",
        "--insecure-skip-tls-verify",
        "--sum",
        "--use-protocol-buffers",
        "--no-trunc",
    ];
    const VALUE: &[&str] = &[
        "-n",
        "--namespace",
        "--context",
        "--cluster",
        "-l",
        "--selector",
        "--field-selector",
        "-o",
        "--output",
        "-c",
        "--container",
        "--tail",
        "--since",
        "--since-time",
        "--sort-by",
        "-L",
        "--label-columns",
        "--chunk-size",
        "--raw",
        "-k",
        "--kustomize",
        "--for",
        "--timeout",
        "--request-timeout",
        "--subresource",
        "--api-group",
        "--limit-bytes",
        "--max-log-requests",
        "--template",
        "--dry-run",
        "--as",
        "--as-group",
        "--server-side",
        "--field-manager",
        "--validate",
        "--selector",
        "--filename",
        "-f",
        "--types",
    ];
    let mut pos = Vec::new();
    let mut unknown: Option<&str> = None;
    let mut dry: Vec<&str> = Vec::new();
    let mut files = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        i += 1;
        if !w.starts_with('-') || w == "-" {
            pos.push(w);
            continue;
        }
        let (name, inline) = match w.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (w, None),
        };
        // `-f` is follow for `logs` and a file elsewhere; `--raw` is a
        // flag of `config view` and a path of `get`.
        let verb = pos.first().copied().unwrap_or("");
        let takes_value = VALUE.contains(&name)
            && !(name == "-f" && verb == "logs")
            && !(name == "--raw" && verb == "config");
        if name == "--dry-run" {
            dry.push(inline.unwrap_or("client"));
            continue;
        }
        if takes_value {
            let v = match inline {
                Some(v) => v,
                None => {
                    let Some(v) = words.get(i) else {
                        return Outcome::mutate(format!("`kubectl {name}` needs a value"));
                    };
                    i += 1;
                    v
                }
            };
            if matches!(name, "-f" | "--filename" | "-k" | "--kustomize") {
                files.push(v);
            }
            continue;
        }
        let flag = FLAG.contains(&name) || (name == "--raw" && verb == "config");
        if !(flag && inline.is_none_or(|v| v == "true" || v == "false")) {
            unknown = unknown.or(Some(name));
        }
    }
    let verb = pos.first().copied().unwrap_or("");
    let sub = pos.get(1).copied().unwrap_or("");
    let secret_kind = pos[1.min(pos.len())..].iter().any(|p| {
        let p = p.to_ascii_lowercase();
        p == "secret"
            || p == "secrets"
            || p.starts_with("secret/")
            || p.starts_with("secrets/")
            || p.starts_with("secrets.")
            || p == "all"
    });
    let mut o = match verb {
        "get" | "describe" | "logs" | "top" | "explain" | "api-resources" | "api-versions"
        | "version" | "cluster-info" | "events" | "wait" => Outcome::read(),
        "auth" if matches!(sub, "can-i" | "whoami") => Outcome::read(),
        "auth" => Outcome::mutate(format!("`kubectl auth {sub}` changes RBAC")),
        "config" => match sub {
            "view" | "get-contexts" | "current-context" | "get-clusters" | "get-users" => {
                Outcome::read()
            }
            _ => Outcome::mutate(format!("`kubectl config {sub}` changes the kubeconfig")),
        },
        "rollout" => match sub {
            "status" | "history" => Outcome::read(),
            _ => Outcome::mutate(format!("`kubectl rollout {sub}` changes workloads")),
        },
        "apply" | "create" | "delete" | "patch" | "replace" | "scale" | "label" | "annotate"
        | "set" | "expose" | "run" | "autoscale"
            if dry.len() == 1 && matches!(dry[0], "client" | "server") =>
        {
            Outcome::read()
        }
        "delete" | "drain" => Outcome::destructive(format!("`kubectl {verb}` removes workloads")),
        "scale" if words.contains(&"--replicas=0") => Outcome::destructive("scales to zero"),
        _ => Outcome::mutate(match dry.as_slice() {
            [] => format!("`kubectl {verb}` changes the cluster"),
            ds => format!(
                "`kubectl {verb}` with --dry-run={} changes the cluster",
                ds.join(",")
            ),
        }),
    };
    if let Some(name) = unknown
        && o.effect == Read
    {
        return Outcome::mutate(format!(
            "`kubectl {name}` is not a known read-only option (`--kubeconfig` and `--log-file` among those left out)"
        ));
    }
    if o.effect == Read && matches!(verb, "get" | "describe") && secret_kind {
        o = o.secret("prints Secret values");
    }
    if o.effect == Read
        && verb == "config"
        && words
            .iter()
            .any(|w| *w == "--raw" || w.starts_with("--raw="))
    {
        o = o.secret("prints the kubeconfig's credentials");
    }
    for f in files {
        if secret::is_secret(f, false) {
            o = o.secret(format!("reads secret file {f}"));
        }
    }
    o
}

pub(super) fn containers(prog: &str, words: &[&str], dynamic: bool) -> Outcome {
    if dynamic {
        return Outcome::mutate(format!("`{prog}` with arguments known only at run time"));
    }
    let verb = words.first().copied().unwrap_or("");
    let ok_verb = matches!(
        verb,
        "ps" | "images"
            | "inspect"
            | "logs"
            | "info"
            | "version"
            | "top"
            | "pods"
            | "stats"
            | "inspectp"
            | "inspecti"
            | "port"
            | "history"
            | "img"
    );
    if !ok_verb {
        return Outcome::mutate(format!("`{prog} {verb}` changes containers or images"));
    }
    const OK: &[&str] = &[
        "-a",
        "--all",
        "-q",
        "--quiet",
        "--no-trunc",
        "-s",
        "--size",
        "--digests",
        "-n",
        "--last",
        "-l",
        "--latest",
        "--no-stream",
        "-t",
        "--timestamps",
        "--details",
        "-v",
        "--verbose",
        "-H",
        "--human",
        "-r",
        "--running",
    ];
    const VAL: &[&str] = &[
        "--format",
        "-f",
        "--filter",
        "--tail",
        "--since",
        "--until",
        "--type",
        "-o",
        "--output",
        "--name",
        "--namespace",
        "--label",
        "--state",
        "--pod",
        "--id",
        "-p",
    ];
    // `logs -f` and `--follow` follow until the step's timeout.
    let follow = |name: &str| name == "-f" && verb == "logs" || name == "--follow";
    if let Err(name) = scan_options(&words[1..], OK, VAL, follow) {
        return Outcome::mutate(format!(
            "`{prog} {verb} {name}` is not a known read-only option"
        ));
    }
    if verb == "stats" && prog != "crictl" && !words.contains(&"--no-stream") {
        return Outcome::mutate(format!("`{prog} stats` runs forever without --no-stream"));
    }
    // `inspect` output (environments included) is redacted like any other.
    Outcome::read()
}

/// Options of a subcommand-style program: each must be in `ok`, take a
/// value (`val`, as `--x v` or `--x=v`) or pass `extra`; the first that
/// does not is the error. Words that are not options are skipped.
pub(super) fn scan_options<'a>(
    words: &[&'a str],
    ok: &[&str],
    val: &[&str],
    extra: impl Fn(&str) -> bool,
) -> Result<(), &'a str> {
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        i += 1;
        if !w.starts_with('-') {
            continue;
        }
        let name = w.split_once('=').map(|(n, _)| n).unwrap_or(w);
        if extra(name) || ok.contains(&name) {
            continue;
        }
        if val.contains(&name) {
            if !w.contains('=') {
                i += 1;
            }
            continue;
        }
        return Err(name);
    }
    Ok(())
}

pub(super) fn helm(words: &[&str], dynamic: bool) -> Outcome {
    if dynamic {
        return Outcome::mutate("`helm` with arguments known only at run time");
    }
    let verb = words
        .iter()
        .find(|w| !w.starts_with('-'))
        .copied()
        .unwrap_or("");
    if !matches!(
        verb,
        "list" | "ls" | "status" | "history" | "get" | "show" | "search" | "version" | "env"
    ) {
        return Outcome::mutate(format!("`helm {verb}` changes releases or runs plugins"));
    }
    const OK: &[&str] = &[
        "-A",
        "--all-namespaces",
        "-a",
        "--all",
        "--short",
        "--deployed",
        "--failed",
        "--pending",
        "--uninstalled",
        "--superseded",
        "--date",
        "-r",
        "--reverse",
        "-q",
    ];
    const VAL: &[&str] = &[
        "-n",
        "--namespace",
        "-o",
        "--output",
        "--revision",
        "--max",
        "--filter",
        "-f",
        "--kube-context",
        "-l",
        "--selector",
        "--time-format",
    ];
    if let Err(name) = scan_options(words, OK, VAL, |_| false) {
        return Outcome::mutate(format!("`helm {name}` is not a known read-only option"));
    }
    if verb == "get" && words.contains(&"values") {
        return Outcome::read().secret("release values may hold credentials");
    }
    Outcome::read()
}
