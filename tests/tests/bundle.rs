//! Issue 17, part 3: exports and evidence bundles. Real sessions recorded on a PTY through
//! the agent and the ingester, then exported: asciicast v3 and JSON lines checked against
//! the v2 export and the stored events; a bundle checked offline with the data directory
//! gone, and then a byte changed in every member and in the tar framing, each change named.

use std::path::Path;
use std::time::Duration;

use auditty_tests::{PtySession, Sandbox, show};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use schemas::SessionId;
use terminal::pty::WinSize;

const T: Duration = Duration::from_secs(30);

/// Records bash printing UTF-8 and bytes that are not UTF-8, a window resize and an exit
/// status of 3, with a checkpoint every 2 chunks (sealed for `recipient` when given), and
/// ingests it; returns its id.
fn record(sb: &Sandbox, recipient: Option<&str>) -> String {
    let mut args = vec!["--checkpoint-every", "2", "--chunk-latency-ms", "20"];
    if let Some(r) = recipient {
        args.extend(["--recipient", r]);
    }
    let mut pty = sb.record_bash(&args, &[], WinSize { cols: 80, rows: 24 });
    pty.type_line(
        "for i in $(seq 1 12); do echo \"line $i żółw\"; sleep 0.03; done; echo half-$((6*7))",
    );
    pty.wait_for("half-42", T);
    pty.type_line("printf 'raw \\377\\376 bytes\\n'; echo raw-$((2*3))");
    pty.wait_for("raw-6", T);
    pty.settle(Duration::from_millis(300));
    pty.resize(WinSize {
        cols: 100,
        rows: 30,
    });
    pty.type_line("stty size");
    pty.wait_for("30 100", T);
    pty.type_line("exit 3");
    let status = pty.wait(T);
    assert_eq!(status.code(), Some(3), "screen:\n{}", pty.rows().join("\n"));
    sb.ingest();
    let sessions = sb.sessions();
    let newest = sessions.last().expect("a session");
    newest["id"].as_str().expect("id").to_string()
}

fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// One member of a ustar archive, found by walking its headers (independently of
/// replay's own reader).
#[derive(Debug, Clone)]
struct Member {
    name: String,
    header: usize,
    data: usize,
    size: usize,
}

fn members(tar: &[u8]) -> Vec<Member> {
    let mut out = Vec::new();
    let mut at = 0;
    while tar[at..at + 512].iter().any(|&b| b != 0) {
        let h = &tar[at..at + 512];
        let name_end = h[..100].iter().position(|&b| b == 0).unwrap_or(100);
        let name = String::from_utf8(h[..name_end].to_vec()).expect("UTF-8 name");
        let size_text = std::str::from_utf8(&h[124..135]).expect("octal size");
        let size = usize::from_str_radix(size_text.trim_matches(char::from(0)), 8).expect("size");
        out.push(Member {
            name,
            header: at,
            data: at + 512,
            size,
        });
        at += 512 + size.div_ceil(512) * 512;
    }
    out
}

/// The member's name inside the bundle's directory.
fn short(name: &str) -> &str {
    name.split_once('/').map_or(name, |(_, rest)| rest)
}

/// `replay verify --bundle FILE --trust KEYS`: exit status and stdout.
fn verify_bundle(sb: &Sandbox, bundle: &Path, trust: Option<&Path>) -> (Option<i32>, String) {
    let mut args = vec!["verify", "--bundle", p(bundle)];
    if let Some(t) = trust {
        args.extend(["--trust", p(t)]);
    }
    let out = sb.replay(&args);
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Writes `bytes` with byte `at` XORed by `mask` next to `bundle` and verifies it: it
/// must fail (exit 1) with a last line naming `member`.
fn assert_flip_named(sb: &Sandbox, bundle: &[u8], trust: &Path, at: usize, mask: u8, member: &str) {
    let mut bad = bundle.to_vec();
    bad[at] ^= mask;
    let path = sb.path().join(format!("flipped-{at}.tar"));
    std::fs::write(&path, &bad).unwrap();
    let (code, said) = verify_bundle(sb, &path, Some(trust));
    assert_eq!(
        code,
        Some(1),
        "byte {at} ({member}) went unnoticed:\n{said}"
    );
    let failed = said
        .lines()
        .find(|l| l.starts_with("FAILED: "))
        .unwrap_or_else(|| panic!("no FAILED line for byte {at} ({member}):\n{said}"));
    assert!(
        failed.contains(member),
        "byte {at}: expected {member} to be named:\n{said}"
    );
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_bundle_checks_offline_and_a_changed_byte_in_any_member_or_the_framing_is_named() {
    let sb = Sandbox::new();
    let id = record(&sb, None);
    let bundle_path = sb.path().join("evidence.tar");
    sb.replay_ok(&[
        "export",
        &id[..8],
        "--format",
        "bundle",
        "-o",
        p(&bundle_path),
    ]);
    let cast = sb.replay_ok(&["export", &id]);
    let text = sb.replay_ok(&["export", &id, "--format", "text"]);
    let keys = sb.path().join("trusted-keys");
    std::fs::copy(sb.data_dir().join("trusted-keys"), &keys).unwrap();
    // Offline: no store, no data directory, nothing but the bundle and a trust file.
    std::fs::remove_dir_all(sb.data_dir()).unwrap();

    let bundle = std::fs::read(&bundle_path).unwrap();
    let found = members(&bundle);
    let names: Vec<&str> = found.iter().map(|m| short(&m.name)).collect();
    assert_eq!(
        names,
        [
            "README.txt",
            "MANIFEST.sha256",
            "session.json",
            "session.cast",
            "transcript.txt",
            "rows.jsonl",
            "proof/checkpoints.jsonl",
            "proof/keys.txt",
            "proof/chain.json"
        ]
    );
    assert!(
        found
            .iter()
            .all(|m| m.name.starts_with(&format!("auditty-{id}/")))
    );
    let member = |name: &str| -> &[u8] {
        let m = found.iter().find(|m| short(&m.name) == name).unwrap();
        &bundle[m.data..m.data + m.size]
    };
    // The bundle's asciicast and transcript are the exports of the same session.
    assert_eq!(String::from_utf8_lossy(member("session.cast")), cast);
    assert_eq!(String::from_utf8_lossy(member("transcript.txt")), text);
    let meta: serde_json::Value = serde_json::from_slice(member("session.json")).unwrap();
    assert_eq!(meta["session"], id.as_str());
    assert_eq!(meta["exit_status"], 3);
    assert_eq!(meta["sealed"], false);
    assert_eq!(meta["integrity"]["state"], "complete");

    let (code, said) = verify_bundle(&sb, &bundle_path, Some(&keys));
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("rows: complete: "), "{said}");
    assert!(said.lines().any(|l| l.starts_with("intact")), "{said}");
    let out = sb.replay(&[
        "verify",
        "--bundle",
        p(&bundle_path),
        "--trust",
        p(&keys),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json is JSON");
    assert_eq!(
        (v["state"].as_str(), v["intact"].as_bool()),
        (Some("intact"), Some(true))
    );

    // An untrusted key is reported, never accepted: without a trust file, and with one
    // that lacks the node's key.
    let (code, said) = verify_bundle(&sb, &bundle_path, None);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("NOT CHECKED: no trust file"), "{said}");
    let stranger = sb.path().join("other-keys");
    std::fs::write(
        &stranger,
        format!(
            "{} elsewhere\n",
            integrity::NodeKey::from_seed([3; 32]).public()
        ),
    )
    .unwrap();
    let (code, said) = verify_bundle(&sb, &bundle_path, Some(&stranger));
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("NOT TRUSTED"), "{said}");
    assert!(said.lines().any(|l| l.starts_with("UNTRUSTED")), "{said}");

    // By hand: the system's tar extracts it and sha256sum checks the manifest.
    let by_hand = sb.path().join("by-hand");
    std::fs::create_dir(&by_hand).unwrap();
    let out = sb.output(
        std::process::Command::new("tar")
            .arg("-xf")
            .arg(&bundle_path)
            .current_dir(&by_hand),
    );
    assert!(out.status.success(), "{}", show(&out));
    let out = sb.output(
        std::process::Command::new("sha256sum")
            .args(["-c", "MANIFEST.sha256"])
            .current_dir(by_hand.join(format!("auditty-{id}"))),
    );
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        8,
        "{}",
        show(&out)
    );

    // A changed byte in every member (first, middle and last byte of its data), in every
    // tar header (name, mode, size, checksum fields), in the padding after each member
    // and in the end-of-archive blocks: each is caught, naming the member.
    for m in &found {
        let name = short(&m.name);
        for at in [m.data, m.data + m.size / 2, m.data + m.size - 1] {
            assert_flip_named(&sb, &bundle, &keys, at, 0x01, name);
        }
        for field in [101, 126, 150] {
            assert_flip_named(&sb, &bundle, &keys, m.header + field, 0x01, name);
        }
        if m.size % 512 != 0 {
            assert_flip_named(&sb, &bundle, &keys, m.data + m.size, 0x40, name);
        }
    }
    let end = bundle.len() - 1;
    assert_flip_named(&sb, &bundle, &keys, end, 0x01, "end-of-archive");
    // Bytes added after the end, or the file cut short, are caught too.
    let mut longer = bundle.clone();
    longer.extend_from_slice(&[0; 512]);
    let path = sb.path().join("longer.tar");
    std::fs::write(&path, &longer).unwrap();
    let (code, said) = verify_bundle(&sb, &path, Some(&keys));
    assert_eq!(code, Some(1), "{said}");
    std::fs::write(&path, &bundle[..bundle.len() - 1024]).unwrap();
    let (code, said) = verify_bundle(&sb, &path, Some(&keys));
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("cut short"), "{said}");

    // A file that is not there could not be checked at all: exit 2.
    let (code, said) = verify_bundle(&sb, &sb.path().join("missing.tar"), Some(&keys));
    assert_eq!(code, Some(2), "{said}");
}

#[test]
fn a_sealed_session_is_bundled_with_its_key_or_without_contents() {
    let sb = Sandbox::new();
    let (identity, recipient) = envelope::testsuite::new_age_identity();
    let identity_path = sb.path().join("auditor.key");
    std::fs::write(&identity_path, identity).unwrap();
    let id = record(&sb, Some(&recipient.to_string()));
    let keys = sb.path().join("trusted-keys");
    std::fs::copy(sb.data_dir().join("trusted-keys"), &keys).unwrap();

    // Without a key: the sealed rows and their proof, no contents; it still verifies.
    let without = sb.path().join("sealed-rows.tar");
    let out = sb.replay(&["export", &id, "--format", "bundle", "-o", p(&without)]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is sealed and no --identity"),
        "{}",
        show(&out)
    );
    let bytes = std::fs::read(&without).unwrap();
    let names: Vec<String> = members(&bytes)
        .iter()
        .map(|m| short(&m.name).to_string())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n == "session.cast" || n == "transcript.txt" || n == "data-key.txt"),
        "{names:?}"
    );
    let (code, said) = verify_bundle(&sb, &without, Some(&keys));
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("sealed (contents not included)"), "{said}");

    // With the auditor's identity: the contents and this session's data key.
    let with = sb.path().join("sealed-opened.tar");
    sb.replay_ok(&[
        "--identity",
        p(&identity_path),
        "export",
        &id,
        "--format",
        "bundle",
        "-o",
        p(&with),
    ]);
    let cast = sb.replay_ok(&["--identity", p(&identity_path), "export", &id]);
    std::fs::remove_dir_all(sb.data_dir()).unwrap();
    let bytes = std::fs::read(&with).unwrap();
    let found = members(&bytes);
    let get = |name: &str| {
        let m = found
            .iter()
            .find(|m| short(&m.name) == name)
            .unwrap_or_else(|| panic!("no {name}"));
        bytes[m.data..m.data + m.size].to_vec()
    };
    assert_eq!(String::from_utf8_lossy(&get("session.cast")), cast);
    assert!(String::from_utf8_lossy(&get("transcript.txt")).contains("half-42"));
    let meta: serde_json::Value = serde_json::from_slice(&get("session.json")).unwrap();
    assert_eq!(
        (
            meta["sealed"].as_bool(),
            meta["contents_included"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert!(String::from_utf8_lossy(&get("README.txt")).contains("It was SEALED"));
    let (code, said) = verify_bundle(&sb, &with, Some(&keys));
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("sealed (contents included"), "{said}");
    // A changed key opens nothing, and says so.
    let key = found
        .iter()
        .find(|m| short(&m.name) == "data-key.txt")
        .unwrap();
    assert_flip_named(&sb, &bytes, &keys, key.data + 3, 0x01, "data-key.txt");
    let rows = found
        .iter()
        .find(|m| short(&m.name) == "rows.jsonl")
        .unwrap();
    assert_flip_named(
        &sb,
        &bytes,
        &keys,
        rows.data + rows.size / 2,
        0x01,
        "rows.jsonl",
    );
}

fn parse_rows(sb: &Sandbox, id: &str) -> Vec<store::EventRow> {
    let sid: SessionId = id.parse().unwrap();
    let mut rows: Vec<store::EventRow> = auditty_tests::all_event_rows(sb.open_store().as_ref())
        .into_iter()
        .filter(|r| r.session_id == sid)
        .collect();
    rows.sort_by_key(|r| r.seq);
    rows.dedup_by_key(|r| r.seq);
    rows
}

#[test]
fn asciicast_v3_and_json_lines_exports_match_the_v2_export_and_the_store() {
    let sb = Sandbox::new();
    let id = record(&sb, None);

    // v3 parses back with our own parser, with the v2 export's events and an exit status.
    let v2 = sb.replay_ok(&["export", &id]);
    let v3 = sb.replay_ok(&["export", &id, "--format", "asciicast-v3"]);
    let (h2, e2) = schemas::asciicast::parse_v2(&v2).expect("v2 parses");
    let (h3, e3) = schemas::asciicast::parse_v3(&v3).expect("v3 parses");
    assert_eq!(
        (h3.version, h3.term.cols, h3.term.rows),
        (3, h2.width, h2.height)
    );
    assert_eq!(h3.term.term_type.as_deref(), Some("xterm"));
    assert_eq!(
        (h3.timestamp, &h3.command, &h3.title),
        (h2.timestamp, &h2.command, &h2.title)
    );
    let (exit, e3) = e3.split_last().expect("events");
    assert_eq!((exit.code.as_str(), exit.data.as_str()), ("x", "3"));
    assert_eq!(e2.len(), e3.len());
    for (a, b) in e2.iter().zip(e3) {
        assert_eq!((&a.code, &a.data), (&b.code, &b.data));
        assert!((a.time - b.time).abs() < 1e-5, "{a:?} vs {b:?}");
    }
    assert!(e3.iter().any(|e| e.code == "r" && e.data == "100x30"));
    assert!(v3.lines().nth(1).is_some_and(|l| l.starts_with('[')));

    // asciinema (2.x here) plays the v2 export.
    let cast_path = sb.path().join("v2.cast");
    std::fs::write(&cast_path, &v2).unwrap();
    let mut cat = PtySession::spawn(
        "asciinema",
        [std::ffi::OsStr::new("cat"), cast_path.as_os_str()],
        &sb.env(),
        WinSize { cols: 80, rows: 24 },
    );
    let status = cat.wait(T);
    let printed = String::from_utf8_lossy(&cat.raw_output()).into_owned();
    assert!(status.success(), "asciinema cat: {status}\n{printed}");
    assert!(printed.contains("half-42"), "{printed}");

    // JSON lines: one object per stored event, equal to the rows in the store.
    let jsonl = sb.replay_ok(&["export", &id, "--format", "jsonl"]);
    let lines: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let rows = parse_rows(&sb, &id);
    assert_eq!(lines.len(), rows.len());
    let sid: SessionId = id.parse().unwrap();
    let start = sid.start_time_ns().unwrap();
    let mut saw_base64 = false;
    for (line, row) in lines.iter().zip(&rows) {
        assert_eq!(line["session"], id.as_str());
        assert_eq!(line["seq"], row.seq);
        assert_eq!(line["kind"], row.kind.as_str());
        assert_eq!(line["elapsed_ns"], row.elapsed_ns);
        let data = match (line["data"].as_str(), line["data_base64"].as_str()) {
            (Some(text), None) => text.as_bytes().to_vec(),
            (None, Some(b64)) => {
                saw_base64 = true;
                B64.decode(b64).expect("base64")
            }
            other => panic!("exactly one of data, data_base64: {other:?} in {line}"),
        };
        assert_eq!(data, row.data, "seq {}", row.seq);
        let wall = start + i64::try_from(row.elapsed_ns).unwrap();
        let time = line["time"].as_str().unwrap();
        assert!(
            time.ends_with(&format!(".{:09}Z", wall.rem_euclid(1_000_000_000))),
            "{time}"
        );
        assert!(
            time.starts_with(&schemas::time::rfc3339(wall)[..19]),
            "{time}"
        );
    }
    assert!(
        saw_base64,
        "the \\377\\376 output is not UTF-8 and goes as base64"
    );
}
