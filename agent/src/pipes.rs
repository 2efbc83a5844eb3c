//! The copy loop for a program that runs without a terminal: a command given to ssh
//! (`ssh host cmd`), `scp`, `sftp`, `rsync`, when sshd forces every login through the
//! agent and the client asked for no PTY.
//!
//! There is no terminal to relay, so the program's standard input, output and error are
//! pipes: our input goes to its stdin (recorded as `input`), its stdout and stderr go to
//! ours (recorded as `output`; a player shows them interleaved as the user saw them).
//! One thread, one `poll(2)`, as in the terminal relay; the program's stdin is
//! non-blocking and what it has not taken yet waits in a bounded buffer, so a program that
//! writes without reading never deadlocks against its own input.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::process::{Child, ExitStatus};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use schemas::EventKind;
use schemas::session::EndReason;
use terminal::fd;

use crate::recorder::Recorder;
use crate::relay::{Outcome, SignalFlags, elapsed};

const READ_SIZE: usize = 64 * 1024;
/// Input the program has not taken yet beyond this is left unread until it catches up.
const MAX_PENDING_INPUT: usize = 1 << 20;
/// After a stop request, how long the program has to end before it is killed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

const READ_EVENTS: PollFlags = PollFlags::POLLIN
    .union(PollFlags::POLLHUP)
    .union(PollFlags::POLLERR);

/// Relays and records one program started with piped stdin, stdout and stderr.
pub struct PipeRelay<'a> {
    /// Our standard input (the ssh channel).
    pub input: BorrowedFd<'a>,
    /// Our standard output.
    pub output: BorrowedFd<'a>,
    /// Our standard error.
    pub error: BorrowedFd<'a>,
    /// The program; its three pipes are taken from it.
    pub child: &'a mut Child,
    /// Where events go.
    pub recorder: &'a Recorder,
    /// SIGTERM/SIGHUP/SIGINT: the client went away or the agent is stopped.
    pub signals: &'a SignalFlags,
    /// When the session started.
    pub started: Instant,
}

impl PipeRelay<'_> {
    /// Runs until the program has exited and its output is drained.
    pub fn run(mut self) -> io::Result<Outcome> {
        let mut stdin = self.child.stdin.take();
        let stdout = self.child.stdout.take();
        let stderr = self.child.stderr.take();
        if let Some(s) = &stdin {
            terminal::pty::set_nonblocking(std::os::fd::AsRawFd::as_raw_fd(s))?;
        }
        let mut pending: Vec<u8> = Vec::new();
        let mut input_open = true;
        let mut out_open = stdout.is_some();
        let mut err_open = stderr.is_some();
        let mut buf = vec![0u8; READ_SIZE];
        let mut reason = EndReason::Exit;
        let mut kill_at: Option<Instant> = None;

        while out_open || err_open {
            self.handle_stop(&mut reason, &mut kill_at);
            let timeout = self.next_timeout();
            let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(5);
            let wake = add(self.signals.wake.as_fd(), PollFlags::POLLIN, &mut fds);
            let out_slot = match &stdout {
                Some(s) if out_open => Some(add(s.as_fd(), PollFlags::POLLIN, &mut fds)),
                _ => None,
            };
            let err_slot = match &stderr {
                Some(s) if err_open => Some(add(s.as_fd(), PollFlags::POLLIN, &mut fds)),
                _ => None,
            };
            let in_slot = (input_open && stdin.is_some() && pending.len() < MAX_PENDING_INPUT)
                .then(|| add(self.input, PollFlags::POLLIN, &mut fds));
            let child_in_slot = match &stdin {
                Some(s) if !pending.is_empty() => {
                    Some(add(s.as_fd(), PollFlags::POLLOUT, &mut fds))
                }
                _ => None,
            };
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let revents = |i: Option<usize>| {
                i.and_then(|i| fds[i].revents())
                    .unwrap_or(PollFlags::empty())
            };
            if !revents(Some(wake)).is_empty() {
                let mut b = [0u8; 64];
                while matches!(io::Read::read(&mut &self.signals.wake, &mut b), Ok(k) if k > 0) {}
            }
            if revents(out_slot).intersects(READ_EVENTS)
                && let Some(s) = &stdout
            {
                out_open = self.copy_output(s.as_fd(), self.output, &mut buf)?;
            }
            if revents(err_slot).intersects(READ_EVENTS)
                && let Some(s) = &stderr
            {
                err_open = self.copy_output(s.as_fd(), self.error, &mut buf)?;
            }
            if revents(in_slot).intersects(READ_EVENTS) {
                self.read_input(&mut buf, &mut pending, &mut input_open);
            }
            if revents(child_in_slot).intersects(PollFlags::POLLOUT | PollFlags::POLLERR)
                && let Some(s) = &stdin
            {
                match fd::write(s.as_fd(), &pending) {
                    Ok(k) => {
                        pending.drain(..k);
                    }
                    Err(e) if retry(&e) => {}
                    // The program closed its input: nothing more reaches it.
                    Err(_) => {
                        pending.clear();
                        input_open = false;
                    }
                }
            }
            // End of our input, once all of it reached the program: it sees end of file.
            if !input_open && pending.is_empty() {
                stdin = None;
            }
        }
        drop(stdin);
        let status: ExitStatus = self.child.wait()?;
        Ok(Outcome {
            status,
            reason,
            detail: None,
        })
    }

    /// On a stop request (the client went away, the agent is stopped): hangs up the
    /// program's process group, and kills it once the grace period is over.
    fn handle_stop(&mut self, reason: &mut EndReason, kill_at: &mut Option<Instant>) {
        if self.signals.stop.swap(false, Ordering::Relaxed) && kill_at.is_none() {
            *reason = EndReason::AgentShutdown;
            // The program has its own session (setsid): hang up its whole group.
            if let Ok(pid) = i32::try_from(self.child.id()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGHUP,
                );
            }
            *kill_at = Some(Instant::now() + SHUTDOWN_GRACE);
        }
        if let Some(at) = *kill_at
            && Instant::now() >= at
        {
            let _ = self.child.kill();
        }
    }

    /// Reads once from our input, records it and queues it for the program.
    fn read_input(&self, buf: &mut [u8], pending: &mut Vec<u8>, input_open: &mut bool) {
        match fd::read(self.input, buf) {
            Ok(0) => *input_open = false,
            Ok(k) => {
                self.recorder
                    .send(EventKind::Input, elapsed(self.started), buf[..k].to_vec());
                pending.extend_from_slice(&buf[..k]);
            }
            Err(e) if retry(&e) => {}
            Err(_) => *input_open = false,
        }
    }

    /// Copies one read of the program's output to ours and records it; false at its end.
    fn copy_output(
        &self,
        from: BorrowedFd<'_>,
        to: BorrowedFd<'_>,
        buf: &mut [u8],
    ) -> io::Result<bool> {
        match fd::read(from, buf) {
            Ok(0) => Ok(false),
            Ok(k) => {
                self.recorder.send_output(elapsed(self.started), &buf[..k]);
                // The client going away is not the recording's failure: the program ends
                // on its own when its output pipe breaks.
                let _ = fd::write_all(to, &buf[..k]);
                Ok(true)
            }
            Err(e) if retry(&e) => Ok(true),
            Err(_) => Ok(false),
        }
    }

    fn next_timeout(&self) -> PollTimeout {
        let timeout = self.recorder.hand_over_if_due(Duration::from_millis(500));
        let ms = timeout.as_nanos().div_ceil(1_000_000);
        PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
    }
}

/// Adds `fd` to the poll set; its index there.
fn add<'a>(fd: BorrowedFd<'a>, flags: PollFlags, fds: &mut Vec<PollFd<'a>>) -> usize {
    fds.push(PollFd::new(fd, flags));
    fds.len() - 1
}

fn retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}
