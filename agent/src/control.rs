//! The per-session control socket that `auditty-agent mark` talks to.
//!
//! The agent listens on `<runtime dir>/auditty/<session id>.sock` (directory mode 0700)
//! and exports its path as `AUDITTY_CONTROL` to the recorded program. A client connects,
//! writes a label and shuts down its write side; the agent records a marker and answers
//! `ok`.

use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Environment variable naming the control socket inside a recorded session.
pub const ENV_CONTROL: &str = "AUDITTY_CONTROL";
/// Environment variable naming the session id inside a recorded session.
pub const ENV_SESSION: &str = "AUDITTY_SESSION_ID";
/// Longest label accepted.
pub const MAX_LABEL_BYTES: usize = 4096;

/// The listening socket; removed from the file system when dropped.
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
}

/// The directory for control sockets: `$XDG_RUNTIME_DIR/auditty`, else
/// `/tmp/auditty-<uid>` (short paths: socket names are limited to ~108 bytes).
pub fn runtime_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d).join("auditty"),
        None => PathBuf::from(format!("/tmp/auditty-{}", nix::unistd::getuid())),
    }
}

impl ControlSocket {
    /// Listens on `<dir>/<name>.sock`.
    pub fn bind(dir: &Path, name: &str) -> io::Result<ControlSocket> {
        std::fs::create_dir_all(dir)?;
        // Only the recorded user may add markers to their sessions.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        let path = dir.join(format!("{name}.sock"));
        let listener = UnixListener::bind(&path)?;
        listener.set_nonblocking(true)?;
        Ok(ControlSocket { listener, path })
    }

    /// The socket's path, for `AUDITTY_CONTROL`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The listener, to poll for readability.
    pub fn listener(&self) -> &UnixListener {
        &self.listener
    }

    /// Accepts one pending client and returns its label. The client has written the label
    /// before the relay sees the connection, so the short timeout only guards against a
    /// client that connects and stalls.
    pub fn accept_label(&self) -> io::Result<Option<(String, UnixStream)>> {
        let (mut stream, _) = match self.listener.accept() {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
        };
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_millis(200)))?;
        let mut label = Vec::new();
        (&mut stream)
            .take(MAX_LABEL_BYTES as u64)
            .read_to_end(&mut label)?;
        Ok(Some((String::from_utf8_lossy(&label).into_owned(), stream)))
    }
}

/// Tells a client its marker was recorded.
pub fn acknowledge(mut stream: UnixStream) {
    let _ = stream.write_all(b"ok\n");
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
