//! `auditty-bench --quick` still runs end to end: every recorder that is installed, all
//! three measurements, the targets table. No timing is asserted: CI machines are noisy,
//! and the numbers are for people to read (bench/README.md).

use std::ffi::OsStr;
use std::process::{Command, Output};

use auditty_tests::{bin, bin_dir, show};

/// `auditty-bench --quick` with `args`.
fn quick_bench<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Output {
    Command::new(bin("auditty-bench"))
        .arg("--quick")
        .args(args)
        .output()
        .expect("run auditty-bench")
}

/// The bench refused to run, saying `why` on stderr.
fn assert_refused(out: &Output, why: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains(why),
        "expected a failure saying {why:?}\n{}",
        show(out)
    );
}

#[test]
fn quick_bench_prints_every_table() {
    let work = tempfile::tempdir().expect("temp dir");
    let out = quick_bench([OsStr::new("--work-dir"), work.path().as_os_str()]);
    assert!(
        out.status.success(),
        "auditty-bench --quick failed\n{}",
        show(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for header in [
        "## Throughput and CPU: seq 1 ",
        "## Throughput and CPU: cat ",
        "## Keystroke echo latency",
        "## Storage: bytes at rest",
        "## Targets",
    ] {
        assert!(stdout.contains(header), "no {header:?} in\n{}", show(&out));
    }
    // auditty and the bare PTY always run; the peers run when installed.
    for row in ["| auditty |", "| bare-pty |", "Parquet store"] {
        assert!(stdout.contains(row), "no {row:?} in\n{}", show(&out));
    }
}

/// `--baseline` runs a second build beside auditty, and `--phases` skips what was not
/// asked for: the A/B of two builds that bench/README.md describes.
#[test]
fn quick_bench_compares_with_a_baseline_build() {
    let work = tempfile::tempdir().expect("temp dir");
    let bins = bin_dir();
    let out = quick_bench([
        OsStr::new("--work-dir"),
        work.path().as_os_str(),
        OsStr::new("--only"),
        OsStr::new("bare-pty,auditty,auditty-base"),
        OsStr::new("--baseline"),
        bins.as_os_str(),
        OsStr::new("--phases"),
        OsStr::new("latency,storage"),
    ]);
    assert!(
        out.status.success(),
        "auditty-bench --baseline failed\n{}",
        show(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("## Throughput"),
        "throughput ran although not asked for\n{}",
        show(&out)
    );
    for text in [
        "## Keystroke echo latency",
        "| auditty-base | ",
        "| interactive: 8 typed commands | auditty-base | Parquet store |",
    ] {
        assert!(stdout.contains(text), "no {text:?} in\n{}", show(&out));
    }
    assert!(
        !stdout.contains("| bulk: "),
        "bulk sessions reported without their throughput runs\n{}",
        show(&out)
    );

    // Asking for the baseline recorder without a baseline build is an error that says so.
    let out = quick_bench(["--only", "auditty-base", "--phases", "latency"]);
    assert_refused(&out, "--baseline DIR");

    // So is a baseline directory without an agent in it.
    let empty = tempfile::tempdir().expect("temp dir");
    let out = quick_bench([
        OsStr::new("--baseline"),
        empty.path().as_os_str(),
        OsStr::new("--phases"),
        OsStr::new("latency"),
    ]);
    assert_refused(&out, "auditty-agent is missing");
}
