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

mod cluster;
mod network;
mod scripts;
mod system;

use super::Effect::{self, Destructive, Mutate, Read};
use super::secret;
use cluster::{containers, helm, kubectl};
use network::{curl, ip, openssl, wget};
use scripts::{awk, find, sed};
use system::{ctl_status, date, dd, firewall, getent, journalctl, nvidia_smi, systemctl};

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

/// The word after option `flag` (at `args[*i]`), which must be known now.
fn next_value<'a>(
    prog: &str,
    flag: &str,
    args: &[Arg<'a>],
    i: &mut usize,
) -> Result<&'a str, String> {
    let Some(next) = args.get(*i) else {
        return Err(format!("`{flag}` of `{prog}` needs a value"));
    };
    *i += 1;
    if next.dynamic {
        return Err(format!("the value of `{flag}` is known only at run time"));
    }
    Ok(next.text)
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
                    None => next_value(prog, &flag, args, &mut i)?,
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
                    next_value(prog, &flag, args, &mut i)?
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
                return Some(Spec {
                    max_pos: Some(0),
                    ..only(
                        "vbh",
                        "",
                        &["--show", "--summary", "--bytes", "--noheadings", "--raw"],
                        &[],
                    )
                });
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
        // `test`/`[` are checked in `effect` (`-v 'a[$(cmd)]'` evaluates
        // the subscript); everything else is not a plain reader.
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
