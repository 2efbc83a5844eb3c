//! Privilege separation (`auditty-agent record --user NAME`): the agent runs as root and
//! records a session of another user.
//!
//! Started by root (sshd `ForceCommand` through a root wrapper, a root-owned login
//! program, `sudo`, a PAM-started service), the agent keeps what proves the record — the
//! node key, the ledger and the spool — in root's data directory, mode 0600/0700, and
//! runs the program as the user: their uid, primary group and supplementary groups, their
//! home, their shell, and an environment of their own (not root's: only the terminal's,
//! locale and SSH variables pass through). The user can then neither read the key nor
//! rewrite the spool, so a signature proves the session was not changed on the node
//! either. Markers (`auditty-agent mark`) are not offered in this mode: their socket
//! would have to be made in a place the user controls, by root.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use nix::unistd::{Gid, User};
use terminal::pty::Credentials;

/// Variables of the caller's environment that pass to the user's program: the terminal's,
/// the locale's and the SSH connection's. Everything else is root's business.
const PASSED: &[&str] = &[
    "TERM",
    "COLORTERM",
    "LANG",
    "LANGUAGE",
    "TZ",
    "DISPLAY",
    "SSH_CONNECTION",
    "SSH_CLIENT",
    "SSH_TTY",
    "SSH_AUTH_SOCK",
];

/// `PATH` for the user's program when the caller has none.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The user a root-started agent records, from the password database.
#[derive(Clone, Debug)]
pub struct RunAs {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group.
    pub gid: u32,
    /// Supplementary groups, as `initgroups` gives them.
    pub groups: Vec<u32>,
    /// Home directory.
    pub home: PathBuf,
    /// Login shell.
    pub shell: PathBuf,
}

impl RunAs {
    /// Looks `name` up; fails unless this process is root.
    pub fn lookup(name: &str) -> anyhow::Result<RunAs> {
        if !nix::unistd::geteuid().is_root() {
            bail!(
                "--user {name} needs the agent to run as root: it keeps the node key and the \
                 spool out of the user's reach and starts the program as the user"
            );
        }
        let user = User::from_name(name)
            .with_context(|| format!("cannot read the password database for {name}"))?
            .ok_or_else(|| anyhow!("there is no user {name:?} in the password database"))?;
        let cname = CString::new(name).context("a user name holds no NUL byte")?;
        let groups = nix::unistd::getgrouplist(&cname, user.gid)
            .with_context(|| format!("cannot list the groups of {name}"))?;
        Ok(RunAs {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            groups: groups.into_iter().map(Gid::as_raw).collect(),
            home: user.dir,
            shell: user.shell,
        })
    }

    /// What the PTY's child is set to before it runs the program.
    pub fn credentials(&self) -> Credentials {
        Credentials {
            uid: self.uid,
            gid: self.gid,
            groups: self.groups.clone(),
            dir: Some(self.home.clone()),
        }
    }

    /// The program's whole environment: the user's identity, the passed-through variables
    /// of ours (see [`PASSED`], and `LC_*`), and `extra` (the session's own).
    pub fn environment(&self, extra: &[(&'static str, String)]) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| PASSED.contains(&k.as_str()) || k.starts_with("LC_"))
            .collect();
        let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_string());
        env.extend([
            ("HOME".to_string(), self.home.display().to_string()),
            ("USER".to_string(), self.name.clone()),
            ("LOGNAME".to_string(), self.name.clone()),
            ("SHELL".to_string(), self.shell.display().to_string()),
            ("PATH".to_string(), path),
        ]);
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        env
    }
}

/// Makes `dir` (created if missing) reachable by root alone: the spool, and the directory
/// of the node key and ledger, while a user is recorded.
pub fn protect_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make {} private (mode 0700)", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_looked_up_with_groups_home_and_shell_or_refused() {
        if !nix::unistd::geteuid().is_root() {
            let err = RunAs::lookup("root").unwrap_err();
            assert!(
                err.to_string().contains("needs the agent to run as root"),
                "{err}"
            );
            return;
        }
        let r = RunAs::lookup("nobody").unwrap();
        assert_eq!(r.uid, 65534);
        assert!(r.groups.contains(&r.gid));
        let env = r.environment(&[("AUDITTY_SESSION", "x".into())]);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("USER"), Some("nobody"));
        assert_eq!(get("LOGNAME"), Some("nobody"));
        assert_eq!(get("AUDITTY_SESSION"), Some("x"));
        assert_eq!(get("CARGO"), None, "nothing of ours leaks");
        let err = RunAs::lookup("no-such-user-auditty").unwrap_err();
        assert!(err.to_string().contains("no user"), "{err}");
    }
}
