//! The copy loop between the user's terminal and the PTY.
//!
//! One thread, one `poll(2)`: terminal input goes to the PTY, PTY output goes to the
//! terminal, and each read becomes an event handed to the [`Recorder`] (output read
//! within 2 ms of the previous output joins its event: [`Recorder::send_output`]).
//! Reads are up to 64 KiB, the PTY side is non-blocking (input waits in a buffer when
//! the program is not reading, so its output is never blocked by its input), and the
//! loop does no disk I/O.
//!
//! Input typed while the program's terminal hides it (a password prompt) reaches the
//! program unchanged but is not recorded: [`HiddenInput`] decides that per read, and a
//! `redacted` event with the number of bytes left out takes its place.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use schemas::EventKind;
use schemas::session::EndReason;

use crate::control::{ControlSocket, acknowledge};
use crate::pty::{self, WinSize};
use crate::recorder::Recorder;

const READ_SIZE: usize = 64 * 1024;
/// Input waiting for the program beyond this is not read from the terminal until the
/// program catches up, which keeps memory bounded when it ignores its input.
const MAX_PENDING_INPUT: usize = 1 << 20;
/// After asking the program to hang up, how long to wait before killing it.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// A run of hidden input becomes its `redacted` event as soon as anything else is
/// recorded, at the end of the session, or after this long without more hidden input, so
/// that a count never waits in memory much longer than a chunk.
const HIDDEN_RUN_IDLE: Duration = Duration::from_secs(1);

/// Signals the loop reacts to, set by handlers and read by the loop.
pub struct SignalFlags {
    /// The user's terminal changed size.
    pub winch: Arc<AtomicBool>,
    /// A child changed state.
    pub chld: Arc<AtomicBool>,
    /// The agent was asked to stop (SIGTERM, SIGHUP, SIGINT).
    pub stop: Arc<AtomicBool>,
    /// Read end of the wake-up pipe the handlers write to.
    pub wake: UnixStream,
}

impl SignalFlags {
    /// Installs the handlers.
    pub fn install() -> io::Result<SignalFlags> {
        use signal_hook::consts::*;
        let (wake, wake_tx) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        wake_tx.set_nonblocking(true)?;
        let flags = SignalFlags {
            winch: Arc::new(AtomicBool::new(false)),
            chld: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(AtomicBool::new(false)),
            wake,
        };
        signal_hook::flag::register(SIGWINCH, Arc::clone(&flags.winch))?;
        signal_hook::flag::register(SIGCHLD, Arc::clone(&flags.chld))?;
        for sig in [SIGTERM, SIGHUP, SIGINT] {
            signal_hook::flag::register(sig, Arc::clone(&flags.stop))?;
        }
        for sig in [SIGWINCH, SIGCHLD, SIGTERM, SIGHUP, SIGINT] {
            signal_hook::low_level::pipe::register(sig, wake_tx.try_clone()?)?;
        }
        Ok(flags)
    }

    fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!(io::Read::read(&mut &self.wake, &mut buf), Ok(n) if n > 0) {}
    }
}

/// Decides, for each read of the user's input, whether the program's terminal hides it,
/// and counts hidden bytes into one `redacted` event per run.
///
/// Input is hidden when the PTY has ECHO off *and* ICANON on. ECHO off alone is not
/// enough: bash's readline, vi, less and every full-screen program turn ECHO off too, but
/// they run non-canonical and echo for themselves. A password prompt (bash `read -s`,
/// getpass(3), sudo, passwd, ssh) is canonical mode without echo. Not detected, and so
/// recorded: hidden reads in non-canonical mode (`read -s -n 1`, a program that reads
/// raw keys without showing them), and anything typed through a program that puts this
/// terminal in raw mode and relays keys elsewhere (ssh, docker exec -it, tmux): the
/// remote side's password prompt is invisible from here.
///
/// The settings are read with one `tcgetattr` on the master per read (on Linux it returns
/// the slave's settings), before the bytes are passed on: once the program has them it
/// may turn echo back on. If the query fails, the last answer stands (a failure in the
/// middle of a password keeps hiding it); if it never succeeded, input is recorded. A
/// warning is logged once either way.
pub struct HiddenInput {
    enabled: bool,
    /// The answer of the last query that succeeded.
    last_hidden: bool,
    warned: bool,
    run: Option<HiddenRun>,
}

/// Hidden input not yet recorded as a `redacted` event.
struct HiddenRun {
    bytes: u64,
    /// When the first of it arrived: the time of its event.
    first_ns: u64,
    /// When the last of it arrived.
    last_at: Instant,
}

impl HiddenInput {
    /// Redacts hidden input if `enabled`; otherwise records all input as typed.
    pub fn new(enabled: bool) -> HiddenInput {
        HiddenInput {
            enabled,
            last_hidden: false,
            warned: false,
            run: None,
        }
    }

    /// Whether the terminal behind `master` hides what is typed into it now.
    fn hides(&mut self, master: RawFd) -> bool {
        if !self.enabled {
            return false;
        }
        let mut termios = std::mem::MaybeUninit::<libc::termios>::uninit();
        // SAFETY: tcgetattr fills the termios it is given when it returns 0.
        if unsafe { libc::tcgetattr(master, termios.as_mut_ptr()) } == 0 {
            // SAFETY: initialised by the successful call above.
            let lflag = unsafe { termios.assume_init() }.c_lflag;
            self.last_hidden = lflag & libc::ECHO == 0 && lflag & libc::ICANON != 0;
        } else if !self.warned {
            self.warned = true;
            let error = io::Error::last_os_error();
            tracing::warn!(
                %error,
                hiding = self.last_hidden,
                "Cannot read the settings of the program's terminal; until it can be read \
                 again, input is treated as it was last seen (recorded, unless a password \
                 prompt was open)."
            );
        }
        self.last_hidden
    }

    /// Adds `n` hidden bytes, arrived at `elapsed_ns`, to the current run.
    fn add(&mut self, n: usize, elapsed_ns: u64) {
        let run = self.run.get_or_insert(HiddenRun {
            bytes: 0,
            first_ns: elapsed_ns,
            last_at: Instant::now(),
        });
        run.bytes += n as u64;
        run.last_at = Instant::now();
    }

    /// When the current run must be recorded if nothing else ends it first.
    fn due(&self) -> Option<Instant> {
        self.run.as_ref().map(|r| r.last_at + HIDDEN_RUN_IDLE)
    }
}

/// Everything the loop works with.
pub struct Relay<'a> {
    /// The user's terminal (or whatever stdin is, when headless).
    pub input: RawFd,
    /// Where output goes.
    pub output: RawFd,
    /// True if `input` is a terminal whose size we follow.
    pub follow_size: bool,
    /// The program.
    pub child: &'a mut Child,
    /// PTY master.
    pub master: RawFd,
    /// The recorder.
    pub recorder: &'a Recorder,
    /// Marker requests.
    pub control: Option<&'a ControlSocket>,
    /// Signals.
    pub signals: &'a SignalFlags,
    /// Session start, for event times.
    pub started: Instant,
    /// What to do with input typed while the terminal hides it.
    pub hidden_input: HiddenInput,
}

/// How the session ended.
pub struct Outcome {
    /// The program's status.
    pub status: ExitStatus,
    /// Why the session ended.
    pub reason: EndReason,
    /// Detail for the `end` event (e.g. why recording failed).
    pub detail: Option<String>,
}

/// Nanoseconds since `started`, to the microsecond. Event times are recorded in whole
/// microseconds, like asciicast and `script`: the nanoseconds below that are scheduling
/// noise, not information, and at rest they cost more than a keystroke's own byte (the
/// store keeps microseconds, `schemas::arrow::TABLE_VERSION`).
pub(crate) fn elapsed(started: Instant) -> u64 {
    let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX / 1000);
    us.saturating_mul(1000)
}

fn read_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: reads into a buffer we own, within its length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn write_fd(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: writes from a buffer we own, within its length.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Writes all of `buf` to a blocking descriptor, retrying on EINTR.
fn write_all_fd(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match write_fd(fd, buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // Our stdout may be non-blocking if shared with another process; wait.
                let mut p = libc::pollfd {
                    fd,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut p, 1, 100) };
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Relay<'_> {
    /// Runs until the program is gone. Returns how it ended.
    pub fn run(mut self) -> io::Result<Outcome> {
        let outcome = self.relay();
        // Hidden input typed last is counted whichever way the loop ended.
        self.end_hidden_run();
        outcome
    }

    fn relay(&mut self) -> io::Result<Outcome> {
        pty::set_nonblocking(self.master)?;
        let mut buf = vec![0u8; READ_SIZE];
        let mut pending_input: Vec<u8> = Vec::new();
        let mut input_open = true;
        let mut output_open = true;
        let mut reason = EndReason::Exit;
        let mut detail = None;
        let mut kill_at: Option<Instant> = None;

        loop {
            if kill_at.is_none()
                && let Some(failure) = self.recorder.failure()
            {
                let msg = format!(
                    "\r\nauditty: recording failed: {failure}\r\nauditty: ending this session so that nothing goes unrecorded\r\n"
                );
                let _ = write_all_fd(self.output, msg.as_bytes());
                reason = EndReason::RecordingFailed;
                detail = Some(failure);
                kill_at = Some(self.hang_up());
            }
            if let Some(t) = kill_at
                && Instant::now() >= t
            {
                let _ = self.child.kill();
            }

            let master_events = libc::POLLIN
                | if pending_input.is_empty() {
                    0
                } else {
                    libc::POLLOUT
                };
            // On the stack: this runs twice per keystroke echo.
            let pollfd = |fd: RawFd, events| libc::pollfd {
                fd,
                events,
                revents: 0,
            };
            let mut fds = [
                pollfd(self.master, master_events),
                pollfd(self.signals.wake.as_raw_fd(), libc::POLLIN),
                pollfd(-1, 0),
                pollfd(-1, 0),
            ];
            let mut nfds = 2;
            let mut add = |fd: RawFd| {
                fds[nfds] = pollfd(fd, libc::POLLIN);
                nfds += 1;
                nfds - 1
            };
            let input_slot =
                (input_open && pending_input.len() < MAX_PENDING_INPUT).then(|| add(self.input));
            let control_slot = self.control.map(|c| add(c.listener().as_raw_fd()));
            let mut timeout = if kill_at.is_some() { 100 } else { 500 };
            if let Some(due) = self.hidden_input.due() {
                let now = Instant::now();
                if now >= due {
                    self.end_hidden_run();
                } else {
                    let ms = (due - now).as_nanos().div_ceil(1_000_000);
                    timeout = timeout.min(i32::try_from(ms).unwrap_or(i32::MAX));
                }
            }
            // Events reach the recorder in batches (see `Recorder::send`); wake up to hand
            // over a batch that has waited long enough.
            if let Some(due) = self.recorder.handover_due() {
                let now = Instant::now();
                if now >= due {
                    self.recorder.hand_over();
                } else {
                    let left = due - now;
                    // Rounded up: waking early would only spin until it is due.
                    let ms = left.as_nanos().div_ceil(1_000_000);
                    timeout = timeout.min(i32::try_from(ms).unwrap_or(i32::MAX));
                }
            }
            // SAFETY: the first nfds entries of fds are valid pollfds.
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), nfds as libc::nfds_t, timeout) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }

            if fds[1].revents != 0 {
                self.signals.drain();
            }
            if self.signals.winch.swap(false, Ordering::Relaxed)
                && self.follow_size
                && let Some(size) = pty::get_size(self.input)
            {
                self.resize(size);
            }
            if self.signals.stop.swap(false, Ordering::Relaxed) && kill_at.is_none() {
                reason = EndReason::AgentShutdown;
                kill_at = Some(self.hang_up());
            }

            // Output first: it is what the user is waiting to see.
            if fds[0].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
                && !self.pump_output(&mut buf, &mut output_open)?
            {
                break;
            }
            if fds[0].revents & libc::POLLOUT != 0 && !pending_input.is_empty() {
                match write_fd(self.master, &pending_input) {
                    Ok(n) => {
                        pending_input.drain(..n);
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                        ) => {}
                    // The program closed its terminal; its output side tells us when it is gone.
                    Err(_) => pending_input.clear(),
                }
            }
            if let Some(i) = input_slot
                && fds[i].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
            {
                match read_fd(self.input, &mut buf) {
                    Ok(0) => input_open = false,
                    Ok(n) => {
                        // Asked before the program gets the bytes: once it has read a
                        // password's Enter it may turn echo back on.
                        let hidden = self.hidden_input.hides(self.master);
                        let data = &buf[..n];
                        if pending_input.is_empty() {
                            // Most keystrokes go straight through without buffering.
                            match write_fd(self.master, data) {
                                Ok(w) => pending_input.extend_from_slice(&data[w..]),
                                Err(_) => pending_input.extend_from_slice(data),
                            }
                        } else {
                            pending_input.extend_from_slice(data);
                        }
                        if hidden {
                            self.hidden_input.add(n, elapsed(self.started));
                        } else {
                            let data = data.to_vec();
                            self.record(EventKind::Input, data);
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                        ) => {}
                    // The user's terminal is gone (hangup); the program gets SIGHUP from us.
                    Err(_) => {
                        input_open = false;
                        if kill_at.is_none() && self.follow_size {
                            reason = EndReason::AgentShutdown;
                            kill_at = Some(self.hang_up());
                        }
                    }
                }
            }
            if let (Some(i), Some(control)) = (control_slot, self.control)
                && fds[i].revents & libc::POLLIN != 0
            {
                match control.accept_label() {
                    Ok(Some((label, stream))) => {
                        self.record(EventKind::Marker, label.into_bytes());
                        acknowledge(stream);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "A marker request failed."),
                }
            }
            if self.signals.chld.swap(false, Ordering::Relaxed)
                && let Some(status) = self.child.try_wait()?
            {
                // What the program wrote just before exiting may still be in the PTY.
                while self.pump_output(&mut buf, &mut output_open)? {
                    if !self.readable(self.master) {
                        break;
                    }
                }
                return Ok(Outcome {
                    status,
                    reason,
                    detail,
                });
            }
        }
        let status = self.child.wait()?;
        Ok(Outcome {
            status,
            reason,
            detail,
        })
    }

    fn readable(&self, fd: RawFd) -> bool {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut p, 1, 0) > 0 && p.revents & libc::POLLIN != 0 }
    }

    /// Reads once from the PTY; false when the PTY is closed (the program is gone).
    fn pump_output(&mut self, buf: &mut [u8], output_open: &mut bool) -> io::Result<bool> {
        match read_fd(self.master, buf) {
            Ok(0) => Ok(false),
            Ok(n) => {
                let data = &buf[..n];
                if *output_open && write_all_fd(self.output, data).is_err() {
                    // Nobody sees the output any more; keep recording what the program does.
                    *output_open = false;
                }
                self.record_output(data);
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(true)
            }
            // EIO: every handle on the slave side is closed.
            Err(_) => Ok(false),
        }
    }

    fn resize(&mut self, size: WinSize) {
        if pty::set_size(self.master, size).is_ok() {
            self.record(
                EventKind::Resize,
                schemas::event::format_size(size.cols, size.rows),
            );
        }
    }

    /// Hands an event to the recorder, after the hidden input typed before it, so that
    /// events stay in time order.
    fn record(&mut self, kind: EventKind, data: Vec<u8>) {
        self.end_hidden_run();
        self.recorder.send(kind, elapsed(self.started), data);
    }

    /// [`Relay::record`] for the program's output, which may join the previous output
    /// event ([`Recorder::send_output`]).
    fn record_output(&mut self, data: &[u8]) {
        self.end_hidden_run();
        self.recorder.send_output(elapsed(self.started), data);
    }

    /// Records the current run of hidden input, if any, as one `redacted` event.
    fn end_hidden_run(&mut self) {
        if let Some(run) = self.hidden_input.run.take() {
            self.recorder.send(
                EventKind::Redacted,
                run.first_ns,
                run.bytes.to_string().into_bytes(),
            );
        }
    }

    /// Asks the program's process group to hang up; returns when to kill it if it does not.
    fn hang_up(&mut self) -> Instant {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: signals to the session we created; failures (already gone) are harmless.
        unsafe {
            libc::kill(-pid, libc::SIGHUP);
            libc::kill(-pid, libc::SIGCONT);
        }
        Instant::now() + SHUTDOWN_GRACE
    }
}
