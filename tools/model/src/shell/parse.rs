//! The shell parser behind the classifier: bash's grammar for the small
//! subset a read-only command line is made of, and a note for everything
//! else.
//!
//! What it reads as bash does: words with `'...'`, `"..."` and `\`
//! quoting; `#` starting a word begins a comment to the end of the line
//! (also after a separator, also where the rest looks like a quote);
//! separators `;`, `&`, `&&`, `||`, `|`, newlines and groupings;
//! redirections with an fd prefix; `$(...)` and backticks parsed as the
//! commands they run; here-document bodies skipped (their expansions
//! noted). What it does not try to prove harmless is recorded in
//! [`Parsed::unsure`] and makes the line `Mutate`: ANSI-C and locale
//! quoting (`$'...'`, `$"..."`), brace expansion, arithmetic expansion and
//! commands, `${...}` with operators, here-documents whose body expands,
//! process substitution, background jobs, a `#!` first line, variable
//! assignments that are not a known-harmless environment prefix.
//!
//! It never decides what is safe: that is [`super::classify`]'s job.

/// A redirection on a simple command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// `>`, `>>`, `<`, `<<`, `<<<`, `&>`, `>&`, `>|`, `<>`, with any fd prefix.
    pub op: String,
    /// The file (or fd, or here-doc word), quotes removed.
    pub target: String,
    /// The target contains an expansion known only at run time.
    pub dynamic: bool,
}

impl Redirect {
    /// The operator without its fd prefix.
    pub fn bare_op(&self) -> &str {
        self.op.trim_start_matches(|c: char| c.is_ascii_digit())
    }

    /// Whether this redirection can write a file (anything but
    /// duplicating a descriptor or writing `/dev/null`).
    pub fn writes(&self) -> bool {
        let op = self.bare_op();
        if op.contains("<>") {
            return true; // opened read-write: it creates the file
        }
        let out = matches!(op, ">" | ">>" | "&>" | "&>>" | ">|" | ">&");
        if !out {
            return false;
        }
        if self.dynamic {
            return true;
        }
        // `2>&1`, `>&2`, `>&-`: duplicating or closing a descriptor.
        if op == ">&"
            && !self.target.is_empty()
            && self.target.chars().all(|c| c.is_ascii_digit() || c == '-')
        {
            return false;
        }
        !matches!(self.target.as_str(), "/dev/null")
    }
}

/// One word of a command, after quote removal.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Word {
    /// The text, quotes removed; expansions shown as written.
    pub text: String,
    /// It holds an expansion (`$X`, `$(...)`, a relative glob) whose value
    /// is known only at run time.
    pub dynamic: bool,
    /// Some part of it was quoted.
    pub quoted: bool,
    /// It holds an unquoted glob character (`*`, `?`, `[`).
    pub glob: bool,
}

/// One simple command: words (quotes removed) and redirections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimpleCommand {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Which words contained an expansion (`$X`, `${X}`, `$(...)`, a
    /// relative glob): their value is unknown until run time.
    pub dynamic: Vec<bool>,
    /// Which words hold an unquoted glob.
    pub glob: Vec<bool>,
    /// Redirections, in order.
    pub redirects: Vec<Redirect>,
}

impl SimpleCommand {
    fn push(&mut self, w: Word) {
        self.argv.push(w.text);
        self.dynamic.push(w.dynamic);
        self.glob.push(w.glob);
    }
}

/// The simple commands of a line, and what could not be parsed or proved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    /// Every simple command, command substitutions included.
    pub commands: Vec<SimpleCommand>,
    /// Problems (unbalanced quotes, missing targets); any makes the line
    /// `Mutate`.
    pub problems: Vec<String>,
    /// Constructs the classifier does not prove harmless (see the module
    /// docs); any makes the line `Mutate`.
    pub unsure: Vec<String>,
}

impl Parsed {
    fn unsure(&mut self, what: &str) {
        if !self.unsure.iter().any(|u| u == what) {
            self.unsure.push(what.to_owned());
        }
    }
}

/// Deepest nesting of substitutions (and of wrappers in the classifier).
pub const MAX_DEPTH: usize = 16;
/// Longest line the parser reads; longer lines are a problem, not a parse.
pub const MAX_LEN: usize = 256 * 1024;

/// Parses a shell command line.
pub fn parse(line: &str) -> Parsed {
    let mut out = Parsed::default();
    if line.len() > MAX_LEN {
        out.problems
            .push(format!("the line is longer than {MAX_LEN} bytes"));
        return out;
    }
    if line.starts_with("#!") {
        out.unsure("a `#!` first line (the executor runs that interpreter, not the shell)");
    }
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

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    out: &'a mut Parsed,
    depth: usize,
}

/// A pending here-document: its delimiter, `<<-`, and whether the
/// delimiter was quoted (then the body is literal).
struct Heredoc {
    word: String,
    strip_tabs: bool,
    quoted: bool,
}

/// Environment prefixes (`NAME=value cmd`) that change only how a program
/// formats its output. Anything else (`BASH_ENV`, `LESSOPEN`, `PATH`,
/// `LD_PRELOAD`, ...) can make a program run code.
pub fn harmless_env(name: &str) -> bool {
    matches!(name, "LANG" | "LC_ALL" | "TZ" | "COLUMNS" | "LINES")
        || (name.starts_with("LC_") && name[3..].chars().all(|c| c.is_ascii_uppercase()))
}

/// `NAME=value` split, when `w` is an assignment word.
pub fn assignment(w: &str) -> Option<(&str, &str)> {
    let (k, v) = w.split_once('=')?;
    let mut chars = k.chars();
    let first = chars.next()?;
    ((first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_'))
    .then_some((k, v))
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
        let mut heredocs: Vec<Heredoc> = Vec::new();
        loop {
            while matches!(self.peek(), Some(' ' | '\t')) {
                self.pos += 1;
            }
            let Some(c) = self.peek() else {
                break;
            };
            match c {
                // A word that starts with `#` is a comment, wherever the
                // word is (bash's `interactive_comments`, on for scripts).
                '#' => {
                    while !matches!(self.peek(), None | Some('\n')) {
                        self.pos += 1;
                    }
                }
                '\n' => {
                    self.pos += 1;
                    self.finish(&mut cmd);
                    for h in std::mem::take(&mut heredocs) {
                        self.skip_heredoc(&h);
                    }
                }
                '(' if self.peek_at(1) == Some('(') => {
                    self.out.unsure("an arithmetic command `((...))`");
                    self.pos += 2;
                    self.finish(&mut cmd);
                }
                ';' | '&' | '|' | '(' | ')' => {
                    if c == '&' && self.peek_at(1) == Some('>') {
                        self.redirect(&mut cmd, String::new(), &mut heredocs);
                        continue;
                    }
                    if c == '&' && self.peek_at(1) != Some('&') {
                        self.out
                            .unsure("a background job (`&`), which outlives the call");
                    }
                    self.pos += 1;
                    while matches!(self.peek(), Some('&' | '|' | ';')) {
                        self.pos += 1;
                    }
                    self.finish(&mut cmd);
                }
                '<' | '>' => {
                    if self.peek_at(1) == Some('(') {
                        self.out.unsure("process substitution `<(...)` / `>(...)`");
                    }
                    self.redirect(&mut cmd, String::new(), &mut heredocs)
                }
                _ => {
                    let start = self.pos;
                    let word = self.word();
                    if matches!(self.peek(), Some('<' | '>'))
                        && !word.text.is_empty()
                        && word.text.chars().all(|c| c.is_ascii_digit())
                        && self.pos - start == word.text.len()
                    {
                        self.redirect(&mut cmd, word.text, &mut heredocs);
                        continue;
                    }
                    if self.pos == start {
                        self.out.problems.push(format!("unexpected `{c}`"));
                        self.pos += 1;
                        continue;
                    }
                    cmd.push(word);
                }
            }
        }
        self.finish(&mut cmd);
    }

    fn finish(&mut self, cmd: &mut SimpleCommand) {
        let c = std::mem::take(cmd);
        if c.argv.is_empty() && c.redirects.is_empty() {
            return;
        }
        // Assignments: before a program they are its environment; alone,
        // they set shell variables a later expansion may evaluate.
        let prefix = c
            .argv
            .iter()
            .take_while(|w| assignment(w).is_some())
            .count();
        for (i, w) in c.argv[..prefix].iter().enumerate() {
            let Some((name, _)) = assignment(w) else {
                continue;
            };
            if prefix == c.argv.len() {
                self.out.unsure("a shell variable assignment");
            } else if !harmless_env(name) || c.dynamic[i] {
                self.out
                    .unsure(&format!("the environment prefix `{name}=`"));
            }
        }
        self.out.commands.push(c);
    }

    fn skip_heredoc(&mut self, h: &Heredoc) {
        let mut expands = false;
        loop {
            let start = self.pos;
            while !matches!(self.peek(), None | Some('\n')) {
                self.pos += 1;
            }
            let line: String = self.chars[start..self.pos].iter().collect();
            let at_end = self.peek().is_none();
            if !at_end {
                self.pos += 1;
            }
            let l = if h.strip_tabs {
                line.trim_start_matches('\t')
            } else {
                line.as_str()
            };
            if l == h.word {
                break;
            }
            expands |= line.contains('$') || line.contains('`');
            if at_end {
                break;
            }
        }
        if expands && !h.quoted {
            self.out
                .unsure("a here-document whose body expands `$` or backticks");
        }
    }

    fn redirect(&mut self, cmd: &mut SimpleCommand, fd: String, heredocs: &mut Vec<Heredoc>) {
        let mut op = fd;
        while let Some(c @ ('<' | '>' | '&' | '|' | '-')) = self.peek() {
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
        let target = self.word();
        let bare = op.trim_start_matches(|c: char| c.is_ascii_digit());
        if bare == "<<" || bare == "<<-" {
            heredocs.push(Heredoc {
                word: target.text.clone(),
                strip_tabs: bare == "<<-",
                quoted: target.quoted,
            });
        }
        if target.text.is_empty() {
            self.out
                .problems
                .push(format!("redirection `{op}` without a target"));
        }
        cmd.redirects.push(Redirect {
            op,
            target: target.text,
            dynamic: target.dynamic,
        });
    }

    /// One word: quotes removed, `$(...)`/backticks parsed as commands.
    fn word(&mut self) -> Word {
        let mut w = Word::default();
        // The unquoted characters, to find brace expansion.
        let mut bare = String::new();
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\n' | ';' | '&' | '|' | '<' | '>' | '(' | ')' => break,
                '\\' => {
                    self.pos += 1;
                    w.quoted = true;
                    if let Some(n) = self.peek() {
                        if n != '\n' {
                            w.text.push(n);
                        }
                        self.pos += 1;
                    }
                }
                '\'' => {
                    self.pos += 1;
                    w.quoted = true;
                    let start = self.pos;
                    while !matches!(self.peek(), None | Some('\'')) {
                        self.pos += 1;
                    }
                    if self.peek().is_none() {
                        self.out.problems.push("unbalanced single quote".into());
                    }
                    w.text.extend(&self.chars[start..self.pos]);
                    self.pos += 1;
                }
                '"' => {
                    self.pos += 1;
                    w.quoted = true;
                    self.double_quoted(&mut w);
                }
                '$' => {
                    if matches!(self.peek_at(1), Some('\'' | '"')) {
                        self.out
                            .unsure("ANSI-C or locale quoting (`$'...'`, `$\"...\"`)");
                        self.pos += 1; // read the rest as an ordinary quote
                        continue;
                    }
                    w.dynamic |= self.dollar(&mut w.text);
                }
                '`' => {
                    self.backtick();
                    w.text.push_str("`...`");
                    w.dynamic = true;
                }
                _ => {
                    if matches!(c, '*' | '?' | '[') {
                        w.glob = true;
                    }
                    bare.push(c);
                    w.text.push(c);
                    self.pos += 1;
                }
            }
        }
        if let Some(open) = bare.find('{') {
            let inner = &bare[open..];
            if let Some(close) = inner.find('}') {
                let body = &inner[1..close];
                if body.contains(',') || body.contains("..") {
                    self.out.unsure("brace expansion `{a,b}` / `{1..3}`");
                }
            }
        }
        // A glob that is not an absolute path may expand to a file name
        // that starts with `-`, i.e. to an option.
        if w.glob && !w.text.starts_with('/') {
            w.dynamic = true;
        }
        w
    }

    fn double_quoted(&mut self, w: &mut Word) {
        loop {
            match self.peek() {
                None => {
                    self.out.problems.push("unbalanced double quote".into());
                    return;
                }
                Some('"') => {
                    self.pos += 1;
                    return;
                }
                Some('\\') => {
                    self.pos += 1;
                    if let Some(n) = self.peek() {
                        if !matches!(n, '$' | '`' | '"' | '\\' | '\n') {
                            w.text.push('\\');
                        }
                        if n != '\n' {
                            w.text.push(n);
                        }
                        self.pos += 1;
                    }
                }
                Some('$') => w.dynamic |= self.dollar(&mut w.text),
                Some('`') => {
                    self.backtick();
                    w.text.push_str("`...`");
                    w.dynamic = true;
                }
                Some(c) => {
                    w.text.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// At `$`: a command substitution (parsed), an arithmetic expansion
    /// (noted), or a parameter. Returns whether the word became dynamic.
    fn dollar(&mut self, w: &mut String) -> bool {
        match self.peek_at(1) {
            Some('(') => {
                let arith = self.peek_at(2) == Some('(');
                if arith {
                    self.out.unsure("arithmetic expansion `$((...))`");
                }
                self.pos += if arith { 3 } else { 2 };
                let inner = self.balanced('(', ')');
                if arith {
                    self.pos += 1;
                }
                parse_into(&inner, self.out, self.depth + 1);
                w.push_str("$(...)");
                true
            }
            Some('[') => {
                self.out.unsure("arithmetic expansion `$[...]`");
                self.pos += 2;
                let inner = self.balanced('[', ']');
                parse_into(&inner, self.out, self.depth + 1);
                w.push_str("$[...]");
                true
            }
            Some('{') => {
                self.pos += 2;
                let inner = self.balanced('{', '}');
                let plain = {
                    let mut cs = inner.chars();
                    match cs.next() {
                        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                            cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
                        }
                        Some(c) => {
                            inner.len() == 1 && (c.is_ascii_digit() || "?@*#$!-".contains(c))
                        }
                        None => false,
                    }
                };
                if !plain {
                    self.out
                        .unsure("a parameter expansion with operators `${...}`");
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
        let mut depth = 1usize;
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
                        let end = self.pos.min(self.chars.len());
                        let inner: String = self.chars[start..end].iter().collect();
                        self.pos += 1;
                        return inner;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        self.out.problems.push(format!("unbalanced `{open}`"));
        let start = start.min(self.chars.len());
        self.pos = self.chars.len();
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
        let end = self.pos.min(self.chars.len());
        let inner: String = self.chars[start..end].iter().collect();
        self.pos += 1;
        parse_into(&inner, self.out, self.depth + 1);
    }
}
