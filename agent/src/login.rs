//! Forced logins (`record --user`, started by sshd's `ForceCommand` through the root
//! wrapper): what the client asked for, and the sessions let through unrecorded.
//!
//! Under `ForceCommand`, sshd runs the wrapper for every channel: an interactive login, a
//! command (`ssh host CMD`), `scp` (which is `ssh host scp -t …`), the sftp subsystem and
//! `rsync`. What the client asked for is in `SSH_ORIGINAL_COMMAND` (the wrapper's sudo
//! rule keeps it). Without this module every one of them became an interactive shell,
//! which broke `scp` and `sftp` and recorded nothing of what the client meant to run.
//!
//! A session that is not recorded (policy `pass`, or break-glass on a full spool) leaves
//! a line in `<data dir>/unrecorded.log` (JSON, mode 0600 in root's data directory) and in
//! syslog, so that what was let through is itself on record.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use schemas::data_dir::DataDir;

use crate::cli::{RecordArgs, SshPolicy};
use crate::runas::RunAs;

/// sftp-server as Debian installs it: what `internal-sftp` (only sshd itself can run
/// that) becomes when the login is forced through the agent.
const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

/// A command the client gave to ssh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshRequest {
    /// `SSH_ORIGINAL_COMMAND`.
    pub command: String,
    /// scp, sftp or rsync.
    pub transfer: bool,
}

impl SshRequest {
    /// The request of a forced login: only with `--user` (the wrapper's mode) and no
    /// COMMAND given, when sshd left `SSH_ORIGINAL_COMMAND`.
    pub fn from_env(args: &RecordArgs) -> Option<SshRequest> {
        if args.user.is_none() || !args.command.is_empty() {
            return None;
        }
        let command = std::env::var("SSH_ORIGINAL_COMMAND").ok()?;
        if command.trim().is_empty() {
            return None;
        }
        let transfer = is_file_transfer(&command);
        Some(SshRequest { command, transfer })
    }

    /// The policy that applies to it.
    pub fn policy(&self, args: &RecordArgs) -> SshPolicy {
        if self.transfer {
            args.file_transfer
        } else {
            args.ssh_command
        }
    }

    /// What it is, for messages and logs.
    pub fn what(&self) -> &'static str {
        if self.transfer {
            "a file transfer (scp, sftp, rsync)"
        } else {
            "a command given to ssh"
        }
    }

    /// The command line that runs it as sshd would: the user's shell with `-c`.
    pub fn command_line(&self, runas: &RunAs) -> Vec<OsString> {
        let command = if self.command.trim() == "internal-sftp" {
            SFTP_SERVER.to_string()
        } else {
            self.command.clone()
        };
        vec![
            runas.shell.clone().into_os_string(),
            OsString::from("-c"),
            OsString::from(command),
        ]
    }
}

/// scp, sftp or rsync on the server side, by the program's name.
fn is_file_transfer(command: &str) -> bool {
    let mut words = command.split_whitespace();
    let program = words.next().unwrap_or("");
    let name = program.rsplit('/').next().unwrap_or(program);
    match name {
        "scp" | "sftp-server" | "internal-sftp" => true,
        "rsync" => words.any(|w| w == "--server"),
        _ => false,
    }
}

/// Whether `runas` belongs to `group` (primary or supplementary).
pub fn in_group(runas: &RunAs, group: &str) -> bool {
    match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => runas.groups.contains(&g.gid.as_raw()) || runas.gid == g.gid.as_raw(),
        _ => false,
    }
}

/// Writes the line of a session let through unrecorded to `<data dir>/unrecorded.log`
/// and syslog. Failing to write it is an error: nothing runs unrecorded unless the fact
/// is kept.
pub fn log_unrecorded(
    data_dir: Option<&Path>,
    user: &str,
    command: &[OsString],
    why: &str,
) -> anyhow::Result<PathBuf> {
    let path = DataDir::resolve(data_dir)?.0.join("unrecorded.log");
    let line = serde_json::json!({
        "time": schemas::time::rfc3339(schemas::time::now_ns()),
        "user": user,
        "remote_addr": std::env::var("SSH_CONNECTION").ok()
            .and_then(|c| c.split_whitespace().next().map(str::to_string)),
        "command": command.iter().map(|c| c.to_string_lossy().into_owned()).collect::<Vec<_>>(),
        "why": why,
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    writeln!(file, "{line}")
        .and_then(|()| file.sync_data())
        .with_context(|| format!("cannot write {}", path.display()))?;
    syslog(&format!(
        "auditty-agent: unrecorded session of {user}: {why}"
    ));
    Ok(path)
}

/// Runs `command` as `runas` on our own descriptors, unrecorded; returns its exit code.
pub fn run_unrecorded(command: &[OsString], runas: &RunAs) -> anyhow::Result<i32> {
    let env = runas.environment(&[]);
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let mut child = terminal::pty::spawn_without_terminal(
        &command[0],
        &command[1..],
        &env,
        Some(&runas.credentials()),
        true,
    )
    .with_context(|| format!("cannot start {:?}", command[0]))?;
    let status = child.wait().context("cannot wait for the program")?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// One line to syslog (facility authpriv: it is about a login). Best effort: a machine
/// without a syslog daemon still has unrecorded.log.
fn syslog(message: &str) {
    let Ok(text) = std::ffi::CString::new(message.replace('\0', " ")) else {
        return;
    };
    // SAFETY: a NUL-terminated format and argument that outlive the call.
    unsafe {
        libc::syslog(
            libc::LOG_AUTHPRIV | libc::LOG_WARNING,
            c"%s".as_ptr(),
            text.as_ptr(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_transfers_are_told_from_commands_by_the_program() {
        assert!(is_file_transfer("scp -t /tmp/x"));
        assert!(is_file_transfer("/usr/bin/scp -f file"));
        assert!(is_file_transfer("/usr/lib/openssh/sftp-server"));
        assert!(is_file_transfer("internal-sftp"));
        assert!(is_file_transfer("rsync --server -vlogDtpre.iLsfxC . /tmp/"));
        assert!(!is_file_transfer("rsync -a a b"));
        assert!(!is_file_transfer("echo scp"));
        assert!(!is_file_transfer("bash -c 'scp x y'"));
    }
}
