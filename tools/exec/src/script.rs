//! The command line every executor runs, and the filter that takes the
//! wrapper's markers back out of stderr.
//!
//! ```text
//! [cd -- DIR &&] [sudo -S -k -p PROMPT -- | sudo -n --] env [K=V...] \
//!     sh -c WRAPPER ops-run MODE SCRIPT SECS [ARGV...]
//! ```
//!
//! The wrapper prints `__OPS_PGID__=<pid>` on stderr, picks the
//! interpreter (bash or sh, python3, a shebang's program, or argv), and
//! `exec`s it. With a time limit it execs coreutils/busybox
//! `timeout -k 5 SECS`, which makes itself a process-group leader with the
//! wrapper's pid, so the limit holds on the target even if the connection
//! drops. Without one it execs the command directly: under sshd (and in the
//! local executor, which starts a new group) the wrapper's pid already leads
//! the process group, because dash and bash exec a `-c` command. Either way
//! killing that group stops everything the command started. Every exec
//! counts on slow process creation (the fan-out benchmark showed it), so
//! `env` is used only when there are variables to set, and the common case
//! (a shell script with no limit and no sudo) takes a direct path with no
//! wrapper process at all: see [`direct_line`].

use std::collections::BTreeMap;

use super::{CommandSpec, ExecRequest};

/// The marker line the wrapper writes first on stderr.
pub const PGID_MARKER: &str = "__OPS_PGID__=";
/// The prompt given to `sudo -p`, removed from stderr.
pub const SUDO_PROMPT: &str = "__OPS_SUDO_PROMPT__";
/// Exit code of `timeout` when the limit passed.
pub const TIMEOUT_EXIT: i32 = 124;

const WRAPPER: &str = r#"echo "__OPS_PGID__=$$" >&2
m=$1; s=$2; t=$3; w=$4; shift 4
if [ "$w" = 1 ]; then exec 3<&0 </dev/null; ( while read -r _ <&3; do :; done; kill -0 $$ 2>/dev/null && kill -TERM -$$ ) >/dev/null 2>&1 & exec 3<&-; fi
case "$m" in
  shell) if command -v bash >/dev/null 2>&1; then set -- bash -c "$s"; else set -- sh -c "$s"; fi ;;
  python) if command -v python3 >/dev/null 2>&1; then set -- python3 -c "$s"; else set -- python -c "$s"; fi ;;
  argv) ;;
  *) set -- "$m" -c "$s" ;;
esac
if [ "$t" != 0 ] && command -v timeout >/dev/null 2>&1; then exec timeout -k 5 "$t" "$@"; fi
exec "$@""#;

/// Single-quotes `s` for a POSIX shell.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// How a script is interpreted, from its first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// bash, or sh where bash is missing.
    Shell,
    /// python3 (or python).
    Python,
    /// Another interpreter named by a shebang, run as `PROGRAM -c SCRIPT`.
    Program(String),
}

/// The interpreter for `script`: a shebang naming python runs python; a
/// shebang naming another program (through `env` or by path) runs that
/// program by name; anything else runs in bash/sh.
pub fn mode_of(script: &str) -> Mode {
    let first = script.trim_start().lines().next().unwrap_or("");
    let Some(shebang) = first.strip_prefix("#!") else {
        return Mode::Shell;
    };
    let mut words = shebang.split_whitespace();
    let mut program = words.next().unwrap_or("");
    if program.ends_with("/env") || program == "env" {
        program = words.find(|w| !w.starts_with('-')).unwrap_or("");
    }
    let name = program.rsplit('/').next().unwrap_or("");
    if name.starts_with("python") {
        Mode::Python
    } else if name.is_empty() || name == "sh" || name == "bash" {
        Mode::Shell
    } else {
        Mode::Program(name.to_owned())
    }
}

fn valid_env_name(k: &str) -> bool {
    !k.is_empty()
        && !k.starts_with(|c: char| c.is_ascii_digit())
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// How `sudo` is invoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sudo {
    /// Not at all.
    No,
    /// `sudo -n`: no password needed (or already root).
    NoPassword,
    /// `sudo -S -k -p PROMPT`: the password is the first line of stdin.
    WithPassword,
}

/// What the sandbox writes on stderr (with exit code 125) when this target
/// cannot provide it; the command did not run.
pub const NO_SANDBOX: &str = "__OPS_NO_SANDBOX__";

/// The read-only sandbox, stage one (as the login user, or under sudo):
/// checks for util-linux's `unshare` and `setpriv` and that a private
/// mount namespace can be made (a user namespace too when not root), then
/// `exec`s stage two in one. The pid stays the same through every `exec`,
/// so the wrapper's process-group marker and kills work as without it.
pub const SANDBOX: &str = r#"s2=$1; shift
no() { echo "__OPS_NO_SANDBOX__ $*" >&2; exit 125; }
command -v unshare >/dev/null 2>&1 && command -v setpriv >/dev/null 2>&1 || no "unshare or setpriv (util-linux) is missing"
if [ "$(id -u)" = 0 ]; then u=; else u=-r; fi
unshare $u -m true >/dev/null 2>&1 || no "cannot make a private mount namespace here"
exec unshare $u -m --propagation private sh -c "$s2" ops-sandbox "$@""#;

/// Stage two, inside the private mount namespace: block devices read as
/// `/dev/null` (root may write a device node on a read-only mount), every
/// visible mount is remounted read-only keeping its other flags (one
/// stacked under a later mount at or above its path cannot be reached by
/// path, nor through the one on top), and the command
/// runs with `no_new_privs`, no inheritable capabilities, a bounding set
/// of just `dac_read_search` (read any file) and `sys_ptrace` (read other
/// processes' `/proc/PID/fd`), and a fixed `PATH`. Anything that cannot
/// be done fails the whole command before it runs.
const SANDBOX_STAGE2: &str = r#"w=$1; shift
no() { echo "__OPS_NO_SANDBOX__ $*" >&2; exit 125; }
for d in /dev/* /dev/*/*; do
  if [ -b "$d" ] && [ ! -L "$d" ]; then mount --bind /dev/null "$d" 2>/dev/null || no "cannot hide block device $d"; fi
done
visible=$(awk '{ mp[NR] = $5; op[NR] = $6 } END { for (i = 1; i <= NR; i++) { hid = 0; for (j = i + 1; j <= NR; j++) if (mp[j] == mp[i] || mp[j] == "/" || index(mp[i], mp[j] "/") == 1) { hid = 1; break } if (!hid) print op[i], mp[i] } }' /proc/self/mountinfo) || no "cannot read the mount table"
while read -r opts mp; do
  [ -n "$mp" ] || continue
  case "$opts" in ro|ro,*) continue ;; esac
  case "$mp" in *\\*) mp=$(printf '%b' "$(printf '%s' "$mp" | sed 's/\\\([0-7][0-7][0-7]\)/\\0\1/g')") ;; esac
  mount -o "remount,bind,ro${opts#rw}" "$mp" 2>/dev/null || no "cannot make $mp read-only"
done <<EOF
$visible
EOF
exec setpriv --no-new-privs --inh-caps=-all --bounding-set=-all,+dac_read_search,+sys_ptrace env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin sh -c "$w" ops-run "$@""#;

/// The hang-up watch: standard input is kept for a watcher, and the
/// command reads `/dev/null`. The client keeps the channel's input open
/// while the command runs; when the connection dies the watcher reads
/// end-of-file and, if the command's shell is still alive, kills its
/// process group. So a step with no time limit still dies with its
/// connection (a killed `opscli` used to leave the remote step running to
/// its side effect). Only for executors whose input stays open until the
/// exit status arrives (SSH), and only when the request has no input.
const HANGUP_WATCH: &str = "exec 3<&0 </dev/null; ( while read -r _ <&3; do :; done; kill -0 $$ 2>/dev/null && kill -TERM -$$ ) >/dev/null 2>&1 & exec 3<&-; ";

/// Builds the command line for `req`. Errors name what is invalid.
pub fn command_line(req: &ExecRequest, sudo: Sudo) -> Result<String, String> {
    command_line_with(req, sudo, false)
}

/// [`command_line`], with the hang-up watch ([`HANGUP_WATCH`]) when
/// `watch`: the caller must then keep the command's input open until it
/// exits, and send no input of the request's own (`req.stdin` is `None`).
pub fn command_line_with(req: &ExecRequest, sudo: Sudo, watch: bool) -> Result<String, String> {
    let watch = watch && req.stdin.is_none();
    let secs = req.timeout.map_or(0, |t| t.as_secs().max(1));
    let (mode, script, argv): (String, &str, &[String]) = match &req.command {
        CommandSpec::Script(s) => {
            let mode = match mode_of(s) {
                Mode::Shell => "shell".to_owned(),
                Mode::Python => "python".to_owned(),
                Mode::Program(p) => p,
            };
            (mode, s.as_str(), &[])
        }
        CommandSpec::Argv(a) => {
            if a.is_empty() {
                return Err("empty command".into());
            }
            ("argv".to_owned(), "", a.as_slice())
        }
    };
    for k in req.env.keys() {
        if !valid_env_name(k) {
            return Err(format!("invalid environment variable name `{k}`"));
        }
    }
    if mode == "shell"
        && secs == 0
        && sudo == Sudo::No
        && script.len() <= DIRECT_MAX
        && !req.sandbox
    {
        return Ok(direct_line(req, script, watch));
    }
    let mut line = String::new();
    if let Some(dir) = &req.cwd {
        line.push_str(&format!("cd -- {} && ", quote(dir)));
    }
    match sudo {
        Sudo::No => {}
        Sudo::NoPassword => line.push_str("sudo -n -- "),
        Sudo::WithPassword => line.push_str(&format!("sudo -S -k -p {SUDO_PROMPT} -- ")),
    }
    line.push_str("env");
    let env: &BTreeMap<String, String> = &req.env;
    for (k, v) in env {
        line.push_str(&format!(" {k}={}", quote(v)));
    }
    if req.sandbox {
        line.push_str(&format!(
            " sh -c {} ops-sandbox {} {}",
            quote(SANDBOX),
            quote(SANDBOX_STAGE2),
            quote(WRAPPER)
        ));
    } else {
        line.push_str(&format!(" sh -c {} ops-run", quote(WRAPPER)));
    }
    line.push_str(&format!(
        " {} {} {secs} {}",
        quote(&mode),
        quote(script),
        u8::from(watch)
    ));
    for a in argv {
        line.push(' ');
        line.push_str(&quote(a));
    }
    Ok(line)
}

/// Scripts up to this size may take the direct path (the script appears
/// twice in the line, and Linux caps one argument at 128 KiB).
const DIRECT_MAX: usize = 32 * 1024;

/// The direct path for the common case (a shell script, no time limit, no
/// sudo): the target's login shell prints the marker itself and runs the
/// script in place when it is bash; any other shell `exec`s bash (or stays
/// in itself where there is no bash). No wrapper process at all, so a
/// `uname -a` costs what it costs `ssh host 'uname -a'`; the fan-out
/// benchmark showed each extra exec adding about half of that again.
///
/// ```text
/// echo "__OPS_PGID__=$$" >&2; [K=V; export K;] [cd -- DIR || exit;]
/// [ -z "$BASH_VERSION" ] && command -v bash >/dev/null 2>&1 && exec bash -c SCRIPT
/// SCRIPT
/// ```
fn direct_line(req: &ExecRequest, script: &str, watch: bool) -> String {
    let mut line = format!("echo \"{PGID_MARKER}$$\" >&2; ");
    if watch {
        line.push_str(HANGUP_WATCH);
    }
    for (k, v) in &req.env {
        line.push_str(&format!("{k}={}; export {k}; ", quote(v)));
    }
    if let Some(dir) = &req.cwd {
        line.push_str(&format!("cd -- {} || exit; ", quote(dir)));
    }
    line.push_str(&format!(
        "[ -z \"$BASH_VERSION\" ] && command -v bash >/dev/null 2>&1 && exec bash -c {}\n",
        quote(script)
    ));
    line.push_str(script);
    line
}

/// A line printing the SHA-256 (hex) of `path` on the target.
pub fn sha256_line(path: &str) -> String {
    format!("sha256sum -- {} | cut -c1-64", quote(path))
}

/// The line that finishes an upload on the target: `tmp` is checked
/// against `sha256`, then (with `mode`) renamed over `remote`, printing
/// `OK`; on a mismatch it is removed and `MISMATCH <hash>` printed. A
/// reader never sees a partial file and a bad copy never replaces a good
/// one. Read its output with [`upload_outcome`].
pub fn finish_upload_line(tmp: &str, remote: &str, sha256: &str, mode: Option<u32>) -> String {
    let (t, r) = (quote(tmp), quote(remote));
    let chmod = mode
        .map(|m| format!("chmod {m:o} -- {t} && "))
        .unwrap_or_default();
    format!(
        "h=$(sha256sum -- {t} | cut -c1-64); if [ \"$h\" = {sha256} ]; then {chmod}mv -f -- {t} {r} && echo OK; else rm -f -- {t}; echo \"MISMATCH $h\"; fi"
    )
}

/// What [`finish_upload_line`] printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadOutcome {
    /// In place.
    Done,
    /// The target's copy hashed to this instead.
    Mismatch(String),
    /// Something else went wrong; the output.
    Failed(String),
}

/// Reads the output of [`finish_upload_line`].
pub fn upload_outcome(out: &str) -> UploadOutcome {
    let out = out.trim();
    match out.strip_prefix("MISMATCH") {
        Some(h) => UploadOutcome::Mismatch(h.trim().to_owned()),
        None if out == "OK" => UploadOutcome::Done,
        None => UploadOutcome::Failed(out.to_owned()),
    }
}

/// A command that stops the process group `pgid` (TERM, then KILL after a
/// second), for a second channel on the same target; `None` for a group id
/// that must never be signalled (0 and 1: "my group" and "every process").
///
/// The kill runs through `sh -c` so the shell's builtin `kill` is used:
/// procps' `/usr/bin/kill` mis-parses `kill -9 -PGID` (it once turned into
/// `kill(-1, SIGKILL)`, every process on the machine), and dash's builtin
/// rejects `--`. `kill -SIG -PGID` is unambiguous for the builtins of dash,
/// bash and busybox sh.
pub fn kill_line(pgid: u32, sudo: Sudo) -> Option<String> {
    if pgid <= 1 {
        return None;
    }
    let body = format!(
        "kill -TERM -{pgid} 2>/dev/null || kill -TERM {pgid} 2>/dev/null; sleep 1; kill -KILL -{pgid} 2>/dev/null || kill -KILL {pgid} 2>/dev/null; true"
    );
    let sh = format!("sh -c {}", quote(&body));
    Some(match sudo {
        Sudo::No => sh,
        Sudo::NoPassword => format!("sudo -n -- {sh}"),
        Sudo::WithPassword => format!("sudo -S -k -p '' -- {sh}"),
    })
}

/// Removes the sudo prompt and the wrapper's pid line from the start of
/// stderr, and remembers the pid.
#[derive(Debug, Default)]
pub struct StderrFilter {
    pending: Vec<u8>,
    done: bool,
    /// The process-group id the wrapper reported.
    pub pgid: Option<u32>,
}

fn strip_all(hay: &mut Vec<u8>, needle: &[u8]) {
    while let Some(p) = hay.windows(needle.len()).position(|w| w == needle) {
        hay.drain(p..p + needle.len());
    }
}

impl StderrFilter {
    /// Feeds bytes; returns what belongs to the command's stderr.
    pub fn feed(&mut self, data: &[u8]) -> Vec<u8> {
        if self.done {
            return data.to_vec();
        }
        self.pending.extend_from_slice(data);
        strip_all(&mut self.pending, SUDO_PROMPT.as_bytes());
        let marker = PGID_MARKER.as_bytes();
        if let Some(p) = self.pending.windows(marker.len()).position(|w| w == marker) {
            if let Some(nl) = self.pending[p..].iter().position(|&b| b == b'\n') {
                let digits = &self.pending[p + marker.len()..p + nl];
                self.pgid = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.trim().parse().ok());
                let mut out = self.pending[..p].to_vec();
                out.extend_from_slice(&self.pending[p + nl + 1..]);
                self.pending.clear();
                self.done = true;
                return out;
            }
        }
        if self.pending.len() > 64 * 1024 {
            self.done = true;
            return std::mem::take(&mut self.pending);
        }
        Vec::new()
    }

    /// Whatever is still held back, at end of stream.
    pub fn finish(&mut self) -> Vec<u8> {
        self.done = true;
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn quoting() {
        assert_eq!(quote("abc"), "abc");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("a b"), "'a b'");
    }

    #[test]
    fn modes() {
        assert_eq!(mode_of("echo hi"), Mode::Shell);
        assert_eq!(mode_of("#!/bin/bash\necho"), Mode::Shell);
        assert_eq!(mode_of("#!/usr/bin/python\nimport os"), Mode::Python);
        assert_eq!(mode_of("  #!/usr/bin/env python3\n"), Mode::Python);
        assert_eq!(
            mode_of("#!/usr/bin/env -S perl -w\n"),
            Mode::Program("perl".into())
        );
        assert_eq!(mode_of("#!/bin/zsh\n"), Mode::Program("zsh".into()));
    }

    #[test]
    fn line_shape() {
        let mut req = ExecRequest::script("echo 'hi'").with_timeout(Duration::from_secs(30));
        req.cwd = Some("/srv/app dir".into());
        req.env.insert("A_B".into(), "x y".into());
        let line = command_line(&req, Sudo::WithPassword).unwrap();
        assert!(
            line.starts_with(
                "cd -- '/srv/app dir' && sudo -S -k -p __OPS_SUDO_PROMPT__ -- env A_B='x y' sh -c "
            ),
            "{line}"
        );
        assert!(
            line.ends_with(r" ops-run shell 'echo '\''hi'\''' 30 0"),
            "{line}"
        );
        // With the hang-up watch, the wrapper is told so.
        let watched = command_line_with(&req, Sudo::WithPassword, true).unwrap();
        assert!(watched.ends_with(" 30 1"), "{watched}");
        let direct = command_line_with(&ExecRequest::script("uptime"), Sudo::No, true).unwrap();
        assert!(direct.contains("while read -r _ <&3"), "{direct}");
        req.env.insert("BAD-NAME".into(), "x".into());
        assert!(
            command_line(&req, Sudo::No)
                .unwrap_err()
                .contains("BAD-NAME")
        );
        assert!(command_line(&ExecRequest::argv(Vec::<String>::new()), Sudo::No).is_err());
    }

    #[test]
    fn direct_path_runs_in_the_login_shell_without_a_wrapper() {
        let mut req =
            ExecRequest::script("echo \"$A_B in $(pwd)\"; [ -n \"$BASH_VERSION\" ] && echo bash");
        req.cwd = Some("/tmp".into());
        req.env.insert("A_B".into(), "x 'y'".into());
        let line = command_line(&req, Sudo::No).unwrap();
        assert!(!line.contains("ops-run"), "{line}");
        // Whatever the login shell (dash here stands for a non-bash one),
        // the script runs in bash, in the directory, with the variable, and
        // the marker names the shell's own pid (the group leader).
        for shell in ["sh", "bash"] {
            let child = std::process::Command::new(shell)
                .arg("-c")
                .arg(&line)
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&child.stdout),
                "x 'y' in /tmp\nbash\n",
                "{shell}"
            );
            let err = String::from_utf8_lossy(&child.stderr);
            assert!(err.starts_with(PGID_MARKER), "{shell}: {err}");
        }
        // A missing directory fails the command, as `cd DIR && ...` does.
        req.cwd = Some("/nonexistent-ops-dir".into());
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(command_line(&req, Sudo::No).unwrap())
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(out.stdout.is_empty());
        // Anything else keeps the wrapper: a limit, sudo, python, argv, or
        // a script too long to appear twice.
        let plain = ExecRequest::script("true");
        for (req, sudo) in [
            (plain.clone().with_timeout(Duration::from_secs(5)), Sudo::No),
            (plain.clone(), Sudo::NoPassword),
            (
                ExecRequest::script("#!/usr/bin/env python3\nprint(1)"),
                Sudo::No,
            ),
            (ExecRequest::argv(["true"]), Sudo::No),
            (ExecRequest::script("#".repeat(DIRECT_MAX + 1)), Sudo::No),
        ] {
            assert!(command_line(&req, sudo).unwrap().contains(" ops-run "));
        }
    }

    #[test]
    fn regression_kill_never_targets_every_process() {
        assert_eq!(kill_line(0, Sudo::No), None);
        assert_eq!(kill_line(1, Sudo::No), None);
        let line = kill_line(4242, Sudo::No).unwrap();
        assert!(line.starts_with("sh -c 'kill -TERM -4242 "), "{line}");
        assert!(!line.contains("-- -"), "dash rejects `--`: {line}");
        // Run it for real against a group that does not exist: the shell
        // builtin must signal exactly -999999 and nothing else.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(kill_line(999_999, Sudo::No).unwrap())
            .output()
            .unwrap();
        assert!(out.status.success());
    }

    #[test]
    fn filter_strips_prompt_and_marker_across_chunks() {
        let mut f = StderrFilter::default();
        let mut out = f.feed(b"__OPS_SUDO_");
        out.extend(f.feed(b"PROMPT____OPS_PGID__=4"));
        out.extend(f.feed(b"21\nreal error\n"));
        out.extend(f.finish());
        assert_eq!(f.pgid, Some(421));
        assert_eq!(out, b"real error\n");
        let mut g = StderrFilter::default();
        let mut out = g.feed(b"__OPS_SUDO_PROMPT__sudo: a password is required\n");
        out.extend(g.finish());
        assert_eq!(g.pgid, None);
        assert_eq!(out, b"sudo: a password is required\n");
    }
}
