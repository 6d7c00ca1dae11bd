//! The shell classifier as a table: command line -> effect, including the
//! misses peers are known for (a read-only prefix hiding a write).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use ops_tools::tool::Effect::{self, Destructive, Mutate, Read};
use ops_tools::tool::shell::{classify, parse};

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
