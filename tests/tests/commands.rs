//! Issue 15: `replay commands` lists the commands of a session as the user saw them run:
//! after backspaces, history recall, tab completion, Ctrl-R; vi's `:!` escape and a nested
//! shell's commands included; exit status from OSC 133 marks; hidden input nowhere.
//!
//! Each session is a real bash on a real PTY inside the real agent, ingested, then read
//! back with `replay commands --json`. Each command's offset is checked against the time
//! window in which the test typed its Enter: no earlier than the Enter was sent, counted
//! from when the prompt was first seen (the session had started by then), and no later
//! than the command's output was seen, counted from before the agent was spawned.

use std::time::{Duration, Instant};

use auditty_tests::{PtySession, Sandbox, bin};
use terminal::pty::WinSize;

const T: Duration = Duration::from_secs(20);
/// Slack for the checks of offsets: clock reads on both sides of a write and a read.
const SLACK: Duration = Duration::from_millis(300);
const SIZE: WinSize = WinSize {
    cols: 160,
    rows: 50,
};
/// Typed at `read -s` only.
const SECRET: &str = "hunter2-SECRET-8f3a";

/// A recorded bash and the clocks its offsets are checked against.
struct Session {
    s: PtySession,
    /// Before the agent was spawned: no offset is more than (now − this).
    spawned: Instant,
    /// When the first prompt was seen: no offset is less than (now − this).
    prompted: Instant,
    /// What each command should read, with the window of its Enter.
    expected: Vec<Expected>,
}

struct Expected {
    command: String,
    /// Earliest possible offset.
    min: Duration,
    /// Latest possible offset.
    max: Duration,
}

impl Session {
    fn start(sb: &Sandbox, env: &[(&'static str, String)]) -> Session {
        let spawned = Instant::now();
        let s = sb.record_bash(&[], env, SIZE);
        Session {
            s,
            spawned,
            prompted: Instant::now(),
            expected: Vec::new(),
        }
    }

    /// Types `keys` (a command line being edited), lets the shell draw it, then Enter;
    /// waits until `done` holds for the screen. The command should read `command`.
    fn run(&mut self, keys: &[&[u8]], command: &str, done: impl Fn(&[String]) -> bool) {
        for k in keys {
            self.s.send(k);
            self.s.settle(Duration::from_millis(150));
        }
        let before = Instant::now();
        self.s.send(b"\r");
        self.wait_until(&done);
        // The shell echoed the Enter's newline by the time its output is quiet, so the
        // agent had read the Enter.
        self.s.settle(Duration::from_millis(150));
        let after = Instant::now();
        self.expect(command, before, after);
    }

    fn expect(&mut self, command: &str, before: Instant, after: Instant) {
        self.expected.push(Expected {
            command: command.to_string(),
            min: before.saturating_duration_since(self.prompted),
            max: after.duration_since(self.spawned),
        });
    }

    fn wait_until(&self, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + T;
        loop {
            let rows = self.s.rows();
            if done(&rows) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out; the screen shows:\n{}",
                rows.join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn exit(mut self) -> Vec<Expected> {
        let before = Instant::now();
        self.s.type_line("exit");
        assert!(self.s.wait(T).success());
        self.expect("exit", before, Instant::now());
        self.expected
    }
}

fn row_is(text: &str) -> impl Fn(&[String]) -> bool + '_ {
    move |rows| rows.iter().any(|r| r == text)
}

fn rows_are(text: &str, n: usize) -> impl Fn(&[String]) -> bool + '_ {
    move |rows| rows.iter().filter(|r| *r == text).count() == n
}

/// The only session in the store and `replay commands ID --json`, parsed.
fn commands_of(sb: &Sandbox) -> (String, Vec<serde_json::Value>) {
    sb.ingest();
    let sessions = sb.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:#?}");
    let id = sessions[0]["id"].as_str().expect("id").to_string();
    let out = sb.run(sb.cmd("replay").args(["commands", &id, "--json"]));
    let commands = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    (id, commands)
}

/// The commands read what was expected, in order, each within its Enter's window.
fn assert_commands(got: &[serde_json::Value], expected: &[Expected]) {
    let lines: Vec<&str> = got.iter().map(|c| c["command"].as_str().unwrap()).collect();
    let want: Vec<&str> = expected.iter().map(|e| e.command.as_str()).collect();
    assert_eq!(lines, want, "commands: {got:#?}");
    for (i, (c, e)) in got.iter().zip(expected).enumerate() {
        assert_eq!(c["index"], i);
        let offset = Duration::from_nanos(c["offset_ns"].as_u64().unwrap());
        assert!(
            offset + SLACK >= e.min && offset <= e.max + SLACK,
            "{:?}: offset {offset:?} outside [{:?}, {:?}]",
            e.command,
            e.min,
            e.max
        );
        let time = c["time"].as_str().unwrap();
        assert!(
            time.len() == 20 && time.ends_with('Z'),
            "not RFC 3339 UTC: {time}"
        );
    }
}

#[test]
fn commands_read_as_they_ran_after_editing_history_completion_and_nesting() {
    let sb = Sandbox::new();
    let dir = sb.path().join("files");
    std::fs::create_dir_all(&dir).unwrap();
    let name = "uniq-quarterly-figures-2031-final.txt";
    std::fs::write(dir.join(name), "tab-completed-content\n").unwrap();
    let mut s = Session::start(&sb, &[]);

    // (a) Backspaces: "ls -lxy", two rubouts, "a".
    s.run(
        &[b"ls -lxy", b"\x7f\x7f", b"a"],
        "ls -la",
        |rows: &[String]| rows.iter().any(|r| r.starts_with("total ")),
    );
    // (b) History recall, then an edit at the end.
    s.run(
        &[b"echo first-unique"],
        "echo first-unique",
        row_is("first-unique"),
    );
    s.run(
        &[b"\x1b[A", b"\x7f", b"X"],
        "echo first-uniquX",
        row_is("first-uniquX"),
    );
    // (c) Tab completion of a path.
    let typed = format!("cat {}/uniq-q", dir.display());
    s.run(
        &[typed.as_bytes(), b"\t"],
        &format!("cat {}/{name}", dir.display()),
        row_is("tab-completed-content"),
    );
    // (d) Ctrl-R for an earlier command: the match runs, not the search display.
    s.run(
        &[b"\x12", b"first-unique"],
        "echo first-unique",
        rows_are("first-unique", 2),
    );
    // (e) vi's shell escape is a command; what is typed in vi otherwise is not.
    s.run(&[b"vi -u NONE -N"], "vi -u NONE -N", |rows: &[String]| {
        rows.iter().any(|r| r == "~")
    });
    s.s.send("ihello from vi\x1b");
    s.s.settle(Duration::from_millis(200));
    s.run(&[b":!echo from-vi"], "echo from-vi", row_is("from-vi"));
    s.s.wait_for("Press ENTER", T);
    s.s.send("\r");
    s.s.wait_for("hello from vi", T);
    s.s.send(":q!\r");
    // vi discards typeahead when it restores the terminal: let it finish first.
    s.s.settle(Duration::from_millis(500));
    // (f) A nested shell's commands are commands too.
    s.run(
        &[b"bash -c 'bash --norc --noprofile'"],
        "bash -c 'bash --norc --noprofile'",
        |_: &[String]| true,
    );
    s.s.settle(Duration::from_millis(500));
    s.run(
        &[b"echo nested-cmd"],
        "echo nested-cmd",
        row_is("nested-cmd"),
    );
    s.run(&[b"exit"], "exit", |_: &[String]| true);
    s.s.settle(Duration::from_millis(300));
    // A secret typed at an echo-off prompt is in no command and no output.
    s.run(
        &[b"read -s secret; echo got-${#secret}"],
        "read -s secret; echo got-${#secret}",
        |_: &[String]| true,
    );
    s.s.settle(Duration::from_millis(300));
    s.s.type_line(SECRET);
    s.s.wait_for("got-19", T);
    let expected = s.exit();

    let (id, got) = commands_of(&sb);
    assert_commands(&got, &expected);
    let text = serde_json::to_string(&got).unwrap();
    for piece in ["hunter2", "SECRET"] {
        assert!(!text.contains(piece), "{piece:?} in {text}");
    }
    // Output is the rendered text that followed each command.
    assert_eq!(got[1]["output"], "first-unique");
    assert_eq!(got[3]["output"], "tab-completed-content");
    assert!(got.iter().all(|c| c["exit_status"].is_null()), "{got:#?}");

    // The text form: one line per command, offset and time, status unknown.
    let out = sb.run(sb.cmd("replay").args(["commands", &id[..8]]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{out}");
    assert!(lines[0].trim_start().starts_with("0  00:"), "{out}");
    assert!(lines[0].ends_with("  -  ls -la"), "{out}");
}

#[test]
fn osc_133_marks_give_exit_statuses() {
    let sb = Sandbox::new();
    let env = [
        ("PS1", "\\[\\e]133;A\\a\\]$ \\[\\e]133;B\\a\\]".to_string()),
        (
            "PROMPT_COMMAND",
            "printf \"\\e]133;D;%s\\a\" $?".to_string(),
        ),
    ];
    let mut s = Session::start(&sb, &env);
    s.run(&[b"false"], "false", |_: &[String]| true);
    s.s.settle(Duration::from_millis(300));
    // An empty line repeats the last status; it must not land on a command.
    s.s.send("\r");
    s.s.settle(Duration::from_millis(300));
    s.run(&[b"sh -c 'exit 3'"], "sh -c 'exit 3'", |_: &[String]| true);
    s.s.settle(Duration::from_millis(300));
    s.run(&[b"echo osc-ok"], "echo osc-ok", row_is("osc-ok"));
    let expected = s.exit();

    let (_, got) = commands_of(&sb);
    assert_commands(&got, &expected);
    let statuses: Vec<_> = got.iter().map(|c| c["exit_status"].clone()).collect();
    assert_eq!(
        statuses,
        [
            serde_json::json!(1),
            serde_json::json!(3),
            serde_json::json!(0),
            serde_json::Value::Null
        ],
        "{got:#?}"
    );
    assert_eq!(got[2]["output"], "osc-ok");
}

#[test]
fn a_sealed_session_lists_its_commands_only_with_an_identity() {
    let sb = Sandbox::new();
    let key = sb.path().join("auditor");
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "auditor", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh-keygen: {out:?}");
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let mut s = sb.record_bash(&["--recipient", public.trim()], &[], SIZE);
    s.type_line("echo sealed-cmd-$((6*7))");
    s.wait_for("sealed-cmd-42", T);
    s.type_line("exit");
    assert!(s.wait(T).success());
    sb.ingest();
    let id = sb.sessions()[0]["id"].as_str().unwrap().to_string();

    let refused = sb.output(sb.cmd("replay").args(["commands", &id]));
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--identity"),
        "{refused:?}"
    );
    let key = key.to_str().unwrap();
    let out = sb.run(
        sb.cmd("replay")
            .args(["--identity", key, "commands", &id, "--json"]),
    );
    let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(first["command"], "echo sealed-cmd-$((6*7))");
    assert_eq!(first["output"], "sealed-cmd-42");
}

#[test]
fn play_at_a_command_starts_on_the_screen_of_that_moment_and_n_jumps_on() {
    let sb = Sandbox::new();
    let mut s = sb.record_bash(&[], &[], SIZE);
    s.type_line("echo one-$((1+1))");
    s.wait_for("one-2", T);
    s.send("echo two-$((2+2))");
    s.settle(Duration::from_millis(300));
    // The screen as the user saw it when they pressed Enter on command 1.
    let live = s.rows();
    s.send("\r");
    s.wait_for("two-4", T);
    s.type_line("exit");
    assert!(s.wait(T).success());
    sb.ingest();
    let id = sb.sessions()[0]["id"].as_str().unwrap().to_string();

    let missing = sb.output(sb.cmd("replay").args(["play", &id, "--at-command", "9"]));
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("there is no command 9"),
        "{missing:?}"
    );

    // So slow that nothing after the jump plays while the screen is compared: what shows
    // is what the jump drew.
    let args = ["play", &id, "--at-command", "1", "--speed", "0.00001"];
    let mut p = PtySession::spawn(bin("replay"), args, &sb.env(), SIZE);
    p.wait_for("echo two-$((2+2))", T);
    p.settle(Duration::from_millis(300));
    assert_eq!(p.rows(), live);
    // n: the next command (exit) is drawn with everything before it.
    p.send("n");
    p.wait_for("two-4", T);
    p.send("q");
    assert!(p.wait(T).success());
}
