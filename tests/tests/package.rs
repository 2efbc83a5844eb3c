//! Issue 19, item 1: installed with `dpkg -i` from the packages `scripts/package-deb`
//! builds of the debug binaries, on this very machine (as root), the programs work from
//! `/etc/auditty/auditty.toml` alone:
//!
//! - the packages install: binaries, man pages, completions, the conffile, the user
//!   `auditty` and the directories with their modes; `config check` passes on the shipped
//!   file; `systemd-analyze verify` and `security --offline` accept the installed units;
//! - a login recorded through the installed wrapper (`/usr/sbin/auditty-login`, as sudo
//!   would start it for the user `auditty-rec`) lands in the spool the file names;
//! - each unit's `ExecStart=` is run exactly as written in the installed unit file, as its
//!   `User=`/`Group=`, with its `Environment=`, without capabilities and with no new
//!   privileges (its `CapabilityBoundingSet=` and `NoNewPrivileges=`). This machine's PID
//!   1 is not systemd, so it is `setpriv` that starts them, not systemd, and the rest of
//!   each unit's sandbox (ProtectSystem=, PrivateTmp=, the system call filter) is not
//!   in force here; `systemd-analyze` checks those lines, nothing runs under them
//!   (systemd_vm.rs has systemd start the units, in a VM);
//! - the shipper sends the session to a real broker, the ingester writes it to its store,
//!   and the installed `replay` lists it, verifies it and shows what was typed;
//! - `dpkg --purge` removes it all again (also when the test fails, from a guard), so the
//!   machine is as before and the test can run again.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use auditty_tests::broker::Broker;
use auditty_tests::packages::{PACKAGES, build_packages};
use auditty_tests::{PtySession, files_under, show};
use terminal::pty::WinSize;

const CONFIG: &str = "/etc/auditty/auditty.toml";
const STORE: &str = "/var/lib/auditty-ingest/store";
/// The test user `scripts/install-test-deps` creates (privsep.rs records it too).
const USER: &str = "auditty-rec";
const T: Duration = Duration::from_secs(60);

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(out.status.success(), "{cmd:?} failed: {}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An installed program with the environment of a root shell: nothing of the test
/// run's (no AUDITTY_* variable), and a home of the test's own.
fn program(path: &str, home: &Path) -> Command {
    let mut c = Command::new(path);
    c.env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", home)
        .env("LANG", "C.UTF-8");
    c
}

fn installed(pkg: &str) -> bool {
    let out = run(Command::new("dpkg-query").args(["-W", "-f=${Status}", pkg]));
    String::from_utf8_lossy(&out.stdout).contains("ok installed")
}

fn user_exists(name: &str) -> bool {
    nix::unistd::User::from_name(name).ok().flatten().is_some()
}

/// Purges the packages and what the test left in their directories, and the user
/// `auditty` if the packages created it; runs when the test ends, passed or failed.
struct Installation {
    user_existed: bool,
}

impl Installation {
    fn purge() -> Output {
        run(Command::new("dpkg").arg("--purge").args(PACKAGES))
    }
}

impl Drop for Installation {
    fn drop(&mut self) {
        let out = Self::purge();
        if !out.status.success() {
            eprintln!("dpkg --purge failed: {}", show(&out));
        }
        // The purge keeps recordings (audit evidence) and the user; these are the test's.
        for dir in [
            "/var/lib/auditty",
            "/var/spool/auditty",
            "/var/lib/auditty-ingest",
            "/etc/auditty",
        ] {
            let _ = std::fs::remove_dir_all(dir);
        }
        if !self.user_existed && user_exists("auditty") {
            let _ = run(Command::new("userdel").arg("auditty"));
            let _ = run(Command::new("groupdel").arg("auditty"));
        }
    }
}

/// The `[Service]` lines of an installed unit that say how its program starts.
#[derive(Debug, Default)]
struct Unit {
    exec_start: Vec<String>,
    user: Option<String>,
    group: Option<String>,
    environment: Vec<(String, String)>,
    bounding_set_empty: bool,
    no_new_privileges: bool,
}

fn parse_unit(path: &str) -> Unit {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut unit = Unit::default();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            section = line.to_string();
            continue;
        }
        if section != "[Service]" {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{path}: not key=value: {line}"));
        match key {
            "ExecStart" => {
                // This small parser knows no quoting, prefixes (-, @, +, !) or
                // specifiers: refuse them rather than run something else.
                assert!(
                    !value.contains(['"', '\'', '%', '$'])
                        && !value.starts_with(['-', '@', '+', '!']),
                    "{path}: ExecStart= needs a real parser: {value}"
                );
                unit.exec_start = value.split_whitespace().map(String::from).collect();
            }
            "User" => unit.user = Some(value.to_string()),
            "Group" => unit.group = Some(value.to_string()),
            "Environment" => {
                for kv in value.split_whitespace() {
                    let (k, v) = kv.split_once('=').expect("Environment=K=V");
                    unit.environment.push((k.to_string(), v.to_string()));
                }
            }
            "EnvironmentFile" => assert!(
                value.starts_with('-') && !Path::new(&value[1..]).exists(),
                "{path}: the test does not read EnvironmentFile= ({value}), and it exists"
            ),
            "CapabilityBoundingSet" => unit.bounding_set_empty = value.is_empty(),
            "NoNewPrivileges" => unit.no_new_privileges = value == "yes",
            _ => {}
        }
    }
    assert!(!unit.exec_start.is_empty(), "{path}: no ExecStart=");
    unit
}

/// Starts `unit`'s `ExecStart=` as systemd would start the service: as its user and group
/// (with that user's supplementary groups), with no capability left and no way to gain
/// one, in `/`, with only the variables systemd sets and the unit's `Environment=`; its
/// stderr goes to `log`.
fn start_unit(unit: &Unit, log: &Path) -> Child {
    assert!(
        unit.bounding_set_empty && unit.no_new_privileges,
        "{unit:?}"
    );
    let user = unit.user.clone().unwrap_or_else(|| "root".to_string());
    let account = nix::unistd::User::from_name(&user)
        .expect("password database")
        .unwrap_or_else(|| panic!("no user {user}"));
    let group = unit
        .group
        .clone()
        .unwrap_or_else(|| account.gid.to_string());
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={user}"))
        .arg(format!("--regid={group}"))
        .args([
            "--init-groups",
            "--no-new-privs",
            "--bounding-set=-all",
            "--inh-caps=-all",
            "--",
        ])
        .args(&unit.exec_start)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", &account.dir)
        .env("USER", &user)
        .env("LOGNAME", &user)
        .env("LANG", "C.UTF-8")
        .envs(unit.environment.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"));
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"))
}

/// Stops a started unit as systemd does (SIGTERM) and expects a clean exit.
fn stop_unit(mut child: Child, name: &str, log: &Path) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + T;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(
                status.success(),
                "{name} exited with {status}; log:\n{}",
                read(log)
            );
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "{name} did not stop within {T:?} of SIGTERM; log:\n{}",
                read(log)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn mode_owner(path: &str) -> (u32, u32) {
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    (m.permissions().mode() & 0o7777, m.uid())
}

/// Waits until `check` holds, or fails with what `context` says.
fn wait_until(what: &str, mut check: impl FnMut() -> bool, context: impl Fn() -> String) {
    let deadline = Instant::now() + T;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what} never happened within {T:?}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn installed_packages_record_ship_and_ingest_from_the_configuration_file_alone() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test installs Debian packages on this machine and must run as root"
    );
    assert!(
        user_exists(USER),
        "no user {USER}: run scripts/install-test-deps"
    );
    for pkg in PACKAGES {
        assert!(
            !installed(pkg),
            "{pkg} is installed on this machine; this test installs and purges the packages, \
             so it will not touch a real installation: dpkg --purge it first"
        );
    }
    let scratch = tempfile::Builder::new()
        .prefix("auditty-package-")
        .tempdir()
        .expect("tempdir");
    let debs = build_packages(&scratch.path().join("debs"));
    let home = scratch.path().join("home");
    std::fs::create_dir_all(&home).expect("home");

    let guard = Installation {
        user_existed: user_exists("auditty"),
    };
    ok(Command::new("dpkg").arg("-i").args(&debs));
    for pkg in PACKAGES {
        assert!(installed(pkg), "{pkg} is not installed after dpkg -i");
    }

    // What the packages put in place.
    for f in [
        "/usr/bin/auditty-agent",
        "/usr/bin/auditty-ingest",
        "/usr/bin/replay",
        "/usr/sbin/auditty-login",
        "/lib/systemd/system/auditty-ship.service",
        "/lib/systemd/system/auditty-ingest.service",
        "/usr/share/man/man1/auditty-agent.1.gz",
        "/usr/share/man/man1/auditty-agent-ship.1.gz",
        "/usr/share/man/man1/auditty-ingest-run.1.gz",
        "/usr/share/man/man1/replay-verify.1.gz",
        "/usr/share/zsh/vendor-completions/_auditty-agent",
        "/usr/share/fish/vendor_completions.d/replay.fish",
        "/usr/share/doc/auditty-agent/examples/sudoers",
        "/usr/share/doc/auditty-ingest/examples/auditty-alerts.yml",
    ] {
        assert!(Path::new(f).exists(), "{f} was not installed");
    }
    let page = ok(Command::new("zcat").arg("/usr/share/man/man1/auditty-agent-ship.1.gz"));
    assert!(page.contains("brokers") && page.contains(CONFIG), "{page}");
    for program in ["auditty-agent", "auditty-ingest", "replay"] {
        let complete = ok(Command::new("bash").arg("-c").arg(format!(
            ". /usr/share/bash-completion/completions/{program} && complete -p {program}"
        )));
        assert!(complete.contains(program), "{complete}");
    }
    let conffiles =
        ok(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", "auditty-common"]));
    assert!(conffiles.contains(CONFIG), "{conffiles}");
    let auditty = nix::unistd::User::from_name("auditty")
        .expect("password database")
        .expect("the package created the user auditty");
    assert_eq!(mode_owner("/var/lib/auditty"), (0o700, 0));
    assert_eq!(mode_owner("/var/spool/auditty"), (0o700, 0));
    assert_eq!(
        mode_owner("/var/lib/auditty-ingest"),
        (0o750, auditty.uid.as_raw())
    );

    // The shipped file is valid for both programs; the shipper still lacks its brokers.
    ok(program("/usr/bin/auditty-agent", &home).args(["config", "check"]));
    ok(program("/usr/bin/auditty-ingest", &home).args(["config", "check"]));
    let out = run(program("/usr/bin/auditty-agent", &home).args(["config", "check", "ship"]));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs `brokers`"),
        "{}",
        show(&out)
    );

    // systemd reads the installed units without complaint (it checks the binaries, the
    // user and the man pages named), and rates their sandbox.
    ok(Command::new("systemd-analyze").args([
        "verify",
        "/lib/systemd/system/auditty-ship.service",
        "/lib/systemd/system/auditty-ingest.service",
        "/lib/systemd/system/auditty-compact.service",
        "/lib/systemd/system/auditty-compact.timer",
    ]));
    for unit in [
        "auditty-ship.service",
        "auditty-ingest.service",
        "auditty-compact.service",
    ] {
        let out = run(Command::new("systemd-analyze").args([
            "security",
            "--offline=yes",
            &format!("/lib/systemd/system/{unit}"),
        ]));
        let text = String::from_utf8_lossy(&out.stdout);
        let verdict = text
            .lines()
            .find(|l| l.contains("Overall exposure level"))
            .unwrap_or_else(|| panic!("no verdict: {}", show(&out)));
        eprintln!("{verdict}");
        assert!(
            verdict.contains(" OK") || verdict.contains(" SAFE"),
            "{unit} is exposed: {verdict}"
        );
    }

    // The test's settings: a broker, and what the shipped file leaves commented out.
    let broker = Broker::start(&scratch.path().join("broker"));
    broker.create_topic("auditty.events", 1);
    let shipped = std::fs::read_to_string(CONFIG).expect("read the installed config");
    let mut config = shipped.clone();
    for (from, to) in [
        (
            "# brokers = \"kafka1:9092,kafka2:9092\"",
            format!("brokers = \"{}\"", broker.address()),
        ),
        (
            "# source = \"kafka://kafka1:9092/auditty.events\"",
            format!("source = \"{}\"", broker.source("auditty.events")),
        ),
        (
            "# group = \"auditty-ingest\"",
            "group = \"auditty-ingest\"\nmax_batch_age_ms = 500".to_string(),
        ),
    ] {
        assert!(config.contains(from), "the shipped config has no `{from}`");
        config = config.replace(from, &to);
    }
    std::fs::write(CONFIG, &config).expect("write the config");
    let check = ok(program("/usr/bin/auditty-agent", &home).args(["config", "check", "ship"]));
    let brokers_line = config
        .lines()
        .position(|l| l.starts_with("brokers ="))
        .expect("brokers line")
        + 1;
    assert!(
        check.lines().any(
            |l| l.starts_with(&format!("brokers = \"{}\"", broker.address()))
                && l.ends_with(&format!("# file {CONFIG}:{brokers_line}"))
        ),
        "{check}"
    );
    ok(program("/usr/bin/auditty-ingest", &home).args(["config", "check", "run"]));

    // A login, recorded as root through the installed wrapper, as sudo starts it for
    // the user; no variable of ours reaches it.
    let mut pty = PtySession::spawn(
        "/usr/bin/env",
        [
            "-i",
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            "TERM=xterm",
            "LANG=C.UTF-8",
            &format!("SUDO_USER={USER}"),
            "/usr/sbin/auditty-login",
        ],
        &[],
        WinSize {
            cols: 100,
            rows: 30,
        },
    );
    pty.wait_for("$", T);
    pty.type_line("echo \"packaged-$((6 * 7))\"");
    pty.wait_for("packaged-42", T);
    pty.type_line("exit");
    let status = pty.wait(T);
    assert!(
        status.success(),
        "the login ended with {status}:\n{}",
        pty.rows().join("\n")
    );
    let spooled = files_under(Path::new("/var/spool/auditty"));
    assert!(
        spooled
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "seg")),
        "the session is not in the configured spool: {spooled:?}"
    );
    assert_eq!(mode_owner("/var/lib/auditty/node.key"), (0o600, 0));

    // The ship unit, as its unit file says, until the spool is empty.
    let ship = parse_unit("/lib/systemd/system/auditty-ship.service");
    assert_eq!(ship.exec_start, ["/usr/bin/auditty-agent", "ship"]);
    let ship_log = scratch.path().join("ship.log");
    let shipper = start_unit(&ship, &ship_log);
    wait_until(
        "the shipper emptying the spool",
        || {
            !files_under(Path::new("/var/spool/auditty"))
                .iter()
                .any(|p| p.extension().is_some_and(|e| e == "seg"))
        },
        || {
            format!(
                "ship log:\n{}\nbroker log:\n{}",
                read(&ship_log),
                broker.log()
            )
        },
    );
    stop_unit(shipper, "auditty-agent ship", &ship_log);

    // The ingest unit, as user auditty, until the session is in its store.
    let ingest = parse_unit("/lib/systemd/system/auditty-ingest.service");
    assert_eq!(ingest.exec_start, ["/usr/bin/auditty-ingest", "run"]);
    assert_eq!(ingest.user.as_deref(), Some("auditty"));
    let ingest_log = scratch.path().join("ingest.log");
    let ingester = start_unit(&ingest, &ingest_log);
    let store = format!("file://{STORE}");
    let sessions = || -> Vec<serde_json::Value> {
        let out = run(program("/usr/bin/replay", &home).args(["--store", &store, "ls", "--json"]));
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    };
    // Only then replay, which as root would create the store's directories for itself
    // (its access log) before the ingester could.
    wait_until(
        "the ingester's first object",
        || !files_under(&Path::new(STORE).join("sessions")).is_empty(),
        || format!("ingest log:\n{}", read(&ingest_log)),
    );
    wait_until(
        "the ingester storing the ended session",
        || {
            sessions()
                .iter()
                .any(|s| s["exit"].is_number() || s["ended"] == true)
        },
        || {
            format!(
                "ingest log:\n{}\nstore: {:?}",
                read(&ingest_log),
                files_under(Path::new(STORE))
            )
        },
    );
    stop_unit(ingester, "auditty-ingest run", &ingest_log);
    let owner = files_under(Path::new(STORE).join("events").as_path())
        .first()
        .map(|p| std::fs::metadata(p).expect("stat").uid());
    assert_eq!(
        owner,
        Some(auditty.uid.as_raw()),
        "the store's objects are the ingester's"
    );

    let listed = sessions();
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["user"], USER);
    let id = listed[0]["id"].as_str().expect("id").to_string();
    let verified = run(program("/usr/bin/replay", &home).args([
        "--store",
        &store,
        "verify",
        "--trust",
        "/var/lib/auditty/trusted-keys",
        &id,
    ]));
    assert!(verified.status.success(), "{}", show(&verified));
    let text = ok(program("/usr/bin/replay", &home)
        .args(["--store", &store, "export", &id, "--format", "text"]));
    assert!(text.contains("packaged-42"), "{text}");

    // Removal: the programs go, the recordings stay until the guard clears them.
    let out = Installation::purge();
    assert!(out.status.success(), "dpkg --purge failed: {}", show(&out));
    for pkg in PACKAGES {
        assert!(
            !installed(pkg),
            "{pkg} is still installed after dpkg --purge"
        );
    }
    assert!(!Path::new("/usr/bin/auditty-agent").exists());
    assert!(!Path::new(CONFIG).exists(), "the purge left the conffile");
    assert!(
        Path::new(STORE).exists(),
        "the purge deleted the recordings"
    );
    let user_existed = guard.user_existed;
    drop(guard);
    assert!(!Path::new("/var/lib/auditty-ingest").exists());
    assert_eq!(
        user_exists("auditty"),
        user_existed,
        "the user auditty was left behind (or removed though it was there before)"
    );
}
