//! `troupe bench`'s child-process protocol and the `TROUPE_WORKERS`
//! override, through the `troupe` binary. (The full side-by-side run takes
//! minutes and measures time: it is not a test.)

use std::process::{Command, Output};

fn troupe(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_troupe"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("troupe runs")
}

/// A memory job runs in a child process and prints bytes per idle unit: a
/// Troupe process (isolated and lightweight) blocked in `receive`, and a raw
/// mlua coroutine.
#[test]
fn memory_jobs_print_bytes_per_process() {
    for job in ["troupe", "troupe-lightweight", "mlua-coroutine"] {
        let out = troupe(&["bench", "--quick", "--child", job], &[]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{job}: {out:?}");
        let bytes: f64 = stdout.trim().parse().expect("one number");
        assert!(bytes > 0.0, "{job}: an idle unit takes memory, got {bytes}");
    }
}

/// `TROUPE_WORKERS` is read by every runtime: one worker runs a chunk; a
/// value that is not a positive integer is an error naming the variable.
#[test]
fn troupe_workers_is_read_by_every_runtime() {
    let ok = troupe(
        &["eval", "--lang", "lua", "return 6 * 7"],
        &[("TROUPE_WORKERS", "1")],
    );
    assert!(ok.status.success(), "{ok:?}");
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "42");
    for bad in ["0", "many", ""] {
        let out = troupe(
            &["eval", "--lang", "lua", "return 1"],
            &[("TROUPE_WORKERS", bad)],
        );
        assert_eq!(out.status.code(), Some(1), "{bad:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with("INVALID: ") && stderr.contains("TROUPE_WORKERS"),
            "{bad:?}: {stderr}"
        );
    }
}

/// `troupe bench --cluster` needs the `cluster` feature; with it, a
/// machine without `etcd` and `erl` still gets the table, with a note for
/// each side left out (an empty `PATH` stands for such a machine).
#[test]
fn the_cluster_bench_leaves_out_what_is_not_installed() {
    let empty = tempfile::tempdir().expect("temp dir");
    let path = empty.path().to_str().expect("a UTF-8 path");
    let out = troupe(&["bench", "--cluster", "--quick"], &[("PATH", path)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if cfg!(feature = "cluster") {
        assert!(out.status.success(), "{out:?}");
        assert!(stdout.contains("| remote ping-pong round trip"), "{stdout}");
        assert!(stdout.contains("`erl`/`erlc` not found"), "{stdout}");
        assert!(stdout.contains("`etcd` not found"), "{stdout}");
    } else {
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            stderr.starts_with("UNAVAILABLE: ") && stderr.contains("`cluster` feature"),
            "{stderr}"
        );
    }
}
