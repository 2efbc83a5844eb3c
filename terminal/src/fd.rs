//! Reading and writing terminal descriptors without `unsafe`: one read or write, a wait
//! for one descriptor, and the two together.
//!
//! The agent's relay, `replay play` and the bench all talk to terminals through raw
//! descriptors (the PTY master, stdin, stdout) rather than `File`s, because they poll
//! them, some are non-blocking, and a `File` would close a descriptor it does not own.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// What a wait for one descriptor found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Nothing within the timeout, or the wait was interrupted by a signal.
    NotReady,
    /// There is something to read (possibly the last of it before a hangup).
    Readable,
    /// Hung up or in error with nothing to read: a read will not block, and ends it.
    Closed,
}

/// What [`read_within`] got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// This many bytes. 0 when the descriptor was ready but the read was interrupted or
    /// would block: try again.
    Data(usize),
    /// Nothing became readable within the timeout (or the wait was interrupted).
    NotReady,
    /// End of file, or EIO: on a PTY master, every handle on the slave side is closed,
    /// i.e. the program and its children are gone.
    Closed,
}

/// Waits up to `timeout` (whole milliseconds, rounded down) for `fd` to be readable.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<Readiness> {
    // Rounded down like a caller's `as_millis()`; anything beyond poll's range waits as
    // long as poll can.
    let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    match poll(&mut fds, timeout) {
        Ok(0) | Err(Errno::EINTR) => Ok(Readiness::NotReady),
        Ok(_) => {
            let revents = fds[0].revents().unwrap_or(PollFlags::empty());
            Ok(if revents.contains(PollFlags::POLLIN) {
                Readiness::Readable
            } else {
                Readiness::Closed
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Waits up to `timeout` for `fd` to be readable, then reads once into `buf`.
pub fn read_within(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    timeout: Duration,
) -> io::Result<ReadOutcome> {
    if wait_readable(fd, timeout)? == Readiness::NotReady {
        return Ok(ReadOutcome::NotReady);
    }
    match read(fd, buf) {
        Ok(0) => Ok(ReadOutcome::Closed),
        Ok(n) => Ok(ReadOutcome::Data(n)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
            ) =>
        {
            Ok(ReadOutcome::Data(0))
        }
        Err(e) if e.raw_os_error() == Some(libc::EIO) => Ok(ReadOutcome::Closed),
        Err(e) => Err(e),
    }
}

/// One `read(2)` into `buf`.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    Ok(nix::unistd::read(fd.as_raw_fd(), buf)?)
}

/// One `write(2)` from `buf`.
pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    Ok(nix::unistd::write(fd, buf)?)
}

/// Writes all of `buf`, retrying on EINTR. A descriptor that is non-blocking (stdout may
/// be, when shared with another process) is waited for, 100 ms at a time.
pub fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match write(fd, buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // Whatever the wait says, the next write tells.
                let _ = poll(
                    &mut [PollFd::new(fd, PollFlags::POLLOUT)],
                    PollTimeout::from(100u16),
                );
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn waits_reads_and_sees_the_close() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut buf = [0u8; 16];
        let short = Duration::from_millis(10);
        assert_eq!(
            wait_readable(a.as_fd(), short).unwrap(),
            Readiness::NotReady
        );
        assert_eq!(
            read_within(a.as_fd(), &mut buf, short).unwrap(),
            ReadOutcome::NotReady
        );
        b.write_all(b"hi").unwrap();
        assert_eq!(
            wait_readable(a.as_fd(), short).unwrap(),
            Readiness::Readable
        );
        assert_eq!(
            read_within(a.as_fd(), &mut buf, short).unwrap(),
            ReadOutcome::Data(2)
        );
        assert_eq!(&buf[..2], b"hi");
        drop(b);
        assert_eq!(
            read_within(a.as_fd(), &mut buf, short).unwrap(),
            ReadOutcome::Closed
        );
    }

    #[test]
    fn write_all_writes_everything() {
        let (a, b) = UnixStream::pair().unwrap();
        write_all(a.as_fd(), b"hello").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(read(b.as_fd(), &mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
    }
}
