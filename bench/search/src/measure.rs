//! Timing helpers: one command's latency, time to a PTY's first output, percentiles
//! (a child's wall and CPU time is `auditty_bench::timed`).

use std::io::Read;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Runs a command as a user would (its whole output read); returns the time from spawn
/// to exit and its stdout. Exit status 1 ("nothing found") is a result; 2 is an error.
pub fn latency(cmd: &mut Command) -> anyhow::Result<(Duration, bool, Vec<u8>)> {
    let started = Instant::now();
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    let took = started.elapsed();
    match out.status.code() {
        Some(0) => Ok((took, true, out.stdout)),
        Some(1) => Ok((took, false, out.stdout)),
        _ => bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Spawns `program args` on a new PTY; returns the time to its first output byte and to
/// the first appearance of `text` in its output, then kills it.
pub fn first_output(
    program: &std::path::Path,
    args: &[String],
    env: &[(&'static str, String)],
    text: &[u8],
    timeout: Duration,
) -> anyhow::Result<(Duration, Duration)> {
    let size = terminal::WinSize {
        cols: 120,
        rows: 40,
    };
    let started = Instant::now();
    let mut spawned = terminal::pty::spawn(
        program.as_os_str(),
        args,
        &[("TERM", "xterm-256color".to_string())]
            .into_iter()
            .chain(env.iter().cloned())
            .collect::<Vec<_>>(),
        size,
    )
    .with_context(|| format!("cannot start {} on a PTY", program.display()))?;
    let fd = spawned.master.as_raw_fd();
    let mut file = std::fs::File::from(spawned.master.try_clone()?);
    let (mut first, mut seen) = (None, Vec::new());
    let result = loop {
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            break Err(anyhow::anyhow!(
                "no {:?} from {} within {timeout:?}; got {:?}",
                String::from_utf8_lossy(text),
                program.display(),
                String::from_utf8_lossy(&seen)
            ));
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, left.as_millis().max(1) as i32) };
        if rc <= 0 {
            continue;
        }
        let mut buf = [0u8; 65536];
        let n = match file.read(&mut buf) {
            Ok(0) | Err(_) => {
                break Err(anyhow::anyhow!(
                    "{} ended before {:?}; output {:?}",
                    program.display(),
                    String::from_utf8_lossy(text),
                    String::from_utf8_lossy(&seen)
                ));
            }
            Ok(n) => n,
        };
        let at = started.elapsed();
        first.get_or_insert(at);
        seen.extend_from_slice(&buf[..n]);
        if seen.windows(text.len()).any(|w| w == text) {
            break Ok((first.unwrap_or(at), at));
        }
    };
    let _ = spawned.child.kill();
    let _ = spawned.child.wait();
    result
}

/// p50, p99 and the maximum of `samples` (sorted here), in ms.
pub fn percentiles(samples: &mut [Duration]) -> (f64, f64, f64) {
    if samples.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() - 1) as f64 * q).round() as usize;
        samples[i].as_secs_f64() * 1e3
    };
    (at(0.5), at(0.99), at(1.0))
}
