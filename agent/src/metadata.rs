//! What the `start` event says about a session: who, where, what.

use std::ffi::OsString;

use schemas::SessionStart;
use schemas::session::METADATA_VERSION;

use terminal::pty::WinSize;

/// Gathers the session metadata from the process environment.
pub fn gather(start_time_ns: i64, command: &[OsString], size: WinSize) -> SessionStart {
    let uid = nix::unistd::getuid();
    let user = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| uid.to_string());
    let host = host_name();
    let machine_id = std::fs::read_to_string("/etc/machine-id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let remote_addr = std::env::var("SSH_CONNECTION")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string));
    SessionStart {
        version: METADATA_VERSION,
        start_time_ns,
        user,
        uid: uid.as_raw(),
        host,
        machine_id,
        remote_addr,
        command: command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        term: std::env::var("TERM").ok(),
        cols: size.cols,
        rows: size.rows,
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        redacts_hidden_input: false,
        envelope: None,
        // The recorder sets these once the ledger has numbered the session.
        node_seq: 0,
        prev_session: None,
        import: None,
    }
}

/// This machine's host name ("" if it has none).
pub fn host_name() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}
