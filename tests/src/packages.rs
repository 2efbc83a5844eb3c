//! The Debian packages `scripts/package-deb` builds, for the tests that install them
//! (package.rs on this machine, systemd_vm.rs in a VM).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{bin_dir, show};

/// The packages `scripts/package-deb` builds, dependents before what they depend on (the
/// order `dpkg --purge` takes them in).
pub const PACKAGES: [&str; 4] = [
    "auditty-agent",
    "auditty-ingest",
    "auditty-replay",
    "auditty-common",
];

/// Builds the four packages from the debug binaries the test run already has, into
/// `out`; returns the .deb files.
pub fn build_packages(out: &Path) -> Vec<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = bin_dir().parent().expect("target dir").to_path_buf();
    let mut cmd = Command::new(workspace.join("scripts/package-deb"));
    cmd.args(["--profile", "debug", "--no-build", "--out"])
        .arg(out)
        .env("CARGO_TARGET_DIR", &target);
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(output.status.success(), "{cmd:?} failed: {}", show(&output));
    let mut debs: Vec<PathBuf> = std::fs::read_dir(out)
        .expect("read out dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    debs.sort();
    assert_eq!(debs.len(), PACKAGES.len(), "{debs:?}");
    debs
}
