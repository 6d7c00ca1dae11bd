//! The SSH executor against real OpenSSH servers on 127.0.0.2..4.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ops_exec::ssh::{HostKeyPolicy, SshExecutor, SshOptions, SshPool, SshTarget};
use ops_exec::{ExecError, ExecRequest, Executor, ExitStatus, OutputLimits};
use ops_testkit::sshd::{ClientKey, Sshd, TEST_PASSWORD, TEST_USER};
use tokio_util::sync::CancellationToken;

fn options(home: &Path, policy: HostKeyPolicy) -> SshOptions {
    let mut o = SshOptions::new(home);
    o.policy = policy;
    o.connect_timeout = Duration::from_secs(5);
    o
}

fn target(name: &str, s: &Sshd, user: &str) -> SshTarget {
    SshTarget {
        name: name.into(),
        host: s.addr.clone(),
        port: s.port,
        user: user.into(),
        password: None,
        key_path: None,
        inline_key: None,
        connect_timeout: None,
    }
}

fn with_key(mut t: SshTarget, k: &ClientKey) -> SshTarget {
    t.key_path = Some(k.private.clone());
    t
}

/// A pool whose known_hosts already trusts `servers`.
fn trusted_pool(home: &Path, servers: &[&Sshd]) -> Arc<SshPool> {
    let lines: String = servers.iter().map(|s| s.known_hosts_line()).collect();
    std::fs::write(home.join("known_hosts"), lines).unwrap();
    SshPool::new(options(home, HostKeyPolicy::Strict))
}

async fn run(e: &SshExecutor, script: &str) -> ops_exec::ExecOutput {
    e.run(
        &ExecRequest::script(script),
        None,
        &CancellationToken::new(),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_in_parallel_and_connections_are_reused() {
    let key = ClientKey::new();
    let servers: Vec<Sshd> = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
        .iter()
        .map(|a| Sshd::start(a, &[&key]))
        .collect();
    let home = tempfile::tempdir().unwrap();
    let pool = trusted_pool(home.path(), &servers.iter().collect::<Vec<_>>());
    let execs: Vec<SshExecutor> = servers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            SshExecutor::new(
                with_key(target(&format!("web-{i}"), s, "root"), &key),
                Arc::clone(&pool),
            )
        })
        .collect();
    let outs = futures_join(
        execs
            .iter()
            .map(|e| run(e, "echo $SSH_CONNECTION"))
            .collect(),
    )
    .await;
    for (out, s) in outs.iter().zip(&servers) {
        assert!(out.status.success(), "{}", out.stderr.text());
        let conn = out.stdout.text();
        assert!(
            conn.trim().ends_with(&format!("{} {}", s.addr, s.port)),
            "{conn}"
        );
    }
    // The same TCP connection (same client port) serves later commands.
    let first = run(&execs[0], "echo $SSH_CONNECTION").await.stdout.text();
    for _ in 0..5 {
        assert_eq!(
            run(&execs[0], "echo $SSH_CONNECTION").await.stdout.text(),
            first
        );
    }
    pool.close_all().await;
}

async fn futures_join<F: std::future::Future>(fs: Vec<F>) -> Vec<F::Output> {
    let mut out = Vec::new();
    let handles: Vec<_> = fs.into_iter().map(Box::pin).collect();
    for h in handles {
        out.push(h.await);
    }
    out
}

#[tokio::test]
async fn a_down_host_a_bad_name_and_a_wrong_key_are_clear_errors() {
    let key = ClientKey::new();
    let other = ClientKey::new();
    let s = Sshd::start("127.0.0.2", &[&key]);
    let home = tempfile::tempdir().unwrap();
    let pool = trusted_pool(home.path(), &[&s]);
    let cancel = CancellationToken::new();

    let mut down = target("down", &s, "root");
    down.host = "127.0.0.9".into();
    let e = SshExecutor::new(with_key(down, &key), Arc::clone(&pool))
        .run(&ExecRequest::script("true"), None, &cancel)
        .await
        .unwrap_err();
    assert!(matches!(e, ExecError::Connect { .. }), "{e}");
    assert!(
        e.to_string().contains("down: cannot connect to 127.0.0.9"),
        "{e}"
    );

    let mut nx = target("nx", &s, "root");
    nx.host = "no-such-host.invalid".into();
    let e = SshExecutor::new(with_key(nx, &key), Arc::clone(&pool))
        .run(&ExecRequest::script("true"), None, &cancel)
        .await
        .unwrap_err();
    assert!(matches!(e, ExecError::Resolve { .. }), "{e}");

    let e = SshExecutor::new(
        with_key(target("wrong", &s, "root"), &other),
        Arc::clone(&pool),
    )
    .run(&ExecRequest::script("true"), None, &cancel)
    .await
    .unwrap_err();
    assert!(matches!(e, ExecError::Auth { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("authentication as `root` failed (tried: key "),
        "{e}"
    );
}

#[tokio::test]
async fn host_keys_strict_accept_new_and_changed() {
    let key = ClientKey::new();
    let s = Sshd::start("127.0.0.3", &[&key]);
    let home = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();

    let strict = SshPool::new(options(home.path(), HostKeyPolicy::Strict));
    let e = SshExecutor::new(with_key(target("h", &s, "root"), &key), strict)
        .run(&ExecRequest::script("true"), None, &cancel)
        .await
        .unwrap_err();
    assert!(matches!(e, ExecError::HostKeyUnknown { .. }), "{e}");
    assert!(e.to_string().contains("SHA256:"), "{e}");

    let tofu = SshPool::new(options(home.path(), HostKeyPolicy::AcceptNew));
    let out = SshExecutor::new(with_key(target("h", &s, "root"), &key), tofu)
        .run(&ExecRequest::script("echo ok"), None, &cancel)
        .await
        .unwrap();
    assert_eq!(out.stdout.text(), "ok\n");
    let recorded = std::fs::read_to_string(home.path().join("known_hosts")).unwrap();
    assert!(
        recorded.contains(&format!("[127.0.0.3]:{}", s.port)),
        "{recorded}"
    );

    // Same address and port, new host key: refused under either policy.
    let port = s.port;
    drop(s);
    let mut s2 = Sshd::start("127.0.0.3", &[&key]);
    if s2.port != port {
        // Re-bind on the old port for a true "same host, new key".
        s2.stop();
        let cfg = std::fs::read_to_string(s2.dir.path().join("sshd_config")).unwrap();
        std::fs::write(
            s2.dir.path().join("sshd_config"),
            cfg.replace(&format!(":{}\n", s2.port), &format!(":{port}\n")),
        )
        .unwrap();
        s2 = restart_on(s2, port);
    }
    for policy in [HostKeyPolicy::Strict, HostKeyPolicy::AcceptNew] {
        let pool = SshPool::new(options(home.path(), policy));
        let e = SshExecutor::new(with_key(target("h", &s2, "root"), &key), pool)
            .run(&ExecRequest::script("true"), None, &cancel)
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, ExecError::HostKeyChanged { .. }), "{text}");
        assert_eq!(
            text.matches("SHA256:").count(),
            2,
            "both fingerprints: {text}"
        );
    }
}

/// Whether a remote pid is a live (non-zombie) process. PID 1 in some
/// containers does not reap orphans, so a killed process may linger as a
/// zombie; that is dead for our purpose.
fn alive_check(pid: &str) -> String {
    format!(
        "if [ -e /proc/{pid} ] && ! grep -q ') Z ' /proc/{pid}/stat; then echo alive; else echo gone; fi"
    )
}

fn restart_on(mut s: Sshd, port: u16) -> Sshd {
    let cfg = s.dir.path().join("sshd_config");
    let child = std::process::Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(&cfg)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline
        && std::net::TcpStream::connect((s.addr.as_str(), port)).is_err()
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    s.port = port;
    s.replace_child(child);
    s
}

#[tokio::test]
async fn timeout_and_cancellation_stop_the_remote_process() {
    let key = ClientKey::new();
    let s = Sshd::start("127.0.0.4", &[&key]);
    let home = tempfile::tempdir().unwrap();
    let pool = trusted_pool(home.path(), &[&s]);
    let e = SshExecutor::new(with_key(target("h", &s, "root"), &key), pool);

    let started = Instant::now();
    let req = ExecRequest::script("sleep 300 & echo $!; wait").with_timeout(Duration::from_secs(2));
    let out = e.run(&req, None, &CancellationToken::new()).await.unwrap();
    assert_eq!(out.status, ExitStatus::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(15));
    let pid = out.stdout.text().trim().to_owned();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let check = run(&e, &alive_check(&pid)).await;
    assert_eq!(
        check.stdout.text(),
        "gone\n",
        "remote sleep {pid} survived the timeout"
    );

    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        c2.cancel();
    });
    let out = e
        .run(
            &ExecRequest::script("sleep 300 & echo $!; wait"),
            None,
            &cancel,
        )
        .await
        .unwrap();
    assert_eq!(out.status, ExitStatus::Cancelled);
    let pid = out.stdout.text().trim().to_owned();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let check = run(&e, &alive_check(&pid)).await;
    assert_eq!(
        check.stdout.text(),
        "gone\n",
        "remote sleep {pid} survived cancellation"
    );
}

#[tokio::test]
async fn large_and_binary_output() {
    let key = ClientKey::new();
    let s = Sshd::start("127.0.0.2", &[&key]);
    let home = tempfile::tempdir().unwrap();
    let pool = trusted_pool(home.path(), &[&s]);
    let e = SshExecutor::new(with_key(target("h", &s, "root"), &key), pool);
    let mut req = ExecRequest::script(
        "head -c 20000000 /dev/urandom | base64 -w 100; echo END; printf 'bad\\377\\376' >&2",
    );
    req.limits = OutputLimits {
        head: 32 * 1024,
        tail: 32 * 1024,
    };
    let out = e.run(&req, None, &CancellationToken::new()).await.unwrap();
    assert!(out.status.success());
    assert!(out.stdout.total > 26_000_000, "{}", out.stdout.total);
    assert_eq!(out.stdout.bytes().len(), 64 * 1024, "memory bounded");
    assert!(out.stdout.text().ends_with("END\n"));
    assert_eq!(out.stderr.bytes(), b"bad\xff\xfe");
}

#[tokio::test]
async fn password_keyboard_interactive_and_sudo() {
    assert!(
        std::process::Command::new("id")
            .arg(TEST_USER)
            .output()
            .unwrap()
            .status
            .success(),
        "user {TEST_USER} missing; run scripts/setup.sh"
    );
    let s = Sshd::start("127.0.0.3", &[]);
    let home = tempfile::tempdir().unwrap();
    let pool = trusted_pool(home.path(), &[&s]);
    let mut t = target("pw", &s, TEST_USER);
    t.password = Some(TEST_PASSWORD.into());
    let e = SshExecutor::new(t, Arc::clone(&pool));
    let who = run(&e, "whoami").await;
    assert_eq!(who.stdout.text(), format!("{TEST_USER}\n"));

    let mut req = ExecRequest::script("whoami; id -u");
    req.sudo = true;
    let out = e.run(&req, None, &CancellationToken::new()).await.unwrap();
    assert!(out.status.success(), "{}", out.stderr.text());
    assert_eq!(out.stdout.text(), "root\n0\n");
    assert!(
        !out.stdout.text().contains(TEST_PASSWORD) && !out.stderr.text().contains(TEST_PASSWORD)
    );
    assert!(
        !out.stderr.text().contains("__OPS_"),
        "markers leaked: {}",
        out.stderr.text()
    );

    let mut bad = target("badpw", &s, TEST_USER);
    bad.password = Some("wrong".into());
    let err = SshExecutor::new(bad, pool)
        .run(
            &ExecRequest::script("true"),
            None,
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("tried: password, keyboard-interactive"),
        "{err}"
    );
}

#[tokio::test]
async fn fifty_megabyte_round_trip_with_checksum() {
    let key = ClientKey::new();
    let s = Sshd::start("127.0.0.4", &[&key]);
    let home = tempfile::tempdir().unwrap();
    let pool = trusted_pool(home.path(), &[&s]);
    let e = SshExecutor::new(with_key(target("h", &s, "root"), &key), pool);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.bin");
    let data: Vec<u8> = (0..50_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(&src, &data).unwrap();
    let remote = format!("{}/uploaded.bin", dir.path().display());
    let cancel = CancellationToken::new();
    let up = e.upload(&src, &remote, Some(0o600), &cancel).await.unwrap();
    assert_eq!(up.bytes, 50_000_000);
    let mode = run(&e, &format!("stat -c %a {remote}")).await;
    assert_eq!(mode.stdout.text(), "600\n");
    let back = dir.path().join("back.bin");
    let down = e.download(&remote, &back, &cancel).await.unwrap();
    assert_eq!(down.sha256, up.sha256);
    assert_eq!(std::fs::read(&back).unwrap(), data);
    let missing = e
        .download("/nonexistent/file", &dir.path().join("x"), &cancel)
        .await
        .unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent/file"),
        "{missing}"
    );
}

#[tokio::test]
async fn a_host_in_its_own_network_namespace_with_its_own_hostname() {
    let key = ClientKey::new();
    let host = match ops_testkit::isolated::IsolatedHost::start("lab-ns-1", &[&key.public]) {
        Ok(h) => h,
        Err(reason) => {
            println!("SKIPPED: network namespaces are not permitted here ({reason})");
            return;
        }
    };
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("known_hosts"), host.known_hosts_line()).unwrap();
    let pool = SshPool::new(options(home.path(), HostKeyPolicy::Strict));
    let t = SshTarget {
        name: "lab-ns-1".into(),
        host: host.addr.clone(),
        port: 22,
        user: "root".into(),
        password: None,
        key_path: Some(key.private.clone()),
        inline_key: None,
        connect_timeout: None,
    };
    let e = SshExecutor::new(t, pool);
    let out = run(
        &e,
        "hostname; ip -o -4 addr show | grep -c 198.18.; echo $SSH_CONNECTION",
    )
    .await;
    let text = out.stdout.text();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("lab-ns-1"));
    assert_eq!(lines.next(), Some("1"), "only its veth address");
    assert!(lines.next().unwrap().contains(&format!("{} 22", host.addr)));
}

/// A server that stops answering (SIGSTOP) cannot hold a call past its
/// limit: the client's own deadline fires, the connection is given up and
/// the next call reconnects. It used to return after 120 s, when the
/// keepalives ran out (issue "the gate must hold").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_frozen_server_cannot_outlast_the_deadline() {
    let key = ClientKey::new();
    let s = Sshd::start("127.0.0.3", &[&key]);
    let home = tempfile::tempdir().unwrap();
    let pool = trusted_pool(home.path(), &[&s]);
    let e = SshExecutor::new(with_key(target("frozen", &s, "root"), &key), pool.clone());
    // A connection in the pool first, then the server freezes.
    assert_eq!(run(&e, "echo up").await.stdout.text(), "up\n");
    s.freeze(true);
    let started = Instant::now();
    let out = e
        .run(
            &ExecRequest::script("sleep 60").with_timeout(Duration::from_secs(2)),
            None,
            &CancellationToken::new(),
        )
        .await;
    let took = started.elapsed();
    s.freeze(false);
    let out = out.unwrap();
    assert_eq!(out.status, ExitStatus::TimedOut, "{out:?}");
    // The limit (2 s), the remote kill's grace (10 s) and the give-up
    // window (5 s); nowhere near the keepalives' 120 s.
    assert!(took < Duration::from_secs(40), "returned after {took:?}");
    // The server is back: the next call works on a new connection.
    assert_eq!(run(&e, "echo again").await.stdout.text(), "again\n");
}
