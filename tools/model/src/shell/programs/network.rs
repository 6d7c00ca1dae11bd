//! Network readers: `ip` (only `show`), `curl` and `wget` (only GETs to
//! standard output), `openssl` (only inspecting subcommands).

use super::super::secret;
use super::{Arg, Outcome, check, only};

pub(super) fn ip(words: &[&str], dynamic: bool) -> Outcome {
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

pub(super) fn url_ok(u: &str) -> Result<bool, String> {
    let lower = u.to_ascii_lowercase();
    if lower.starts_with("file:") {
        return Ok(true); // a secret read: local files
    }
    match lower.split_once("://") {
        Some(("http" | "https", _)) | None => Ok(false),
        Some((scheme, _)) => Err(format!("`{scheme}://` URLs")),
    }
}

pub(super) fn curl(args: &[Arg<'_>]) -> Outcome {
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

pub(super) fn wget(args: &[Arg<'_>]) -> Outcome {
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

pub(super) fn openssl(args: &[Arg<'_>]) -> Outcome {
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
