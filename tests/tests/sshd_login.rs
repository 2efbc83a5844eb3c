//! Issue 16: the README's sshd wiring, tried for real. A real `sshd` on loopback forces
//! every login of the test user through `sudo -n` and a root-owned wrapper that starts
//! `auditty-agent record --user "$SUDO_USER"`: the user logs in with ssh, gets their shell
//! inside a root-started recording, cannot read the node key, and the session verifies
//! complete with the SSH client's address in its metadata.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use auditty_tests::{PtySession, Sandbox, bin, show};
use terminal::pty::WinSize;

const T: Duration = Duration::from_secs(30);
const USER: &str = "auditty-rec";

/// Removes a file on drop (the sudoers rule) and stops a child (sshd).
struct Cleanup {
    files: Vec<PathBuf>,
    child: Option<Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", show(&out));
}

fn write_mode(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A real sshd on loopback forcing every login of USER through the wrapper.
struct Login {
    sb: Sandbox,
    dir: PathBuf,
    data: PathBuf,
    port: u16,
    wrapper: PathBuf,
    /// Stops sshd and removes the sudo rule when the test ends.
    _cleanup: Cleanup,
}

/// (Re)writes the wrapper of the README with `extra` flags for `record`: sshd runs it
/// anew at each login, so a test changes the policy between logins this way.
fn set_wrapper(wrapper: &Path, data: &Path, extra: &str) {
    write_mode(
        wrapper,
        &format!(
            "#!/bin/sh\nexec {} --data-dir {} record -q --user \"$SUDO_USER\" {extra}\n",
            bin("auditty-agent").display(),
            data.display()
        ),
        0o755,
    );
}

fn start_sshd() -> Login {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test starts sshd and installs a sudo rule, and must run as root"
    );
    for tool in ["/usr/sbin/sshd", "/usr/bin/sudo"] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: run scripts/install-test-deps"
        );
    }
    assert!(
        nix::unistd::User::from_name(USER).ok().flatten().is_some(),
        "no user {USER}: run scripts/install-test-deps"
    );
    let sb = Sandbox::new();
    let dir = sb.path().to_path_buf();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let data = dir.join("data");

    // Keys: the server's, and the user's (held by the test, which plays the client).
    for (name, file) in [("host", "host_key"), ("user", "user_key")] {
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(dir.join(file)));
    }
    let user_pub = std::fs::read_to_string(dir.join("user_key.pub")).expect("public key");
    write_mode(&dir.join("authorized_keys"), &user_pub, 0o644);

    // The wrapper and the sudo rule of the README, for this test's paths.
    let wrapper = dir.join("auditty-login");
    set_wrapper(&wrapper, &data, "");
    // One rule per sshd: the tests of this file run at the same time.
    static RULES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let rule = PathBuf::from(format!(
        "/etc/sudoers.d/auditty-test-{}-{}",
        std::process::id(),
        RULES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let mut cleanup = Cleanup {
        files: vec![rule.clone()],
        child: None,
    };
    let w = wrapper.display();
    write_mode(
        &rule,
        &format!(
            "Defaults!{w} env_keep += \"SSH_CONNECTION SSH_CLIENT SSH_TTY TERM SSH_ORIGINAL_COMMAND\"\n\
             {USER} ALL=(root) NOPASSWD: {w} \"\"\n"
        ),
        0o440,
    );
    run(Command::new("visudo").args(["-c", "-f"]).arg(&rule));

    let port = auditty_tests::moto::free_port();
    let config = dir.join("sshd_config");
    write_mode(
        &config,
        &format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\n\
             AuthorizedKeysFile {}\nStrictModes no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\n\
             Subsystem sftp internal-sftp\nForceCommand sudo -n {w}\n",
            dir.join("host_key").display(),
            dir.join("sshd.pid").display(),
            dir.join("authorized_keys").display(),
        ),
        0o644,
    );
    std::fs::create_dir_all("/run/sshd").expect("sshd's privilege separation directory");
    let log = std::fs::File::create(dir.join("sshd.log")).expect("log");
    cleanup.child = Some(
        Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stderr(log)
            .spawn()
            .expect("start sshd"),
    );
    let deadline = Instant::now() + T;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "sshd did not listen: {}",
            std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    Login {
        sb,
        dir,
        data,
        port,
        wrapper,
        _cleanup: cleanup,
    }
}

impl Login {
    /// `ssh` as the test user, without a terminal, running `command` (none: a login).
    fn ssh(&self, command: &[&str]) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-i")
            .arg(self.dir.join("user_key"))
            .args([
                "-T",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "BatchMode=yes",
                "-p",
                &self.port.to_string(),
                &format!("{USER}@127.0.0.1"),
            ])
            .args(command);
        c
    }

    /// The options scp and sftp take to reach the server.
    fn transfer_options(&self, port_flag: &str) -> Vec<String> {
        vec![
            "-i".into(),
            self.dir.join("user_key").display().to_string(),
            "-o".into(),
            "StrictHostKeyChecking=no".into(),
            "-o".into(),
            "UserKnownHostsFile=/dev/null".into(),
            "-o".into(),
            "LogLevel=ERROR".into(),
            "-o".into(),
            "BatchMode=yes".into(),
            port_flag.into(),
            self.port.to_string(),
        ]
    }

    fn replay(&self, args: &[&str]) -> std::process::Output {
        self.sb.output(
            self.sb
                .cmd("replay")
                .arg("--data-dir")
                .arg(&self.data)
                .args(args),
        )
    }

    fn ingest(&self) {
        let out = self.sb.output(
            self.sb
                .cmd("auditty-ingest")
                .arg("--data-dir")
                .arg(&self.data)
                .args(["run", "--once"]),
        );
        assert!(out.status.success(), "{}", show(&out));
    }

    /// The sessions in the store (after ingesting the spool).
    fn sessions(&self) -> Vec<serde_json::Value> {
        self.ingest();
        let out = self.replay(&["ls", "--json"]);
        assert!(out.status.success(), "{}", show(&out));
        serde_json::from_slice(&out.stdout).expect("JSON")
    }
}

#[test]
fn an_ssh_login_forced_through_the_root_started_agent_is_recorded_out_of_reach() {
    let login = start_sshd();
    let Login {
        sb,
        dir,
        data,
        port,
        ..
    } = &login;
    let (sb, dir, data, port) = (sb, dir.clone(), data.clone(), *port);
    let key = data.join("node.key");
    let mut ssh = PtySession::spawn(
        "ssh",
        [
            "-tt",
            "-i",
            &dir.join("user_key").display().to_string(),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-p",
            &port.to_string(),
            &format!("{USER}@127.0.0.1"),
        ],
        &[("TERM", "xterm".to_string())],
        WinSize {
            cols: 120,
            rows: 40,
        },
    );
    ssh.wait_for("$", T);
    ssh.type_line("printf 'R%s\\n' \"who=$(id -un) session=$AUDITTY_SESSION\"");
    ssh.wait_for("Rwho=", T);
    ssh.type_line(&format!(
        "printf 'R%s\\n' \"key-read=$(cat {} >/dev/null 2>&1; echo $?)\"",
        key.display()
    ));
    ssh.wait_for("Rkey-read=", T);
    let screen = ssh.rows().join("\n");
    ssh.type_line("exit");
    let _ = ssh.wait(T);
    assert!(
        screen.contains(&format!("Rwho={USER} session=")),
        "{screen}"
    );
    assert!(screen.contains("Rkey-read=1"), "{screen}");

    let out = sb.output(
        sb.cmd("auditty-ingest")
            .args(["--data-dir"])
            .arg(&data)
            .args(["run", "--once"]),
    );
    assert!(out.status.success(), "{}", show(&out));
    let out = sb.output(
        sb.cmd("replay")
            .arg("--data-dir")
            .arg(&data)
            .args(["ls", "--json"]),
    );
    assert!(out.status.success(), "{}", show(&out));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(list.len(), 1, "{list:#?}");
    assert_eq!(list[0]["user"], USER);
    assert_eq!(list[0]["remote_addr"], "127.0.0.1", "{:#}", list[0]);
    let out = sb.output(
        sb.cmd("replay")
            .arg("--data-dir")
            .arg(&data)
            .args(["verify", "--all"]),
    );
    assert!(out.status.success(), "{}", show(&out));
}

/// Runs `cmd` with `input` on its stdin (then closed); its output.
fn with_input(mut cmd: Command, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ssh");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write");
    child.wait_with_output().expect("ssh")
}

/// Issue 19: what a forced login does with what is not an interactive login. By default a
/// command given to ssh, scp and sftp run as the user and are recorded through pipes (no
/// PTY); `--file-transfer pass` lets transfers through unrecorded but logged,
/// `--ssh-command deny` refuses commands; and on a full spool only the break-glass group
/// gets in, unrecorded and logged.
#[test]
fn commands_scp_and_sftp_through_a_forced_login_follow_the_policy() {
    let login = start_sshd();
    let home = PathBuf::from(format!("/home/{USER}"));
    let stamp = std::process::id();

    // A command, with input on stdin and output on both stdout and stderr.
    let out = with_input(
        login.ssh(&["echo R-out; echo R-err >&2; read line; echo R-got-$line"]),
        b"typed-over-ssh\n",
    );
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("R-out") && stdout.contains("R-got-typed-over-ssh"),
        "{}",
        show(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("R-err"),
        "{}",
        show(&out)
    );

    // scp up, and sftp down, with the default policy: recorded.
    let local = login.dir.join(format!("upload-{stamp}.txt"));
    std::fs::write(&local, "payload-through-scp\n").expect("write");
    let remote = home.join(format!("scp-{stamp}.txt"));
    let mut scp = Command::new("scp");
    scp.args(["-O"])
        .args(login.transfer_options("-P"))
        .arg(&local)
        .arg(format!("{USER}@127.0.0.1:{}", remote.display()));
    run(&mut scp);
    assert_eq!(
        std::fs::read_to_string(&remote).expect("the file scp wrote"),
        "payload-through-scp\n"
    );
    let batch = login.dir.join("sftp-batch");
    let fetched = login.dir.join(format!("fetched-{stamp}.txt"));
    std::fs::write(
        &batch,
        format!("get {} {}\n", remote.display(), fetched.display()),
    )
    .expect("write");
    let mut sftp = Command::new("sftp");
    sftp.args(login.transfer_options("-P"))
        .arg("-b")
        .arg(&batch)
        .arg(format!("{USER}@127.0.0.1"));
    run(&mut sftp);
    assert_eq!(
        std::fs::read_to_string(&fetched).expect("the file sftp fetched"),
        "payload-through-scp\n"
    );

    let sessions = login.sessions();
    assert_eq!(sessions.len(), 3, "{sessions:#?}");
    let command_of = |s: &serde_json::Value| s["command"].to_string();
    let find = |needle: &str| {
        sessions
            .iter()
            .find(|s| command_of(s).contains(needle))
            .unwrap_or_else(|| panic!("no session ran {needle}: {sessions:#?}"))
    };
    let cmd = find("R-got");
    let scp_session = find("scp -t");
    find("sftp-server");
    for s in &sessions {
        assert_eq!(s["user"], USER, "{s:#}");
        assert_eq!(s["remote_addr"], "127.0.0.1", "{s:#}");
    }
    let export = |s: &serde_json::Value| {
        let id = s["id"].as_str().expect("id");
        let out = login.replay(&["export", id, "--format", "jsonl"]);
        assert!(out.status.success(), "{}", show(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = export(cmd);
    for needle in ["R-out", "R-err", "typed-over-ssh", "no terminal"] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }
    assert!(
        export(scp_session).contains("payload-through-scp"),
        "the scp session holds the bytes transferred"
    );
    let out = login.replay(&["verify", "--all"]);
    assert!(out.status.success(), "{}", show(&out));

    // Transfers passed through, commands denied.
    set_wrapper(
        &login.wrapper,
        &login.data,
        "--file-transfer pass --ssh-command deny",
    );
    let remote2 = home.join(format!("scp-pass-{stamp}.txt"));
    let mut scp = Command::new("scp");
    scp.args(["-O"])
        .args(login.transfer_options("-P"))
        .arg(&local)
        .arg(format!("{USER}@127.0.0.1:{}", remote2.display()));
    run(&mut scp);
    assert!(remote2.exists(), "scp passed through");
    let out = login.ssh(&["echo R-denied"]).output().expect("ssh");
    assert!(!out.status.success(), "{}", show(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("R-denied"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not allowed on this server"),
        "{}",
        show(&out)
    );
    assert_eq!(login.sessions().len(), 3, "nothing new was recorded");
    let log = std::fs::read_to_string(login.data.join("unrecorded.log")).expect("unrecorded.log");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert_eq!(lines[0]["user"], USER);
    assert!(
        lines[0]["why"].as_str().unwrap_or("").contains("pass"),
        "{log}"
    );
    assert!(lines[0]["command"].to_string().contains("scp -t"), "{log}");

    // A full spool: refused, unless in the break-glass group (the user's own group here).
    let full = login.dir.join("full-spool");
    std::fs::create_dir_all(&full).expect("mkdir");
    std::fs::write(full.join("filler"), vec![0u8; 4096]).expect("fill");
    let flags = format!("--spool {} --spool-max-bytes 1024", full.display());
    set_wrapper(
        &login.wrapper,
        &login.data,
        &format!("{flags} --break-glass-group root"),
    );
    let out = login
        .ssh(&[])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("ssh");
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is full"),
        "{}",
        show(&out)
    );
    set_wrapper(
        &login.wrapper,
        &login.data,
        &format!("{flags} --break-glass-group {USER}"),
    );
    let out = with_input(login.ssh(&[]), b"echo R-inside-$(id -un)\nexit\n");
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("R-inside-{USER}")),
        "{}",
        show(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("BREAK-GLASS"),
        "{}",
        show(&out)
    );
    let log = std::fs::read_to_string(login.data.join("unrecorded.log")).expect("unrecorded.log");
    assert_eq!(log.lines().count(), 2, "{log}");
    assert!(
        log.lines().last().unwrap_or("").contains("break-glass"),
        "{log}"
    );
    for f in [remote, remote2] {
        let _ = std::fs::remove_file(f);
    }
}
