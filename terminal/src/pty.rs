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

/// Who the spawned program runs as, when that is not who we are: a root-started agent
/// recording a user (`auditty-agent record --user`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// User id, real, effective and saved.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups (as `initgroups` would set them).
    pub groups: Vec<u32>,
    /// Working directory (the user's home); `/` if it cannot be entered as the user.
    pub dir: Option<std::path::PathBuf>,
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
    spawn_as(program, args, env, size, None)
}

/// [`spawn`], the program running as `creds` when given: groups, then group, then user
/// are set in the child before `exec`, every id (real, effective, saved), and the child
/// checks it cannot become root again. Needs root (or the capabilities to set ids). With
/// `creds`, `env` is the program's whole environment: nothing of ours is inherited.
pub fn spawn_as<I, S>(
    program: &OsStr,
    args: I,
    env: &[(&str, String)],
    size: WinSize,
    creds: Option<&Credentials>,
) -> io::Result<Spawned>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let setup = ChildSetup::new(creds);
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
    if creds.is_some() {
        cmd.env_clear();
    }
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            setup.apply()
        });
    }
    let child = cmd.spawn()?;
    // `cmd` holds the last slave handles; dropping it closes them here.
    drop(cmd);
    Ok(Spawned { child, master })
}

/// Runs `program args` without a terminal: its standard input, output and error are
/// pipes we hold (`Stdio::piped()` for each), or ours when `inherit` is true. As
/// [`spawn_as`], the program runs as `creds` when given, with `env` as its whole
/// environment, in a session of its own. For what arrives without a PTY: a command given
/// to ssh, `scp`, `sftp`.
pub fn spawn_without_terminal<I, S>(
    program: &OsStr,
    args: I,
    env: &[(&str, String)],
    creds: Option<&Credentials>,
    inherit: bool,
) -> io::Result<Child>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let setup = ChildSetup::new(creds);
    let mut cmd = Command::new(program);
    if creds.is_some() {
        cmd.env_clear();
    }
    let stdio = || {
        if inherit {
            Stdio::inherit()
        } else {
            Stdio::piped()
        }
    };
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(stdio())
        .stdout(stdio())
        .stderr(stdio());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            setup.apply()
        });
    }
    cmd.spawn()
}

/// What a spawned child does to itself between fork and exec, prepared before fork:
/// after it only syscalls run.
struct ChildSetup {
    dir: Option<std::ffi::CString>,
    ids: Option<(u32, u32, Vec<libc::gid_t>)>,
}

impl ChildSetup {
    fn new(creds: Option<&Credentials>) -> ChildSetup {
        ChildSetup {
            dir: creds
                .and_then(|c| c.dir.as_ref())
                .and_then(|d| std::ffi::CString::new(d.as_os_str().as_encoded_bytes()).ok()),
            ids: creds.map(|c| (c.uid, c.gid, c.groups.clone())),
        }
    }

    /// In the child: descriptors from 3 up closed on exec, then the user's ids and home.
    fn apply(&self) -> io::Result<()> {
        cloexec_from_3();
        if let Some((uid, gid, groups)) = &self.ids {
            drop_to(*uid, *gid, groups)?;
            let root = c"/";
            let dir = self.dir.as_deref().unwrap_or(root);
            // SAFETY: chdir on NUL-terminated strings made before fork.
            if unsafe { libc::chdir(dir.as_ptr()) } < 0 && unsafe { libc::chdir(root.as_ptr()) } < 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// In the child, between fork and exec: every descriptor from 3 up is closed by `exec`,
/// whatever opened it, so that the program gets its terminal and nothing else (the
/// agent's caller may have left descriptors open without close-on-exec). Marking rather
/// than closing keeps `std`'s own exec-error pipe working until `exec`.
fn cloexec_from_3() {
    // SAFETY: syscalls only.
    unsafe {
        let all = libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
        if all == 0 {
            return;
        }
        // Kernels before 5.11: one descriptor at a time.
        let max = match libc::sysconf(libc::_SC_OPEN_MAX) {
            n if n > 0 => n.min(1 << 16) as libc::c_int,
            _ => 1024,
        };
        for fd in 3..max {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}

/// In the child, between fork and exec: becomes `uid`/`gid` with `groups` for good.
/// Only async-signal-safe calls.
fn drop_to(uid: u32, gid: u32, groups: &[libc::gid_t]) -> io::Result<()> {
    let fail = || Err(io::Error::last_os_error());
    // SAFETY: plain syscalls on values prepared before fork; `groups` outlives the call.
    unsafe {
        if libc::setgroups(groups.len(), groups.as_ptr()) < 0 {
            return fail();
        }
        if libc::setresgid(gid, gid, gid) < 0 {
            return fail();
        }
        if libc::setresuid(uid, uid, uid) < 0 {
            return fail();
        }
        if uid != 0 && (libc::setuid(0) == 0 || libc::geteuid() != uid || libc::getegid() != gid) {
            return Err(io::Error::from(io::ErrorKind::PermissionDenied));
        }
    }
    Ok(())
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
    fn a_program_runs_as_the_given_user_with_only_the_given_environment() {
        let creds = Credentials {
            uid: 65534,
            gid: 65534,
            groups: vec![65534, 4],
            dir: Some("/nonexistent-home".into()),
        };
        let result = spawn_as(
            OsStr::new("/bin/sh"),
            [
                "-c",
                "id -u; id -g; id -G; pwd; echo home=$HOME; echo leak=$CARGO",
            ],
            &[("HOME", "/nonexistent-home".to_string())],
            WinSize { cols: 80, rows: 24 },
            Some(&creds),
        );
        if !nix::unistd::geteuid().is_root() {
            // Without root the ids cannot be set, and that must be an error, never a
            // program running as us.
            assert!(result.is_err());
            return;
        }
        let Spawned { mut child, master } = result.unwrap();
        let out = String::from_utf8_lossy(&read_all(master)).to_string();
        assert!(child.wait().unwrap().success(), "{out}");
        let lines: Vec<&str> = out.lines().map(str::trim).collect();
        assert_eq!(lines[..3], ["65534", "65534", "65534 4"], "{out}");
        assert_eq!(lines[3], "/", "an unenterable home falls back to /: {out}");
        assert_eq!(lines[4], "home=/nonexistent-home");
        assert_eq!(lines[5], "leak=", "nothing of our environment: {out}");
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
