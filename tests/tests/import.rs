//! Issue 17, part 4: `replay import` of other recorders' files.
//!
//! The asciicast conformance files of the format's authors import (or are rejected with
//! their line), and export back to the same events and timing; real files made here by
//! `script` (classic and advanced), `ttyrec`, `sudo` with `log_output` and `tlog-rec`
//! become sessions whose export renders, at every event of the original, the same screen
//! as the original does. Re-importing is a no-op; a damaged file is rejected with its
//! offset and leaves the store as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use auditty_tests::{PtySession, Sandbox, files_under, show};
use search::render::Screen;
use terminal::pty::WinSize;

const T: Duration = Duration::from_secs(30);

fn hostname() -> String {
    nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Every file of the store with its bytes, to show that a command changed nothing.
fn store_snapshot(sb: &Sandbox) -> BTreeMap<PathBuf, Vec<u8>> {
    files_under(&sb.store())
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

fn import(sb: &Sandbox, paths: &[&Path]) -> Output {
    sb.output(sb.cmd("replay").arg("import").args(paths))
}

/// Imports, expecting success and exactly one new session; returns its id.
fn import_one(sb: &Sandbox, paths: &[&Path]) -> String {
    let out = import(sb, paths);
    assert!(out.status.success(), "import failed\n{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ids: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(ids.len(), 1, "one session expected\n{}", show(&out));
    ids[0].to_string()
}

fn export(sb: &Sandbox, id: &str) -> String {
    sb.run(sb.cmd("replay").args(["export", id]))
}

/// `asciinema cat` (it needs a terminal) accepts the file.
fn asciinema_plays(sb: &Sandbox, cast: &str) {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = sb.path().join(format!("export-{n}.cast"));
    std::fs::write(&path, cast).unwrap();
    let mut cat = PtySession::spawn(
        "asciinema",
        [std::ffi::OsStr::new("cat"), path.as_os_str()],
        &sb.env(),
        WinSize { cols: 80, rows: 24 },
    );
    let status = cat.wait(T);
    assert!(
        status.success(),
        "asciinema cat rejected the export ({status}):\n{}\n{cast}",
        String::from_utf8_lossy(&cat.raw_output())
    );
}

/// The `replay ls --scan --json` entry of `id`.
fn listing(sb: &Sandbox, id: &str) -> serde_json::Value {
    let out = sb.run(sb.cmd("replay").args(["ls", "--scan", "--json"]));
    let all: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    all.into_iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("{id} not listed: {out}"))
}

/// `verify` says "imported", never FAILED, and names the format.
fn verify_says_imported(sb: &Sandbox, id: &str, format: &str) {
    let out = sb.output(sb.cmd("replay").args(["verify", id]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "IMPORTED: not signed at capture: imported from {format} (sha256 "
        )) && !text.contains("FAILED"),
        "{}",
        show(&out)
    );
    // Nothing vouches for it, so it is not "complete": exit 1, as for any unsigned session.
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
}

// ---------------------------------------------------------------------------------------
// asciicast conformance files

/// The team's copy of the format authors' files (see schemas/src/asciicast.rs for the
/// same lookup): `$AUDITTY_SHARED_TESTDATA/asciicast`, else `../shared/testdata/asciicast`
/// beside the workspace.
fn conformance_dir() -> Option<PathBuf> {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let workspace = manifest.join("..");
    let explicit = std::env::var_os("AUDITTY_SHARED_TESTDATA").filter(|v| !v.is_empty());
    let dir = match &explicit {
        Some(d) => workspace.join(d).join("asciicast"),
        None => workspace.join("../shared/testdata/asciicast"),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    let required = std::env::var("AUDITTY_REQUIRE_SHARED_TESTDATA").is_ok_and(|v| v == "1");
    assert!(
        explicit.is_none() && !required,
        "the asciicast conformance data is missing at {}",
        dir.display()
    );
    println!(
        "asciicast conformance import suite: not run (no {})",
        dir.display()
    );
    None
}

/// Files the README marks INVALID, by the part of their name after `__`.
const INVALID: &[&str] = &[
    "broken.",
    "invalid.",
    "invalid-code.",
    "invalid-data.",
    "invalid-resize.",
    "invalid-theme.",
    "invalid-time-1.",
    "invalid-time-2.",
    "wrong-event-length.",
];

/// (absolute seconds, code, data).
type CastLine = (f64, String, String);

/// An independent reading of an asciicast file for the comparison: size and
/// (absolute seconds, code, data) of every event but `x`.
fn cast_events(text: &str) -> ((u64, u64), Vec<CastLine>) {
    let first: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v, // v1: one document
        Err(_) => {
            serde_json::from_str(text.lines().find(|l| !l.trim().is_empty()).unwrap()).unwrap()
        }
    };
    let mut out = Vec::new();
    match first["version"].as_u64() {
        Some(1) => {
            let mut t = 0.0;
            for f in first["stdout"].as_array().unwrap() {
                t += f[0].as_f64().unwrap();
                out.push((t, "o".to_string(), f[1].as_str().unwrap().to_string()));
            }
            (
                (
                    first["width"].as_u64().unwrap(),
                    first["height"].as_u64().unwrap(),
                ),
                out,
            )
        }
        Some(v) => {
            let mut t = 0.0;
            for l in text.lines().skip_while(|l| l.trim().is_empty()).skip(1) {
                if l.trim().is_empty() || l.starts_with('#') {
                    continue;
                }
                let e: serde_json::Value = serde_json::from_str(l).unwrap();
                let time = e[0].as_f64().unwrap();
                t = if v == 3 { t + time } else { time };
                if e[1] != "x" {
                    out.push((
                        t,
                        e[1].as_str().unwrap().into(),
                        e[2].as_str().unwrap().into(),
                    ));
                }
            }
            let size = if v == 3 {
                (
                    first["term"]["cols"].as_u64().unwrap(),
                    first["term"]["rows"].as_u64().unwrap(),
                )
            } else {
                (
                    first["width"].as_u64().unwrap(),
                    first["height"].as_u64().unwrap(),
                )
            };
            (size, out)
        }
        None => panic!("no version in {text}"),
    }
}

#[test]
fn every_asciicast_conformance_file_imports_or_is_rejected_with_its_line() {
    let Some(dir) = conformance_dir() else { return };
    let sb = Sandbox::new();
    let mut files: Vec<PathBuf> = ["v1", "v2", "v3"]
        .iter()
        .flat_map(|v| {
            std::fs::read_dir(dir.join(v))
                .unwrap()
                .map(|e| e.unwrap().path())
        })
        .collect();
    files.sort();
    assert!(files.len() >= 40, "{files:?}");
    let (mut valid, mut invalid) = (0, 0);
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let after = name.split("__").last().unwrap();
        let before = store_snapshot(&sb);
        if INVALID.iter().any(|k| after.starts_with(k)) {
            let out = import(&sb, &[file]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{name} was not rejected\n{}",
                show(&out)
            );
            assert!(
                err.contains(&format!("cannot import {}: line ", file.display())),
                "{name}: the error names no line\n{err}"
            );
            assert!(err.contains("nothing of it was stored"), "{err}");
            assert_eq!(store_snapshot(&sb), before, "{name}: the store changed");
            invalid += 1;
            continue;
        }
        let id = import_one(&sb, &[file]);
        let original = std::fs::read_to_string(file).unwrap();
        let cast = export(&sb, &id);
        let (size, want) = cast_events(&original);
        let (header, got) = schemas::asciicast::parse_v2(&cast).unwrap();
        assert_eq!(
            (u64::from(header.width), u64::from(header.height)),
            size,
            "{name}"
        );
        assert_eq!(
            got.len(),
            want.len(),
            "{name}: events differ\n{original}\n{cast}"
        );
        for (g, (t, code, data)) in got.iter().zip(&want) {
            assert_eq!((&g.code, &g.data), (code, data), "{name}\n{cast}");
            // v2 writes microseconds; v3 intervals add up in floating point.
            assert!(
                (g.time - t).abs() < 2e-6,
                "{name}: {} vs {t}\n{cast}",
                g.time
            );
        }
        asciinema_plays(&sb, &cast);
        assert_eq!(listing(&sb, &id)["integrity"], "imported", "{name}");
        valid += 1;
    }
    assert!(
        valid >= 25 && invalid >= 20,
        "valid {valid}, invalid {invalid}"
    );

    // The same bytes again: nothing to do, and nothing written.
    let full = files
        .iter()
        .find(|f| {
            f.to_string_lossy()
                .ends_with("asciinema-server__test-fixtures-2__full.cast")
        })
        .unwrap();
    let before = store_snapshot(&sb);
    let out = import(&sb, &[full]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is already imported as session "),
        "{}",
        show(&out)
    );
    assert!(out.stdout.is_empty(), "{}", show(&out));
    assert_eq!(store_snapshot(&sb), before);

    // What the header says is kept: the timestamp dates the session, env gives TERM.
    let cast = std::fs::read_to_string(full).unwrap();
    let id = sb
        .sessions()
        .into_iter()
        .find(|s| s["start_time_ns"] == 1_506_410_422_000_000_000i64)
        .unwrap_or_else(|| panic!("no session dated by {cast}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    verify_says_imported(&sb, &id, "asciicast-v2");
    let l = listing(&sb, &id);
    // The digest of a one-file import is the file's own SHA-256.
    let sum = sb.run(Command::new("sha256sum").arg(full));
    assert_eq!(
        l["import"]["sha256"].as_str(),
        sum.split_whitespace().next(),
        "{l}"
    );
    assert_eq!(
        (l["term"].as_str(), l["user"].as_str(), l["host"].as_str()),
        (Some("screen-256color"), Some("unknown"), Some("unknown"))
    );

    // A cut-off file (mid-line) is rejected with its line, and stores nothing.
    let cut = sb.path().join("cut.cast");
    std::fs::write(&cut, &cast[..cast.len() - 10]).unwrap();
    let out = import(&sb, &[&cut]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cut.cast: line 6: "),
        "{}",
        show(&out)
    );
    assert_eq!(store_snapshot(&sb), before);
}

// ---------------------------------------------------------------------------------------
// Real files made here by the real tools

/// What an original recording shows: output bytes and window sizes, at microseconds.
#[derive(Debug)]
enum Step {
    Out(Vec<u8>),
    Size(u16, u16),
}

/// An original recording, read independently of the importer.
struct Original {
    size: (u16, u16),
    steps: Vec<(u64, Step)>,
}

/// Renders both at every distinct time of the original and compares the screens.
fn assert_same_screens(original: &Original, cast: &str, what: &str) {
    let (header, events) = schemas::asciicast::parse_v2(cast).unwrap();
    assert_eq!((header.width, header.height), original.size, "{what}: size");
    let exported: Vec<(u64, Step)> = events
        .iter()
        .filter_map(|e| {
            let at = (e.time * 1e6).round() as u64;
            match e.code.as_str() {
                "o" => Some((at, Step::Out(e.data.as_bytes().to_vec()))),
                "r" => {
                    let (c, r) = schemas::event::parse_size(e.data.as_bytes()).unwrap();
                    Some((at, Step::Size(c, r)))
                }
                _ => None,
            }
        })
        .collect();
    let apply = |s: &mut Screen, step: &Step| match step {
        Step::Out(b) => s.process(b),
        Step::Size(c, r) => s.resize(*c, *r),
    };
    let (cols, rows) = original.size;
    let (mut a, mut b) = (Screen::new(cols, rows), Screen::new(cols, rows));
    let mut j = 0;
    let mut compared = 0;
    for (i, (t, step)) in original.steps.iter().enumerate() {
        apply(&mut a, step);
        if original.steps.get(i + 1).is_some_and(|(next, _)| next == t) {
            continue;
        }
        while j < exported.len() && exported[j].0 <= *t {
            apply(&mut b, &exported[j].1);
            j += 1;
        }
        assert_eq!(
            a.rows(),
            b.rows(),
            "{what}: the screens differ at {t} µs (original step {i} of {})",
            original.steps.len()
        );
        compared += 1;
    }
    assert!(compared >= 5, "{what}: only {compared} moments compared");
    assert!(a.text().contains("done-42"), "{what}: {}", a.text());
}

/// The session every tool records: bash, a command that prints colour and UTF-8, a
/// resize, a command that scrolls, exit.
fn drive(mut s: PtySession) {
    // bash's own prompt (`bash-5.2# ` as root) or the sandbox's `$ `.
    let deadline = std::time::Instant::now() + T;
    while !s
        .rows()
        .iter()
        .any(|r| r.ends_with("# ") || r.ends_with("$ ") || r.ends_with('#') || r.ends_with('$'))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no prompt:\n{}",
            s.rows().join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    s.type_line("echo zebra42; printf '\\033[31mred\\033[0m żółw 🦀\\n'");
    s.wait_for("żółw", T);
    s.settle(Duration::from_millis(300));
    s.resize(WinSize {
        cols: 100,
        rows: 30,
    });
    s.settle(Duration::from_millis(200));
    s.type_line("stty size; seq 1 40; echo done-$((6*7))");
    s.wait_for("done-42", T);
    s.type_line("exit");
    let status = s.wait(T);
    assert!(
        status.success(),
        "recording ended with {status}:\n{}",
        s.rows().join("\n")
    );
}

fn spawn(sb: &Sandbox, cmd: &[&str], dir: &Path) -> PtySession {
    let mut env = sb.env();
    env.push(("PS1", "$ ".into()));
    let script = format!("cd '{}' && exec \"$@\"", dir.display());
    let mut args = vec!["-c", &script, "sh"];
    args.extend_from_slice(cmd);
    PtySession::spawn("sh", args, &env, WinSize { cols: 80, rows: 24 })
}

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Decimal seconds to nanoseconds, exactly.
fn secs_ns(text: &str) -> u64 {
    let (w, f) = text.split_once('.').unwrap_or((text, ""));
    w.parse::<u64>().unwrap() * 1_000_000_000 + format!("{f:0<9}")[..9].parse::<u64>().unwrap()
}

/// Nanoseconds to the microseconds an asciicast export writes.
fn us(ns: u64) -> u64 {
    (ns + 500) / 1000
}

/// A `script` typescript after its first line.
fn typescript_body(path: &Path) -> Vec<u8> {
    let b = std::fs::read(path).unwrap();
    let at = b.iter().position(|&c| c == b'\n').unwrap() + 1;
    b[at..].to_vec()
}

fn script_original(timing: &Path, typescript: &Path) -> Original {
    let body = typescript_body(typescript);
    let (mut at, mut off, mut steps) = (0u64, 0usize, Vec::new());
    let mut size = (80, 24);
    for l in lines(&std::fs::read(timing).unwrap()) {
        let f: Vec<&str> = l.split(' ').collect();
        let (tag, delay, rest) = if f[0].contains('.') {
            ("O", f[0], &f[1..])
        } else {
            (f[0], f[1], &f[2..])
        };
        at += secs_ns(delay);
        match tag {
            "O" | "I" => {
                let n: usize = rest[0].parse().unwrap();
                if tag == "O" {
                    steps.push((us(at), Step::Out(body[off..off + n].to_vec())));
                }
                off += n;
            }
            "S" => {
                let get = |k: &str| {
                    rest.iter()
                        .find_map(|a| a.strip_prefix(k))
                        .unwrap()
                        .parse()
                        .unwrap()
                };
                steps.push((us(at), Step::Size(get("COLS="), get("ROWS="))));
            }
            "H" if rest[0] == "COLUMNS" => size.0 = rest[1].parse().unwrap(),
            "H" if rest[0] == "LINES" => size.1 = rest[1].parse().unwrap(),
            _ => {}
        }
    }
    Original { size, steps }
}

fn ttyrec_original(path: &Path) -> Original {
    let b = std::fs::read(path).unwrap();
    let (mut at, mut steps, mut t0) = (0usize, Vec::new(), None);
    while at < b.len() {
        let w = |i: usize| {
            u64::from(u32::from_le_bytes(
                b[at + i..at + i + 4].try_into().unwrap(),
            ))
        };
        let t = w(0) * 1_000_000 + w(4);
        let len = w(8) as usize;
        let t0 = *t0.get_or_insert(t);
        steps.push((t - t0, Step::Out(b[at + 12..at + 12 + len].to_vec())));
        at += 12 + len;
    }
    Original {
        size: (80, 24),
        steps,
    }
}

fn zcat(path: &Path) -> Vec<u8> {
    Command::new("zcat")
        .arg("-f")
        .arg(path)
        .output()
        .unwrap()
        .stdout
}

fn sudo_original(dir: &Path) -> Original {
    let out = zcat(&dir.join("ttyout"));
    let (mut at, mut off, mut steps) = (0u64, 0usize, Vec::new());
    for l in lines(&zcat(&dir.join("timing"))) {
        let f: Vec<&str> = l.split(' ').collect();
        at += secs_ns(f[1]);
        match f[0] {
            "4" => {
                let n: usize = f[2].parse().unwrap();
                steps.push((us(at), Step::Out(out[off..off + n].to_vec())));
                off += n;
            }
            "5" => steps.push((
                us(at),
                Step::Size(f[3].parse().unwrap(), f[2].parse().unwrap()),
            )),
            _ => {}
        }
    }
    Original {
        size: (80, 24),
        steps,
    }
}

fn tlog_original(path: &Path) -> Original {
    let (mut steps, mut size) = (Vec::new(), (80, 24));
    for l in lines(&std::fs::read(path).unwrap()) {
        let m: serde_json::Value = serde_json::from_str(&l).unwrap();
        let mut at = m["pos"].as_u64().unwrap() * 1000;
        let mut txt = m["out_txt"].as_str().unwrap().chars();
        let mut bin = m["out_bin"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_u64().unwrap() as u8);
        let mut intxt = m["in_txt"].as_str().unwrap().chars();
        let timing = m["timing"].as_str().unwrap();
        let mut rest = timing;
        while !rest.is_empty() {
            let tag = rest.as_bytes()[0];
            let end = rest[1..]
                .find(|c: char| !c.is_ascii_digit() && c != '/' && c != 'x')
                .map_or(rest.len(), |e| e + 1);
            let arg = &rest[1..end];
            rest = &rest[end..];
            let num = |s: &str| s.parse::<u64>().unwrap();
            match tag {
                b'+' => at += num(arg) * 1000,
                b'>' => {
                    let s: String = (0..num(arg)).map(|_| txt.next().unwrap()).collect();
                    steps.push((at, Step::Out(s.into_bytes())));
                }
                b']' => {
                    let (skip, n) = arg.split_once('/').unwrap();
                    (0..num(skip)).for_each(|_| {
                        txt.next();
                    });
                    steps.push((
                        at,
                        Step::Out((0..num(n)).map(|_| bin.next().unwrap()).collect()),
                    ));
                }
                b'<' => (0..num(arg)).for_each(|_| {
                    intxt.next();
                }),
                b'[' => (0..num(arg.split_once('/').unwrap().0)).for_each(|_| {
                    intxt.next();
                }),
                b'=' => {
                    let (c, r) = arg.split_once('x').unwrap();
                    if steps.is_empty() && at == 0 {
                        size = (num(c) as u16, num(r) as u16);
                    } else {
                        steps.push((at, Step::Size(num(c) as u16, num(r) as u16)));
                    }
                }
                _ => panic!("timing {timing}"),
            }
        }
    }
    Original { size, steps }
}

/// The checks every real format gets: a damaged copy is rejected with its offset and
/// stores nothing; the import lists and verifies as imported; re-import is a no-op;
/// the export renders like the original at every event and asciinema plays it; the
/// session is searchable; with input recorded, its commands are found.
struct Case<'a> {
    what: &'a str,
    format: &'a str,
    import: Vec<PathBuf>,
    damaged: Vec<PathBuf>,
    /// What the error must say, after the path.
    damage_message: &'a str,
    original: Original,
    user: String,
    host: String,
    has_input: bool,
}

fn check(sb: &Sandbox, case: Case<'_>) {
    let what = case.what;
    let damaged: Vec<&Path> = case.damaged.iter().map(PathBuf::as_path).collect();
    let before = store_snapshot(sb);
    let out = import(sb, &damaged);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: damage not rejected\n{}",
        show(&out)
    );
    assert!(err.contains(case.damage_message), "{what}: {err}");
    assert!(err.contains("nothing of it was stored"), "{what}: {err}");
    assert_eq!(
        store_snapshot(sb),
        before,
        "{what}: a rejected import changed the store"
    );

    let paths: Vec<&Path> = case.import.iter().map(PathBuf::as_path).collect();
    let id = import_one(sb, &paths);
    let l = listing(sb, &id);
    assert_eq!(l["integrity"], "imported", "{what}: {l}");
    assert_eq!(
        (l["user"].as_str(), l["host"].as_str()),
        (Some(case.user.as_str()), Some(case.host.as_str())),
        "{what}: {l}"
    );
    assert_eq!(l["ended"], true, "{what}");
    assert_eq!(l["import"]["format"], case.format, "{what}: {l}");
    let sha256 = l["import"]["sha256"].as_str().unwrap().to_string();
    verify_says_imported(sb, &id, case.format);

    // An import cut short before its marker is simply run again: the same objects,
    // byte for byte, then the marker.
    let marker = sb.store().join(format!("imports/{sha256}.json"));
    let complete = store_snapshot(sb);
    std::fs::remove_file(&marker).unwrap();
    assert_eq!(
        import_one(sb, &paths),
        id,
        "{what}: a resumed import made another session"
    );
    assert_eq!(
        store_snapshot(sb),
        complete,
        "{what}: a resumed import wrote other bytes"
    );

    let before = store_snapshot(sb);
    let out = import(sb, &paths);
    assert!(out.status.success(), "{what}: {}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("already imported as session {id}")),
        "{what}: {}",
        show(&out)
    );
    assert_eq!(
        store_snapshot(sb),
        before,
        "{what}: re-import changed the store"
    );

    let cast = export(sb, &id);
    assert_same_screens(&case.original, &cast, what);
    asciinema_plays(sb, &cast);

    sb.run(sb.cmd("replay").arg("index"));
    let hits = sb.run(sb.cmd("replay").args(["search", "zebra42", "--json"]));
    assert!(
        hits.contains(&id),
        "{what}: search found no hit in {id}: {hits}"
    );
    if case.has_input {
        let commands = sb.run(sb.cmd("replay").args(["commands", &id]));
        assert!(
            commands.contains("echo zebra42; printf"),
            "{what}: {commands}"
        );
    }
    let text = sb.run(sb.cmd("replay").args(["export", &id, "--format", "text"]));
    assert!(text.contains("done-42"), "{what}: {text}");

    // And it plays, in a terminal of its own.
    let mut env = sb.env();
    env.push(("AUDITTY_STORE", sb.store().display().to_string()));
    let mut play = PtySession::spawn(
        auditty_tests::bin("replay"),
        ["play", id.as_str(), "--speed", "20"],
        &env,
        WinSize {
            cols: 100,
            rows: 30,
        },
    );
    let status = play.wait(T);
    let shown = String::from_utf8_lossy(&play.raw_output()).into_owned();
    assert!(
        status.success() && shown.contains("done-42"),
        "{what}: play ended with {status}: {shown}"
    );
}

/// A copy of `path` cut to `keep` of its length, in a directory of its own.
fn cut_copy(sb: &Sandbox, path: &Path, name: &str, keep: f64) -> PathBuf {
    let dir = sb.path().join(format!("damaged-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let b = std::fs::read(path).unwrap();
    let to = dir.join(path.file_name().unwrap());
    std::fs::write(&to, &b[..(b.len() as f64 * keep) as usize]).unwrap();
    to
}

#[test]
fn script_advanced_timing_with_input_round_trips() {
    let sb = Sandbox::new();
    let dir = sb.path().join("rec");
    std::fs::create_dir_all(&dir).unwrap();
    drive(spawn(
        &sb,
        &[
            "script",
            "-q",
            "-T",
            "session.tm",
            "-B",
            "session.io",
            "-c",
            "bash --norc --noprofile",
        ],
        &dir,
    ));
    let damaged_dir = sb.path().join("damaged");
    std::fs::create_dir_all(&damaged_dir).unwrap();
    std::fs::copy(dir.join("session.tm"), damaged_dir.join("session.tm")).unwrap();
    let io = std::fs::read(dir.join("session.io")).unwrap();
    std::fs::write(damaged_dir.join("session.io"), &io[..io.len() / 2]).unwrap();
    check(
        &sb,
        Case {
            what: "script (advanced)",
            format: "script",
            // The directory: the timing file names its log, the walk pairs them.
            import: vec![dir.clone()],
            damaged: vec![damaged_dir.join("session.tm")],
            damage_message: "timing: line ",
            original: script_original(&dir.join("session.tm"), &dir.join("session.io")),
            user: "unknown".into(),
            host: "unknown".into(),
            has_input: true,
        },
    );
}

#[test]
fn script_classic_timing_round_trips() {
    let sb = Sandbox::new();
    let dir = sb.path().join("rec");
    std::fs::create_dir_all(&dir).unwrap();
    drive(spawn(
        &sb,
        &[
            "sh",
            "-c",
            "script -q -t -c 'bash --norc --noprofile' typescript 2>timing",
        ],
        &dir,
    ));
    // The timing file cut off at a line boundary: the typescript holds bytes it does not
    // account for.
    let timing = std::fs::read_to_string(dir.join("timing")).unwrap();
    let damaged_dir = sb.path().join("damaged");
    std::fs::create_dir_all(&damaged_dir).unwrap();
    let keep: Vec<&str> = timing.lines().collect();
    std::fs::write(
        damaged_dir.join("timing"),
        keep[..keep.len() / 2].join("\n") + "\n",
    )
    .unwrap();
    std::fs::copy(dir.join("typescript"), damaged_dir.join("typescript")).unwrap();
    check(
        &sb,
        Case {
            what: "script (classic)",
            format: "script",
            import: vec![dir.join("timing"), dir.join("typescript")],
            damaged: vec![damaged_dir.join("timing"), damaged_dir.join("typescript")],
            damage_message: "typescript: byte offset ",
            original: script_original(&dir.join("timing"), &dir.join("typescript")),
            user: "unknown".into(),
            host: "unknown".into(),
            has_input: false,
        },
    );
}

#[test]
fn ttyrec_round_trips() {
    let sb = Sandbox::new();
    let dir = sb.path().join("rec");
    std::fs::create_dir_all(&dir).unwrap();
    drive(spawn(
        &sb,
        &["ttyrec", "-e", "bash --norc --noprofile", "session.tty"],
        &dir,
    ));
    let file = dir.join("session.tty");
    check(
        &sb,
        Case {
            what: "ttyrec",
            format: "ttyrec",
            import: vec![file.clone()],
            damaged: vec![cut_copy(&sb, &file, "ttyrec", 0.6)],
            damage_message: "session.tty: byte offset ",
            original: ttyrec_original(&file),
            user: "unknown".into(),
            host: "unknown".into(),
            has_input: false,
        },
    );
}

#[test]
fn tlog_rec_json_round_trips() {
    let sb = Sandbox::new();
    let dir = sb.path().join("rec");
    std::fs::create_dir_all(&dir).unwrap();
    if !Path::new("/var/run/utmp").exists() {
        std::fs::write("/var/run/utmp", b"").unwrap();
    }
    drive(spawn(
        &sb,
        &[
            "tlog-rec",
            "-w",
            "file",
            "-o",
            "session.json",
            "--log-input=true",
            "bash",
            "--norc",
            "--noprofile",
        ],
        &dir,
    ));
    let file = dir.join("session.json");
    check(
        &sb,
        Case {
            what: "tlog",
            format: "tlog",
            import: vec![file.clone()],
            damaged: vec![cut_copy(&sb, &file, "tlog", 0.5)],
            damage_message: "session.json: line ",
            original: tlog_original(&file),
            user: "root".into(),
            host: hostname(),
            has_input: true,
        },
    );
}

/// Removes the sudoers drop-in when the test ends, however it ends.
struct DropIn(PathBuf);

impl Drop for DropIn {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn sudo_io_log_directory_round_trips() {
    let sb = Sandbox::new();
    let iolog = sb.path().join("sudo-io");
    std::fs::create_dir_all(&iolog).unwrap();
    // Only for this test's command (bash run through sudo), into this test's directory.
    let drop_in = DropIn(PathBuf::from(format!(
        "/etc/sudoers.d/auditty-import-test-{}",
        std::process::id()
    )));
    let rule = format!(
        "Defaults!/usr/bin/bash log_output, log_input, iolog_dir={}\n",
        iolog.display()
    );
    std::fs::write(&drop_in.0, rule).unwrap();
    let ok = Command::new("visudo")
        .args(["-c", "-q", "-f"])
        .arg(&drop_in.0)
        .status()
        .unwrap();
    assert!(ok.success(), "visudo rejected the drop-in");
    drive(spawn(
        &sb,
        &["sudo", "/usr/bin/bash", "--norc", "--noprofile"],
        sb.path(),
    ));
    drop(drop_in);
    let dirs: Vec<PathBuf> = files_under(&iolog)
        .into_iter()
        .filter(|p| p.ends_with("timing"))
        .map(|p| p.parent().unwrap().to_path_buf())
        .collect();
    assert_eq!(
        dirs.len(),
        1,
        "one sudo session expected under {}",
        iolog.display()
    );
    let session = &dirs[0];
    // The ttyout stream cut off: its gzip data ends early.
    let damaged = sb.path().join("damaged-sudo/00/00/01");
    std::fs::create_dir_all(&damaged).unwrap();
    for f in files_under(session) {
        std::fs::copy(&f, damaged.join(f.file_name().unwrap())).unwrap();
    }
    let out = std::fs::read(session.join("ttyout")).unwrap();
    std::fs::write(damaged.join("ttyout"), &out[..out.len() / 2]).unwrap();
    check(
        &sb,
        Case {
            what: "sudo I/O log",
            format: "sudo-iolog",
            // The log root: the walk finds the session directory and leaves `seq` alone.
            import: vec![iolog.clone()],
            damaged: vec![sb.path().join("damaged-sudo")],
            damage_message: "ttyout: byte offset ",
            original: sudo_original(session),
            user: "root".into(),
            host: hostname(),
            has_input: true,
        },
    );
}
