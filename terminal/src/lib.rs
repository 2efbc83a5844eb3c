//! Terminals and PTYs: raw mode that is always undone, window sizes, spawning a program
//! on a new PTY ([`pty`]), and reading and writing terminal descriptors ([`fd`]).
//!
//! Used by `auditty-agent` (the recorded user's terminal and the PTY it creates), by
//! `replay play` (the auditor's terminal), and by the end-to-end tests and the bench,
//! which run the recorders on PTYs of their own.

use std::io;
use std::os::fd::RawFd;

pub mod fd;
pub mod pty;

/// A terminal size in character cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WinSize {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
}

impl Default for WinSize {
    fn default() -> Self {
        WinSize { cols: 80, rows: 24 }
    }
}

impl WinSize {
    /// The size as the kernel's `winsize`.
    pub fn to_libc(self) -> libc::winsize {
        libc::winsize {
            ws_row: self.rows,
            ws_col: self.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        }
    }
}

/// The window size of the terminal on `fd`, if it is a terminal.
pub fn get_size(fd: RawFd) -> Option<WinSize> {
    let mut ws = WinSize::default().to_libc();
    // SAFETY: TIOCGWINSZ writes a winsize into the pointer we pass.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_col > 0 && ws.ws_row > 0).then_some(WinSize {
        cols: ws.ws_col,
        rows: ws.ws_row,
    })
}

/// Sets the window size of the terminal on `fd` (the PTY master: the program gets SIGWINCH).
pub fn set_size(fd: RawFd, size: WinSize) -> io::Result<()> {
    let ws = size.to_libc();
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer we pass.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Raw mode on a terminal, restored when dropped: on normal exit, on error returns and
/// on panics (the agent handles SIGTERM/SIGHUP by returning normally, so those restore
/// too).
pub struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    /// Puts the terminal on `fd` in raw mode; `Ok(None)` if `fd` is not a terminal.
    pub fn enter(fd: RawFd) -> io::Result<Option<RawMode>> {
        // SAFETY: isatty only inspects the descriptor.
        if unsafe { libc::isatty(fd) } != 1 {
            return Ok(None);
        }
        // SAFETY: zeroed termios is a valid out-parameter for tcgetattr.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd is a terminal; the pointer is valid.
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut raw = saved;
        // SAFETY: cfmakeraw edits the struct we pass.
        unsafe { libc::cfmakeraw(&mut raw) };
        // SAFETY: valid fd and termios.
        if unsafe { libc::tcsetattr(fd, libc::TCSADRAIN, &raw) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Some(RawMode { fd, saved }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `enter` on the same descriptor.
        unsafe { libc::tcsetattr(self.fd, libc::TCSADRAIN, &self.saved) };
    }
}
