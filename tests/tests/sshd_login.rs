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

#[test]
fn an_ssh_login_forced_through_the_root_started_agent_is_recorded_out_of_reach() {
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
    write_mode(
        &wrapper,
        &format!(
            "#!/bin/sh\nexec {} --data-dir {} record -q --user \"$SUDO_USER\"\n",
            bin("auditty-agent").display(),
            data.display()
        ),
        0o755,
    );
    let rule = PathBuf::from(format!(
        "/etc/sudoers.d/auditty-test-{}",
        std::process::id()
    ));
    let mut cleanup = Cleanup {
        files: vec![rule.clone()],
        child: None,
    };
    let w = wrapper.display();
    write_mode(
        &rule,
        &format!(
            "Defaults!{w} env_keep += \"SSH_CONNECTION SSH_CLIENT SSH_TTY TERM\"\n\
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
             ForceCommand sudo -n {w}\n",
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
    drop(cleanup);
}
