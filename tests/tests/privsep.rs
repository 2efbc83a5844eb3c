//! Issue 16: privilege separation. A root-started agent records an ordinary user
//! (`auditty-agent record --user auditty-rec`, the user `scripts/install-test-deps`
//! creates): inside the session the user cannot read the node key, cannot write the
//! spool, holds no descriptor of the agent's and sees none of root's environment; the
//! session verifies complete, signed by a key the user never held.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use auditty_tests::{PtySession, Sandbox, bin, show};
use terminal::pty::WinSize;

const T: Duration = Duration::from_secs(30);
const USER: &str = "auditty-rec";

#[test]
fn a_root_started_session_keeps_the_key_and_the_spool_from_the_user() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test records another user's session and must run as root"
    );
    let user = nix::unistd::User::from_name(USER)
        .expect("password database")
        .unwrap_or_else(|| panic!("no user {USER}: run scripts/install-test-deps"));
    let sb = Sandbox::new();
    // Open the way to the data directory for everyone, and leave the spool world-writable,
    // so that only what the agent does keeps the user out.
    let data = sb.data_dir();
    std::fs::create_dir_all(data.join("spool")).expect("dirs");
    for dir in [sb.path(), &data] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::fs::set_permissions(data.join("spool"), std::fs::Permissions::from_mode(0o777))
        .expect("chmod");

    let key = data.join("node.key");
    let spool = data.join("spool");
    let mut pty = PtySession::spawn(
        bin("auditty-agent"),
        [
            "record",
            "-q",
            "--user",
            USER,
            "--",
            "bash",
            "--norc",
            "--noprofile",
        ],
        &sb.env(),
        WinSize {
            cols: 120,
            rows: 40,
        },
    );
    pty.wait_for("$", T);
    // Each answer is printed as `R<name>=…`, which the echoed command line never shows,
    // and awaited before the next command is typed (no typeahead mixed into the output).
    fn ask(pty: &mut PtySession, name: &str, value: &str) {
        pty.type_line(&format!("printf 'R%s\\n' \"{name}={value}\""));
        pty.wait_for(&format!("R{name}="), T);
    }
    ask(&mut pty, "who", "$(id -un):$(id -u):$(id -g)");
    let k = key.display();
    ask(
        &mut pty,
        "key-read",
        &format!("$(cat {k} >/dev/null 2>&1; echo $?)"),
    );
    let sp = spool.display();
    ask(
        &mut pty,
        "spool-write",
        &format!("$(touch {sp}/forged 2>/dev/null; echo $?)"),
    );
    ask(
        &mut pty,
        "spool-list",
        &format!("$(ls {sp} >/dev/null 2>&1; echo $?)"),
    );
    // Listed into a file first: inside `$( )` the shell holds the substitution's pipe.
    pty.type_line("ls /proc/$$/fd > ~/fds.txt");
    pty.settle(Duration::from_millis(300));
    ask(&mut pty, "fds", "$(tr '\\n' , < ~/fds.txt)");
    ask(&mut pty, "leak", "[$AUDITTY_DATA_DIR] home=$HOME");
    let screen = pty.rows().join("\n");
    pty.type_line("exit");
    assert!(pty.wait(T).success(), "{screen}");

    let line = |prefix: &str| -> String {
        screen
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in:\n{screen}"))
            .to_string()
    };
    assert_eq!(
        line("Rwho="),
        format!("Rwho={USER}:{}:{}", user.uid, user.gid),
        "{screen}"
    );
    assert_eq!(line("Rkey-read="), "Rkey-read=1", "{screen}");
    assert_eq!(line("Rspool-write="), "Rspool-write=1", "{screen}");
    assert_eq!(line("Rspool-list="), "Rspool-list=2", "{screen}");
    // bash keeps a copy of its terminal at 255; nothing else but the three standard ones.
    let fds = line("Rfds=");
    let fds: Vec<&str> = fds["Rfds=".len()..]
        .split(',')
        .filter(|f| !f.is_empty())
        .collect();
    assert!(
        fds.iter().all(|f| ["0", "1", "2", "255"].contains(f)),
        "descriptors leaked into the user's shell: {fds:?}"
    );
    assert_eq!(
        line("Rleak="),
        format!("Rleak=[] home={}", user.dir.display()),
        "{screen}"
    );
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&spool), 0o700);
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("node.ledger")), 0o600);

    sb.ingest();
    let sessions = sb.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:#?}");
    assert_eq!(sessions[0]["user"], USER);
    assert_eq!(sessions[0]["uid"], user.uid.as_raw());
    let id = sessions[0]["id"].as_str().expect("id");
    let out = sb.output(sb.cmd("replay").args(["verify", id]));
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(&format!("{id}  complete: ")),
        "{}",
        show(&out)
    );
}

#[test]
fn record_as_another_user_needs_root_and_a_real_user() {
    let sb = Sandbox::new();
    let out = sb.output(sb.cmd("auditty-agent").args([
        "record",
        "--user",
        "no-such-user-auditty",
        "--",
        "true",
    ]));
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no user \"no-such-user-auditty\""),
        "{}",
        show(&out)
    );
    assert!(
        !sb.spool().exists() || spool::list_segments(&sb.spool()).expect("spool").is_empty(),
        "nothing recorded"
    );
}
