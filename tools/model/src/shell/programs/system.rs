//! Readers of the system's own state: systemd and its `*ctl`s, the
//! journal, the clock, name databases, raw blocks, firewalls and GPUs.

use super::super::secret;
use super::{Arg, Outcome, check, only};

pub(super) fn getent(words: &[&str]) -> Outcome {
    let db = words
        .iter()
        .find(|w| !w.starts_with('-'))
        .copied()
        .unwrap_or("");
    if words.iter().any(|w| w.starts_with('-') && *w != "--") {
        return Outcome::mutate("`getent` options (`-s`) pick other sources");
    }
    match db {
        "shadow" | "gshadow" => {
            Outcome::read().secret(format!("`getent {db}` prints password hashes"))
        }
        "passwd" | "group" | "hosts" | "ahosts" | "ahostsv4" | "ahostsv6" | "services"
        | "protocols" | "networks" | "netgroup" | "ethers" | "rpc" | "initgroups" | "aliases" => {
            Outcome::read()
        }
        other => Outcome::mutate(format!("`getent {other}` is not a known database")),
    }
}

pub(super) fn date(args: &[Arg<'_>]) -> Outcome {
    let spec = only(
        "uRIr",
        "dfr",
        &["--utc", "--universal", "--rfc-email", "--debug"],
        &[
            "--date",
            "--file",
            "--reference",
            "--iso-8601",
            "--rfc-3339",
        ],
    );
    match check("date", &spec, args) {
        // `date MMDDhhmm` sets the clock; only `+FORMAT` is a format.
        Ok(seen) if seen.positional.iter().all(|a| a.text.starts_with('+')) => Outcome::read(),
        Ok(_) => Outcome::mutate("sets the clock"),
        Err(why) => Outcome::mutate(format!("{why} (`-s`/`--set` set the clock)")),
    }
}

pub(super) fn journalctl(args: &[Arg<'_>]) -> Outcome {
    let spec = only(
        "abefhkmNqrx",
        "uDSUnpotgIMiFb",
        &[
            "--all",
            "--pager-end",
            "--follow",
            "--no-pager",
            "--dmesg",
            "--merge",
            "--quiet",
            "--reverse",
            "--catalog",
            "--utc",
            "--no-hostname",
            "--no-tail",
            "--list-boots",
            "--disk-usage",
            "--system",
            "--user",
            "--full",
            "--no-full",
            "--show-cursor",
            "--header",
            "--fields",
            "--list-catalog",
            "--verify",
            "--boot",
        ],
        &[
            "--unit",
            "--user-unit",
            "--directory",
            "--file",
            "--since",
            "--until",
            "--lines",
            "--priority",
            "--output",
            "--identifier",
            "--grep",
            "--case-sensitive",
            "--boot",
            "--facility",
            "--cursor",
            "--after-cursor",
            "--output-fields",
            "--namespace",
        ],
    );
    match check("journalctl", &spec, args) {
        Ok(_) => Outcome::read(),
        Err(why) => Outcome::mutate(format!(
            "{why} (`--vacuum-*`, `--rotate`, `--flush` change the journal)"
        )),
    }
}

pub(super) fn ctl_status(prog: &str, args: &[Arg<'_>]) -> Outcome {
    let spec = only(
        "ap",
        "p",
        &["--no-pager", "--all", "--value", "--no-ask-password"],
        &["--property"],
    );
    match check(prog, &spec, args) {
        Ok(seen) => {
            let verb = seen.positional.first().map(|a| a.text).unwrap_or("");
            let ok = matches!(
                verb,
                "" | "status"
                    | "show"
                    | "list"
                    | "list-timezones"
                    | "list-sessions"
                    | "list-users"
                    | "list-seats"
                    | "timesync-status"
                    | "show-timesync"
                    | "show-session"
                    | "show-user"
                    | "query"
                    | "statistics"
                    | "dns"
                    | "domain"
            );
            if ok && seen.positional.iter().all(|a| !a.dynamic) {
                Outcome::read()
            } else {
                Outcome::mutate(format!("`{prog} {verb}` changes system settings"))
            }
        }
        Err(why) => Outcome::mutate(why),
    }
}

pub(super) fn systemctl(prog: &str, args: &[Arg<'_>]) -> Outcome {
    // `-H host` / `-M machine` reach other machines; `--root` another tree.
    let spec = only(
        "alqrt",
        "nopPt",
        &[
            "--all",
            "--full",
            "--no-pager",
            "--no-legend",
            "--quiet",
            "--recursive",
            "--failed",
            "--plain",
            "--value",
            "--user",
            "--system",
            "--reverse",
            "--before",
            "--after",
            "--show-types",
            "--status-all",
        ],
        &[
            "--type",
            "--state",
            "--lines",
            "--output",
            "--property",
            "--timestamp",
        ],
    );
    let seen = match check(prog, &spec, args) {
        Ok(s) => s,
        Err(why) => return Outcome::mutate(why),
    };
    let pos: Vec<&str> = seen.positional.iter().map(|a| a.text).collect();
    let verb = if prog == "service" {
        pos.get(1)
            .copied()
            .unwrap_or(if seen.has(&["--status-all"]) {
                "status"
            } else {
                ""
            })
    } else {
        pos.first().copied().unwrap_or("list-units")
    };
    if seen.positional.iter().any(|a| a.dynamic) {
        return Outcome::mutate("a unit or verb known only at run time");
    }
    match verb {
        "status" | "show" | "list-units" | "list-unit-files" | "list-timers" | "list-sockets"
        | "list-dependencies" | "list-jobs" | "list-machines" | "list-paths" | "is-active"
        | "is-enabled" | "is-failed" | "is-system-running" | "cat" | "get-default"
        | "show-environment" => {
            let o = Outcome::read();
            if verb == "show-environment" {
                o.secret("prints the service manager's environment")
            } else {
                o
            }
        }
        "stop" | "disable" | "mask" | "kill" | "poweroff" | "reboot" | "halt" | "kexec"
        | "isolate" | "emergency" | "rescue" => {
            Outcome::destructive(format!("`{verb}` takes a service or the machine down"))
        }
        _ => Outcome::mutate(format!("`{verb}` changes services")),
    }
}

pub(super) fn dd(args: &[Arg<'_>]) -> Outcome {
    let mut o = Outcome::read();
    for a in args {
        if a.dynamic {
            return Outcome::mutate("`dd` with operands known only at run time");
        }
        let Some((k, v)) = a.text.split_once('=') else {
            return Outcome::mutate(format!("`dd {}` is not a known operand", a.text));
        };
        match k {
            "of" => return Outcome::destructive("writes raw blocks"),
            "if" if secret::is_secret(v, a.glob) => o = o.secret(format!("reads secret file {v}")),
            "if" | "bs" | "ibs" | "count" | "skip" | "iseek" | "status" | "iflag" => {}
            other => {
                return Outcome::mutate(format!("`dd {other}=` is not a known read-only operand"));
            }
        }
    }
    o
}

pub(super) fn firewall(prog: &str, words: &[&str], dynamic: bool) -> Outcome {
    if dynamic {
        return Outcome::mutate(format!("`{prog}` with arguments known only at run time"));
    }
    if prog == "nft" {
        let pos: Vec<&str> = words
            .iter()
            .copied()
            .filter(|w| !w.starts_with('-'))
            .collect();
        let flags_ok = words.iter().filter(|w| w.starts_with('-')).all(|w| {
            matches!(
                *w,
                "-a" | "--handle"
                    | "-n"
                    | "-s"
                    | "--stateless"
                    | "-j"
                    | "--json"
                    | "-t"
                    | "--terse"
            )
        });
        return if flags_ok && pos.first() == Some(&"list") {
            Outcome::read()
        } else if pos.first() == Some(&"flush") {
            Outcome::destructive("flushes firewall rules")
        } else {
            Outcome::mutate("changes firewall rules")
        };
    }
    let listing = words
        .iter()
        .any(|w| matches!(*w, "-L" | "--list" | "-S" | "--list-rules"));
    let mut i = 0;
    let mut ok = listing;
    while i < words.len() {
        let w = words[i];
        i += 1;
        match w {
            "-L" | "--list" | "-S" | "--list-rules" | "-n" | "--numeric" | "-v" | "--verbose"
            | "-x" | "--exact" | "--line-numbers" | "-w" | "--wait" => {}
            "-t" | "--table" => i += 1,
            w if !w.starts_with('-') => {} // a chain name after -L
            w if w.starts_with('-')
                && !w.starts_with("--")
                && w[1..].chars().all(|c| "LSnvx".contains(c)) => {}
            _ => ok = false,
        }
    }
    if ok {
        Outcome::read()
    } else if words
        .iter()
        .any(|w| matches!(*w, "-F" | "--flush" | "-X" | "--delete-chain"))
    {
        Outcome::destructive("flushes firewall rules")
    } else {
        Outcome::mutate("changes firewall rules")
    }
}

pub(super) fn nvidia_smi(words: &[&str], dynamic: bool) -> Outcome {
    if dynamic {
        return Outcome::mutate("`nvidia-smi` with arguments known only at run time");
    }
    let ok = words.iter().all(|w| {
        let name = w.split_once('=').map(|(n, _)| n).unwrap_or(w);
        matches!(
            name,
            "-L" | "--list-gpus"
                | "-q"
                | "--query"
                | "--query-gpu"
                | "--query-compute-apps"
                | "--query-accounted-apps"
                | "--query-retired-pages"
                | "--format"
                | "-i"
                | "--id"
                | "-d"
                | "--display"
                | "-x"
                | "--xml-format"
                | "topo"
                | "-m"
                | "--matrix"
                | "nvlink"
                | "-s"
                | "--status"
                | "-u"
                | "-l"
                | "--loop"
        ) || !w.starts_with('-') && !matches!(*w, "-pm" | "-r")
    });
    if ok
        && !words.iter().any(|w| {
            matches!(
                *w,
                "-pm"
                    | "-pl"
                    | "-r"
                    | "-c"
                    | "-e"
                    | "-ac"
                    | "-rac"
                    | "-lgc"
                    | "-rgc"
                    | "-mig"
                    | "-am"
                    | "-caa"
            )
        })
    {
        Outcome::read()
    } else {
        Outcome::mutate("changes GPU settings (only queries are read-only)")
    }
}
