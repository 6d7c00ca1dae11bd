//! What each program does with its arguments: an allowlist of programs
//! that only read, and for each the options known to only read.
//!
//! A program is `Read` only when it is listed here and every option it is
//! given is on its list, written out in full (GNU `getopt_long` accepts
//! unambiguous abbreviations such as `--i` for `--in-place`; an
//! abbreviation is not on any list). Positional arguments are counted
//! where a later one is an output file (`uniq IN OUT`, `xxd IN OUT`).
//! A word known only at run time (`$X`, `$(...)`, a relative glob) may
//! become an option, so it is accepted only by programs none of whose
//! options writes or runs anything ([`Spec::dynamic_ok`]).
//!
//! Programs not listed are `Mutate`; known destroyers are `Destructive`.
//! Network-changing and process-signalling programs are never `Read`.

use super::Effect::{self, Destructive, Mutate, Read};
use super::secret;

/// One argument as the classifier sees it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Arg<'a> {
    pub text: &'a str,
    pub dynamic: bool,
    pub glob: bool,
}

/// What one program invocation does.
#[derive(Debug)]
pub(super) struct Outcome {
    pub effect: Effect,
    pub why: Option<String>,
    pub secret: Option<String>,
}

impl Outcome {
    fn read() -> Outcome {
        Outcome {
            effect: Read,
            why: None,
            secret: None,
        }
    }
    fn mutate(why: impl Into<String>) -> Outcome {
        Outcome {
            effect: Mutate,
            why: Some(why.into()),
            secret: None,
        }
    }
    fn destructive(why: impl Into<String>) -> Outcome {
        Outcome {
            effect: Destructive,
            why: Some(why.into()),
            secret: None,
        }
    }
    fn secret(mut self, what: impl Into<String>) -> Outcome {
        self.secret = Some(what.into());
        self
    }
}

/// The options of a read-only program.
#[derive(Debug, Clone, Copy)]
struct Spec {
    /// Short options without a value.
    short: &'static str,
    /// Short options that take a value (`-n 5`, `-n5`).
    short_val: &'static str,
    /// Long options without a value.
    long: &'static [&'static str],
    /// Long options that take a value (`--lines 5`, `--lines=5`).
    long_val: &'static [&'static str],
    /// Any option is read-only (the program has none that writes a file,
    /// changes the system or runs a command): checked against its manual.
    any_option: bool,
    /// The most positional arguments, where one more would be an output.
    max_pos: Option<usize>,
    /// Run-time words are fine (no option of it writes or runs anything).
    dynamic_ok: bool,
    /// A leading `-NUM` is a count (`head -5`).
    numeric: bool,
}

const fn any() -> Spec {
    Spec {
        short: "",
        short_val: "",
        long: &[],
        long_val: &[],
        any_option: true,
        max_pos: None,
        dynamic_ok: true,
        numeric: true,
    }
}

const fn only(
    short: &'static str,
    short_val: &'static str,
    long: &'static [&'static str],
    long_val: &'static [&'static str],
) -> Spec {
    Spec {
        short,
        short_val,
        long,
        long_val,
        any_option: false,
        max_pos: None,
        dynamic_ok: false,
        numeric: false,
    }
}

/// The parsed arguments of a program: positionals and option values.
#[derive(Debug, Default)]
struct Seen<'a> {
    positional: Vec<Arg<'a>>,
    /// (option, value) for options with values, and (option, "") without.
    options: Vec<(String, Option<&'a str>)>,
}

impl Seen<'_> {
    fn has(&self, names: &[&str]) -> bool {
        self.options
            .iter()
            .any(|(o, _)| names.contains(&o.as_str()))
    }
    fn value(&self, names: &[&str]) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(o, _)| names.contains(&o.as_str()))
            .and_then(|(_, v)| *v)
    }
}

/// Checks `args` against `spec`; `Err` says which word is not allowed.
fn check<'a>(prog: &str, spec: &Spec, args: &[Arg<'a>]) -> Result<Seen<'a>, String> {
    let mut seen = Seen::default();
    let mut i = 0;
    let mut only_pos = false;
    while i < args.len() {
        let a = args[i];
        i += 1;
        if a.dynamic && !spec.dynamic_ok {
            return Err(format!(
                "`{}` is known only at run time and could become an option of `{prog}`",
                a.text
            ));
        }
        let t = a.text;
        if only_pos || a.dynamic || !t.starts_with('-') || t == "-" {
            seen.positional.push(a);
            continue;
        }
        if t == "--" {
            only_pos = true;
            continue;
        }
        if spec.any_option {
            seen.options.push((t.to_owned(), None));
            continue;
        }
        if spec.numeric && seen.options.is_empty() && t[1..].chars().all(|c| c.is_ascii_digit()) {
            seen.options.push(("-NUM".into(), Some(&t[1..])));
            continue;
        }
        if let Some(long) = t.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let flag = format!("--{name}");
            if spec.long_val.contains(&flag.as_str()) {
                let v = match value {
                    Some(v) => v,
                    None => {
                        let Some(next) = args.get(i) else {
                            return Err(format!("`{flag}` of `{prog}` needs a value"));
                        };
                        i += 1;
                        if next.dynamic {
                            return Err(format!("the value of `{flag}` is known only at run time"));
                        }
                        next.text
                    }
                };
                seen.options.push((flag, Some(v)));
            } else if spec.long.contains(&flag.as_str()) && value.is_none() {
                seen.options.push((flag, None));
            } else {
                return Err(format!("`{prog} {flag}` is not a known read-only option"));
            }
            continue;
        }
        let cluster: Vec<char> = t[1..].chars().collect();
        for (k, c) in cluster.iter().enumerate() {
            let flag = format!("-{c}");
            if spec.short_val.contains(*c) {
                let rest: String = cluster[k + 1..].iter().collect();
                let v = if rest.is_empty() {
                    let Some(next) = args.get(i) else {
                        return Err(format!("`{flag}` of `{prog}` needs a value"));
                    };
                    i += 1;
                    if next.dynamic {
                        return Err(format!("the value of `{flag}` is known only at run time"));
                    }
                    next.text
                } else {
                    // The rest of the cluster is the value.
                    &t[t.len() - rest.len()..]
                };
                seen.options.push((flag, Some(v)));
                break;
            }
            if spec.short.contains(*c) {
                seen.options.push((flag, None));
            } else {
                return Err(format!("`{prog} {flag}` is not a known read-only option"));
            }
        }
    }
    if let Some(max) = spec.max_pos
        && seen.positional.len() > max
    {
        return Err(format!(
            "`{prog}` with {} file arguments writes the last one",
            seen.positional.len()
        ));
    }
    Ok(seen)
}

/// Specs of plain readers. Names resolved from `prog`'s last path part.
fn spec(prog: &str) -> Option<Spec> {
    Some(match prog {
        // No option of these writes a file, changes the system or runs a
        // command (checked against their manuals).
        "ls" | "cat" | "tac" | "head" | "tail" | "grep" | "egrep" | "fgrep" | "zgrep" | "wc"
        | "cut" | "tr" | "column" | "diff" | "cmp" | "md5sum" | "sha1sum" | "sha256sum"
        | "sha512sum" | "cksum" | "b2sum" | "stat" | "readlink" | "realpath" | "basename"
        | "dirname" | "pwd" | "echo" | "true" | "false" | "uptime" | "uname" | "id" | "whoami"
        | "groups" | "df" | "du" | "free" | "ps" | "pgrep" | "pidof" | "netstat" | "lsof"
        | "lsblk" | "lscpu" | "lsmem" | "lspci" | "lsusb" | "lsmod" | "findmnt" | "w" | "who"
        | "last" | "vmstat" | "iostat" | "mpstat" | "pidstat" | "nproc" | "getconf" | "which"
        | "whereis" | "type" | "dig" | "nslookup" | "host" | "traceroute" | "tracepath"
        | "sleep" | "seq" | "od" | "hexdump" | "strings" | "nl" | "fold" | "expand"
        | "unexpand" | "paste" | "join" | "comm" | "locale" | "base64" | "numfmt" | "iconv"
        | "tty" | "arch" | "users" | "mountpoint" | "lsns" | "lslocks" | "lsipc" | "swapon"
        | "zcat" | "bzcat" | "xzcat" | "zstdcat" | "look" | "rev" | "shuf" | "fmt" | "pr" => {
            // `swapon` with a device turns swap on: only its listing.
            if prog == "swapon" {
                return Some(only(
                    "vbh",
                    "",
                    &["--show", "--summary", "--bytes", "--noheadings", "--raw"],
                    &["--show"],
                ));
            }
            // `iconv -o` and `shuf -o` write.
            if prog == "iconv" {
                return Some(only(
                    "cslL",
                    "ft",
                    &["--list"],
                    &["--from-code", "--to-code"],
                ));
            }
            if prog == "shuf" {
                return Some(only(
                    "ez",
                    "nir",
                    &["--echo", "--zero-terminated"],
                    &["--head-count", "--input-range", "--random-source"],
                ));
            }
            any()
        }
        "sort" => only(
            "bcCdfghiMmnrRsuVz",
            "ktS",
            &[
                "--ignore-leading-blanks",
                "--check",
                "--dictionary-order",
                "--ignore-case",
                "--general-numeric-sort",
                "--human-numeric-sort",
                "--ignore-nonprinting",
                "--month-sort",
                "--merge",
                "--numeric-sort",
                "--reverse",
                "--random-sort",
                "--stable",
                "--unique",
                "--version-sort",
                "--zero-terminated",
            ],
            &[
                "--key",
                "--field-separator",
                "--buffer-size",
                "--parallel",
                "--sort",
                "--files0-from",
            ],
        ),
        "uniq" => Spec {
            max_pos: Some(1),
            ..only(
                "cdDiuz",
                "fsw",
                &[
                    "--count",
                    "--repeated",
                    "--ignore-case",
                    "--unique",
                    "--zero-terminated",
                    "--all-repeated",
                    "--group",
                ],
                &["--skip-fields", "--skip-chars", "--check-chars"],
            )
        },
        "xxd" => Spec {
            max_pos: Some(1),
            ..only("ebEiprCuRd", "cgloOsn", &[], &[])
        },
        "tree" => only(
            "adlfxpsugDFqNQrtvcCnAShLIP",
            "LIP",
            &["--du", "--dirsfirst", "--noreport", "--charset", "--si"],
            &["--charset", "--filelimit", "--sort"],
        ),
        "file" => only(
            "bcEhiklLNnprsSvz0",
            "eFfmP",
            &[
                "--brief",
                "--mime",
                "--mime-type",
                "--dereference",
                "--no-dereference",
                "--special-files",
                "--uncompress",
            ],
            &[],
        ),
        "blkid" => only(
            "dhiklLpUV",
            "osStu",
            &["--probe", "--info"],
            &["--output", "--match-tag", "--match-token", "--usages"],
        ),
        "lastlog" => only("h", "ubt", &["--help"], &["--user", "--before", "--time"]),
        "sar" => only(
            "AbBdFHhiIqrSuvWwyzp",
            "nPfsemxXj",
            &["--human", "--pretty"],
            &["--dev", "--iface"],
        ),
        "jq" => only(
            "rjcnsSeCMaC",
            "",
            &[
                "--raw-output",
                "--join-output",
                "--compact-output",
                "--null-input",
                "--slurp",
                "--sort-keys",
                "--exit-status",
                "--tab",
                "--ascii-output",
                "--raw-input",
                "--color-output",
                "--monochrome-output",
            ],
            &["--arg", "--argjson", "--indent"],
        ),
        "rg" => only(
            "iIsSvwxcnNlLHhoqFPUzaeABCgmt",
            "eABCgmtTfj",
            &[
                "--ignore-case",
                "--smart-case",
                "--case-sensitive",
                "--invert-match",
                "--word-regexp",
                "--line-regexp",
                "--count",
                "--line-number",
                "--no-line-number",
                "--files-with-matches",
                "--files-without-match",
                "--with-filename",
                "--no-filename",
                "--only-matching",
                "--quiet",
                "--fixed-strings",
                "--hidden",
                "--no-ignore",
                "--files",
                "--json",
                "--no-heading",
                "--heading",
                "--stats",
                "--search-zip",
                "--multiline",
                "--text",
            ],
            &[
                "--regexp",
                "--after-context",
                "--before-context",
                "--context",
                "--glob",
                "--max-count",
                "--type",
                "--type-not",
                "--max-depth",
                "--max-filesize",
                "--threads",
                "--sort",
                "--sortr",
            ],
        ),
        // `ss -K` kills sockets; `-D` dumps to a file.
        "ss" => only(
            "hVHOntbEaloxuwdSs4i6emprMTZzN0AfF",
            "AfFN",
            &[
                "--numeric",
                "--resolve",
                "--all",
                "--listening",
                "--options",
                "--extended",
                "--memory",
                "--processes",
                "--info",
                "--tcp",
                "--udp",
                "--unix",
                "--raw",
                "--summary",
                "--no-header",
                "--oneline",
                "--ipv4",
                "--ipv6",
            ],
            &["--query", "--family", "--filter"],
        ),
        "arp" => only(
            "naev",
            "iHA",
            &["--numeric", "--all", "--verbose"],
            &["--device", "--hw-type"],
        ),
        "top" => only("bcHiSs1eE", "ndpouUwOE", &[], &[]),
        "htop" => only(
            "CHtM",
            "dnupsF",
            &["--tree", "--no-color"],
            &[
                "--delay",
                "--max-iterations",
                "--user",
                "--pid",
                "--sort-key",
            ],
        ),
        "ping" | "ping6" => only("46nqvaAbBDdfLOrRU", "cIiWwstlmMpQSTF", &[], &[]),
        "mtr" => only(
            "rwbnjcCxzuT46",
            "caiIqsfmPp",
            &[
                "--report",
                "--report-wide",
                "--no-dns",
                "--json",
                "--show-ips",
            ],
            &["--report-cycles", "--interval", "--max-ttl"],
        ),
        "lsattr" => only("RVadlpv", "", &[], &[]),
        "ulimit" => any(),
        "printf" => {
            // `printf -v 'a[$(cmd)]'` evaluates the subscript.
            Spec {
                dynamic_ok: true,
                ..only("", "", &[], &[])
            }
        }
        "test" | "[" => {
            // `test -v 'a[$(cmd)]'` evaluates the subscript; `-R` likewise.
            return None;
        }
        _ => return None,
    })
}

/// The effect of one program with its arguments.
pub(super) fn effect(prog: &str, args: &[Arg<'_>]) -> Outcome {
    let words: Vec<&str> = args.iter().map(|a| a.text).collect();
    let any_dynamic = args.iter().any(|a| a.dynamic);
    if let Some(spec) = spec(prog) {
        return match check(prog, &spec, args) {
            Ok(seen) => {
                let mut o = Outcome::read();
                for a in &seen.positional {
                    if secret::is_secret(a.text, a.glob) {
                        o = o.secret(format!("reads secret file {}", a.text));
                    }
                }
                for (opt, v) in &seen.options {
                    if let Some(v) = v
                        && secret::is_secret(v, false)
                    {
                        o = o.secret(format!("`{opt}` reads secret file {v}"));
                    }
                }
                if prog == "jq"
                    && words
                        .iter()
                        .any(|w| w.contains("env") || w.contains("$ENV"))
                {
                    o = o.secret("jq prints the environment");
                }
                o
            }
            Err(why) => Outcome::mutate(why),
        };
    }
    match prog {
        "test" | "[" => {
            if words.iter().any(|w| matches!(*w, "-v" | "-R")) {
                Outcome::mutate(format!("`{prog} -v` evaluates an array subscript"))
            } else if words.iter().any(|w| w.contains('[') && *w != "[") {
                Outcome::mutate(format!("`{prog}` with a subscript may evaluate it"))
            } else {
                Outcome::read()
            }
        }
        "[[" => Outcome::mutate("`[[` evaluates arithmetic and subscripts"),
        "printenv" => Outcome::read().secret("prints the environment"),
        "getent" => getent(&words),
        "date" => date(args),
        "hostname" => match check(
            prog,
            &only(
                "fsidAaIy",
                "",
                &[
                    "--fqdn",
                    "--short",
                    "--ip-address",
                    "--all-ip-addresses",
                    "--domain",
                    "--alias",
                    "--all-fqdns",
                    "--nis",
                ],
                &[],
            ),
            args,
        ) {
            Ok(seen) if seen.positional.is_empty() => Outcome::read(),
            Ok(_) => Outcome::mutate("sets the host name"),
            Err(why) => Outcome::mutate(why),
        },
        "sysctl" => match check(
            prog,
            &only(
                "aAnNeqbdrXo",
                "r",
                &[
                    "--all",
                    "--values",
                    "--names",
                    "--ignore",
                    "--quiet",
                    "--binary",
                    "--pattern",
                ],
                &["--pattern"],
            ),
            args,
        ) {
            Ok(seen) if seen.positional.iter().all(|a| !a.text.contains('=')) => Outcome::read(),
            Ok(_) => Outcome::mutate("sets a kernel parameter"),
            Err(why) => Outcome::mutate(why),
        },
        "dmesg" => match check(
            prog,
            &only(
                "HkLPrSTtuxwWed",
                "flF",
                &[
                    "--human",
                    "--kernel",
                    "--raw",
                    "--ctime",
                    "--notime",
                    "--userspace",
                    "--decode",
                    "--follow",
                    "--follow-new",
                    "--reltime",
                    "--show-delta",
                    "--nopager",
                    "--time-format",
                    "--syslog",
                ],
                &[
                    "--level",
                    "--facility",
                    "--since",
                    "--until",
                    "--time-format",
                    "--color",
                ],
            ),
            args,
        ) {
            Ok(_) => Outcome::read(),
            Err(why) => Outcome::mutate(format!(
                "{why} (`-c`/`-C`/`-n`/`-D`/`-E` change the kernel log)"
            )),
        },
        "journalctl" => journalctl(args),
        "timedatectl" | "hostnamectl" | "localectl" | "loginctl" | "networkctl" | "resolvectl" => {
            ctl_status(prog, args)
        }
        "systemctl" | "service" => systemctl(prog, args),
        "ip" => ip(&words, any_dynamic),
        "kubectl" | "oc" | "k" => kubectl(&words, any_dynamic),
        "docker" | "nerdctl" | "podman" | "crictl" => containers(prog, &words, any_dynamic),
        "nvidia-smi" => nvidia_smi(&words, any_dynamic),
        "npu-smi" if words.first() == Some(&"info") && !any_dynamic => Outcome::read(),
        "sed" => sed(args),
        "awk" | "gawk" | "mawk" | "nawk" => awk(args),
        "find" => find(args),
        "curl" => curl(args),
        "wget" => wget(args),
        "openssl" => openssl(args),
        "tee" => {
            if !any_dynamic
                && words
                    .iter()
                    .all(|w| matches!(*w, "-a" | "-i" | "-p" | "--append" | "/dev/null"))
            {
                Outcome::read()
            } else {
                Outcome::mutate("writes files")
            }
        }
        "helm" => helm(&words, any_dynamic),
        "mount" if words.is_empty() || words == ["-l"] => Outcome::read(),
        "mount" | "umount" => Outcome::mutate("changes mounts"),
        // Destroyers.
        "rm" | "rmdir" | "unlink" => {
            let force = words.iter().any(|w| {
                matches!(*w, "--recursive" | "--force")
                    || (w.starts_with('-') && !w.starts_with("--") && w.contains(['r', 'R', 'f']))
            });
            if prog == "rm" && force {
                Outcome::destructive("removes files recursively or by force")
            } else {
                Outcome::mutate("removes files")
            }
        }
        "shred" | "wipefs" | "mkfs" | "mke2fs" | "mkswap" | "blkdiscard" | "sgdisk" => {
            Outcome::destructive("destroys data on disk")
        }
        p if p.starts_with("mkfs.") => Outcome::destructive("makes a filesystem"),
        "dd" => dd(args),
        "fdisk" | "sfdisk" | "parted" | "gdisk" => {
            let listing = !any_dynamic
                && (words == ["-l"]
                    || words.len() == 2 && words[0] == "-l"
                    || prog == "parted"
                        && words.len() <= 3
                        && words.contains(&"print")
                        && words.iter().all(|w| {
                            *w == "print" || *w == "-l" || *w == "-s" || w.starts_with("/dev/")
                        }));
            if listing {
                Outcome::read()
            } else {
                Outcome::destructive("changes partitions")
            }
        }
        "shutdown" | "reboot" | "poweroff" | "halt" => Outcome::destructive("stops the machine"),
        "init" | "telinit" if words.first().is_some_and(|f| matches!(*f, "0" | "6")) => {
            Outcome::destructive("stops the machine")
        }
        "kill" | "pkill" | "killall" => {
            let hard = words
                .iter()
                .any(|w| matches!(*w, "-9" | "-KILL" | "-SIGKILL" | "-s" | "--signal"));
            if hard || prog == "killall" {
                Outcome::destructive("kills processes")
            } else {
                Outcome::mutate("signals processes")
            }
        }
        "iptables" | "ip6tables" | "iptables-legacy" | "iptables-nft" | "nft" => {
            firewall(prog, &words, any_dynamic)
        }
        "truncate" | "userdel" | "groupdel" | "lvremove" | "vgremove" | "pvremove" => {
            Outcome::destructive("destroys data")
        }
        "zfs" | "zpool" if words.first() == Some(&"destroy") => {
            Outcome::destructive("destroys data")
        }
        "less" | "more" | "most" | "vi" | "vim" | "nano" | "view" => {
            Outcome::mutate(format!("`{prog}` is interactive and can run commands"))
        }
        _ => Outcome::mutate(format!("`{prog}` is not on the read-only list")),
    }
}

fn getent(words: &[&str]) -> Outcome {
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

fn date(args: &[Arg<'_>]) -> Outcome {
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

fn journalctl(args: &[Arg<'_>]) -> Outcome {
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
        Ok(seen) => {
            if seen.has(&["-b", "--boot"]) {
                // `-b` has an optional value; checked like any other.
            }
            Outcome::read()
        }
        Err(why) => Outcome::mutate(format!(
            "{why} (`--vacuum-*`, `--rotate`, `--flush` change the journal)"
        )),
    }
}

fn ctl_status(prog: &str, args: &[Arg<'_>]) -> Outcome {
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

fn systemctl(prog: &str, args: &[Arg<'_>]) -> Outcome {
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

fn ip(words: &[&str], dynamic: bool) -> Outcome {
    if dynamic {
        return Outcome::mutate("`ip` with arguments known only at run time");
    }
    let mut i = 0;
    while let Some(w) = words.get(i) {
        match *w {
            "-4" | "-6" | "-br" | "-brief" | "-s" | "-stats" | "-statistics" | "-j" | "-json"
            | "-p" | "-pretty" | "-c" | "-color" | "-d" | "-details" | "-o" | "-oneline" | "-h"
            | "-human" | "-r" | "-resolve" | "-a" | "-all" => i += 1,
            w if w.starts_with("-c=") || w.starts_with("-color=") => i += 1,
            _ => break,
        }
    }
    if words.get(i).is_some_and(|w| w.starts_with('-')) {
        return Outcome::mutate(format!("`ip {}` is not a known read-only option", words[i]));
    }
    let object = words.get(i).copied().unwrap_or("");
    let known = matches!(
        object,
        "" | "a"
            | "addr"
            | "address"
            | "l"
            | "link"
            | "r"
            | "ro"
            | "route"
            | "n"
            | "neigh"
            | "neighbor"
            | "neighbour"
            | "ru"
            | "rule"
            | "maddr"
            | "maddress"
            | "netns"
            | "-"
    );
    if !known {
        return Outcome::mutate(format!("`ip {object}` is not a known read-only object"));
    }
    // Only `show`/`list` (or nothing); `route get` asks the kernel.
    match words.get(i + 1).copied() {
        None | Some("show" | "list" | "ls" | "lst" | "sh") => Outcome::read(),
        Some("get") if matches!(object, "r" | "ro" | "route") => Outcome::read(),
        Some(verb) => Outcome::mutate(format!(
            "`ip {object} {verb}` changes network configuration (only `show` is read-only)"
        )),
    }
}

fn kubectl(words: &[&str], dynamic: bool) -> Outcome {
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

fn containers(prog: &str, words: &[&str], dynamic: bool) -> Outcome {
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
    let mut i = 1;
    while i < words.len() {
        let w = words[i];
        i += 1;
        if !w.starts_with('-') {
            continue;
        }
        let name = w.split_once('=').map(|(n, _)| n).unwrap_or(w);
        if name == "-f" && verb == "logs" || name == "--follow" {
            continue; // follows until the step's timeout
        }
        if VAL.contains(&name) {
            if !w.contains('=') {
                i += 1;
            }
            continue;
        }
        if OK.contains(&name) {
            continue;
        }
        return Outcome::mutate(format!(
            "`{prog} {verb} {name}` is not a known read-only option"
        ));
    }
    if verb == "stats" && prog != "crictl" && !words.contains(&"--no-stream") {
        return Outcome::mutate(format!("`{prog} stats` runs forever without --no-stream"));
    }
    let o = Outcome::read();
    if matches!(verb, "inspect" | "inspectp") {
        return o; // environments are redacted in the output
    }
    o
}

fn nvidia_smi(words: &[&str], dynamic: bool) -> Outcome {
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

/// A sed script made only of commands that print, delete from the output
/// or branch: no `w`/`W`/`r`/`R`/`e`/`F`/`v` commands and no `w`/`e`
/// flags on `s`.
fn sed_script_ok(script: &str) -> Result<(), String> {
    let c: Vec<char> = script.chars().collect();
    let mut i = 0;
    let n = c.len();
    let skip_regex = |i: &mut usize, delim: char| -> Result<(), String> {
        while *i < n && c[*i] != delim {
            if c[*i] == '\\' {
                *i += 1;
            }
            *i += 1;
        }
        if *i >= n {
            return Err("an unterminated regex".into());
        }
        *i += 1;
        Ok(())
    };
    while i < n {
        // Blanks and separators.
        while i < n && matches!(c[i], ' ' | '\t' | '\n' | ';') {
            i += 1;
        }
        if i >= n {
            break;
        }
        if c[i] == '#' {
            while i < n && c[i] != '\n' {
                i += 1;
            }
            continue;
        }
        // Up to two addresses.
        for k in 0..2 {
            if i < n && (c[i].is_ascii_digit() || c[i] == '$') {
                while i < n && (c[i].is_ascii_digit() || matches!(c[i], '$' | '~')) {
                    i += 1;
                }
            } else if i < n && c[i] == '/' {
                i += 1;
                skip_regex(&mut i, '/')?;
                while i < n && matches!(c[i], 'I' | 'M') {
                    i += 1;
                }
            } else if i + 1 < n && c[i] == '\\' {
                let d = c[i + 1];
                i += 2;
                skip_regex(&mut i, d)?;
                while i < n && matches!(c[i], 'I' | 'M') {
                    i += 1;
                }
            } else if k == 1 && i < n && matches!(c[i], '+' | '~') {
                i += 1;
                while i < n && c[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if k == 0 && i < n && c[i] == ',' {
                i += 1;
                continue;
            }
            break;
        }
        while i < n && matches!(c[i], ' ' | '\t' | '!') {
            i += 1;
        }
        if i >= n {
            break;
        }
        let cmd = c[i];
        i += 1;
        match cmd {
            'p' | 'P' | 'd' | 'D' | 'n' | 'N' | 'g' | 'G' | 'h' | 'H' | 'x' | 'l' | '=' | 'z'
            | '{' | '}' => {}
            'q' | 'Q' => {
                while i < n && (c[i].is_ascii_digit() || c[i] == ' ') {
                    i += 1;
                }
            }
            'b' | 't' | 'T' | ':' => {
                while i < n && !matches!(c[i], ';' | '\n' | '}') {
                    i += 1;
                }
            }
            'a' | 'i' | 'c' => {
                // Text to the end of the line (output only).
                while i < n && c[i] != '\n' {
                    if c[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            's' | 'y' => {
                let Some(&d) = c.get(i) else {
                    return Err(format!("an unterminated `{cmd}`"));
                };
                if d == '\n' || d == '\\' {
                    return Err(format!("`{cmd}` with delimiter {d:?}"));
                }
                i += 1;
                skip_regex(&mut i, d)?;
                skip_regex(&mut i, d)?;
                if cmd == 's' {
                    while i < n && !matches!(c[i], ';' | '\n' | '}' | ' ' | '\t') {
                        match c[i] {
                            'g' | 'p' | 'i' | 'I' | 'm' | 'M' => {}
                            d if d.is_ascii_digit() => {}
                            'w' => return Err("the `w` flag of `s` writes a file".into()),
                            'e' => return Err("the `e` flag of `s` runs a command".into()),
                            other => return Err(format!("the `{other}` flag of `s`")),
                        }
                        i += 1;
                    }
                }
            }
            'w' | 'W' => return Err(format!("the `{cmd}` command writes a file")),
            'e' => return Err("the `e` command runs a command".into()),
            'r' | 'R' => return Err(format!("the `{cmd}` command reads another file")),
            other => return Err(format!("the `{other}` command")),
        }
    }
    Ok(())
}

fn sed(args: &[Arg<'_>]) -> Outcome {
    let spec = only(
        "nErsuz",
        "el",
        &[
            "--quiet",
            "--silent",
            "--regexp-extended",
            "--separate",
            "--unbuffered",
            "--null-data",
            "--posix",
            "--sandbox",
            "--debug",
        ],
        &["--expression", "--line-length"],
    );
    let seen = match check("sed", &spec, args) {
        Ok(s) => s,
        Err(why) => return Outcome::mutate(format!("{why} (`-i` edits files in place)")),
    };
    let mut scripts: Vec<&str> = seen
        .options
        .iter()
        .filter(|(o, _)| o == "-e" || o == "--expression")
        .filter_map(|(_, v)| *v)
        .collect();
    let mut files = &seen.positional[..];
    if scripts.is_empty() {
        let Some((first, rest)) = seen.positional.split_first() else {
            return Outcome::mutate("`sed` without a script");
        };
        scripts.push(first.text);
        files = rest;
    }
    for s in scripts {
        if let Err(why) = sed_script_ok(s) {
            return Outcome::mutate(format!("the sed script {s:?}: {why}"));
        }
    }
    let mut o = Outcome::read();
    for f in files {
        if secret::is_secret(f.text, f.glob) {
            o = o.secret(format!("reads secret file {}", f.text));
        }
    }
    o
}

/// An awk program that only prints to standard output: no `system`,
/// pipes, `getline`, `close`/`fflush`, environment, extensions, and no
/// `>` redirection in a `print`/`printf` statement.
fn awk_program_ok(p: &str) -> Result<(), String> {
    for bad in [
        "system",
        "getline",
        "|",
        "close",
        "fflush",
        "ENVIRON",
        "PROCINFO",
        "@load",
        "@include",
        "@namespace",
        "ARGV",
        "ARGC",
        "FILENAME=",
        "RS=",
        "nextfile",
    ] {
        if p.contains(bad) {
            return Err(format!("uses `{bad}`"));
        }
    }
    // Walk statements; inside print/printf an unparenthesised `>` outside
    // strings is an output redirection.
    let c: Vec<char> = p.chars().collect();
    let mut i = 0;
    let mut in_print = false;
    let mut parens = 0i32;
    let mut word = String::new();
    while i < c.len() {
        let ch = c[i];
        match ch {
            '"' => {
                i += 1;
                while i < c.len() && c[i] != '"' {
                    if c[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                word.clear();
            }
            ';' | '\n' | '}' | '{' => {
                in_print = false;
                parens = 0;
                word.clear();
            }
            '(' => {
                parens += 1;
                word.clear();
            }
            ')' => {
                parens -= 1;
                word.clear();
            }
            '>' if in_print && parens <= 0 => {
                return Err("a `print` writes to a file (`>`)".into());
            }
            c2 if c2.is_ascii_alphanumeric() || c2 == '_' => {
                word.push(c2);
                if (word == "print" || word == "printf")
                    && !c
                        .get(i + 1)
                        .is_some_and(|n| n.is_ascii_alphanumeric() || *n == '_')
                {
                    in_print = true;
                    parens = 0;
                }
            }
            _ => word.clear(),
        }
        i += 1;
    }
    Ok(())
}

fn awk(args: &[Arg<'_>]) -> Outcome {
    let spec = only(
        "",
        "Fv",
        &[
            "--posix",
            "--traditional",
            "--sandbox",
            "--characters-as-bytes",
        ],
        &["--field-separator", "--assign"],
    );
    let seen = match check("awk", &spec, args) {
        Ok(s) => s,
        Err(why) => {
            return Outcome::mutate(format!(
                "{why} (`-f`, `-i`, `-l`, `-E` load programs or extensions)"
            ));
        }
    };
    let Some((program, files)) = seen.positional.split_first() else {
        return Outcome::mutate("`awk` without a program");
    };
    if let Err(why) = awk_program_ok(program.text) {
        return Outcome::mutate(format!("the awk program {why}"));
    }
    let mut o = Outcome::read();
    for f in files {
        if f.text.contains('=') {
            return Outcome::mutate("an awk variable assignment between files");
        }
        if secret::is_secret(f.text, f.glob) {
            o = o.secret(format!("reads secret file {}", f.text));
        }
    }
    o
}

fn find(args: &[Arg<'_>]) -> Outcome {
    const TEST: &[&str] = &[
        "-print",
        "-print0",
        "-ls",
        "-prune",
        "-o",
        "-or",
        "-a",
        "-and",
        "-not",
        "!",
        "(",
        ")",
        ",",
        "-true",
        "-false",
        "-readable",
        "-writable",
        "-executable",
        "-nouser",
        "-nogroup",
        "-empty",
        "-mount",
        "-xdev",
        "-depth",
        "-follow",
        "-daystart",
        "-noleaf",
        "-quit",
        "-ignore_readdir_race",
        "-noignore_readdir_race",
    ];
    const VALUE: &[&str] = &[
        "-name",
        "-iname",
        "-path",
        "-ipath",
        "-wholename",
        "-iwholename",
        "-regex",
        "-iregex",
        "-type",
        "-xtype",
        "-size",
        "-mtime",
        "-mmin",
        "-atime",
        "-amin",
        "-ctime",
        "-cmin",
        "-newer",
        "-anewer",
        "-cnewer",
        "-user",
        "-group",
        "-uid",
        "-gid",
        "-perm",
        "-links",
        "-inum",
        "-samefile",
        "-maxdepth",
        "-mindepth",
        "-lname",
        "-ilname",
        "-regextype",
        "-used",
        "-fstype",
        "-printf",
        "-context",
    ];
    let mut o = Outcome::read();
    let mut i = 0;
    // Options before the starting points.
    while let Some(a) = args.get(i) {
        match a.text {
            "-H" | "-L" | "-P" => i += 1,
            "-D" | "-O" => i += 2,
            t if t.starts_with("-O") => i += 1,
            _ => break,
        }
    }
    while let Some(a) = args.get(i) {
        if a.dynamic {
            return Outcome::mutate(format!(
                "`{}` is known only at run time and could become a `find` action",
                a.text
            ));
        }
        i += 1;
        let t = a.text;
        if TEST.contains(&t) {
            continue;
        }
        if VALUE.contains(&t) || (t.starts_with("-newer") && t.len() == 8) {
            if args.get(i).is_some_and(|v| v.dynamic) {
                return Outcome::mutate(format!("the value of `{t}` is known only at run time"));
            }
            i += 1;
            continue;
        }
        if t.starts_with('-') {
            let why = match t {
                "-delete" => "`find -delete` removes files".to_owned(),
                "-exec" | "-execdir" | "-ok" | "-okdir" => format!("`find {t}` runs commands"),
                "-fprint" | "-fprint0" | "-fprintf" | "-fls" => format!("`find {t}` writes a file"),
                other => format!("`find {other}` is not a known read-only test"),
            };
            return Outcome::mutate(why);
        }
        // A starting point.
        if secret::is_secret(t, a.glob) {
            o = o.secret(format!("lists secret path {t}"));
        }
    }
    // Names of secret files are not their contents.
    o.secret = None;
    o
}

fn url_ok(u: &str) -> Result<bool, String> {
    let lower = u.to_ascii_lowercase();
    if lower.starts_with("file:") {
        return Ok(true); // a secret read: local files
    }
    match lower.split_once("://") {
        Some(("http" | "https", _)) | None => Ok(false),
        Some((scheme, _)) => Err(format!("`{scheme}://` URLs")),
    }
}

fn curl(args: &[Arg<'_>]) -> Outcome {
    let spec = only(
        "sSfiIkLvq46GgZ",
        "mHXwAeoDubrE",
        &[
            "--silent",
            "--show-error",
            "--fail",
            "--fail-with-body",
            "--include",
            "--head",
            "--insecure",
            "--location",
            "--verbose",
            "--compressed",
            "--ipv4",
            "--ipv6",
            "--http1.1",
            "--http2",
            "--no-buffer",
            "--no-progress-meter",
            "--globoff",
            "--get",
            "--no-keepalive",
            "--path-as-is",
        ],
        &[
            "--max-time",
            "--connect-timeout",
            "--header",
            "--request",
            "--write-out",
            "--user-agent",
            "--referer",
            "--output",
            "--dump-header",
            "--user",
            "--resolve",
            "--retry",
            "--retry-delay",
            "--max-redirs",
            "--cacert",
            "--capath",
            "--url",
            "--range",
            "--connect-to",
            "--noproxy",
            "--interface",
        ],
    );
    let seen = match check("curl", &spec, args) {
        Ok(s) => s,
        Err(why) => {
            return Outcome::mutate(format!(
                "{why} (`-d`, `-F`, `-T`, `-K`, `-c` send data, read a config or write a file)"
            ));
        }
    };
    for (o, v) in &seen.options {
        let v = v.unwrap_or("");
        match o.as_str() {
            "-X" | "--request"
                if !v.eq_ignore_ascii_case("GET") && !v.eq_ignore_ascii_case("HEAD") =>
            {
                return Outcome::mutate(format!("`curl -X {v}` changes a remote resource"));
            }
            "-o" | "--output" | "-D" | "--dump-header" if v != "/dev/null" && v != "-" => {
                return Outcome::mutate(format!("`curl {o} {v}` writes a file"));
            }
            "-w" | "--write-out" if v.contains("%output") || v.contains('@') => {
                return Outcome::mutate("`curl -w %output{...}` writes a file");
            }
            "-H" | "--header" if v.starts_with('@') => {
                return Outcome::mutate("`curl -H @file` reads headers from a file");
            }
            _ => {}
        }
    }
    let mut o = Outcome::read();
    let urls = seen
        .positional
        .iter()
        .map(|a| a.text)
        .chain(seen.value(&["--url"]));
    for u in urls {
        match url_ok(u) {
            Ok(true) => o = o.secret(format!("`curl {u}` reads a local file")),
            Ok(false) => {}
            Err(why) => return Outcome::mutate(format!("curl with {why}")),
        }
    }
    o
}

fn wget(args: &[Arg<'_>]) -> Outcome {
    let spec = only(
        "qSvn",
        "OTtU",
        &[
            "--quiet",
            "--spider",
            "--server-response",
            "--no-check-certificate",
            "--verbose",
            "--no-verbose",
            "--no-hsts",
        ],
        &[
            "--output-document",
            "--timeout",
            "--tries",
            "--user-agent",
            "--header",
        ],
    );
    let seen = match check("wget", &spec, args) {
        Ok(s) => s,
        Err(why) => return Outcome::mutate(format!("{why} (`-o` writes a log file)")),
    };
    let to_stdout = seen.value(&["-O", "--output-document"]) == Some("-");
    if !(to_stdout || seen.has(&["--spider"])) {
        return Outcome::mutate("`wget` downloads to a file without `-O -` or `--spider`");
    }
    let mut o = Outcome::read();
    for a in &seen.positional {
        match url_ok(a.text) {
            Ok(true) => o = o.secret(format!("reads local file {}", a.text)),
            Ok(false) => {}
            Err(why) => return Outcome::mutate(format!("wget with {why}")),
        }
    }
    o
}

fn openssl(args: &[Arg<'_>]) -> Outcome {
    let words: Vec<&str> = args.iter().map(|a| a.text).collect();
    if args.iter().any(|a| a.dynamic) {
        return Outcome::mutate("`openssl` with arguments known only at run time");
    }
    let sub = words.first().copied().unwrap_or("");
    // Options per subcommand that only read or print; `-in`/`-CAfile`
    // files are checked for secrets.
    let (flags, values): (&[&str], &[&str]) = match sub {
        "x509" => (
            &[
                "-noout",
                "-text",
                "-enddate",
                "-startdate",
                "-dates",
                "-subject",
                "-issuer",
                "-serial",
                "-fingerprint",
                "-sha1",
                "-sha256",
                "-pubkey",
                "-modulus",
                "-purpose",
                "-hash",
                "-email",
                "-ocsp_uri",
                "-ext",
                "-nocert",
            ],
            &[
                "-in",
                "-inform",
                "-checkend",
                "-nameopt",
                "-ext",
                "-certopt",
            ],
        ),
        "s_client" => (
            &[
                "-showcerts",
                "-brief",
                "-verify_return_error",
                "-tls1_2",
                "-tls1_3",
                "-no_ign_eof",
                "-quiet",
                "-status",
                "-crlf",
                "-ign_eof",
            ],
            &[
                "-connect",
                "-servername",
                "-CAfile",
                "-CApath",
                "-verify",
                "-starttls",
                "-alpn",
                "-timeout",
            ],
        ),
        "verify" => (
            &["-show_chain", "-verbose", "-x509_strict"],
            &["-CAfile", "-CApath", "-untrusted", "-purpose"],
        ),
        "version" => (&["-a", "-v", "-b", "-o", "-f", "-p", "-d"], &[]),
        "ciphers" => (&["-v", "-V", "-s", "-tls1_2", "-tls1_3"], &[]),
        "crl" | "req" => (
            &[
                "-noout",
                "-text",
                "-verify",
                "-subject",
                "-issuer",
                "-lastupdate",
                "-nextupdate",
            ],
            &["-in", "-inform", "-nameopt"],
        ),
        "s_time" | "speed" => (&[], &[]),
        _ => {
            return Outcome::mutate(format!(
                "`openssl {sub}` writes keys or certificates or handles private keys"
            ));
        }
    };
    let mut o = Outcome::read();
    let mut i = 1;
    while i < words.len() {
        let w = words[i];
        i += 1;
        if flags.contains(&w) {
            continue;
        }
        if values.contains(&w) {
            if let Some(v) = words.get(i)
                && secret::is_secret(v, false)
            {
                o = o.secret(format!("reads secret file {v}"));
            }
            i += 1;
            continue;
        }
        if sub == "s_client" && !w.starts_with('-') {
            continue;
        }
        return Outcome::mutate(format!(
            "`openssl {sub} {w}` is not a known read-only option (`-out`, `-keyout` write files)"
        ));
    }
    if sub == "req" && !words.contains(&"-noout") && !words.contains(&"-text") {
        return Outcome::mutate("`openssl req` without `-noout`/`-text` makes a request");
    }
    o
}

fn helm(words: &[&str], dynamic: bool) -> Outcome {
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
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        i += 1;
        if !w.starts_with('-') {
            continue;
        }
        let name = w.split_once('=').map(|(n, _)| n).unwrap_or(w);
        if VAL.contains(&name) {
            if !w.contains('=') {
                i += 1;
            }
            continue;
        }
        if OK.contains(&name) {
            continue;
        }
        return Outcome::mutate(format!("`helm {name}` is not a known read-only option"));
    }
    if verb == "get" && words.contains(&"values") {
        return Outcome::read().secret("release values may hold credentials");
    }
    Outcome::read()
}

fn dd(args: &[Arg<'_>]) -> Outcome {
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

fn firewall(prog: &str, words: &[&str], dynamic: bool) -> Outcome {
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

#[cfg(test)]
mod tests {
    use super::{awk_program_ok, sed_script_ok};

    #[test]
    fn sed_scripts() {
        for ok in [
            "1,10p",
            "s/a/b/g",
            "/x/d",
            "$!N;P;D",
            "s|a|b|2",
            "10q",
            "/^#/!p",
            "y/abc/xyz/",
        ] {
            assert!(sed_script_ok(ok).is_ok(), "{ok}");
        }
        for bad in [
            "s/a/b/w /tmp/x",
            "s/a/b/e",
            "1e id",
            "w /tmp/x",
            "r /etc/shadow",
            "1W x",
            "s/a/b/gw x",
            "F;v",
        ] {
            assert!(sed_script_ok(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn awk_programs() {
        for ok in [
            "{print $1}",
            "$3 > 80 {print $1}",
            "{ if ($2 > 1) print $1 }",
            "{print ($1 > 2)}",
        ] {
            assert!(awk_program_ok(ok).is_ok(), "{ok}");
        }
        for bad in [
            "{print > \"/tmp/x\"}",
            "{print $1 > 80}",
            "{system(\"id\")}",
            "{print | \"sh\"}",
            "{printf \"%s\", $1 >> \"f\"}",
            "BEGIN{getline < \"/etc/shadow\"}",
        ] {
            assert!(awk_program_ok(bad).is_err(), "{bad}");
        }
    }
}
