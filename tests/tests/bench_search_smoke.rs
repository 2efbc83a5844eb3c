//! `auditty-bench-search --quick` still runs end to end: 200 generated sessions, an index
//! build, a few searches, listings and playback starts with the debug `replay`, and 4
//! viewers fetching 2 casts each from the debug `replay serve`. No timing is asserted:
//! the numbers are for people to read (bench/README.md).

use std::process::Command;

use auditty_tests::{bin, show};

#[test]
fn quick_search_bench_prints_every_table() {
    let out = Command::new(bin("auditty-bench-search"))
        .arg("--quick")
        .output()
        .expect("run auditty-bench-search");
    assert!(
        out.status.success(),
        "auditty-bench-search --quick failed\n{}",
        show(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for header in [
        "## Index build",
        "## `replay search` latency",
        "## `replay ls --user U --since T` latency",
        "## `replay play <id>`: time to the first frame",
        "## `replay serve`: 4 concurrent viewers, cast fetches",
        "## Targets",
    ] {
        assert!(stdout.contains(header), "no {header:?} in\n{}", show(&out));
    }
}
