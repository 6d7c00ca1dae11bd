//! Shell command classification: is this command line read-only?
//!
//! A real (small) parser, not a prefix match: the line is split into
//! simple commands on `;`, `&`, `&&`, `||`, `|`, newlines and groupings;
//! `$(...)` and backticks are parsed as the commands they run; `sh -c`,
//! `bash -c`, `sudo`, `env`, `timeout`, `nice`, `nohup`, `xargs`, `watch`
//! and friends are looked through; redirections are collected; here-doc
//! bodies are skipped. A line is `Read` only if **every** part is on the
//! read-only list with read-only arguments, and nothing is written by a
//! redirection. Anything unknown, dynamic (`$CMD`), or unparseable is
//! `Mutate`; known destroyers (`rm -r`, `mkfs`, `dd of=`, `kubectl delete`,
//! `reboot`, `kill -9`, ...) are `Destructive`.
//!
//! Reading a secret (`/etc/shadow`, private keys, kubeconfigs,
//! `/proc/*/environ`) is flagged separately: the policy never lets it run
//! unasked, and redaction still applies to whatever comes back.

use super::Effect;

/// A redirection on a simple command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// `>`, `>>`, `<`, `<<`, `<<<`, `&>`, `>&`, `>|`, with any fd prefix.
    pub op: String,
    /// The file (or fd, or here-doc word).
    pub target: String,
}

impl Redirect {
    fn writes(&self) -> bool {
        let op = self.op.trim_start_matches(|c: char| c.is_ascii_digit());
        let out = matches!(op, ">" | ">>" | "&>" | "&>>" | ">|" | ">&");
        if !out {
            return false;
        }
        // `2>&1`, `>&2`: duplicating a descriptor writes no file.
        if op == ">&" && self.target.chars().all(|c| c.is_ascii_digit() || c == '-') {
            return false;
        }
        !matches!(
            self.target.as_str(),
            "/dev/null" | "/dev/stdout" | "/dev/stderr" | "&1" | "&2"
        )
    }
}

/// One simple command: words (quotes removed) and redirections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimpleCommand {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Which words contained an expansion (`$X`, `${X}`): their value is
    /// unknown until run time.
    pub dynamic: Vec<bool>,
    /// Redirections, in order.
    pub redirects: Vec<Redirect>,
}

/// The simple commands of a line, and what could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    /// Every simple command, command substitutions included.
    pub commands: Vec<SimpleCommand>,
    /// Problems (unbalanced quotes, unsupported syntax); any makes the
    /// line `Mutate`.
    pub problems: Vec<String>,
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    out: &'a mut Parsed,
    depth: usize,
}

const MAX_DEPTH: usize = 16;

/// Parses a shell command line.
pub fn parse(line: &str) -> Parsed {
    let mut out = Parsed::default();
    parse_into(line, &mut out, 0);
    out
}

fn parse_into(line: &str, out: &mut Parsed, depth: usize) {
    if depth > MAX_DEPTH {
        out.problems
            .push("command substitutions nested too deep".into());
        return;
    }
    let mut p = Parser {
        chars: line.chars().collect(),
        pos: 0,
        out,
        depth,
    };
    p.run();
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    fn run(&mut self) {
        let mut cmd = SimpleCommand::default();
        let mut heredocs: Vec<(String, bool)> = Vec::new();
        loop {
            // Skip blanks.
            while matches!(self.peek(), Some(' ' | '\t')) {
                self.pos += 1;
            }
            let Some(c) = self.peek() else {
                break;
            };
            match c {
                '#' if cmd.argv.is_empty() && cmd.redirects.is_empty() => {
                    while !matches!(self.peek(), None | Some('\n')) {
                        self.pos += 1;
                    }
                }
                '\n' => {
                    self.pos += 1;
                    self.finish(&mut cmd);
                    for (word, strip_tabs) in heredocs.drain(..) {
                        self.skip_heredoc(&word, strip_tabs);
                    }
                }
                ';' | '&' | '|' | '(' | ')' => {
                    // `&>` and `&>>` are redirections, not separators.
                    if c == '&' && self.peek_at(1) == Some('>') {
                        self.redirect(&mut cmd, String::new(), &mut heredocs);
                        continue;
                    }
                    self.pos += 1;
                    while matches!(self.peek(), Some('&' | '|' | ';')) {
                        self.pos += 1;
                    }
                    self.finish(&mut cmd);
                }
                '<' | '>' => self.redirect(&mut cmd, String::new(), &mut heredocs),
                _ => {
                    let start = self.pos;
                    let (word, dynamic) = self.word();
                    // A word of digits right before `<`/`>` is an fd.
                    if matches!(self.peek(), Some('<' | '>'))
                        && !word.is_empty()
                        && word.chars().all(|c| c.is_ascii_digit())
                        && self.pos - start == word.len()
                    {
                        self.redirect(&mut cmd, word, &mut heredocs);
                        continue;
                    }
                    if self.pos == start {
                        // Nothing consumed: an unexpected character.
                        self.out.problems.push(format!("unexpected `{c}`"));
                        self.pos += 1;
                        continue;
                    }
                    cmd.argv.push(word);
                    cmd.dynamic.push(dynamic);
                }
            }
        }
        self.finish(&mut cmd);
        if !heredocs.is_empty() {
            // A here-doc whose body never came: fine to ignore.
        }
    }

    fn finish(&mut self, cmd: &mut SimpleCommand) {
        let c = std::mem::take(cmd);
        if !c.argv.is_empty() || !c.redirects.is_empty() {
            self.out.commands.push(c);
        }
    }

    fn skip_heredoc(&mut self, word: &str, strip_tabs: bool) {
        loop {
            let start = self.pos;
            while !matches!(self.peek(), None | Some('\n')) {
                self.pos += 1;
            }
            let line: String = self.chars[start..self.pos].iter().collect();
            if self.peek().is_some() {
                self.pos += 1;
            }
            let l = if strip_tabs {
                line.trim_start_matches('\t')
            } else {
                line.as_str()
            };
            if l == word || self.peek().is_none() {
                return;
            }
        }
    }

    fn redirect(
        &mut self,
        cmd: &mut SimpleCommand,
        fd: String,
        heredocs: &mut Vec<(String, bool)>,
    ) {
        let mut op = fd;
        while let Some(c @ ('<' | '>' | '&' | '|' | '-')) = self.peek() {
            // `>|` is an operator; a following `|` in `> |` is not.
            if c == '|' && !op.ends_with('>') {
                break;
            }
            if c == '-' && !op.ends_with("<<") {
                break;
            }
            if c == '&' && !(op.is_empty() || op.ends_with('>') || op.ends_with('<')) {
                break;
            }
            op.push(c);
            self.pos += 1;
        }
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
        let (target, _) = self.word();
        let bare = op.trim_start_matches(|c: char| c.is_ascii_digit());
        if bare == "<<" || bare == "<<-" {
            heredocs.push((target.clone(), bare == "<<-"));
        }
        if target.is_empty() {
            self.out
                .problems
                .push(format!("redirection `{op}` without a target"));
        }
        cmd.redirects.push(Redirect { op, target });
    }

    /// One word: quotes removed, `$(...)`/backticks parsed as commands.
    fn word(&mut self) -> (String, bool) {
        let mut w = String::new();
        let mut dynamic = false;
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\n' | ';' | '&' | '|' | '<' | '>' | '(' | ')' => break,
                '\\' => {
                    self.pos += 1;
                    if let Some(n) = self.peek() {
                        if n != '\n' {
                            w.push(n);
                        }
                        self.pos += 1;
                    }
                }
                '\'' => {
                    self.pos += 1;
                    let start = self.pos;
                    while !matches!(self.peek(), None | Some('\'')) {
                        self.pos += 1;
                    }
                    if self.peek().is_none() {
                        self.out.problems.push("unbalanced single quote".into());
                    }
                    w.extend(&self.chars[start..self.pos]);
                    self.pos += 1;
                }
                '"' => {
                    self.pos += 1;
                    loop {
                        match self.peek() {
                            None => {
                                self.out.problems.push("unbalanced double quote".into());
                                break;
                            }
                            Some('"') => {
                                self.pos += 1;
                                break;
                            }
                            Some('\\') => {
                                self.pos += 1;
                                if let Some(n) = self.peek() {
                                    w.push(n);
                                    self.pos += 1;
                                }
                            }
                            Some('$') => {
                                dynamic |= self.dollar(&mut w);
                            }
                            Some('`') => {
                                self.backtick();
                                dynamic = true;
                            }
                            Some(c) => {
                                w.push(c);
                                self.pos += 1;
                            }
                        }
                    }
                }
                '$' => dynamic |= self.dollar(&mut w),
                '`' => {
                    self.backtick();
                    dynamic = true;
                }
                _ => {
                    w.push(c);
                    self.pos += 1;
                }
            }
        }
        (w, dynamic)
    }

    /// At `$`: a command substitution (parsed), an arithmetic expansion,
    /// or a parameter. Returns whether the word became dynamic.
    fn dollar(&mut self, w: &mut String) -> bool {
        match self.peek_at(1) {
            Some('(') => {
                let arith = self.peek_at(2) == Some('(');
                self.pos += if arith { 3 } else { 2 };
                let inner = self.balanced('(', ')');
                if arith {
                    self.pos += 1; // the second `)`
                    // `$(( ... ))` may still hide `$(cmd)`.
                    if inner.contains("$(") || inner.contains('`') {
                        parse_into(&inner, self.out, self.depth + 1);
                    }
                } else {
                    parse_into(&inner, self.out, self.depth + 1);
                }
                w.push_str("$(...)");
                true
            }
            Some('{') => {
                self.pos += 2;
                let inner = self.balanced('{', '}');
                if inner.contains("$(") || inner.contains('`') {
                    parse_into(&inner, self.out, self.depth + 1);
                }
                w.push_str(&format!("${{{inner}}}"));
                true
            }
            Some(c) if c.is_ascii_alphanumeric() || "_?@*#$!-".contains(c) => {
                self.pos += 1;
                w.push('$');
                if c.is_ascii_alphabetic() || c == '_' {
                    while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == '_') {
                        w.push(self.chars[self.pos]);
                        self.pos += 1;
                    }
                } else {
                    w.push(c);
                    self.pos += 1;
                }
                true
            }
            _ => {
                w.push('$');
                self.pos += 1;
                false
            }
        }
    }

    /// Text up to the matching `close` (quotes respected); consumes it.
    fn balanced(&mut self, open: char, close: char) -> String {
        let start = self.pos;
        let mut depth = 1;
        let mut quote: Option<char> = None;
        while let Some(c) = self.peek() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some('"'), '\\') => self.pos += 1,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '\\') => self.pos += 1,
                (None, c) if c == open => depth += 1,
                (None, c) if c == close => {
                    depth -= 1;
                    if depth == 0 {
                        let inner: String = self.chars[start..self.pos].iter().collect();
                        self.pos += 1;
                        return inner;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        self.out.problems.push(format!("unbalanced `{open}`"));
        self.chars[start..].iter().collect()
    }

    fn backtick(&mut self) {
        self.pos += 1;
        let start = self.pos;
        while !matches!(self.peek(), None | Some('`')) {
            if self.peek() == Some('\\') {
                self.pos += 1;
            }
            self.pos += 1;
        }
        if self.peek().is_none() {
            self.out.problems.push("unbalanced backtick".into());
        }
        let inner: String = self.chars[start..self.pos.min(self.chars.len())]
            .iter()
            .collect();
        self.pos += 1;
        parse_into(&inner, self.out, self.depth + 1);
    }
}

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

/// Classifies a shell command line.
pub fn classify(line: &str) -> Classification {
    let parsed = parse(line);
    let mut c = Classification {
        effect: Effect::Read,
        reads_secret: false,
        reasons: Vec::new(),
    };
    for p in &parsed.problems {
        c.raise(Effect::Mutate, format!("cannot be parsed safely: {p}"));
    }
    if parsed.commands.is_empty() && parsed.problems.is_empty() {
        return c;
    }
    for cmd in &parsed.commands {
        classify_command(cmd, &mut c, 0);
    }
    c
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
}

/// Environment assignments (`A=b cmd`) before the program.
fn strip_assignments(argv: &[String]) -> usize {
    argv.iter()
        .take_while(|a| {
            a.split_once('=').is_some_and(|(k, _)| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
        })
        .count()
}

const KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}",
];

fn secret_path(a: &str) -> bool {
    let a = a.trim();
    let name = a.rsplit('/').next().unwrap_or(a);
    a == "/etc/shadow"
        || a == "/etc/gshadow"
        || a.starts_with("/etc/shadow")
        || (name.starts_with("id_") && !name.ends_with(".pub") && a.contains(".ssh"))
        || name.starts_with("ssh_host_") && name.ends_with("_key")
        || name.ends_with(".pem")
        || name.ends_with(".key")
        || name == "kubeconfig"
        || a.contains("/.kube/config")
        || a.contains("/etc/kubernetes/admin.conf")
        || a.contains("/etc/kubernetes/pki/")
        || (a.starts_with("/proc/") && a.ends_with("/environ"))
        || name == ".env"
        || a.contains("/.aws/credentials")
        || a.contains("/.docker/config.json")
        || name == ".netrc"
        || name == ".pgpass"
}

fn classify_command(cmd: &SimpleCommand, c: &mut Classification, depth: usize) {
    for r in &cmd.redirects {
        if r.writes() {
            let e = if r.target.starts_with("/dev/sd")
                || r.target.starts_with("/dev/nvme")
                || r.target.starts_with("/dev/vd")
            {
                Effect::Destructive
            } else {
                Effect::Mutate
            };
            c.raise(e, format!("writes {} (redirection `{}`)", r.target, r.op));
        }
        if r.op.trim_start_matches(|ch: char| ch.is_ascii_digit()) == "<" && secret_path(&r.target)
        {
            c.reads_secret = true;
            c.reasons.push(format!("reads secret file {}", r.target));
        }
    }
    let skip = strip_assignments(&cmd.argv);
    let mut argv: Vec<String> = cmd.argv[skip..].to_vec();
    let mut dynamic: Vec<bool> = cmd.dynamic.get(skip..).unwrap_or_default().to_vec();
    while argv.first().is_some_and(|a| KEYWORDS.contains(&a.as_str())) {
        argv.remove(0);
        if !dynamic.is_empty() {
            dynamic.remove(0);
        }
    }
    let Some(first) = argv.first() else {
        return;
    };
    if dynamic.first().copied().unwrap_or(false) {
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
    let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    for a in &args {
        if secret_path(a) {
            c.reads_secret = true;
            c.reasons.push(format!("touches secret file {a}"));
        }
    }
    let inner = |c: &mut Classification, rest: &[String]| {
        let sub = SimpleCommand {
            argv: rest.to_vec(),
            dynamic: vec![false; rest.len()],
            redirects: Vec::new(),
        };
        classify_command(&sub, c, depth + 1);
    };
    // Wrappers: classify what they run.
    match prog.as_str() {
        "for" | "case" | "select" | "function" => {
            if prog == "for" || prog == "select" {
                return; // the loop header; its body is parsed separately
            }
            c.raise(
                Effect::Mutate,
                format!("`{prog}` blocks are not classified"),
            );
            return;
        }
        "sudo" | "doas" => {
            let i = args
                .iter()
                .position(|a| !a.starts_with('-'))
                .unwrap_or(args.len());
            // `sudo -u user cmd`: skip an option's value.
            let i = skip_option_values(&args, i, &["-u", "-g", "-p", "-C", "-h", "-U"]);
            return inner(c, &argv[1 + i..]);
        }
        "env" => {
            let rest: Vec<String> = argv[1..]
                .iter()
                .skip_while(|a| a.starts_with('-') || a.contains('='))
                .cloned()
                .collect();
            if rest.is_empty() {
                c.reads_secret = true; // the environment may hold tokens
                c.reasons.push("prints the environment".into());
                return;
            }
            return inner(c, &rest);
        }
        "nice" | "nohup" | "time" | "stdbuf" | "ionice" | "chrt" | "setsid" | "command"
        | "exec" | "builtin" => {
            if prog == "command" && args.first().is_some_and(|a| *a == "-v" || *a == "-V") {
                return;
            }
            let rest: Vec<String> = argv[1..]
                .iter()
                .skip_while(|a| a.starts_with('-') || a.parse::<i64>().is_ok())
                .cloned()
                .collect();
            return inner(c, &rest);
        }
        "timeout" => {
            let rest: Vec<String> = argv[1..]
                .iter()
                .skip_while(|a| a.starts_with('-'))
                .skip(1)
                .cloned()
                .collect();
            return inner(c, &rest);
        }
        "watch" => {
            let i = skip_option_values(&args, 0, &["-n", "--interval", "-d"]);
            let rest: Vec<String> = argv[1 + i..].to_vec();
            if rest.len() == 1 {
                let mut sub = Classification {
                    effect: Effect::Read,
                    reads_secret: false,
                    reasons: Vec::new(),
                };
                let nested = classify(&rest[0]);
                sub.raise(nested.effect, nested.reasons.join("; "));
                c.raise(sub.effect, sub.reasons.join("; "));
                c.reads_secret |= nested.reads_secret;
                return;
            }
            return inner(c, &rest);
        }
        "xargs" => {
            let i = skip_option_values(&args, 0, &["-n", "-I", "-P", "-d", "-L", "-s", "-a", "-E"]);
            let rest: Vec<String> = argv[1 + i..].to_vec();
            if rest.is_empty() {
                return; // xargs alone runs echo
            }
            return inner(c, &rest);
        }
        "sh" | "bash" | "dash" | "zsh" | "ksh" | "busybox" if args.contains(&"-c") => {
            let i = args.iter().position(|a| *a == "-c").unwrap_or(0);
            match args.get(i + 1) {
                Some(script) if !cmd.dynamic.get(skip + 2 + i).copied().unwrap_or(false) => {
                    let nested = classify(script);
                    c.reads_secret |= nested.reads_secret;
                    for r in nested.reasons {
                        c.reasons.push(r);
                    }
                    if nested.effect > c.effect {
                        c.effect = nested.effect;
                    }
                }
                _ => c.raise(
                    Effect::Mutate,
                    format!("`{prog} -c` with a script known only at run time"),
                ),
            }
            return;
        }
        "eval" => {
            c.raise(Effect::Mutate, "`eval` runs text known only at run time");
            return;
        }
        _ => {}
    }
    let (effect, why) = program_effect(&prog, &args);
    let shown = argv.join(" ");
    c.raise(
        effect,
        match why {
            Some(w) => format!("`{shown}`: {w}"),
            None => format!("`{shown}`: `{prog}` is not on the read-only list"),
        },
    );
}

/// Index of the first non-option argument from `i`, skipping the values
/// of options in `with_value`.
fn skip_option_values(args: &[&str], mut i: usize, with_value: &[&str]) -> usize {
    let mut j = 0;
    while j < args.len() {
        let a = args[j];
        if !a.starts_with('-') {
            break;
        }
        j += if with_value.contains(&a) { 2 } else { 1 };
    }
    if j > i {
        i = j;
    }
    i.min(args.len())
}

fn has(args: &[&str], flags: &[&str]) -> bool {
    args.iter().any(|a| {
        flags.iter().any(|f| {
            a == f || (f.starts_with("--") && a.starts_with(&format!("{f}=")))
                // combined short flags: `-rf` has `-r` and `-f`
                || (f.len() == 2 && !f.starts_with("--") && a.starts_with('-') && !a.starts_with("--") && a.len() > 2 && a[1..].contains(&f[1..]))
        })
    })
}

/// The effect of one program with its arguments, and why when not Read.
fn program_effect(prog: &str, args: &[&str]) -> (Effect, Option<String>) {
    use Effect::{Destructive, Mutate, Read};
    let first = args
        .iter()
        .copied()
        .find(|a| !a.starts_with('-'))
        .unwrap_or("");
    let read_only = |ok: bool, why: &str| {
        if ok {
            (Read, None)
        } else {
            (Mutate, Some(why.to_owned()))
        }
    };
    match prog {
        // Plain readers and reporters.
        "ls" | "cat" | "tac" | "head" | "tail" | "less" | "more" | "grep" | "egrep" | "fgrep"
        | "zgrep" | "zcat" | "rg" | "wc" | "sort" | "uniq" | "cut" | "tr" | "column" | "jq"
        | "diff" | "cmp" | "md5sum" | "sha1sum" | "sha256sum" | "stat" | "file" | "readlink"
        | "realpath" | "basename" | "dirname" | "pwd" | "echo" | "printf" | "true" | "false"
        | "test" | "[" | "[[" | "date" | "uptime" | "uname" | "id" | "whoami" | "groups" | "df"
        | "du" | "free" | "ps" | "pgrep" | "pidof" | "ss" | "netstat" | "lsof" | "lsblk"
        | "blkid" | "lscpu" | "lsmem" | "lspci" | "lsusb" | "lsmod" | "findmnt" | "w" | "who"
        | "last" | "lastlog" | "vmstat" | "iostat" | "mpstat" | "sar" | "pidstat" | "nproc"
        | "getconf" | "printenv" | "which" | "type" | "whereis" | "dig" | "nslookup" | "host"
        | "traceroute" | "tracepath" | "getent" | "arp" | "sleep" | "seq" | "od" | "hexdump"
        | "xxd" | "strings" | "nl" | "fold" | "expand" | "paste" | "join" | "comm" | "tree"
        | "locale" | "ulimit" | "sysctl"
            if prog != "sysctl" || !has(args, &["-w", "--write", "-p", "--load", "--system"]) =>
        {
            if prog == "sysctl" {
                // `sysctl a.b=c` writes too.
                return read_only(
                    !args.iter().any(|a| a.contains('=')),
                    "sets a kernel parameter",
                );
            }
            (Read, None)
        }
        "sysctl" => (Mutate, Some("sets kernel parameters".into())),
        // Without a terminal nothing can be typed into it; `-b` or a
        // bounded `-n N` also makes it exit on its own.
        "top" => read_only(has(args, &["-b", "-n"]), "interactive without -b or -n"),
        "htop" => read_only(has(args, &["-n", "--max-iterations"]), "interactive"),
        "ping" | "ping6" => read_only(has(args, &["-c"]), "runs forever without -c"),
        "mtr" => read_only(
            has(args, &["-r", "--report"]),
            "interactive without --report",
        ),
        "hostname" => read_only(
            args.iter().all(|a| a.starts_with('-')),
            "sets the host name",
        ),
        "mount" => read_only(args.is_empty() || args == ["-l"], "mounts a filesystem"),
        "dmesg" => read_only(
            !has(
                args,
                &[
                    "-c",
                    "-C",
                    "--clear",
                    "--read-clear",
                    "-n",
                    "--console-level",
                    "-D",
                    "-E",
                    "--console-off",
                    "--console-on",
                ],
            ),
            "clears or reconfigures the kernel log",
        ),
        "journalctl" => read_only(
            !args.iter().any(|a| {
                a.starts_with("--vacuum")
                    || matches!(
                        *a,
                        "--rotate"
                            | "--flush"
                            | "--sync"
                            | "--relinquish-var"
                            | "--setup-keys"
                            | "--update-catalog"
                    )
            }),
            "changes the journal",
        ),
        "timedatectl" | "hostnamectl" | "localectl" | "loginctl" | "networkctl" | "resolvectl" => {
            read_only(
                matches!(
                    first,
                    "" | "status"
                        | "show"
                        | "list"
                        | "list-timezones"
                        | "list-sessions"
                        | "list-users"
                        | "timesync-status"
                        | "show-timesync"
                        | "query"
                        | "statistics"
                ),
                "changes system settings",
            )
        }
        "systemctl" | "service" => systemctl(prog, args),
        "ip" => {
            let objs = [
                "addr", "address", "a", "link", "l", "route", "r", "ro", "neigh", "n", "rule",
                "ru", "-br", "-4", "-6", "-s", "-j", "-c",
            ];
            let verbs_ok = !args.iter().any(|a| {
                matches!(
                    *a,
                    "add"
                        | "del"
                        | "delete"
                        | "change"
                        | "replace"
                        | "set"
                        | "flush"
                        | "append"
                        | "prepend"
                        | "save"
                        | "restore"
                )
            });
            read_only(
                verbs_ok
                    && (first.is_empty()
                        || objs.contains(&first)
                        || first == "show"
                        || first == "list"),
                "changes network configuration",
            )
        }
        "kubectl" | "oc" | "k" => kubectl(args),
        "docker" | "nerdctl" | "podman" | "crictl" => read_only(
            matches!(
                first,
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
            ) && (first != "stats" || has(args, &["--no-stream"]))
                && !has(args, &["-f", "--follow"]),
            "changes containers or images",
        ),
        "nvidia-smi" => read_only(
            !args.iter().any(|a| {
                matches!(
                    *a,
                    "-r" | "--gpu-reset"
                        | "-pm"
                        | "--persistence-mode"
                        | "-pl"
                        | "--power-limit"
                        | "-c"
                        | "--compute-mode"
                        | "-e"
                        | "--ecc-config"
                        | "-ac"
                        | "-rac"
                        | "-lgc"
                        | "-rgc"
                        | "-lmc"
                        | "-rmc"
                        | "-mig"
                        | "--multi-instance-gpu"
                        | "-am"
                        | "-caa"
                ) || a.starts_with("--applications-clocks")
                    || a.starts_with("--lock-")
                    || a.starts_with("--reset-")
            }),
            "changes GPU settings",
        ),
        "npu-smi" => read_only(first == "info", "changes NPU settings"),
        "sed" => read_only(
            !args.iter().any(|a| {
                *a == "-i"
                    || a.starts_with("--in-place")
                    || (a.starts_with("-i") && !a.starts_with("--"))
                    || (a.starts_with('-')
                        && !a.starts_with("--")
                        && a.contains('i')
                        && a.len() <= 4)
            }),
            "edits files in place",
        ),
        "awk" | "gawk" | "mawk" => read_only(
            !args.iter().any(|a| {
                a.contains("system")
                    || a.contains('>')
                    || a.contains("|")
                    || a.contains("-i inplace")
            }),
            "the program may write files or run commands",
        ),
        "find" => read_only(
            !has(
                args,
                &[
                    "-delete", "-exec", "-execdir", "-ok", "-okdir", "-fprint", "-fprint0",
                    "-fprintf", "-fls",
                ],
            ),
            "deletes files or runs commands",
        ),
        "curl" => read_only(
            !args.iter().any(|a| {
                matches!(
                    *a,
                    "-d" | "--data"
                        | "--data-raw"
                        | "--data-binary"
                        | "--data-urlencode"
                        | "-F"
                        | "--form"
                        | "-T"
                        | "--upload-file"
                        | "-o"
                        | "--output"
                        | "-O"
                        | "--remote-name"
                        | "--json"
                        | "-K"
                        | "--config"
                ) || a.starts_with("--data")
                    || a.starts_with("-o")
                    || a.starts_with("-d")
            }) && !request_method_changes(args),
            "sends data or writes a file",
        ),
        "wget" => read_only(
            has(args, &["--spider"])
                || args.windows(2).any(|w| w == ["-O", "-"])
                || args.contains(&"-qO-")
                || args.contains(&"-O-"),
            "downloads to a file",
        ),
        "openssl" => read_only(
            matches!(
                first,
                "x509" | "s_client" | "verify" | "version" | "ciphers" | "crl" | "req"
            ) && (first != "req" || has(args, &["-text", "-noout"]))
                && !has(args, &["-out"]),
            "writes keys or certificates",
        ),
        "tee" => read_only(
            args.iter()
                .filter(|a| !a.starts_with('-'))
                .all(|a| *a == "/dev/null"),
            "writes files",
        ),
        "helm" => read_only(
            matches!(
                first,
                "list"
                    | "ls"
                    | "status"
                    | "history"
                    | "get"
                    | "show"
                    | "search"
                    | "version"
                    | "env"
                    | "template"
                    | "lint"
            ),
            "changes releases",
        ),
        // Destroyers.
        "rm" | "rmdir" | "unlink" => {
            if prog == "rm" && has(args, &["-r", "-R", "--recursive", "-f", "--force"]) {
                (
                    Destructive,
                    Some("removes files recursively or by force".into()),
                )
            } else {
                (Mutate, Some("removes files".into()))
            }
        }
        "shred" | "wipefs" | "mkfs" | "mke2fs" | "mkswap" | "blkdiscard" | "sgdisk" => {
            (Destructive, Some("destroys data on disk".into()))
        }
        p if p.starts_with("mkfs.") => (Destructive, Some("makes a filesystem".into())),
        "dd" => {
            if args.iter().any(|a| a.starts_with("of=")) {
                (Destructive, Some("writes raw blocks".into()))
            } else {
                (Read, None)
            }
        }
        "fdisk" | "sfdisk" | "parted" | "gdisk" => read_only(
            has(args, &["-l", "--list"]) || (prog == "parted" && args.contains(&"print")),
            "changes partitions",
        )
        .pipe_destructive(),
        "shutdown" | "reboot" | "poweroff" | "halt" => {
            (Destructive, Some("stops the machine".into()))
        }
        "init" | "telinit" if matches!(first, "0" | "6") => {
            (Destructive, Some("stops the machine".into()))
        }
        "kill" | "pkill" | "killall" => {
            if has(args, &["-9", "-KILL", "-SIGKILL", "-s"]) || prog == "killall" {
                (Destructive, Some("kills processes".into()))
            } else {
                (Mutate, Some("signals processes".into()))
            }
        }
        "iptables" | "ip6tables" | "nft" => {
            if has(args, &["-L", "--list", "-S", "--list-rules"]) || first == "list" {
                (Read, None)
            } else if has(args, &["-F", "--flush", "-X", "--delete-chain"]) || first == "flush" {
                (Destructive, Some("flushes firewall rules".into()))
            } else {
                (Mutate, Some("changes firewall rules".into()))
            }
        }
        "truncate" | "userdel" | "groupdel" | "lvremove" | "vgremove" | "pvremove" | "zpool"
        | "zfs"
            if prog != "zfs" && prog != "zpool" || matches!(first, "destroy") =>
        {
            (Destructive, Some("destroys data".into()))
        }
        _ => (Mutate, None),
    }
}

trait PipeDestructive {
    fn pipe_destructive(self) -> Self;
}

impl PipeDestructive for (Effect, Option<String>) {
    /// Partitioning that is not a listing destroys data.
    fn pipe_destructive(self) -> Self {
        match self {
            (Effect::Mutate, w) => (Effect::Destructive, w),
            other => other,
        }
    }
}

fn request_method_changes(args: &[&str]) -> bool {
    args.iter().enumerate().any(|(i, a)| {
        let method = if *a == "-X" || *a == "--request" {
            args.get(i + 1).copied()
        } else if let Some(m) = a.strip_prefix("--request=") {
            Some(m)
        } else {
            a.strip_prefix("-X").filter(|m| !m.is_empty())
        };
        method.is_some_and(|m| !m.eq_ignore_ascii_case("GET") && !m.eq_ignore_ascii_case("HEAD"))
    })
}

fn systemctl(prog: &str, args: &[&str]) -> (Effect, Option<String>) {
    use Effect::{Destructive, Mutate, Read};
    // `service NAME VERB` puts the verb second.
    let positional: Vec<&str> = args
        .iter()
        .copied()
        .filter(|a| !a.starts_with('-'))
        .collect();
    let verb = if prog == "service" {
        positional
            .get(1)
            .copied()
            .unwrap_or(if args.contains(&"--status-all") {
                "status"
            } else {
                ""
            })
    } else {
        positional.first().copied().unwrap_or("list-units")
    };
    match verb {
        "status" | "show" | "list-units" | "list-unit-files" | "list-timers" | "list-sockets"
        | "list-dependencies" | "list-jobs" | "list-machines" | "is-active" | "is-enabled"
        | "is-failed" | "is-system-running" | "cat" | "get-default" | "show-environment" => {
            (Read, None)
        }
        "stop" | "disable" | "mask" | "kill" | "poweroff" | "reboot" | "halt" | "kexec"
        | "isolate" | "emergency" | "rescue" => (
            Destructive,
            Some(format!("`{verb}` takes a service or the machine down")),
        ),
        _ => (Mutate, Some(format!("`{verb}` changes services"))),
    }
}

fn kubectl(args: &[&str]) -> (Effect, Option<String>) {
    use Effect::{Destructive, Mutate, Read};
    // Options with values come before the verb (`-n ns get pods`).
    let with_value = [
        "-n",
        "--namespace",
        "--context",
        "--kubeconfig",
        "--cluster",
        "--user",
        "-s",
        "--server",
        "--token",
        "-l",
        "--selector",
        "-o",
        "--output",
        "-c",
        "--container",
    ];
    let mut words = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        if with_value.contains(&a) {
            i += 2;
            continue;
        }
        if !a.starts_with('-') {
            words.push(a);
        }
        i += 1;
    }
    let verb = words.first().copied().unwrap_or("");
    let sub = words.get(1).copied().unwrap_or("");
    let dry = args
        .iter()
        .find_map(|a| a.strip_prefix("--dry-run="))
        .or_else(|| {
            args.iter().position(|a| *a == "--dry-run").map(|i| {
                args.get(i + 1)
                    .copied()
                    .filter(|v| !v.starts_with('-'))
                    .unwrap_or("client")
            })
        });
    let dry_safe = matches!(dry, Some("client" | "server"));
    match verb {
        "get" | "describe" | "logs" | "top" | "explain" | "api-resources" | "api-versions"
        | "version" | "cluster-info" | "events" | "diff" | "wait" => {
            if has(args, &["-w", "--watch", "-f", "--follow"]) && verb != "logs" {
                return (Mutate, Some("watches forever".into()));
            }
            (Read, None)
        }
        "auth" => match sub {
            "can-i" | "whoami" => (Read, None),
            _ => (Mutate, Some(format!("`kubectl auth {sub}` changes RBAC"))),
        },
        "config" => match sub {
            "view" | "get-contexts" | "current-context" | "get-clusters" | "get-users" => {
                (Read, None)
            }
            _ => (
                Mutate,
                Some(format!("`kubectl config {sub}` changes the kubeconfig")),
            ),
        },
        "rollout" => match sub {
            "status" | "history" => (Read, None),
            _ => (
                Mutate,
                Some(format!("`kubectl rollout {sub}` changes workloads")),
            ),
        },
        _ if dry_safe => (Read, None),
        "delete" | "drain" => (
            Destructive,
            Some(format!("`kubectl {verb}` removes workloads")),
        ),
        "scale" if args.contains(&"--replicas=0") => (Destructive, Some("scales to zero".into())),
        _ => (
            Mutate,
            Some(match dry {
                Some(d) => format!("`kubectl {verb}` with --dry-run={d} changes the cluster"),
                None => format!("`kubectl {verb}` changes the cluster"),
            }),
        ),
    }
}
