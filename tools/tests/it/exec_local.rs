//! The local executor against real processes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ops_exec::local::LocalExecutor;
use ops_exec::{ExecRequest, Executor, ExitStatus, OutputLimits, Stream};
use tokio_util::sync::CancellationToken;

fn local() -> LocalExecutor {
    LocalExecutor::new("local")
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[tokio::test]
async fn streams_exit_codes_env_cwd_stdin() {
    let mut req =
        ExecRequest::script("echo out; echo err >&2; echo \"$GREETING from $(pwd)\"; cat; exit 3");
    req.env.insert("GREETING".into(), "hi there".into());
    req.cwd = Some("/tmp".into());
    req.stdin = Some(b"piped input\n".to_vec());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = Arc::clone(&seen);
    let sink = move |stream: Stream, data: &[u8]| s2.lock().unwrap().push((stream, data.to_vec()));
    let out = local()
        .run(&req, Some(&sink), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out.status, ExitStatus::Code(3));
    assert_eq!(out.stdout.text(), "out\nhi there from /tmp\npiped input\n");
    assert_eq!(out.stderr.text(), "err\n", "wrapper marker removed");
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|(s, d)| *s == Stream::Stderr && d == b"err\n")
    );
}

#[tokio::test]
async fn interpreters_from_the_first_line() {
    let py = local()
        .run(
            &ExecRequest::script("#!/usr/bin/python\nimport sys\nprint(6 * 7)\nsys.exit(0)"),
            None,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        (py.status.clone(), py.stdout.text()),
        (ExitStatus::Code(0), "42\n".into()),
        "{:?}",
        py.stderr.text()
    );
    let bash = local()
        .run(
            &ExecRequest::script("#!/bin/bash\narr=(a b c); echo ${#arr[@]}"),
            None,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(bash.stdout.text(), "3\n");
    let argv = local()
        .run(
            &ExecRequest::argv(["printf", "%s|", "a b", "it's"]),
            None,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(argv.stdout.text(), "a b|it's|");
}

#[tokio::test]
async fn timeout_stops_the_whole_process_group() {
    let req = ExecRequest::script("sleep 300 & echo $!; wait").with_timeout(Duration::from_secs(1));
    let started = Instant::now();
    let out = local()
        .run(&req, None, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out.status, ExitStatus::TimedOut);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let pid: u32 = out.stdout.text().trim().parse().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!alive(pid), "background child {pid} survived the timeout");
}

#[tokio::test]
async fn cancellation_stops_the_whole_process_group() {
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        c2.cancel();
    });
    let out = local()
        .run(
            &ExecRequest::script("sleep 300 & echo $!; wait"),
            None,
            &cancel,
        )
        .await
        .unwrap();
    assert_eq!(out.status, ExitStatus::Cancelled);
    let pid: u32 = out.stdout.text().trim().parse().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!alive(pid), "background child {pid} survived cancellation");
}

#[tokio::test]
async fn twenty_megabytes_of_output_stay_bounded() {
    let mut req = ExecRequest::script("head -c 20000000 /dev/zero | tr '\\0' 'x'; echo; echo END");
    req.limits = OutputLimits {
        head: 64 * 1024,
        tail: 64 * 1024,
    };
    let out = local()
        .run(&req, None, &CancellationToken::new())
        .await
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout.total, 20_000_000 + 5);
    assert_eq!(out.stdout.bytes().len(), 128 * 1024);
    assert!(out.stdout.text().ends_with("x\nEND\n"));
    assert!(out.stdout.text().contains("bytes of output dropped"));
}

#[tokio::test]
async fn non_utf8_output_is_kept_as_bytes() {
    let out = local()
        .run(
            &ExecRequest::script("printf 'ok\\377\\376end'"),
            None,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(out.stdout.bytes(), b"ok\xff\xfeend");
    assert_eq!(out.stdout.text(), "ok\u{fffd}\u{fffd}end");
}

#[tokio::test]
async fn copies_are_verified_and_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.bin");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&src, &data).unwrap();
    let dst = dir.path().join("dst.bin");
    let cancel = CancellationToken::new();
    let up = local()
        .upload(&src, dst.to_str().unwrap(), Some(0o640), &cancel)
        .await
        .unwrap();
    assert_eq!(up.bytes, data.len() as u64);
    assert_eq!(std::fs::read(&dst).unwrap(), data);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&dst).unwrap().permissions().mode() & 0o777,
        0o640
    );
    let back = dir.path().join("back.bin");
    let down = local()
        .download(dst.to_str().unwrap(), &back, &cancel)
        .await
        .unwrap();
    assert_eq!(down.sha256, up.sha256);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("ops-tmp"))
        .collect();
    assert!(leftovers.is_empty());
    let missing = local()
        .upload(&dir.path().join("nope"), "/tmp/x", None, &cancel)
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("nope"), "{missing}");
}

/// The read-only sandbox: a command in it reads what it likes and writes
/// nothing: files on every mount, `/proc/sys`, block devices, network
/// settings, the host name; and the timeout and kill still reach it.
#[tokio::test]
async fn the_read_only_sandbox_reads_and_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, "seen\n").unwrap();
    let run = |script: String| async move {
        let mut req = ExecRequest::script(script);
        req.sandbox = true;
        local()
            .run(&req, None, &CancellationToken::new())
            .await
            .unwrap()
    };
    let out = run(format!(
        "cat {}; ls /proc/1/fd >/dev/null && echo fds",
        file.display()
    ))
    .await;
    if out.stderr.text().contains(ops_exec::script::NO_SANDBOX) {
        // Where this machine cannot make one, the command did not run.
        assert_eq!(out.status, ExitStatus::Code(125), "{out:?}");
        println!("SKIPPED: no sandbox here: {}", out.stderr.text());
        return;
    }
    assert_eq!(out.status, ExitStatus::Code(0), "{out:?}");
    assert_eq!(out.stdout.text(), "seen\nfds\n");
    let target = dir.path().join("written");
    for (what, script) in [
        ("a file", format!("echo x > {}", target.display())),
        ("a file by rm", format!("rm -f {}", file.display())),
        ("/dev/shm", "touch /dev/shm/ops-sandbox-test".to_owned()),
        ("/proc/sys", "echo 1 > /proc/sys/vm/drop_caches".to_owned()),
        ("the host name", "hostname ops-sandbox-test".to_owned()),
        ("a link", "ip link add ops-sbx0 type dummy".to_owned()),
        (
            "a mount",
            format!("mount -t tmpfs t {}", dir.path().display()),
        ),
    ] {
        let out = run(script.clone()).await;
        assert_ne!(
            out.status,
            ExitStatus::Code(0),
            "{what}: {script} succeeded: {out:?}"
        );
    }
    assert!(!target.exists());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "seen\n");
    assert!(!std::path::Path::new("/dev/shm/ops-sandbox-test").exists());
    // Block devices read as empty, and cannot be written.
    let out = run("for d in /dev/vda /dev/sda /dev/nvme0n1; do [ -b $d ] || [ -c $d ] && head -c 16 $d | wc -c; done; true".into()).await;
    assert!(
        out.stdout.text().lines().all(|l| l.trim() == "0"),
        "{out:?}"
    );
    // The time limit and the process group still work inside it.
    let mut req = ExecRequest::script("sleep 30").with_timeout(Duration::from_secs(1));
    req.sandbox = true;
    let started = Instant::now();
    let out = local()
        .run(&req, None, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out.status, ExitStatus::TimedOut, "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
}
