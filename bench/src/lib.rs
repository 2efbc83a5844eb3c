//! What the bench binaries share: where our binaries are, and timing a child process.
//! (`auditty-bench`, `bench/kafka` and `bench/search` each print their own tables.)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// `--bin-dir` if given, else the directory of the running benchmark, which cargo builds
/// next to the binaries it measures.
pub fn bin_dir(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match flag {
        Some(d) => Ok(d),
        None => std::env::current_exe()
            .context("cannot find this executable's directory")?
            .parent()
            .map(Path::to_path_buf)
            .context("this executable has no parent directory"),
    }
}

/// Our binary `name` in `dir`, or an error saying how to build it (`build`).
pub fn binary(dir: &Path, name: &str, build: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    if !path.exists() {
        bail!("{} is missing: build it first ({build})", path.display());
    }
    Ok(path)
}

/// Runs a command to completion; returns its wall time and user+system CPU seconds.
pub fn timed(cmd: &mut Command) -> anyhow::Result<(Duration, f64)> {
    let started = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child and fills `usage`.
    let rc = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    if rc < 0 {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!("{cmd:?} failed (status {status})");
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok((wall, secs(usage.ru_utime) + secs(usage.ru_stime)))
}
