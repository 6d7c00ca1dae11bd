//! Shell command classification: is this command line read-only?
//!
//! `Read` is an allowlist, and the classifier says `Read` only when it is
//! sure:
//! - of **constructs** ([`parse`]): simple commands, pipes, `&&`, `||`,
//!   `;`, `if`/`while`/`for` bodies, quoted literals, `$(...)` whose
//!   commands are themselves read-only, harmless environment prefixes
//!   (`LANG=C`), and redirections that write nothing (`2>/dev/null`,
//!   `2>&1`, `< file`). Anything else (`$'...'`, brace and arithmetic
//!   expansion, here-documents that expand, assignments, a `#!` line,
//!   `<>`, process substitution) is `Mutate`;
//! - of **programs and their options** ([`programs`]): every program on a
//!   list of readers, each with the options known to only read, written
//!   in full. Wrappers (`sudo`, `env`, `nice`, `timeout`, `xargs`,
//!   `watch`, `sh -c`, ...) are looked through and classified by what
//!   they run.
//!
//! Unknown, dynamic (`$CMD`) or unparseable means `Mutate`; known
//! destroyers (`rm -r`, `mkfs`, `dd of=`, `kubectl delete`, `reboot`,
//! `kill -9`, ...) are `Destructive`. Reading a secret (shadow, private
//! keys, kubeconfigs, tokens, environments, `$OPS_HOME`; see [`secret`])
//! is flagged separately: the policy never lets it run unasked.
//!
//! The classifier decides what the *gate* does; what a read can do on the
//! target is also bounded by the read-only sandbox the executor runs it in.

mod parse;
mod programs;
pub mod secret;

pub use parse::{MAX_DEPTH, Parsed, Redirect, SimpleCommand, Word, harmless_env, parse};

use super::Effect;
use programs::Arg;

/// The verdict on a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// The most dangerous effect of any part.
    pub effect: Effect,
    /// It reads something secret (keys, shadow, kubeconfigs, environ).
    pub reads_secret: bool,
    /// Why, one line per part that is not plainly read-only.
    pub reasons: Vec<String>,
}

impl Classification {
    fn raise(&mut self, e: Effect, why: impl Into<String>) {
        if e > self.effect {
            self.effect = e;
        }
        if e > Effect::Read {
            self.reasons.push(why.into());
        }
    }

    fn secret(&mut self, why: impl Into<String>) {
        self.reads_secret = true;
        self.reasons.push(why.into());
    }
}

/// Classifies a shell command line.
pub fn classify(line: &str) -> Classification {
    classify_depth(line, 0)
}

/// Shell keywords that only group or branch; the commands inside are
/// classified on their own.
const KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}",
];

/// The words of a command as the classifier and the rules see them.
#[derive(Debug, Clone)]
struct Words {
    argv: Vec<String>,
    dynamic: Vec<bool>,
    glob: Vec<bool>,
}

impl Words {
    fn of(cmd: &SimpleCommand) -> Words {
        Words {
            argv: cmd.argv.clone(),
            dynamic: cmd.dynamic.clone(),
            glob: cmd.glob.clone(),
        }
    }

    fn from(&self, i: usize) -> Words {
        let i = i.min(self.argv.len());
        Words {
            argv: self.argv[i..].to_vec(),
            dynamic: self.dynamic.get(i..).unwrap_or_default().to_vec(),
            glob: self.glob.get(i..).unwrap_or_default().to_vec(),
        }
    }

    /// Drops assignments and keywords before the program.
    fn program_start(&self) -> Words {
        let mut i = 0;
        while i < self.argv.len()
            && (parse::assignment(&self.argv[i]).is_some()
                || KEYWORDS.contains(&self.argv[i].as_str()))
        {
            i += 1;
        }
        self.from(i)
    }

    fn args(&self) -> Vec<Arg<'_>> {
        (1..self.argv.len())
            .map(|i| Arg {
                text: &self.argv[i],
                dynamic: self.dynamic.get(i).copied().unwrap_or(true),
                glob: self.glob.get(i).copied().unwrap_or(false),
            })
            .collect()
    }
}

/// What a wrapper runs.
enum Inner {
    /// The wrapped command's words start at this index; `dynamic_args`
    /// says the wrapper appends words known only at run time (`xargs`).
    Command { at: usize, dynamic_args: bool },
    /// A script given as text (`sh -c TEXT`, `watch TEXT`).
    Script(String),
    /// The wrapper's own use is not read-only, or cannot be followed.
    Refused(String),
    /// Not a wrapper.
    None,
}

/// Index of the first word after the options of a wrapper, given which
/// options it accepts and which of them take a value; `None` when an
/// option is not on the list.
fn after_options(
    words: &Words,
    ok: &str,
    with_value: &str,
    long: &[&str],
) -> Result<usize, String> {
    let prog = &words.argv[0];
    let mut i = 1;
    while i < words.argv.len() {
        let a = &words.argv[i];
        if words.dynamic[i] {
            return Err(format!("`{prog}` with options known only at run time"));
        }
        if a == "--" {
            return Ok(i + 1);
        }
        if !a.starts_with('-') || a == "-" {
            return Ok(i);
        }
        if a.starts_with("--") {
            let name = a.split_once('=').map(|(n, _)| n).unwrap_or(a);
            if !long.contains(&name) {
                return Err(format!("`{prog} {name}` is not a known option"));
            }
            i += 1;
            continue;
        }
        let chars: Vec<char> = a[1..].chars().collect();
        i += 1;
        for (k, ch) in chars.iter().enumerate() {
            if with_value.contains(*ch) {
                if k + 1 == chars.len() {
                    i += 1; // the value is the next word
                }
                break;
            }
            if !ok.contains(*ch) {
                return Err(format!("`{prog} -{ch}` is not a known option"));
            }
        }
    }
    Ok(i)
}

fn wrapper(words: &Words) -> Inner {
    let prog = words.argv[0].rsplit('/').next().unwrap_or("").to_owned();
    let cmd = |r: Result<usize, String>| match r {
        Ok(at) => Inner::Command {
            at,
            dynamic_args: false,
        },
        Err(why) => Inner::Refused(why),
    };
    match prog.as_str() {
        // `sudo -i`/`-s` hand the words to a login shell; `-e` edits.
        "sudo" | "doas" => cmd(after_options(
            words,
            "nHEPS",
            "ugCD",
            &[
                "--non-interactive",
                "--user",
                "--group",
                "--preserve-env",
                "--set-home",
            ],
        )),
        "nice" => cmd(after_options(words, "", "n", &["--adjustment"])),
        "nohup" | "time" | "builtin" | "setsid" => {
            cmd(after_options(words, "pfcw", "", &["--fork", "--wait"]))
        }
        "command" => {
            if words.argv.get(1).is_some_and(|a| a == "-v" || a == "-V") {
                return Inner::Command {
                    at: words.argv.len(),
                    dynamic_args: false,
                };
            }
            cmd(after_options(words, "p", "", &[]))
        }
        "stdbuf" => cmd(after_options(
            words,
            "",
            "ioe",
            &["--input", "--output", "--error"],
        )),
        // `ionice -p PID` changes another process; only as a wrapper.
        "ionice" => cmd(after_options(words, "t", "cn", &["--class", "--classdata"])),
        "timeout" => match after_options(
            words,
            "v",
            "ks",
            &[
                "--preserve-status",
                "--foreground",
                "--verbose",
                "--kill-after",
                "--signal",
            ],
        ) {
            // The first word after the options is the duration.
            Ok(at) => Inner::Command {
                at: at + 1,
                dynamic_args: false,
            },
            Err(why) => Inner::Refused(why),
        },
        "env" => {
            let mut i = 1;
            while i < words.argv.len() {
                let a = &words.argv[i];
                if words.dynamic[i] {
                    return Inner::Refused("`env` with words known only at run time".into());
                }
                if a == "-i" || a == "--ignore-environment" || a == "-0" || a == "--null" {
                    i += 1;
                } else if a == "-u" || a == "--unset" {
                    i += 2;
                } else if a.starts_with('-') {
                    return Inner::Refused(format!(
                        "`env {a}` is not a known option (`-S` splits a string into a command)"
                    ));
                } else if let Some((name, _)) = parse::assignment(a) {
                    if !harmless_env(name) {
                        return Inner::Refused(format!(
                            "`env {name}=` can make a program run code"
                        ));
                    }
                    i += 1;
                } else {
                    break;
                }
            }
            Inner::Command {
                at: i,
                dynamic_args: false,
            }
        }
        "xargs" => match after_options(
            words,
            "0rtpox",
            "nIPdLsaE",
            &[
                "--null",
                "--no-run-if-empty",
                "--verbose",
                "--max-args",
                "--max-procs",
                "--delimiter",
                "--arg-file",
                "--replace",
            ],
        ) {
            Ok(at) => Inner::Command {
                at,
                dynamic_args: true,
            },
            Err(why) => Inner::Refused(why),
        },
        "watch" => match after_options(
            words,
            "tbegcpx",
            "nd",
            &[
                "--interval",
                "--no-title",
                "--beep",
                "--errexit",
                "--chgexit",
                "--color",
                "--precise",
                "--differences",
            ],
        ) {
            // `watch` hands its words to `sh -c` joined by spaces.
            Ok(at) if at < words.argv.len() && !words.dynamic[at..].iter().any(|d| *d) => {
                Inner::Script(words.argv[at..].join(" "))
            }
            Ok(_) => Inner::Refused("`watch` with a command known only at run time".into()),
            Err(why) => Inner::Refused(why),
        },
        "sh" | "bash" | "dash" | "zsh" | "ksh" | "ash" | "busybox" => {
            let args = &words.argv[1..];
            let mut i = 0;
            let mut script = None;
            while i < args.len() {
                let a = &args[i];
                if a == "-o" {
                    if !args
                        .get(i + 1)
                        .is_some_and(|v| matches!(v.as_str(), "pipefail" | "errexit" | "nounset"))
                    {
                        return Inner::Refused(format!(
                            "`{prog} -o` other than pipefail/errexit/nounset"
                        ));
                    }
                    i += 2;
                    continue;
                }
                if a.starts_with('-')
                    && a.len() > 1
                    && !a.starts_with("--")
                    && a[1..].chars().all(|c| "ceuxl".contains(c))
                {
                    if a.contains('c') {
                        script = Some(i + 1);
                        break;
                    }
                    i += 1;
                    continue;
                }
                break;
            }
            match script {
                Some(s) if s < args.len() && !words.dynamic[s + 1] => {
                    Inner::Script(args[s].clone())
                }
                Some(_) => {
                    Inner::Refused(format!("`{prog} -c` with a script known only at run time"))
                }
                None => Inner::Refused(format!(
                    "`{prog}` runs a script it reads from a file or its input"
                )),
            }
        }
        "exec" | "eval" | "source" | "." | "trap" | "alias" | "enable" | "coproc" => {
            Inner::Refused(format!("`{prog}` runs text or changes how commands run"))
        }
        "case" | "function" | "select" => {
            Inner::Refused(format!("`{prog}` blocks are not classified"))
        }
        _ => Inner::None,
    }
}

fn classify_command(cmd: &SimpleCommand, c: &mut Classification, depth: usize) {
    for r in &cmd.redirects {
        if r.writes() {
            let e = if [
                "/dev/sd",
                "/dev/nvme",
                "/dev/vd",
                "/dev/hd",
                "/dev/xvd",
                "/dev/mmcblk",
                "/dev/dm-",
                "/dev/mapper/",
            ]
            .iter()
            .any(|d| r.target.starts_with(d))
            {
                Effect::Destructive
            } else {
                Effect::Mutate
            };
            c.raise(e, format!("writes {} (redirection `{}`)", r.target, r.op));
        } else if r.bare_op() == "<" || r.bare_op() == "<&" {
            if r.dynamic {
                c.raise(Effect::Mutate, "reads a file known only at run time");
            } else if secret::is_secret(&r.target, false) {
                c.secret(format!("reads secret file {}", r.target));
            }
        }
    }
    classify_words(&Words::of(cmd), c, depth);
}

fn classify_words(words: &Words, c: &mut Classification, depth: usize) {
    let words = words.program_start();
    let Some(first) = words.argv.first() else {
        return;
    };
    if words.dynamic[0] {
        c.raise(
            Effect::Mutate,
            format!("the program `{first}` is only known at run time"),
        );
        return;
    }
    if depth > MAX_DEPTH {
        c.raise(Effect::Mutate, "wrappers nested too deep");
        return;
    }
    let prog = first.rsplit('/').next().unwrap_or(first).to_owned();
    if prog == "for" {
        return; // the loop header's words are data; its body is parsed apart
    }
    match wrapper(&words) {
        Inner::Command { at, dynamic_args } => {
            let mut inner = words.from(at);
            if inner.argv.is_empty() {
                if prog == "env" {
                    c.secret("`env` prints the environment");
                }
                return; // `xargs` alone runs `echo`; `command -v` looks up
            }
            if dynamic_args {
                // Run-time words follow the command's own.
                inner.argv.push("<input>".into());
                inner.dynamic.push(true);
                inner.glob.push(false);
            }
            return classify_words(&inner, c, depth + 1);
        }
        Inner::Script(script) => {
            let nested = classify_depth(&script, depth + 1);
            c.reads_secret |= nested.reads_secret;
            c.reasons.extend(nested.reasons);
            if nested.effect > c.effect {
                c.effect = nested.effect;
            }
            return;
        }
        Inner::Refused(why) => {
            c.raise(Effect::Mutate, why);
            return;
        }
        Inner::None => {}
    }
    let args = words.args();
    let o = programs::effect(&prog, &args);
    if let Some(s) = o.secret {
        c.secret(s);
    }
    let shown = words.argv.join(" ");
    c.raise(
        o.effect,
        match o.why {
            Some(w) => format!("`{shown}`: {w}"),
            None => format!("`{shown}`"),
        },
    );
}

fn classify_depth(line: &str, depth: usize) -> Classification {
    if depth > MAX_DEPTH {
        return Classification {
            effect: Effect::Mutate,
            reads_secret: false,
            reasons: vec!["scripts nested too deep".into()],
        };
    }
    let parsed = parse(line);
    let mut c = Classification {
        effect: Effect::Read,
        reads_secret: false,
        reasons: Vec::new(),
    };
    for p in &parsed.problems {
        c.raise(Effect::Mutate, format!("cannot be parsed safely: {p}"));
    }
    for u in &parsed.unsure {
        c.raise(
            Effect::Mutate,
            format!("uses {u}, which is not proved read-only"),
        );
    }
    for cmd in &parsed.commands {
        classify_command(cmd, &mut c, depth);
    }
    c
}

/// Every command a line runs, as argv, wrappers looked through: the
/// commands as written (without environment prefixes), what `sudo`,
/// `env`, `nice`, `timeout`, `xargs`, `watch`, `sh -c` and the like run,
/// what `find -exec` runs, and `rm` for `find -delete`. What the policy's
/// rules match against: a `forbid rm` rule must see the `rm` in
/// `nice rm`, `xargs rm`, `sh -c 'rm x'` and `find -delete`.
pub fn commands(line: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    collect(line, &mut out, 0);
    out
}

fn collect(line: &str, out: &mut Vec<Vec<String>>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    for cmd in parse(line).commands {
        collect_words(&Words::of(&cmd), out, depth);
    }
}

fn collect_words(words: &Words, out: &mut Vec<Vec<String>>, depth: usize) {
    let words = words.program_start();
    if words.argv.is_empty() || depth > MAX_DEPTH {
        return;
    }
    out.push(words.argv.clone());
    let prog = words.argv[0].rsplit('/').next().unwrap_or("").to_owned();
    match wrapper(&words) {
        Inner::Command { at, .. } => collect_words(&words.from(at), out, depth + 1),
        Inner::Script(s) => collect(&s, out, depth + 1),
        Inner::Refused(_) | Inner::None => {}
    }
    // Wrappers whose options the wrapper check refused still run what
    // follows: look for a known program after any option-looking words.
    if matches!(wrapper(&words), Inner::Refused(_)) {
        if let Some(i) = (1..words.argv.len()).find(|&i| !words.argv[i].starts_with('-')) {
            collect_words(&words.from(i), out, depth + 1);
        }
    }
    if prog == "find" {
        let mut i = 1;
        while i < words.argv.len() {
            let a = words.argv[i].as_str();
            if matches!(a, "-exec" | "-execdir" | "-ok" | "-okdir") {
                let end = (i + 1..words.argv.len())
                    .find(|&j| matches!(words.argv[j].as_str(), ";" | "+"))
                    .unwrap_or(words.argv.len());
                let inner = Words {
                    argv: words.argv[i + 1..end].to_vec(),
                    dynamic: words.dynamic[i + 1..end].to_vec(),
                    glob: words.glob[i + 1..end].to_vec(),
                };
                collect_words(&inner, out, depth + 1);
                i = end;
            } else if a == "-delete" {
                out.push(vec!["rm".into(), "-f".into(), "--".into(), "{}".into()]);
            }
            i += 1;
        }
    }
}
