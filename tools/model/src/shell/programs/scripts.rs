//! Programs that take a program: `sed` and `awk` scripts are read before
//! they are allowed, and `find`'s expression is an allowlist of tests.

use super::super::secret;
use super::{Arg, Outcome, check, only};

/// A sed script made only of commands that print, delete from the output
/// or branch: no `w`/`W`/`r`/`R`/`e`/`F`/`v` commands and no `w`/`e`
/// flags on `s`.
pub(super) fn sed_script_ok(script: &str) -> Result<(), String> {
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

pub(super) fn sed(args: &[Arg<'_>]) -> Outcome {
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
pub(super) fn awk_program_ok(p: &str) -> Result<(), String> {
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

pub(super) fn awk(args: &[Arg<'_>]) -> Outcome {
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

pub(super) fn find(args: &[Arg<'_>]) -> Outcome {
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
