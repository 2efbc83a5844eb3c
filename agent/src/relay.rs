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
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, killpg};
use nix::sys::termios::{LocalFlags, tcgetattr};
use nix::unistd::Pid;
use schemas::EventKind;
use schemas::session::EndReason;
use terminal::fd::{self, Readiness};
use terminal::pty::{self, WinSize};

use crate::control::{ControlSocket, acknowledge};
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
#[derive(Debug, PartialEq, Eq)]
struct HiddenRun {
    bytes: u64,
    /// When the first of it arrived: the time of its event.
    first_ns: u64,
    /// When the last of it arrived.
    last_at: Instant,
}

/// Whether a terminal with these local modes hides what is typed into it: echo off in
/// canonical mode, as at a password prompt.
fn hides_typing(modes: LocalFlags) -> bool {
    !modes.contains(LocalFlags::ECHO) && modes.contains(LocalFlags::ICANON)
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
    fn hides(&mut self, master: BorrowedFd<'_>) -> bool {
        if !self.enabled {
            return false;
        }
        self.decide(tcgetattr(master).map(|t| t.local_flags))
    }

    /// [`HiddenInput::hides`], given what the query of the terminal's local modes returned.
    fn decide(&mut self, modes: Result<LocalFlags, Errno>) -> bool {
        if !self.enabled {
            return false;
        }
        match modes {
            Ok(modes) => self.last_hidden = hides_typing(modes),
            Err(errno) if !self.warned => {
                self.warned = true;
                let error = io::Error::from(errno);
                tracing::warn!(
                    %error,
                    hiding = self.last_hidden,
                    "Cannot read the settings of the program's terminal; until it can be read \
                     again, input is treated as it was last seen (recorded, unless a password \
                     prompt was open)."
                );
            }
            Err(_) => {}
        }
        self.last_hidden
    }

    /// Adds `n` hidden bytes, arrived at `elapsed_ns` (`now`), to the current run.
    fn add(&mut self, n: usize, elapsed_ns: u64, now: Instant) {
        let run = self.run.get_or_insert(HiddenRun {
            bytes: 0,
            first_ns: elapsed_ns,
            last_at: now,
        });
        run.bytes += n as u64;
        run.last_at = now;
    }

    /// When the current run must be recorded if nothing else ends it first.
    fn due(&self) -> Option<Instant> {
        self.run.as_ref().map(|r| r.last_at + HIDDEN_RUN_IDLE)
    }

    /// Ends the current run: what its `redacted` event says.
    fn take_run(&mut self) -> Option<HiddenRun> {
        self.run.take()
    }
}

/// Everything the loop works with.
pub struct Relay<'a> {
    /// The user's terminal (or whatever stdin is, when headless).
    pub input: BorrowedFd<'a>,
    /// Where output goes.
    pub output: BorrowedFd<'a>,
    /// True if `input` is a terminal whose size we follow.
    pub follow_size: bool,
    /// The program.
    pub child: &'a mut Child,
    /// PTY master.
    pub master: BorrowedFd<'a>,
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

/// What the loop carries from one wake-up to the next.
struct LoopState {
    /// Every read goes here first.
    buf: Vec<u8>,
    /// Input the program has not taken yet.
    pending_input: Vec<u8>,
    input_open: bool,
    /// False once nobody sees the output any more.
    output_open: bool,
    reason: EndReason,
    detail: Option<String>,
    /// Once the program was asked to hang up: when to kill it.
    kill_at: Option<Instant>,
}

impl LoopState {
    fn new() -> LoopState {
        LoopState {
            buf: vec![0u8; READ_SIZE],
            pending_input: Vec::new(),
            input_open: true,
            output_open: true,
            reason: EndReason::Exit,
            detail: None,
            kill_at: None,
        }
    }

    fn outcome(self, status: ExitStatus) -> Outcome {
        Outcome {
            status,
            reason: self.reason,
            detail: self.detail,
        }
    }
}

/// Which of the polled descriptors need attention.
struct Ready {
    /// The PTY has output (or hung up).
    output: bool,
    /// The PTY takes input again.
    master_writable: bool,
    /// A signal handler wrote to the wake-up pipe.
    woken: bool,
    /// The user typed (or their terminal hung up).
    input: bool,
    /// A marker request is waiting.
    control: bool,
}

/// Both "there is data" and "there will never be any": either way, a read tells which.
const READ_EVENTS: PollFlags = PollFlags::POLLIN
    .union(PollFlags::POLLHUP)
    .union(PollFlags::POLLERR);

impl Relay<'_> {
    /// Runs until the program is gone. Returns how it ended.
    pub fn run(mut self) -> io::Result<Outcome> {
        let outcome = self.relay();
        // Hidden input typed last is counted whichever way the loop ended.
        self.end_hidden_run();
        outcome
    }

    fn relay(&mut self) -> io::Result<Outcome> {
        pty::set_nonblocking(self.master.as_raw_fd())?;
        let mut s = LoopState::new();
        loop {
            self.check_recording(&mut s);
            let timeout = self.next_timeout(&s);
            let Some(ready) = self.wait(&s, timeout)? else {
                continue;
            };
            self.handle_signals(&mut s, ready.woken);
            // Output first: it is what the user is waiting to see.
            if ready.output && !self.pump_output(&mut s.buf, &mut s.output_open)? {
                break;
            }
            if ready.master_writable && !s.pending_input.is_empty() {
                self.write_pending_input(&mut s.pending_input);
            }
            if ready.input {
                self.read_input(&mut s);
            }
            if ready.control {
                self.accept_marker();
            }
            if let Some(status) = self.reap(&mut s)? {
                return Ok(s.outcome(status));
            }
        }
        let status = self.child.wait()?;
        Ok(s.outcome(status))
    }

    /// Ends the session if recording failed, and kills the program once it has had its
    /// time to hang up.
    fn check_recording(&mut self, s: &mut LoopState) {
        if s.kill_at.is_none()
            && let Some(failure) = self.recorder.failure()
        {
            let msg = format!(
                "\r\nauditty: recording failed: {failure}\r\nauditty: ending this session so that nothing goes unrecorded\r\n"
            );
            let _ = fd::write_all(self.output, msg.as_bytes());
            s.reason = EndReason::RecordingFailed;
            s.detail = Some(failure);
            s.kill_at = Some(self.hang_up());
        }
        if let Some(t) = s.kill_at
            && Instant::now() >= t
        {
            let _ = self.child.kill();
        }
    }

    /// How long the next wait may last. A run of hidden input or a batch of events that
    /// is already due is handed on here; one that is not bounds the wait.
    fn next_timeout(&mut self, s: &LoopState) -> PollTimeout {
        let mut timeout = Duration::from_millis(if s.kill_at.is_some() { 100 } else { 500 });
        if let Some(due) = self.hidden_input.due() {
            let now = Instant::now();
            if now >= due {
                self.end_hidden_run();
            } else {
                timeout = timeout.min(due - now);
            }
        }
        // Events reach the recorder in batches (see `Recorder::send`); wake up to hand
        // over a batch that has waited long enough.
        timeout = self.recorder.hand_over_if_due(timeout);
        // Rounded up: waking early would only spin until it is due.
        let ms = timeout.as_nanos().div_ceil(1_000_000);
        PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
    }

    /// Waits for the PTY, the wake-up pipe, the user's input (unless too much waits for
    /// the program already) and marker requests. `None` if a signal interrupted the wait.
    fn wait(&self, s: &LoopState, timeout: PollTimeout) -> io::Result<Option<Ready>> {
        let mut master_events = PollFlags::POLLIN;
        if !s.pending_input.is_empty() {
            master_events |= PollFlags::POLLOUT;
        }
        // On the stack: this runs twice per keystroke echo. Only the first `nfds` entries
        // are polled; the others are placeholders.
        let unused = PollFd::new(self.master, PollFlags::empty());
        let mut fds = [
            PollFd::new(self.master, master_events),
            PollFd::new(self.signals.wake.as_fd(), PollFlags::POLLIN),
            unused,
            unused,
        ];
        let mut nfds = 2;
        let mut add = |fd| {
            fds[nfds] = PollFd::new(fd, PollFlags::POLLIN);
            nfds += 1;
            nfds - 1
        };
        let input_slot =
            (s.input_open && s.pending_input.len() < MAX_PENDING_INPUT).then(|| add(self.input));
        let control_slot = self.control.map(|c| add(c.listener().as_fd()));
        match poll(&mut fds[..nfds], timeout) {
            Ok(_) => {}
            Err(Errno::EINTR) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let revents = |i: usize| fds[i].revents().unwrap_or(PollFlags::empty());
        Ok(Some(Ready {
            output: revents(0).intersects(READ_EVENTS),
            master_writable: revents(0).contains(PollFlags::POLLOUT),
            woken: !revents(1).is_empty(),
            input: input_slot.is_some_and(|i| revents(i).intersects(READ_EVENTS)),
            control: control_slot.is_some_and(|i| revents(i).contains(PollFlags::POLLIN)),
        }))
    }

    /// Follows a resize of the user's terminal, and starts hanging up when asked to stop.
    fn handle_signals(&mut self, s: &mut LoopState, woken: bool) {
        if woken {
            self.signals.drain();
        }
        if self.signals.winch.swap(false, Ordering::Relaxed)
            && self.follow_size
            && let Some(size) = pty::get_size(self.input.as_raw_fd())
        {
            self.resize(size);
        }
        if self.signals.stop.swap(false, Ordering::Relaxed) && s.kill_at.is_none() {
            s.reason = EndReason::AgentShutdown;
            s.kill_at = Some(self.hang_up());
        }
    }

    /// Passes on as much of the input the program has not taken yet as it takes now.
    fn write_pending_input(&self, pending_input: &mut Vec<u8>) {
        match fd::write(self.master, pending_input) {
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

    /// Reads once from the user's terminal.
    fn read_input(&mut self, s: &mut LoopState) {
        match fd::read(self.input, &mut s.buf) {
            Ok(0) => s.input_open = false,
            Ok(n) => self.forward_input(&s.buf[..n], &mut s.pending_input),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            // The user's terminal is gone (hangup); the program gets SIGHUP from us.
            Err(_) => {
                s.input_open = false;
                if s.kill_at.is_none() && self.follow_size {
                    s.reason = EndReason::AgentShutdown;
                    s.kill_at = Some(self.hang_up());
                }
            }
        }
    }

    /// Passes typed bytes to the program, and records them or, when the program's
    /// terminal hides them, counts them.
    fn forward_input(&mut self, data: &[u8], pending_input: &mut Vec<u8>) {
        // Asked before the program gets the bytes: once it has read a password's Enter it
        // may turn echo back on.
        let hidden = self.hidden_input.hides(self.master);
        if pending_input.is_empty() {
            // Most keystrokes go straight through without buffering.
            match fd::write(self.master, data) {
                Ok(w) => pending_input.extend_from_slice(&data[w..]),
                Err(_) => pending_input.extend_from_slice(data),
            }
        } else {
            pending_input.extend_from_slice(data);
        }
        if hidden {
            self.hidden_input
                .add(data.len(), elapsed(self.started), Instant::now());
        } else {
            self.record(EventKind::Input, data.to_vec());
        }
    }

    /// Records a marker someone asked for, and tells them.
    fn accept_marker(&mut self) {
        let Some(control) = self.control else {
            return;
        };
        match control.accept_label() {
            Ok(Some((label, stream))) => {
                self.record(EventKind::Marker, label.into_bytes());
                acknowledge(stream);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "A marker request failed."),
        }
    }

    /// After a SIGCHLD: if the program has exited, reads what it wrote last and returns
    /// its status.
    fn reap(&mut self, s: &mut LoopState) -> io::Result<Option<ExitStatus>> {
        if !self.signals.chld.swap(false, Ordering::Relaxed) {
            return Ok(None);
        }
        let Some(status) = self.child.try_wait()? else {
            return Ok(None);
        };
        // What the program wrote just before exiting may still be in the PTY.
        while self.pump_output(&mut s.buf, &mut s.output_open)? {
            let readable = fd::wait_readable(self.master, Duration::ZERO);
            if !matches!(readable, Ok(Readiness::Readable)) {
                break;
            }
        }
        Ok(Some(status))
    }

    /// Reads once from the PTY; false when the PTY is closed (the program is gone).
    fn pump_output(&mut self, buf: &mut [u8], output_open: &mut bool) -> io::Result<bool> {
        match fd::read(self.master, buf) {
            Ok(0) => Ok(false),
            Ok(n) => {
                let data = &buf[..n];
                if *output_open && fd::write_all(self.output, data).is_err() {
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
        if pty::set_size(self.master.as_raw_fd(), size).is_ok() {
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
        if let Some(run) = self.hidden_input.take_run() {
            self.recorder.send(
                EventKind::Redacted,
                run.first_ns,
                run.bytes.to_string().into_bytes(),
            );
        }
    }

    /// Asks the program's process group to hang up; returns when to kill it if it does not.
    fn hang_up(&mut self) -> Instant {
        // The program leads the session we created for it: its group id is its pid.
        let group = Pid::from_raw(self.child.id() as i32);
        // Failures (already gone) are harmless.
        let _ = killpg(group, Signal::SIGHUP);
        let _ = killpg(group, Signal::SIGCONT);
        Instant::now() + SHUTDOWN_GRACE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Local modes of a terminal: echo and canonical mode on or off, the rest as a shell
    /// leaves it.
    fn modes(echo: bool, canonical: bool) -> LocalFlags {
        let mut m = LocalFlags::ISIG | LocalFlags::IEXTEN | LocalFlags::ECHOE;
        m.set(LocalFlags::ECHO, echo);
        m.set(LocalFlags::ICANON, canonical);
        m
    }

    #[test]
    fn only_canonical_mode_without_echo_hides_input() {
        let mut h = HiddenInput::new(true);
        // A password prompt.
        assert!(h.decide(Ok(modes(false, true))));
        // A shell prompt (cooked).
        assert!(!h.decide(Ok(modes(true, true))));
        // readline, vi, less: echo off, but they show what is typed themselves.
        assert!(!h.decide(Ok(modes(false, false))));
        // Raw with echo: nothing hides.
        assert!(!h.decide(Ok(modes(true, false))));
    }

    #[test]
    fn disabled_redaction_records_everything() {
        let mut h = HiddenInput::new(false);
        assert!(!h.decide(Ok(modes(false, true))));
        assert!(!h.decide(Err(Errno::EBADF)));
    }

    #[test]
    fn a_failed_query_keeps_the_last_answer() {
        // Never answered: input is recorded.
        let mut h = HiddenInput::new(true);
        assert!(!h.decide(Err(Errno::EIO)));
        assert!(h.warned);
        // In the middle of a password: still hidden, and warned about once only.
        let mut h = HiddenInput::new(true);
        assert!(h.decide(Ok(modes(false, true))));
        assert!(h.decide(Err(Errno::EIO)));
        assert!(h.warned);
        assert!(h.decide(Err(Errno::EIO)));
        // Answers again: the new answer counts.
        assert!(!h.decide(Ok(modes(true, true))));
        assert!(!h.decide(Err(Errno::EIO)));
    }

    #[test]
    fn hidden_reads_join_one_run_until_it_is_taken() {
        let mut h = HiddenInput::new(true);
        assert_eq!(h.due(), None);
        assert_eq!(h.take_run(), None);
        let t0 = Instant::now();
        h.add(3, 1_000, t0);
        assert_eq!(h.due(), Some(t0 + HIDDEN_RUN_IDLE));
        let t1 = t0 + Duration::from_millis(400);
        h.add(5, 2_000, t1);
        // The run is due an idle period after its last byte, and dated by its first.
        assert_eq!(h.due(), Some(t1 + HIDDEN_RUN_IDLE));
        assert_eq!(
            h.take_run(),
            Some(HiddenRun {
                bytes: 8,
                first_ns: 1_000,
                last_at: t1,
            })
        );
        assert_eq!(h.due(), None);
        // The next hidden read starts a new run.
        h.add(1, 9_000, t1);
        assert_eq!(
            h.take_run().map(|r| (r.bytes, r.first_ns)),
            Some((1, 9_000))
        );
    }
}
