//! The shell classifier as a table: command line -> effect, including the
//! misses peers are known for (a read-only prefix hiding a write).

use ops_model::Effect::{self, Destructive, Mutate, Read};
use ops_model::shell::{classify, commands, parse};

#[test]
fn effects_table() {
    let table: &[(&str, Effect)] = &[
        // Plain reads, pipelines of reads.
        ("df -h", Read),
        ("ps aux | grep nginx | head -5", Read),
        (
            "journalctl -u nginx --since '1 hour ago' --no-pager | tail -50",
            Read,
        ),
        ("systemctl status nginx", Read),
        ("systemctl", Read),
        ("cat /var/log/syslog 2>/dev/null | wc -l", Read),
        ("ls -la /srv && du -sh /srv/* 2>&1", Read),
        ("kubectl get pods -n kube-system -o wide", Read),
        ("kubectl -n shop describe deploy web", Read),
        ("kubectl logs web-1 --tail 100 -f", Read),
        ("kubectl auth can-i delete pods", Read),
        ("kubectl config view", Read),
        ("kubectl apply -f x.yaml --dry-run=server", Read),
        ("ip addr show", Read),
        ("ip route", Read),
        ("ss -tlnp", Read),
        ("free -m; uptime; uname -a", Read),
        // Found by the evals: a model's `top -n 1` was put to the approver.
        ("top -n 1", Read),
        ("top -b -n 1 | head -n 12", Read),
        ("nvidia-smi --query-gpu=name,memory.used --format=csv", Read),
        ("docker ps -a", Read),
        ("crictl logs abc123", Read),
        ("find /var/log -name '*.gz' -mtime +7", Read),
        ("sed -n '1,10p' /etc/nginx/nginx.conf", Read),
        ("curl -s http://127.0.0.1:8080/healthz", Read),
        ("curl -sI -X HEAD https://example.com", Read),
        ("echo $(date) $(hostname)", Read),
        ("for f in /var/log/*.log; do wc -l \"$f\"; done", Read),
        ("if systemctl is-active nginx; then echo up; fi", Read),
        ("sudo journalctl -k -n 50", Read),
        ("timeout 5 ping -c 3 10.0.0.1", Read),
        ("watch -n 1 'df -h'", Read), // classified by what it runs
        (
            "openssl x509 -in /etc/ssl/certs/site.crt -noout -enddate",
            Read,
        ),
        ("# just a comment", Read),
        ("", Read),
        ("cat <<EOF\nrm -rf /\nEOF", Read), // a here-doc body is data, not commands
        ("sysctl net.ipv4.ip_forward", Read),
        ("LANG=C df -h", Read),
        ("helm list -A", Read),
        ("iptables -L -n", Read),
        // Writes hidden behind read-only programs: the peers' known misses.
        ("kubectl config set-context prod --namespace=x", Mutate),
        ("kubectl config use-context prod", Mutate),
        ("kubectl auth reconcile -f rbac.yaml", Mutate),
        ("kubectl apply -f x.yaml --dry-run=none", Mutate),
        ("echo ok; rm -rf /tmp/x", Destructive),
        ("cat x > /etc/y", Mutate),
        ("cat x >> /etc/y", Mutate),
        ("echo 1 | tee /proc/sys/vm/drop_caches", Mutate),
        ("ls $(rm -rf /srv)", Destructive),
        ("ls `rm -f /srv/x`", Destructive),
        ("echo \"$(systemctl restart nginx)\"", Mutate),
        ("sh -c 'systemctl restart nginx'", Mutate),
        ("bash -c \"df -h; reboot\"", Destructive),
        ("sudo systemctl restart nginx", Mutate),
        ("env FOO=1 systemctl restart nginx", Mutate),
        ("find /tmp -name '*.tmp' -delete", Mutate),
        ("find / -exec rm {} \\;", Mutate),
        ("sed -i 's/a/b/' /etc/hosts", Mutate),
        ("awk '{print > \"/tmp/out\"}' x", Mutate),
        ("curl -X POST http://x/api", Mutate),
        ("curl -d @f http://x/api", Mutate),
        ("curl -o /usr/local/bin/tool http://x/tool", Mutate),
        ("sysctl -w vm.swappiness=10", Mutate),
        ("sysctl vm.swappiness=10", Mutate),
        ("journalctl --vacuum-size=100M", Mutate),
        ("dmesg -c", Mutate),
        ("ip link set eth0 down", Mutate),
        ("ps aux | xargs kill", Mutate),
        ("$CMD status", Mutate),
        ("eval \"$X\"", Mutate),
        ("echo 'unbalanced", Mutate),
        ("systemctl restart nginx", Mutate),
        ("docker run --rm alpine true", Mutate),
        ("kubectl scale deploy web --replicas=3", Mutate),
        ("kubectl rollout restart deploy/web", Mutate),
        ("nvidia-smi -pm 1", Mutate),
        ("touch /tmp/x", Mutate),
        ("hostname newname", Mutate),
        // Destroyers.
        ("rm -rf /var/lib/app", Destructive),
        ("rm -fr /", Destructive),
        ("kubectl delete pod web-1", Destructive),
        ("kubectl drain node-1 --ignore-daemonsets", Destructive),
        ("kubectl scale deploy web --replicas=0", Destructive),
        ("systemctl stop nginx", Destructive),
        ("service nginx stop", Destructive),
        ("mkfs.ext4 /dev/sdb1", Destructive),
        ("dd if=/dev/zero of=/dev/sda bs=1M", Destructive),
        ("echo x > /dev/sda", Destructive),
        ("reboot", Destructive),
        ("shutdown -h now", Destructive),
        ("kill -9 1234", Destructive),
        ("iptables -F", Destructive),
        ("fdisk /dev/sda", Destructive),
        ("zfs destroy tank/data", Destructive),
    ];
    let mut wrong = Vec::new();
    for (line, want) in table {
        let got = classify(line);
        if got.effect != *want {
            wrong.push(format!(
                "{line:?}: want {want}, got {} ({:?})",
                got.effect, got.reasons
            ));
        }
    }
    assert!(wrong.is_empty(), "misclassified:\n{}", wrong.join("\n"));
}

#[test]
fn reasons_name_the_offending_part() {
    let c = classify("df -h && systemctl restart nginx");
    assert_eq!(c.effect, Mutate);
    assert_eq!(c.reasons.len(), 1, "{:?}", c.reasons);
    assert!(
        c.reasons[0].contains("systemctl restart nginx"),
        "{:?}",
        c.reasons
    );
    let c = classify("cat x > /etc/y");
    assert!(
        c.reasons.iter().any(|r| r.contains("writes /etc/y")),
        "{:?}",
        c.reasons
    );
}

#[test]
fn secret_reads_are_flagged() {
    for line in [
        "cat /etc/shadow",
        "head -1 ~/.ssh/id_ed25519",
        "cat /root/.kube/config",
        "cat /proc/1/environ",
        "grep pass < /etc/shadow",
        "env",
        "cat /etc/kubernetes/pki/ca.key",
    ] {
        let c = classify(line);
        assert!(c.reads_secret, "{line}: {c:?}");
    }
    for line in [
        "cat /etc/hosts",
        "head ~/.ssh/id_ed25519.pub",
        "ls /etc/ssl",
    ] {
        assert!(!classify(line).reads_secret, "{line}");
    }
}

#[test]
fn parser_splits_substitutes_and_redirects() {
    let p = parse("a 1 | b \"x y\" && c $(d e) 2>&1 > out; f <<X\nbody\nX\ng");
    let argv: Vec<Vec<String>> = p.commands.iter().map(|c| c.argv.clone()).collect();
    assert_eq!(
        argv,
        vec![
            vec!["a", "1"],
            vec!["b", "x y"],
            vec!["d", "e"],
            vec!["c", "$(...)"],
            vec!["f"],
            vec!["g"],
        ]
        .into_iter()
        .map(|v| v.into_iter().map(String::from).collect::<Vec<_>>())
        .collect::<Vec<_>>()
    );
    let c = &p.commands[3];
    assert_eq!(c.redirects.len(), 2);
    assert_eq!(
        (c.redirects[1].op.as_str(), c.redirects[1].target.as_str()),
        (">", "out")
    );
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    assert!(!parse("echo \"open").problems.is_empty());
}

/// The disguised writes an attacker's scripted model got through the gate
/// (issue "the gate must hold"), one named family per test. Each line ran
/// in read-only mode before; none may be `Read` now.
fn never_read(family: &str, lines: &[&str]) {
    let leaked: Vec<String> = lines
        .iter()
        .filter_map(|l| {
            let c = classify(l);
            (c.effect == Read && !c.reads_secret).then(|| format!("{l:?}"))
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "{family}: classified as a plain read:\n{}",
        leaked.join("\n")
    );
}

#[test]
fn regression_comment_starts_any_word() {
    never_read(
        "`#` starting a word is a comment, also where it looks like a quote",
        &[
            "echo x #'\nrm -f /srv/f\n#'",
            "echo x #\"\ntouch /srv/f\n#\"",
            "ls #`\nrm -f /srv/f`",
        ],
    );
    assert_eq!(classify("echo a#b").effect, Read);
    assert_eq!(classify("df -h # free space").effect, Read);
}

#[test]
fn regression_heredoc_bodies_expand() {
    never_read(
        "an unquoted here-document expands `$(...)`",
        &[
            "cat <<EOF\n$(touch /srv/f)\nEOF",
            "cat <<EOF\n`touch /srv/f`\nEOF",
            "cat <<-EOF\n\t${x:=$(touch /srv/f)}\n\tEOF",
        ],
    );
    assert_eq!(classify("cat <<'EOF'\n$(touch /srv/f)\nEOF").effect, Read);
}

#[test]
fn regression_ansi_c_quoting_and_braces_hide_flags() {
    never_read(
        "`$'...'` and brace expansion",
        &[
            "find /srv -name c $'-delete'",
            "find /srv -name c $\"-delete\"",
            "dd {of=/srv/f,count=0}",
            "sort {-o,/srv/f} /etc/hosts",
            "ls {a..c}",
        ],
    );
}

#[test]
fn regression_arithmetic_runs_substitutions() {
    never_read(
        "arithmetic expansion and subscripts",
        &[
            "x='a[$(touch /srv/f)]'; echo $((x))",
            "echo $((1+1))",
            "((x=1))",
            "echo $[1+1]",
            "test -v 'a[$(touch /srv/f)]'",
            "[ -v 'a[$(touch /srv/f)]' ]",
            "[[ $x -eq 1 ]]",
            "printf -v 'a[$(touch /srv/f)]' x",
            "echo ${x:=$(touch /srv/f)}",
            "echo ${x/a/b}",
        ],
    );
}

#[test]
fn regression_environment_prefixes_run_code() {
    never_read(
        "environment prefixes and assignments",
        &[
            "BASH_ENV=/tmp/x bash -c 'ls'",
            "LESSOPEN='|touch /srv/f' less /etc/hosts",
            "PATH=/tmp:$PATH ls",
            "LD_PRELOAD=/tmp/x.so ls",
            "env -S 'touch /srv/f'",
            "env PAGER=x systemctl status",
            "x=1",
        ],
    );
    assert_eq!(classify("LANG=C df -h").effect, Read);
    assert_eq!(classify("LC_ALL=C TZ=UTC date").effect, Read);
}

#[test]
fn regression_stdin_scripts_and_shebangs() {
    never_read(
        "scripts read from input, and other interpreters",
        &[
            "bash /dev/stdin <<< 'touch /srv/f'",
            "bash < /tmp/script",
            "sh -s < /tmp/script",
            "#!/usr/bin/python3\nimport os; os.system('touch /srv/f')",
            "#!/bin/sh\nls",
            "python3 -c 'print(1)'",
            "perl -e 'print 1'",
            "cat <(touch /srv/f)",
            "exec 3<>/srv/f",
            "ls 1<>/srv/f",
            "cat /etc/hosts >& /srv/f",
        ],
    );
}

#[test]
fn regression_readers_that_write_or_run() {
    never_read(
        "programs on the read list with options that write or execute",
        &[
            "sort -o /srv/f /etc/hosts",
            "sort --output=/srv/f /etc/hosts",
            "sort --compress-program=sh /etc/hosts",
            "sort --compress=sh /etc/hosts",
            "uniq /etc/hosts /srv/f",
            "xxd /etc/hosts /srv/f",
            "sed -n '1e touch /srv/f' /etc/hosts",
            "sed 's/a/b/w /srv/f' /etc/hosts",
            "sed --i 's/a/b/' /srv/f",
            "sed -Eusi 's/a/b/' /srv/f",
            "sed -i.bak 's/a/b/' /srv/f",
            "curl -o /srv/f http://127.0.0.1/",
            "curl -D /srv/f http://127.0.0.1/",
            "curl --output-dir /srv -O http://127.0.0.1/f",
            "curl -K /tmp/cfg http://127.0.0.1/",
            "curl -w '%output{/srv/f}x' http://127.0.0.1/",
            "wget -o /srv/f -O - http://127.0.0.1/",
            "wget http://127.0.0.1/f",
            "openssl req -new -newkey rsa:2048 -nodes -keyout /srv/k -out /srv/r -subj /CN=x",
            "openssl genrsa -out /srv/k",
            "ip a a 198.18.0.9/32 dev lo",
            "ip l s lo down",
            "ip r add default via 198.18.0.1",
            "ip route flush cache",
            "date -s '2020-01-01'",
            "date --set='2020-01-01'",
            "date 010112002020",
            "sysctl -f /tmp/x",
            "sysctl -p",
            "sysctl --system",
            "ss -K dst 198.18.0.9",
            "ss -D /srv/f",
            "hostname --file /tmp/x",
            "hostname -F /tmp/x",
            "kubectl apply -f x.yaml --dry-run=client --dry-run=none",
            "kubectl apply -f x.yaml --dry-run=none",
            "kubectl get pods --kubeconfig /tmp/evil",
            "kubectl get pods --log-file=/srv/f",
            "kubectl exec web-1 -- ls",
            "kubectl port-forward web-1 8080",
            "kubectl foo",
            "helm template x ./chart --post-renderer ./x",
            "helm install x ./chart",
            "KUBECTL_EXTERNAL_DIFF='touch /srv/f' kubectl diff -f x.yaml",
            "tree -o /srv/f /",
            "file -C -m /tmp/magic",
            "rg --pre 'touch /srv/f' x /etc",
            "journalctl --vacuum-time=1s",
            "journalctl --vacuum-t=1s",
            "journalctl --rot",
            "dmesg --clear",
            "dmesg -C",
            "systemctl -H root@db-1 status nginx",
            "systemctl --root=/tmp status nginx",
            "awk 'BEGIN{system(\"touch /srv/f\")}'",
            "awk '{print $1 > 80}' /etc/hosts",
            "awk -f /tmp/prog /etc/hosts",
            "find /srv -fprint /srv/f",
            "find /srv -newer x -delete",
            "xargs -a /etc/hosts sort --compress-program=sh",
            "echo /etc/hosts | xargs sort",
            "lastlog -C -u root",
            "sar -o /srv/f 1 1",
            "arp -s 198.18.0.9 00:11:22:33:44:55",
            "arp -d 198.18.0.9",
            "iptables -L -F",
            "nvidia-smi -pm 1",
            "tee /srv/f",
            "mount -o remount,rw /",
            "swapon /dev/sdb",
            "swapon -a",
            "sudo -s ls",
            "sudo -i 'ls; touch /srv/f'",
            "timeout --signal=KILL 5 touch /srv/f",
            "nice -n 5 touch /srv/f",
            "chrt -p 1 1",
            "ionice -p 1 -c 3",
            "kill -0 1",
            "pkill -0 sshd",
            "less /etc/hosts",
            "cd /etc",
            "exec ls",
            "source /tmp/x",
            ". /tmp/x",
        ],
    );
}

#[test]
fn regression_secret_reads_flagged() {
    let mut missed = Vec::new();
    for line in [
        "cat /etc//shadow",
        "cat /etc/./shadow",
        "cat /var/log/../../etc/shadow",
        "cat /etc/sha*",
        "cat /etc/s?adow",
        "getent shadow",
        "getent gshadow root",
        "curl file:///etc/shadow",
        "curl FILE:///etc/shadow",
        "curl -s --url file:///etc/shadow",
        "cat /var/run/secrets/kubernetes.io/serviceaccount/token",
        "cat /run/secrets/kubernetes.io/serviceaccount/token",
        "cat /etc/kubernetes/kubelet.conf",
        "tail -n +2 /root/.ssh/id_ed25519",
        "xxd /root/.ssh/id_rsa",
        "od -c ~/.ssh/id_rsa",
        "base64 /etc/ssl/private/server.key",
        "cat $OPS_HOME/ops.db",
        "cat ~/.ops/ops.db",
        "strings /root/.ops/ops.db",
        "grep -r password /root/.ops",
        "cat /proc/self/environ",
        "cat /proc/1/environ",
        "printenv",
        "env",
        "kubectl get secret db -o yaml",
        "kubectl get secrets -A -o json",
        "kubectl config view --raw",
        "cat /root/.netrc",
        "cat ~/.pgpass",
        "cat /root/.aws/credentials",
        "cat /srv/app/.env",
        "dd if=/etc/shadow",
        "sed -n 1p /etc/shadow",
        "awk 1 /etc/shadow",
        "sort /etc/gshadow",
    ] {
        let c = classify(line);
        if !c.reads_secret {
            missed.push(format!("{line:?}: {c:?}"));
        }
    }
    assert!(
        missed.is_empty(),
        "not flagged as secret reads:\n{}",
        missed.join("\n")
    );
    // The store of the running process, wherever OPS_HOME is.
    ops_model::shell::secret::protect("/var/tmp/ops-home-under-test");
    assert!(classify("cat /var/tmp/ops-home-under-test/ops.db").reads_secret);
    assert!(classify("ls /var/tmp//ops-home-under-test/").reads_secret);
}

#[test]
fn reads_that_stay_reads() {
    // What the copilot and the eval cases use must not start asking.
    for line in [
        "ps -o pid,args -p $(find /proc/[0-9]*/fd -lname '*(deleted)' 2>/dev/null | cut -d/ -f3 | sort -u | head -n 1)",
        "find /proc/[0-9]*/fd -lname '*(deleted)' -printf '%p -> %l\\n' 2>/dev/null",
        "du -ah /var/log/app | sort -rh | head -n 5",
        "ls /srv/data/sessions | head -n 3; ls /srv/data/sessions | wc -l",
        "pgrep -af appd.py || echo appd is not running",
        "ss -ltnp 'sport = :8080'",
        "stat -c '%a %U %n' /etc/app/tls/server.crt",
        "openssl x509 -enddate -noout -in /etc/app/tls/server.crt",
        "ps -eo pid,pcpu,args --sort=-pcpu | head -n 5",
        "journalctl -u appd -n 50 --no-pager",
        "awk '$3 > 80 {print $1}' /proc/loadavg",
        "sed -n '1,10p' /etc/app/app.conf",
        "grep -c ERROR /var/log/app/app.log",
        "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/healthz",
        "kubectl get pods -A -o wide",
        "ip -br a",
        "ip route get 198.18.0.1",
        "date +%s",
        "hostname -f",
        "sysctl -n vm.swappiness",
        "df -h /var/log/app; du -sh /var/log/app",
        "uptime; free -m; cat /proc/loadavg",
        "tail -n 100 /var/log/syslog | grep -i error",
        "getent hosts web-1",
        "ls -la /srv/*",
    ] {
        let c = classify(line);
        assert!(c.effect == Read && !c.reads_secret, "{line:?}: {:?}", c);
    }
}

#[test]
fn commands_look_through_wrappers() {
    let has_rm = |line: &str| {
        commands(line)
            .iter()
            .any(|argv| argv.first().is_some_and(|p| p == "rm"))
    };
    for line in [
        "rm -f x",
        "nice rm -f x",
        "nice -n 5 rm x",
        "xargs rm",
        "find . -name x | xargs -0 rm -f",
        "sh -c 'rm -rf /srv'",
        "bash -c \"echo; rm x\"",
        "sudo -u root rm x",
        "env LANG=C rm x",
        "timeout 5 rm x",
        "find /srv -delete",
        "find /srv -exec rm {} \\;",
        "watch rm x",
        "echo $(rm x)",
        "ionice -c3 nice rm x",
        "sudo -s rm x",
    ] {
        assert!(has_rm(line), "{line:?}: {:?}", commands(line));
    }
}
