//! Issue 6 part 5: input typed while the terminal hides it (a password prompt) reaches the
//! program but is not recorded; a `redacted` event says how many bytes were left out.
//!
//! Each test runs the real agent on a real PTY with a real bash. Sessions are recorded
//! with `--no-compress`, so that a scan of the spool files' raw bytes would find typed
//! text if it were there (the control test shows it does).

use std::path::Path;
use std::time::Duration;

use auditty_tests::{PtySession, Sandbox};
use schemas::{Event, EventKind, SessionEnd, SessionId};
use terminal::pty::WinSize;

const T: Duration = Duration::from_secs(20);
/// What the user types at the prompt: 19 bytes, and Enter.
const SECRET: &str = "hunter2-SECRET-8f3a";
/// Pieces of the secret that fit in one keystroke batch of [`PtySession::type_line`]
/// (8 bytes), so a scan of raw bytes finds them even if the secret were recorded split
/// over several events.
const PIECES: [&str; 2] = ["hunter2", "SECRET"];

/// What one recorded session left behind.
struct Recording {
    sb: Sandbox,
    id: SessionId,
    /// Spool files (path, raw bytes), read before ingesting.
    spool_files: Vec<(String, Vec<u8>)>,
    /// The session's events as decoded from the spool.
    spooled: Vec<Event>,
    /// The session's events as read back from the store.
    stored: Vec<Event>,
}

impl Recording {
    fn of_kind(&self, kind: EventKind) -> Vec<&Event> {
        self.stored.iter().filter(|e| e.kind == kind).collect()
    }

    fn joined(&self, kind: EventKind) -> String {
        let bytes: Vec<u8> = self
            .of_kind(kind)
            .iter()
            .flat_map(|e| e.data.clone())
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn redacted_counts(&self) -> Vec<u64> {
        self.of_kind(EventKind::Redacted)
            .iter()
            .map(|e| {
                std::str::from_utf8(&e.data)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("redacted data is not a count: {:?}", e.data))
            })
            .collect()
    }
}

/// Every regular file under `dir`, with its raw bytes.
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read file");
                out.push((path.display().to_string(), bytes));
            }
        }
    }
    out
}

/// Waits until a row of the screen reads exactly `text` (trailing blanks aside), so that
/// a prompt is told from the command line that asked for it.
fn wait_for_row(s: &PtySession, text: &str) {
    let deadline = std::time::Instant::now() + T;
    while !s.rows().iter().any(|r| r == text.trim_end()) {
        assert!(
            std::time::Instant::now() < deadline,
            "no row reads {text:?}; the screen shows:\n{}",
            s.rows().join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Asserts that no piece of the secret is in any of the files.
fn assert_no_secret_in(files: &[(String, Vec<u8>)], what: &str) {
    assert!(!files.is_empty(), "no {what} files to look at");
    for (path, bytes) in files {
        for piece in PIECES {
            assert!(
                !contains(bytes, piece),
                "{what} file {path} holds {piece:?}, part of the secret"
            );
        }
    }
}

/// Asserts that no event holds a piece of the secret.
fn assert_no_secret_in_events(events: &[Event], what: &str) {
    for e in events {
        for piece in PIECES {
            assert!(
                !contains(&e.data, piece),
                "{what}: {} event {} holds {piece:?}: {:?}",
                e.kind,
                e.seq,
                String::from_utf8_lossy(&e.data)
            );
        }
    }
}

/// Records `bash`: a command before, `prompt_command` (which shows `prompt` and reads
/// the secret), a command after; then ingests.
fn record(extra_args: &[&str], prompt_command: &str, prompt: &str, answer: &str) -> Recording {
    let sb = Sandbox::new();
    let mut args = vec!["--no-compress"];
    args.extend_from_slice(extra_args);
    let mut s = sb.record_bash(&args, &[], WinSize { cols: 80, rows: 24 });
    s.type_line("echo before-marker-$((6*7))");
    s.wait_for("before-marker-42", T);

    s.type_line(prompt_command);
    wait_for_row(&s, prompt);
    // bash's `read -s` prints its prompt before it turns echo off: let it finish, as a
    // person reading the prompt would.
    s.settle(Duration::from_millis(300));
    s.type_line(SECRET);
    s.wait_for(answer, T);

    s.type_line("echo after-marker-$((6*7))");
    s.wait_for("after-marker-42", T);
    s.type_line("exit");
    assert!(s.wait(T).success());
    let screen = s.rows().join("\n");
    assert!(
        !screen.contains(SECRET),
        "the terminal itself never showed the secret:\n{screen}"
    );

    let spool_files = files_under(&sb.spool());
    let spooled = sb.spooled_events();
    sb.ingest();
    let sessions = sb.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:#?}");
    let id: SessionId = sessions[0]["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("session id");
    let stored: Vec<Event> = search::session_events(sb.open_store().as_ref(), id)
        .expect("session events")
        .iter()
        .filter_map(|r| r.to_event())
        .collect();
    assert_eq!(stored, spooled, "the store holds what the spool held");
    Recording {
        sb,
        id,
        spool_files,
        spooled,
        stored,
    }
}

/// What every redacting session must show: the secret nowhere, everything else there.
fn assert_redacted(r: &Recording, prompt: &str, answer: &str) {
    assert_no_secret_in(&r.spool_files, "spool");
    assert_no_secret_in_events(&r.spooled, "spool");
    assert_no_secret_in(&files_under(&r.sb.store()), "store");
    assert_no_secret_in_events(&r.stored, "store");

    let input = r.joined(EventKind::Input);
    let output = r.joined(EventKind::Output);
    for typed in ["echo before-marker", "echo after-marker"] {
        assert!(input.contains(typed), "{typed:?} not in input: {input:?}");
    }
    // The command line holds the prompt's text too: the program's prompt starts a line.
    assert!(
        output.contains(&format!("\r{prompt}")) || output.contains(&format!("\n{prompt}")),
        "{prompt:?} not in output: {output:?}"
    );
    for shown in [answer, "before-marker-42", "after-marker-42"] {
        assert!(
            output.contains(shown),
            "{shown:?} not in output: {output:?}"
        );
    }

    // The secret and its Enter, as one event between the commands before and after.
    assert_eq!(
        r.redacted_counts(),
        vec![SECRET.len() as u64 + 1],
        "one redacted event for the whole password"
    );
    let redacted = r.of_kind(EventKind::Redacted)[0];
    let seq_of = |text: &str| {
        r.stored
            .iter()
            .find(|e| e.kind == EventKind::Output && contains(&e.data, text))
            .map(|e| e.seq)
            .unwrap_or_else(|| panic!("no output event holds {text:?}"))
    };
    assert!(
        seq_of("before-marker-42") < redacted.seq && redacted.seq < seq_of("after-marker-42"),
        "the redacted event is where the password was typed"
    );
    assert!(
        r.stored
            .windows(2)
            .all(|w| w[0].elapsed_ns <= w[1].elapsed_ns),
        "events are in time order"
    );

    // The recorded input bytes do not count what was left out.
    let end = r.of_kind(EventKind::End);
    let end = SessionEnd::from_bytes(&end[0].data).expect("end metadata");
    let recorded_input: usize = r
        .of_kind(EventKind::Input)
        .iter()
        .map(|e| e.data.len())
        .sum();
    assert_eq!(end.input_bytes, recorded_input as u64);

    // An auditor sees where input was left out in asciinema; the text export is what the
    // user saw.
    let id = r.id.to_string();
    let cast = r.sb.run(r.sb.cmd("replay").args(["export", &id]));
    assert!(
        cast.contains(r#""m", "[20 bytes of hidden input not recorded]""#),
        "{cast}"
    );
    let text =
        r.sb.run(r.sb.cmd("replay").args(["export", &id, "--format", "text"]));
    assert!(
        text.contains(answer) && !text.contains("hidden input"),
        "{text}"
    );
    for export in [&cast, &text] {
        for piece in PIECES {
            assert!(!export.contains(piece), "{export}");
        }
    }
}

#[test]
fn a_bash_read_s_password_is_not_recorded() {
    let prompt = "Password: ";
    let r = record(
        &[],
        r#"read -s -p 'Password: ' pw; echo; echo "len=${#pw}""#,
        prompt,
        "len=19",
    );
    assert_redacted(&r, prompt, "len=19");
}

#[test]
fn a_getpass_passphrase_is_not_recorded() {
    let prompt = "Passphrase: ";
    let r = record(
        &[],
        r#"python3 -c 'import getpass; s=getpass.getpass("Passphrase: "); print("got", len(s))'"#,
        prompt,
        "got 19",
    );
    assert_redacted(&r, prompt, "got 19");
}

#[test]
fn with_no_redact_hidden_input_the_password_is_recorded() {
    let r = record(
        &["--no-redact-hidden-input"],
        r#"read -s -p 'Password: ' pw; echo; echo "len=${#pw}""#,
        "Password: ",
        "len=19",
    );
    let input = r.joined(EventKind::Input);
    assert!(input.contains(SECRET), "{input:?}");
    assert!(r.redacted_counts().is_empty());
    // The scans that find nothing above would have found it.
    for piece in PIECES {
        assert!(
            r.spool_files.iter().any(|(_, b)| contains(b, piece)),
            "{piece:?} in the raw spool files"
        );
    }
}

#[test]
fn full_screen_programs_that_echo_themselves_are_recorded() {
    let sb = Sandbox::new();
    let mut s = sb.record_bash(&[], &[], WinSize { cols: 80, rows: 24 });
    s.type_line("vi -u NONE -N");
    s.wait_for("~", T);
    s.send("ityped-in-vi\x1b");
    s.wait_for("typed-in-vi", T);
    s.send(":q!\r");
    s.settle(Duration::from_millis(500));
    s.type_line("seq 1 300 | less");
    s.wait_for("23", T);
    s.send("/277\r");
    s.wait_for("278", T);
    s.send("q");
    s.settle(Duration::from_millis(500));
    s.type_line("exit");
    assert!(s.wait(T).success());

    let events = sb.spooled_events();
    assert!(
        events.iter().all(|e| e.kind != EventKind::Redacted),
        "nothing was redacted"
    );
    let input: Vec<u8> = events
        .iter()
        .filter(|e| e.kind == EventKind::Input)
        .flat_map(|e| e.data.clone())
        .collect();
    let input = String::from_utf8_lossy(&input);
    for typed in ["vi -u NONE -N", "ityped-in-vi", ":q!", "seq 1 300", "/277"] {
        assert!(input.contains(typed), "{typed:?} not in input: {input:?}");
    }
}

#[test]
fn a_count_reaches_the_spool_while_the_prompt_is_still_open() {
    let sb = Sandbox::new();
    let agent = auditty_tests::bin("auditty-agent");
    let mut s = PtySession::spawn(
        &agent,
        [
            "record",
            "-q",
            "--no-compress",
            "--",
            "bash",
            "--norc",
            "--noprofile",
        ],
        &sb.env(),
        WinSize { cols: 80, rows: 24 },
    );
    s.wait_for("$", T);
    s.type_line(r#"read -s -p 'Password: ' pw; echo; echo "len=${#pw}""#);
    wait_for_row(&s, "Password: ");
    s.settle(Duration::from_millis(300));
    // No Enter: the prompt stays open, and nothing else is recorded after the secret.
    s.send(SECRET);
    let deadline = std::time::Instant::now() + T;
    let counts = loop {
        let counts: Vec<Vec<u8>> = sb
            .spooled_events()
            .into_iter()
            .filter(|e| e.kind == EventKind::Redacted)
            .map(|e| e.data)
            .collect();
        if !counts.is_empty() {
            break counts;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the redacted count never reached the spool"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(counts, vec![b"19".to_vec()]);
    assert_no_secret_in(&files_under(&sb.spool()), "spool");

    s.send("\r");
    s.wait_for("len=19", T);
    s.type_line("exit");
    assert!(s.wait(T).success());
    let counts: Vec<Vec<u8>> = sb
        .spooled_events()
        .into_iter()
        .filter(|e| e.kind == EventKind::Redacted)
        .map(|e| e.data)
        .collect();
    assert_eq!(
        counts,
        vec![b"19".to_vec(), b"1".to_vec()],
        "then the Enter"
    );
}
