//! Running one recorder on a PTY the harness owns, and the three measurements.
//!
//! The harness is the terminal: it holds the PTY master, so each recorder sees a real
//! terminal on its stdin/stdout (and puts it in raw mode, as it would for a user). A
//! drain thread reads everything the recorder prints, as a fast terminal emulator would.
//! CPU is the recorder's whole process tree: `wait4` returns the rusage of the child plus
//! every descendant it waited for (the recorded command included, which is the same for
//! every recorder).

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use terminal::fd::{self, ReadOutcome};
use terminal::pty::{self, WinSize};

/// The terminal every recorder gets.
pub const SIZE: WinSize = WinSize {
    cols: 120,
    rows: 40,
};

/// Environment given to every recorder (added to the harness's own).
pub fn env(home: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("HOME", home.display().to_string()),
        ("TERM", "xterm-256color".to_string()),
        ("SHELL", "/bin/sh".to_string()),
        ("LANG", "C.UTF-8".to_string()),
        ("PS1", PROMPT.to_string()),
        // Nested-recording guards of the peers must not trigger if the harness itself is
        // run inside a recorded session.
        ("ASCIINEMA_REC", String::new()),
    ]
}

/// The prompt of the interactive session's shell.
pub const PROMPT: &str = "bench$ ";

/// A recorder running on a harness-owned PTY.
struct Session {
    pid: libc::pid_t,
    master: OwnedFd,
    started: Instant,
}

impl Session {
    fn spawn(
        program: &OsString,
        args: &[OsString],
        env: &[(&str, String)],
    ) -> anyhow::Result<Session> {
        let started = Instant::now();
        let spawned = pty::spawn(program, args, env, SIZE)
            .with_context(|| format!("cannot start {program:?} on a PTY"))?;
        // We reap with wait4 (for the rusage), not through `Child`.
        let pid = spawned.child.id() as libc::pid_t;
        Ok(Session {
            pid,
            master: spawned.master,
            started,
        })
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.master.as_fd()
    }
}

/// Exit status and CPU of a finished process tree.
pub struct Reaped {
    /// Raw wait status.
    pub status: i32,
    /// User + system CPU of the process and its waited-for descendants.
    pub cpu: Duration,
}

fn tv(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

/// Waits for `pid` (at most `timeout`, then kills its process group) and returns its
/// status and the CPU of its whole tree.
fn reap(pid: libc::pid_t, timeout: Duration) -> anyhow::Result<Reaped> {
    let deadline = Instant::now() + timeout;
    let mut killed = false;
    loop {
        let mut status = 0;
        // SAFETY: zeroed rusage is a valid out-parameter.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 on our own child with valid out-pointers.
        let rc = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if rc == pid {
            if killed {
                bail!("process {pid} did not exit within {timeout:?} and was killed");
            }
            return Ok(Reaped {
                status,
                cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
            });
        }
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e).context("wait4");
            }
        }
        if !killed && Instant::now() > deadline {
            // SAFETY: signals to the session/process group we started.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
                libc::kill(pid, libc::SIGKILL);
            }
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn write_all(fd: BorrowedFd<'_>, data: &[u8]) -> anyhow::Result<()> {
    fd::write_all(fd, data).context("write to the PTY")
}

/// Reads everything the recorder prints until the PTY closes or `stop` is set; returns
/// the byte count and when the last byte (or the close) was seen.
fn drain(master: OwnedFd, stop: Arc<AtomicBool>) -> JoinHandle<std::io::Result<(u64, Instant)>> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        let mut last = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            // The wait only lets a stuck run be abandoned; reads are back to back.
            match fd::read_within(master.as_fd(), &mut buf, Duration::from_millis(200))? {
                ReadOutcome::NotReady => {}
                ReadOutcome::Data(n) => {
                    total += n as u64;
                    last = Instant::now();
                }
                ReadOutcome::Closed => {
                    last = Instant::now();
                    break;
                }
            }
        }
        Ok((total, last))
    })
}

/// One bulk-output run.
pub struct BulkRun {
    /// Bytes the terminal received.
    pub bytes: u64,
    /// From spawn to the last byte.
    pub wall: Duration,
    /// CPU of the recorder's process tree.
    pub cpu: Duration,
    /// CPU time the whole machine was busy from spawn until what the run wrote was on
    /// disk: the recorder's tree, the kernel's PTY and writeback workers, and the
    /// harness's own drain (the same for every recorder).
    pub machine_cpu: Duration,
}

/// Runs a command to completion under a recorder, draining its output.
pub fn bulk(
    program: &OsString,
    args: &[OsString],
    env: &[(&str, String)],
    timeout: Duration,
) -> anyhow::Result<BulkRun> {
    // What earlier runs left dirty goes to disk first, so that this run is charged only
    // for its own writeback.
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let before = CpuTimes::now();
    let s = Session::spawn(program, args, env)?;
    let stop = Arc::new(AtomicBool::new(false));
    // The drain thread reads through a handle of its own on the master.
    let drainer = drain(
        s.master.try_clone().context("duplicating the PTY master")?,
        Arc::clone(&stop),
    );
    let reaped = reap(s.pid, timeout);
    // The recorder is gone; whatever it wrote is in the PTY already. Give the drain a
    // moment to reach the close, then stop it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !drainer.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    stop.store(true, Ordering::Relaxed);
    let (bytes, last) = drainer
        .join()
        .map_err(|_| anyhow::anyhow!("drain thread panicked"))?
        .context("reading the PTY")?;
    let reaped = reaped?;
    if reaped.status != 0 {
        bail!(
            "{program:?} exited with wait status {:#x} after {bytes} bytes",
            reaped.status
        );
    }
    // A recorder pays for getting its record to disk whether it syncs as it goes
    // (auditty) or leaves the writing to the kernel's threads after it exits (script,
    // tlog and asciinema never sync): the process tree's CPU sees only the former.
    // SAFETY: as above.
    unsafe { libc::sync() };
    Ok(BulkRun {
        bytes,
        wall: last.duration_since(s.started),
        cpu: reaped.cpu,
        machine_cpu: before.busy_until(&CpuTimes::now()),
    })
}

/// Reads into `seen` until `done(seen)` holds; fails after `timeout`.
fn read_until(
    fd: BorrowedFd<'_>,
    seen: &mut Vec<u8>,
    timeout: Duration,
    what: &str,
    done: impl Fn(&[u8]) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    while !done(seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!(
                "timed out waiting for {what}; the terminal shows {:?}",
                String::from_utf8_lossy(&seen[seen.len().saturating_sub(300)..])
            );
        }
        match fd::read_within(fd, &mut buf, left.min(Duration::from_secs(1)))? {
            ReadOutcome::NotReady => {}
            ReadOutcome::Data(n) => seen.extend_from_slice(&buf[..n]),
            ReadOutcome::Closed => bail!(
                "the recorder exited while waiting for {what}; it printed {:?}",
                String::from_utf8_lossy(&seen[seen.len().saturating_sub(300)..])
            ),
        }
    }
    Ok(())
}

/// True once the terminal the recorder was given is in raw mode without echo, i.e. the
/// recorder has taken it over. (On Linux the master reports the PTY's termios.)
fn is_raw(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: zeroed termios is a valid out-parameter for tcgetattr.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: tcgetattr on our PTY master.
    unsafe {
        libc::tcgetattr(fd.as_raw_fd(), &mut t) == 0 && t.c_lflag & (libc::ICANON | libc::ECHO) == 0
    }
}

fn wait_raw(fd: BorrowedFd<'_>, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !is_raw(fd) {
        if Instant::now() > deadline {
            bail!("the recorder never put its terminal in raw mode");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Ends the latency session: Ctrl-C to `cat` (its terminal keeps ISIG), then reads until
/// the recorder closes the terminal, and reaps it. Closing the master instead is not
/// enough: `script` keeps running while its child lives. A recorder that does not end
/// is killed; the samples are good either way, so that is only reported.
fn interrupt(s: Session) -> anyhow::Result<()> {
    write_all(s.fd(), b"\x03")?;
    let mut rest = Vec::new();
    // Fails when the PTY closes, which is what we wait for.
    let _ = read_until(s.fd(), &mut rest, Duration::from_secs(5), "exit", |_| false);
    let Session { pid, master, .. } = s;
    if let Err(e) = reap(pid, Duration::from_secs(5)) {
        eprintln!("auditty-bench: after the latency test: {e:#}");
    }
    drop(master);
    Ok(())
}

/// The shell command of the latency test: `cat` echoes what it is typed, byte by byte
/// (no line buffering, no echo by the terminal; signals still work, to end it).
pub const LATENCY_CMD: &str = "stty -icanon -echo min 1 time 0; printf READY; exec cat";

/// `cat` under one recorder, ready to echo what it is typed.
///
/// The latency test opens one per recorder and takes their samples in turn (sample 1 of
/// every recorder, then sample 2, …), like the throughput runs: on a shared or virtual
/// machine, stalls from elsewhere (another tenant's CPU steal, a build) come in bursts of
/// seconds, and back-to-back blocks of 10,000 samples put a burst on one recorder's p99
/// only. Taken in turn, every recorder meets the same bursts.
pub struct EchoSession {
    session: Session,
    buf: Vec<u8>,
}

impl EchoSession {
    /// Starts the recorder and waits until `cat` runs on a raw terminal with nothing left
    /// to read.
    pub fn start(
        program: &OsString,
        args: &[OsString],
        env: &[(&str, String)],
    ) -> anyhow::Result<EchoSession> {
        let session = Session::spawn(program, args, env)?;
        let fd = session.fd();
        let mut seen = Vec::new();
        read_until(fd, &mut seen, Duration::from_secs(30), "READY", |b| {
            b.windows(5).any(|w| w == b"READY")
        })?;
        wait_raw(fd, Duration::from_secs(10))?;
        let mut buf = vec![0u8; 4096];
        // Let start-up output settle so it is not mistaken for an echo.
        loop {
            match fd::read_within(fd, &mut buf, Duration::from_millis(100))? {
                ReadOutcome::NotReady => break,
                ReadOutcome::Data(_) => {}
                ReadOutcome::Closed => bail!("the recorder exited before the test started"),
            }
        }
        Ok(EchoSession { session, buf })
    }

    /// Types one byte (sample `i`) and times its echo.
    pub fn sample(&mut self, i: usize) -> anyhow::Result<Duration> {
        let fd = self.session.fd();
        let byte = b'a' + (i % 26) as u8;
        let t0 = Instant::now();
        write_all(fd, &[byte])?;
        loop {
            match fd::read_within(fd, &mut self.buf, Duration::from_secs(5))? {
                ReadOutcome::NotReady => bail!("no echo of sample {i} within 5 s"),
                ReadOutcome::Data(n) if self.buf[..n].contains(&byte) => break,
                ReadOutcome::Data(_) => {}
                ReadOutcome::Closed => bail!("the recorder exited during sample {i}"),
            }
        }
        Ok(t0.elapsed())
    }

    /// Ends `cat` and the recorder.
    pub fn finish(self) -> anyhow::Result<()> {
        interrupt(self.session)
    }
}

/// Commands typed into the interactive session, in turn: a shell user's small commands.
const COMMANDS: &[&str] = &[
    "echo hello world",
    "pwd",
    "ls /usr",
    "printf '%s\\n' alpha beta gamma",
    "seq 1 12",
    "echo $((6 * 7))",
    "uname -s",
    "ls -l /etc/hostname /etc/passwd",
    "true",
    "wc -l /etc/passwd",
    "grep -c root /etc/passwd",
    "cd /tmp && cd -",
];

/// An interactive-style session: `bash` under the recorder, `commands` commands typed
/// byte by byte (each byte waits for its echo, as a typist sees it), each followed by
/// Enter and the next prompt. Returns how long it took.
pub fn interactive(
    program: &OsString,
    args: &[OsString],
    env: &[(&str, String)],
    commands: usize,
) -> anyhow::Result<Duration> {
    let s = Session::spawn(program, args, env)?;
    let fd = s.fd();
    let prompt = PROMPT.as_bytes();
    let ends_with_prompt = |b: &[u8]| b.ends_with(prompt);
    let mut seen = Vec::new();
    read_until(
        fd,
        &mut seen,
        Duration::from_secs(30),
        "the prompt",
        ends_with_prompt,
    )?;
    wait_raw(fd, Duration::from_secs(10))?;
    for i in 0..commands {
        let line = COMMANDS[i % COMMANDS.len()];
        for &byte in line.as_bytes() {
            seen.clear();
            write_all(fd, &[byte])?;
            read_until(fd, &mut seen, Duration::from_secs(10), "an echo", |b| {
                b.contains(&byte)
            })?;
        }
        seen.clear();
        write_all(fd, b"\r")?;
        read_until(
            fd,
            &mut seen,
            Duration::from_secs(20),
            "the prompt",
            ends_with_prompt,
        )?;
    }
    write_all(fd, b"exit\r")?;
    let mut rest = Vec::new();
    // Reads until the PTY closes (read_until fails then), so the recorder can finish.
    let _ = read_until(fd, &mut rest, Duration::from_secs(30), "exit", |_| false);
    let took = s.started.elapsed();
    let Session { pid, master, .. } = s;
    let reaped = reap(pid, Duration::from_secs(30))?;
    drop(master);
    if reaped.status != 0 {
        bail!(
            "{program:?} exited with wait status {:#x} after the interactive session",
            reaped.status
        );
    }
    Ok(took)
}

/// The shell command of the interactive session.
pub const INTERACTIVE_CMD: &str = "exec bash --norc --noprofile -i";

/// The machine's CPU time counters (`/proc/stat`, all CPUs), to tell how busy the machine
/// was, and how much time its hypervisor gave to others (steal), while a phase ran.
#[derive(Clone, Copy, Debug)]
pub struct CpuTimes {
    /// user, nice, system, idle, iowait, irq, softirq, steal (in clock ticks).
    ticks: [u64; 8],
}

/// What the machine did during a phase, in percent of all its CPU time.
#[derive(Clone, Copy, Debug)]
pub struct MachineShare {
    /// Busy (everything but idle, iowait and steal).
    pub busy_pct: f64,
    /// Taken by the hypervisor for other guests.
    pub steal_pct: f64,
}

impl CpuTimes {
    /// The counters now; all zero where `/proc/stat` cannot be read (not Linux).
    pub fn now() -> CpuTimes {
        let mut ticks = [0u64; 8];
        if let Ok(stat) = std::fs::read_to_string("/proc/stat")
            && let Some(line) = stat.lines().find(|l| l.starts_with("cpu "))
        {
            for (t, field) in ticks.iter_mut().zip(line.split_whitespace().skip(1)) {
                *t = field.parse().unwrap_or(0);
            }
        }
        CpuTimes { ticks }
    }

    /// CPU time the machine spent busy (user, nice, system, irq, softirq; all CPUs) from
    /// `self` until `later`.
    pub fn busy_until(&self, later: &CpuTimes) -> Duration {
        let d = |i: usize| later.ticks[i].saturating_sub(self.ticks[i]);
        let ticks = d(0) + d(1) + d(2) + d(5) + d(6);
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let hz = if hz > 0 { hz as f64 } else { 100.0 };
        Duration::from_secs_f64(ticks as f64 / hz)
    }

    /// What the machine did from `self` until now; `None` if nothing could be read.
    pub fn since(&self) -> Option<MachineShare> {
        let now = CpuTimes::now();
        let d: Vec<u64> = now
            .ticks
            .iter()
            .zip(self.ticks)
            .map(|(a, b)| a.saturating_sub(b))
            .collect();
        let total: u64 = d.iter().sum();
        if total == 0 {
            return None;
        }
        let pct = |t: u64| 100.0 * t as f64 / total as f64;
        let (idle, iowait, steal) = (d[3], d[4], d[7]);
        Some(MachineShare {
            busy_pct: pct(total - idle - iowait - steal),
            steal_pct: pct(steal),
        })
    }
}
