//! Spawning a program on a new pseudo-terminal whose master side we hold.
//!
//! `auditty-agent record` runs the recorded shell this way; the end-to-end tests and the
//! bench run the recorders themselves this way, so that each sees a real terminal. The
//! window-size functions are re-exported here because every caller that spawns also
//! resizes.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

pub use crate::{WinSize, get_size, set_size};

/// A program running on a PTY; we hold the master side.
pub struct Spawned {
    /// The program.
    pub child: Child,
    /// The master side of its terminal: read its output, write its input.
    pub master: OwnedFd,
}

/// Runs `program args` as the leader of a new session whose controlling terminal is a
/// new PTY of the given size. The slave side is closed in this process once the child
/// has it, so reads from the master fail with EIO when the program and its children are
/// gone.
pub fn spawn<I, S>(
    program: &OsStr,
    args: I,
    env: &[(&str, String)],
    size: WinSize,
) -> io::Result<Spawned>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut master: RawFd = -1;
    let mut slave: RawFd = -1;
    let ws = size.to_libc();
    // SAFETY: out-pointers to valid ints and a valid winsize; name and termios are optional.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &ws,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: openpty just returned these descriptors and nothing else owns them.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    // openpty does not set close-on-exec; the program must not inherit the master.
    set_cloexec(master.as_raw_fd())?;
    set_cloexec(slave.as_raw_fd())?;

    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    // `cmd` holds the last slave handles; dropping it closes them here.
    drop(cmd);
    Ok(Spawned { child, master })
}

fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes reads and writes on `fd` return EAGAIN instead of blocking.
pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor the caller owns.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn read_all(master: OwnedFd) -> Vec<u8> {
        let mut f = std::fs::File::from(master);
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                // EIO: every slave handle is closed; the program is done.
                Err(_) => break,
            }
        }
        out
    }

    #[test]
    fn runs_a_program_on_a_terminal_of_the_given_size() {
        let s = spawn(
            OsStr::new("sh"),
            ["-c", "stty size; test -t 0 && echo tty; echo $FOO"],
            &[("FOO", "bar".to_string())],
            WinSize {
                cols: 100,
                rows: 30,
            },
        )
        .unwrap();
        let Spawned { mut child, master } = s;
        let out = String::from_utf8_lossy(&read_all(master)).to_string();
        assert!(child.wait().unwrap().success());
        assert!(out.contains("30 100"), "{out:?}");
        assert!(out.contains("tty"), "{out:?}");
        assert!(out.contains("bar"), "{out:?}");
    }

    #[test]
    fn output_ends_with_eio_when_the_program_exits() {
        let s = spawn(
            OsStr::new("true"),
            Vec::<String>::new(),
            &[],
            WinSize::default(),
        )
        .unwrap();
        let Spawned { mut child, master } = s;
        assert!(read_all(master).is_empty());
        assert!(child.wait().unwrap().success());
    }

    #[test]
    fn resizing_is_seen_by_the_program() {
        let s = spawn(
            OsStr::new("sh"),
            ["-c", "sleep 0.3; stty size"],
            &[],
            WinSize::default(),
        )
        .unwrap();
        set_size(
            s.master.as_raw_fd(),
            WinSize {
                cols: 123,
                rows: 45,
            },
        )
        .unwrap();
        assert_eq!(
            get_size(s.master.as_raw_fd()),
            Some(WinSize {
                cols: 123,
                rows: 45
            })
        );
        let Spawned { mut child, master } = s;
        let out = String::from_utf8_lossy(&read_all(master)).to_string();
        child.wait().unwrap();
        assert!(out.contains("45 123"), "{out:?}");
    }
}
