//! The approval policy as a truth table (mode x effect x rule -> outcome),
//! and the rules file's load-time checks.

use ops_agent::policy::{Call, Decision, HostRef, Mode, Rules, decide};
use ops_model::Effect;
use ops_model::shell::classify;

const RULES: &str = r#"
rules:
  - name: restart-web-staging
    action: allow
    shell: ["/usr/bin/systemctl restart nginx", "/usr/bin/systemctl reload nginx", "/usr/bin/systemctl stop nginx"]
    labels: {env: staging}
    match:
      - {shell: "sudo /usr/bin/systemctl restart nginx", hosts: [{name: web-1, labels: {env: staging}}]}
    not_match:
      - {shell: "/usr/bin/systemctl restart postgres", hosts: [{name: web-1, labels: {env: staging}}]}
      - {shell: "/usr/bin/systemctl restart nginx", hosts: [{name: web-9, labels: {env: prod}}]}
      - {shell: "/usr/bin/systemctl restart nginx; rm -rf /srv", hosts: [{name: web-1, labels: {env: staging}}]}
      - {shell: "/usr/bin/systemctl restart nginx > /etc/motd", hosts: [{name: web-1, labels: {env: staging}}]}
      - {shell: "systemctl restart nginx", hosts: [{name: web-1, labels: {env: staging}}]}
  - name: touch-stamp
    action: allow
    shell: ["/usr/bin/touch /srv/stamp"]
    match:
      - {shell: "/usr/bin/touch /srv/stamp"}
  - name: never-rm
    action: forbid
    shell: ["rm"]
    match:
      - {shell: "rm -f /srv/x"}
  - name: no-db-hosts
    action: forbid
    hosts: ["db-*"]
    match:
      - {shell: "df -h", hosts: [{name: web-1}, {name: db-1}]}
    not_match:
      - {shell: "df -h", hosts: [{name: web-1}]}
  - name: cleanup-task
    action: allow
    tasks: ["clear-*"]
    match:
      - {task: clear-disk, hosts: [{name: web-1}]}
    not_match:
      - {task: reboot-host}
  - name: watch-secrets-dir
    action: ask
    shell: ["cat /srv/secrets/*"]
    match:
      - {shell: "cat /srv/secrets/db.txt | head -1"}
"#;

fn call(line: &str, host: &str, env: &str) -> Call {
    let c = classify(line);
    Call {
        tool: "host_run_shell".into(),
        effect: Some(c.effect),
        reads_secret: c.reads_secret,
        shell: Some(line.into()),
        hosts: vec![HostRef {
            name: host.into(),
            labels: [("env".to_owned(), env.to_owned())].into(),
        }],
        ..Call::default()
    }
}

#[test]
fn truth_table() {
    use Decision::{Allow, Ask, Forbid};
    use Mode::{Ask as AskMode, Auto, ReadOnly};
    let rules = Rules::from_yaml(RULES, "test").unwrap();
    let table: &[(&str, &str, &str, Mode, Decision)] = &[
        // reads
        ("df -h", "web-1", "prod", ReadOnly, Allow),
        ("df -h", "web-1", "prod", AskMode, Allow),
        ("df -h", "web-1", "prod", Auto, Allow),
        // secret reads always ask
        ("cat /etc/shadow", "web-1", "prod", ReadOnly, Ask),
        ("cat /etc/shadow", "web-1", "prod", Auto, Ask),
        // mutate: forbidden read-only, asks otherwise, allowed by rule in auto
        (
            "systemctl restart nginx",
            "web-1",
            "staging",
            ReadOnly,
            Forbid,
        ),
        ("systemctl restart nginx", "web-1", "staging", AskMode, Ask),
        (
            "/usr/bin/systemctl restart nginx",
            "web-1",
            "staging",
            AskMode,
            Ask,
        ),
        (
            "/usr/bin/systemctl restart nginx",
            "web-1",
            "staging",
            Auto,
            Allow,
        ),
        (
            "sudo /usr/bin/systemctl restart nginx",
            "web-1",
            "staging",
            Auto,
            Allow,
        ),
        (
            "/usr/bin/systemctl restart nginx",
            "web-1",
            "prod",
            Auto,
            Ask,
        ),
        (
            "/usr/bin/systemctl restart postgres",
            "web-1",
            "staging",
            Auto,
            Ask,
        ),
        // a covered command chained with anything else is not covered
        (
            "/usr/bin/systemctl restart nginx && touch /tmp/x",
            "web-1",
            "staging",
            Auto,
            Ask,
        ),
        // destructive: an allow rule never lowers it (the rule covers it)
        (
            "/usr/bin/systemctl stop nginx",
            "web-1",
            "staging",
            Auto,
            Ask,
        ),
        ("rm -rf /srv/app", "web-1", "staging", Auto, Forbid),
        ("rm -rf /srv/app", "web-1", "staging", ReadOnly, Forbid),
        // forbid rules win in every mode, even for reads
        ("df -h", "db-1", "prod", ReadOnly, Forbid),
        ("df -h", "db-1", "prod", Auto, Forbid),
        (
            "/usr/bin/systemctl restart nginx",
            "db-1",
            "staging",
            Auto,
            Forbid,
        ),
        // an ask rule asks even for a read
        ("cat /srv/secrets/db.txt", "web-1", "prod", Auto, Ask),
        // unparseable = mutate: never allowed unasked; it may run anything,
        // so a forbid rule on any command (`never-rm`) forbids it
        ("echo 'oops", "web-1", "staging", Auto, Forbid),
        ("echo 'oops", "web-1", "staging", AskMode, Forbid),
    ];
    let mut wrong = Vec::new();
    for (line, host, env, mode, want) in table {
        let v = decide(&call(line, host, env), *mode, &rules);
        if v.decision != *want {
            wrong.push(format!(
                "{line:?} on {host} ({env}) in {mode:?}: want {want:?}, got {:?} {:?}",
                v.decision, v.reasons
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn tasks_and_undeclared_effects() {
    let rules = Rules::from_yaml(RULES, "test").unwrap();
    let task = |name: &str, effect| Call {
        tool: "task_run".into(),
        effect,
        task: Some(name.into()),
        hosts: vec![HostRef {
            name: "web-1".into(),
            ..HostRef::default()
        }],
        ..Call::default()
    };
    assert_eq!(
        decide(
            &task("clear-disk", Some(Effect::Mutate)),
            Mode::Auto,
            &rules
        )
        .decision,
        Decision::Allow
    );
    assert_eq!(
        decide(&task("clear-disk", Some(Effect::Mutate)), Mode::Ask, &rules).decision,
        Decision::Ask
    );
    let v = decide(&task("clear-disk", None), Mode::Auto, &rules);
    assert_eq!(
        v.decision,
        Decision::Ask,
        "no effect declared = destructive"
    );
    assert!(
        v.reasons.iter().any(|r| r.contains("declared no effect")),
        "{v:?}"
    );
    let v = decide(
        &task("reboot-host", Some(Effect::Mutate)),
        Mode::Auto,
        &rules,
    );
    assert_eq!(v.decision, Decision::Ask);
    let v = decide(&call("df -h", "db-7", "prod"), Mode::Auto, &rules);
    assert_eq!(v.reasons[0], "rule `no-db-hosts` forbids it");
}

#[test]
fn rules_are_checked_at_load() {
    let bad = |yaml: &str| {
        Rules::from_yaml(yaml, "rules.yaml")
            .unwrap_err()
            .to_string()
    };
    let e = bad(
        "rules:\n  - name: r\n    action: allow\n    shell: [\"/usr/bin/systemctl restart nginx\"]\n    match:\n      - {shell: \"/usr/bin/systemctl restart postgres\"}\n",
    );
    assert!(
        e.contains("rules.yaml: rule `r`: does not match its `match` example"),
        "{e}"
    );
    let e = bad(
        "rules:\n  - name: r\n    action: forbid\n    shell: [\"rm\"]\n    match:\n      - {shell: \"rm -rf /x\"}\n    not_match:\n      - {shell: \"ls; rm x\"}\n",
    );
    assert!(e.contains("matches its `not_match` example"), "{e}");
    let e = bad("rules:\n  - name: r\n    action: allow\n    match:\n      - {shell: \"ls\"}\n");
    assert!(e.contains("no criteria"), "{e}");
    let e = bad("rules:\n  - name: r\n    action: allow\n    shell: [/usr/bin/ls]\n");
    assert!(e.contains("at least one `match` example"), "{e}");
    let e = bad("rules:\n  - name: r\n    action: maybe\n    shell: [ls]\n");
    assert!(e.contains("rules.yaml") && e.contains("maybe"), "{e}");
    let e = bad(
        "rules:\n  - {name: a, action: ask, shell: [ls], match: [{shell: ls}]}\n  - {name: a, action: ask, shell: [ls], match: [{shell: ls}]}\n",
    );
    assert!(e.contains("used twice"), "{e}");
    let e = bad("rules:\n  - {name: a, action: ask, shel: [ls], match: [{shell: ls}]}\n");
    assert!(e.contains("unknown field `shel`"), "{e}");
    assert!("sometimes".parse::<Mode>().is_err());
    assert_eq!("read-only".parse::<Mode>().unwrap(), Mode::ReadOnly);
}

/// Rules that meant less than they said (issue "the gate must hold"):
/// an allow rule covered more than its words, a forbid rule missed the
/// command behind a wrapper.
#[test]
fn regression_rules_mean_what_they_say() {
    use Decision::{Allow, Ask, Forbid};
    let rules = Rules::from_yaml(RULES, "test").unwrap();
    let table: &[(&str, Decision)] = &[
        // `allow` is exact: no redirection, no extra units or hosts, no
        // program found on PATH.
        ("/usr/bin/touch /srv/stamp", Allow),
        ("/usr/bin/touch /srv/stamp >& /etc/motd", Ask),
        ("/usr/bin/touch /srv/stamp 1<>/etc/motd", Ask),
        ("/usr/bin/touch --help >& /etc/motd", Ask),
        ("/usr/bin/touch /srv/stamp /etc/motd", Ask),
        ("touch /srv/stamp", Ask),
        ("/usr/local/bin/touch /srv/stamp", Ask),
        ("/usr/bin/systemctl restart nginx postgres", Ask),
        ("/usr/bin/systemctl -H root@db-1 restart nginx", Ask),
        ("/usr/bin/systemctl restart nginx -H root@db-1", Ask),
        ("systemctl restart nginx", Ask),
        ("PATH=/tmp /usr/bin/systemctl restart nginx", Forbid),
        ("/usr/bin/systemctl restart $UNIT", Ask),
        // `forbid rm` reaches every `rm` the line runs.
        ("nice rm -f /srv/x", Forbid),
        ("nice -n 10 rm -f /srv/x", Forbid),
        ("ls /srv | xargs rm", Forbid),
        ("sh -c 'rm -f /srv/x'", Forbid),
        ("bash -c \"true; rm /srv/x\"", Forbid),
        ("find /srv -name '*.tmp' -delete", Forbid),
        ("find /srv -exec rm {} \\;", Forbid),
        ("sudo -u app rm /srv/x", Forbid),
        ("timeout 5 rm /srv/x", Forbid),
        ("/bin/rm /srv/x", Forbid),
        ("echo $(rm /srv/x)", Forbid),
        ("$'\\x72m' /srv/x", Forbid),
        ("$CMD /srv/x", Forbid),
    ];
    let mut wrong = Vec::new();
    for (line, want) in table {
        let v = decide(&call(line, "web-1", "staging"), Mode::Auto, &rules);
        if v.decision != *want {
            wrong.push(format!(
                "{line:?}: want {want:?}, got {:?} {:?}",
                v.decision, v.reasons
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let e = Rules::from_yaml(
        "rules:\n  - name: r\n    action: allow\n    shell: [\"systemctl restart nginx\"]\n    match:\n      - {shell: \"systemctl restart nginx\"}\n",
        "rules.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("absolute path"), "{e}");
}
