//! `auditty-bench --quick` still runs end to end: every recorder that is installed, all
//! three measurements, the targets table. No timing is asserted: CI machines are noisy,
//! and the numbers are for people to read (bench/README.md).

use std::process::Command;

use auditty_tests::{bin, show};

#[test]
fn quick_bench_prints_every_table() {
    let work = tempfile::tempdir().expect("temp dir");
    let out = Command::new(bin("auditty-bench"))
        .arg("--quick")
        .arg("--work-dir")
        .arg(work.path())
        .output()
        .expect("run auditty-bench");
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
