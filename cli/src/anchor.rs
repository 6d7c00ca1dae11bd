//! Compatibility with the anchor's command line: `opscli task ...
//! --key value` passes variables as bare flags.

use crate::args::Cli;

/// Rewrites the anchor's `opscli task ... --key value` variables into
/// `--var key=value`, for any `--key` the `task` command does not define.
/// Only when `task` is the subcommand (not, say, `opscli get task`).
pub fn task_vars(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    use clap::CommandFactory;
    let strs: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let cmd = Cli::command();
    let takes_value = |name: &str| {
        cmd.get_arguments().any(|a| {
            (a.get_long() == Some(name)
                || a.get_short()
                    .is_some_and(|c| name.len() == 1 && name.starts_with(c)))
                && a.get_action().takes_values()
        })
    };
    // Find the subcommand: the first argument that is not a global flag
    // or a global flag's value.
    let mut i = 1;
    let mut sub = None;
    while i < strs.len() {
        let a = &strs[i];
        if let Some(flag) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) {
            if !flag.contains('=') && takes_value(flag) {
                i += 1;
            }
            i += 1;
            continue;
        }
        sub = Some(i);
        break;
    }
    let Some(pos) = sub.filter(|&p| strs[p] == "task") else {
        return args;
    };
    let Some(task) = cmd.find_subcommand("task") else {
        return args;
    };
    let known: Vec<String> = task
        .get_arguments()
        .chain(cmd.get_arguments())
        .flat_map(|a| {
            let mut v: Vec<String> = a.get_long().map(str::to_owned).into_iter().collect();
            v.extend(
                a.get_visible_aliases()
                    .into_iter()
                    .flatten()
                    .map(str::to_owned),
            );
            v
        })
        .chain(["help".to_owned(), "version".to_owned()])
        .collect();
    let mut out: Vec<std::ffi::OsString> = args[..=pos].to_vec();
    let mut i = pos + 1;
    while i < strs.len() {
        let a = &strs[i];
        if let Some(flag) = a.strip_prefix("--").filter(|f| !f.is_empty()) {
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (flag, None),
            };
            if !known.iter().any(|k| k == name) {
                let value = match inline {
                    Some(v) => v,
                    None if i + 1 < strs.len() => {
                        i += 1;
                        strs[i].clone()
                    }
                    None => String::new(),
                };
                out.push("--var".into());
                out.push(format!("{name}={value}").into());
                i += 1;
                continue;
            }
        }
        out.push(args[i].clone());
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::task_vars;

    fn rewrite(line: &str) -> String {
        let args = line.split(' ').map(std::ffi::OsString::from).collect();
        task_vars(args)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn anchor_style_variables() {
        assert_eq!(
            rewrite("opscli task -f t.yaml --ip 1.2.3.4 --domain=x.org -i web --var a=b"),
            "opscli task -f t.yaml --var ip=1.2.3.4 --var domain=x.org -i web --var a=b"
        );
        assert_eq!(
            rewrite("opscli -n prod task -f t --clear true"),
            "opscli -n prod task -f t --var clear=true"
        );
        assert_eq!(
            rewrite("opscli get task --ip x"),
            "opscli get task --ip x",
            "only the task command"
        );
        assert_eq!(
            rewrite("opscli --home task get x"),
            "opscli --home task get x",
            "`task` as a flag value"
        );
    }
}
