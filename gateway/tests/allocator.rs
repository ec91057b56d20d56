//! The server roles re-execute themselves once with glibc's malloc settings (main.rs,
//! `tune_allocator`): checked on a real `strata server` process through /proc.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The environment of a running process, once it has re-executed (bounded wait).
fn tuned_environment(child: &Child) -> Vec<String> {
    let path = format!("/proc/{}/environ", child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let environ = std::fs::read(&path).unwrap_or_default();
        let vars: Vec<String> = environ
            .split(|&b| b == 0)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        if vars.iter().any(|v| v == "STRATA_MALLOC_TUNED=1") || Instant::now() > deadline {
            return vars;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn_server(dir: &std::path::Path, arena_max: Option<&str>) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_strata"));
    command
        .args(["server", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir)
        .env_remove("MALLOC_ARENA_MAX")
        .env_remove("MALLOC_MMAP_THRESHOLD_")
        .env_remove("MALLOC_TRIM_THRESHOLD_")
        .env_remove("STRATA_MALLOC_TUNED")
        .env("STRATA_ACCESS_KEY", "allocatortest")
        .env("STRATA_SECRET_KEY", "allocatortestsecret1234")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(value) = arena_max {
        command.env("MALLOC_ARENA_MAX", value);
    }
    command.spawn().expect("spawn strata server")
}

#[test]
fn server_runs_with_the_malloc_settings_and_keeps_the_operators_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (arena_max, expected) in [
        (None, "MALLOC_ARENA_MAX=4"),
        (Some("2"), "MALLOC_ARENA_MAX=2"),
    ] {
        let mut child = spawn_server(&dir.path().join(expected), arena_max);
        let vars = tuned_environment(&child);
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            vars.iter().any(|v| v == "STRATA_MALLOC_TUNED=1"),
            "not re-executed: {vars:?}"
        );
        assert!(vars.iter().any(|v| v == expected), "{expected}: {vars:?}");
        assert!(
            vars.iter().any(|v| v == "MALLOC_MMAP_THRESHOLD_=8388608"),
            "{vars:?}"
        );
    }
}
