//! Issue 16: full disks, on real small filesystems (tmpfs, mounted by the test: it runs as
//! root). A spool that fills up ends the session with a message and keeps every entry it
//! wrote; a store that fills up makes the ingester fail without committing what it did
//! not write, and it resumes once there is room again.

use std::path::{Path, PathBuf};
use std::process::Command;

use auditty_tests::{Sandbox, all_event_rows, assert_exactly_once, files_under, show};

/// A tmpfs of `size` mounted at `dir` for the life of the value.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test mounts small filesystems and must run as root"
        );
        std::fs::create_dir_all(dir).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(out.status.success(), "mount tmpfs: {}", show(&out));
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Output far larger than the spool's filesystem, uncompressed so it fills it fast.
const FLOOD: &str =
    "for i in $(seq 1 20000); do echo \"line $i of a long output that fills the spool\"; done";

#[test]
fn a_full_spool_ends_the_session_with_a_message_and_keeps_what_it_wrote() {
    let sb = Sandbox::new();
    let _fs = Tmpfs::mount(&sb.spool(), "300k");
    let out = sb.output(sb.cmd("auditty-agent").args([
        "record",
        "-q",
        "--no-compress",
        "--",
        "sh",
        "-c",
        FLOOD,
    ]));
    assert!(!out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("No space left on device"), "{err}");
    // On the user's terminal too, where they see their session end.
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("ending this session so that nothing goes unrecorded"),
        "{}",
        show(&out)
    );
    let entries: usize = spool::list_segments(&sb.spool())
        .unwrap()
        .iter()
        .map(|seg| {
            spool::scan_segment(&seg.path, 0)
                .unwrap()
                .items
                .iter()
                .filter(|i| matches!(i, spool::ScanItem::Entry { .. }))
                .count()
        })
        .sum();
    assert!(entries > 3, "{entries} entries");

    // Every entry written reaches the store, once, without a gap; the session reads as
    // not ended (its `end` found no room).
    sb.ingest();
    let rows = all_event_rows(sb.open_store().as_ref());
    let n = assert_exactly_once(&rows);
    assert!(n > entries, "{n} events from {entries} chunks");
    let sessions = sb.sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["ended"], false);
    assert!(spool::list_segments(&sb.spool()).unwrap().is_empty());

    // Shipped out, the spool has room again: the next session records.
    let out =
        sb.output(
            sb.cmd("auditty-agent")
                .args(["record", "-q", "--", "sh", "-c", "echo after"]),
        );
    assert!(out.status.success(), "{}", show(&out));
}

#[test]
fn a_full_store_commits_nothing_unwritten_and_resumes_with_room() {
    let sb = Sandbox::new();
    // Output that Parquet's zstd cannot shrink much: about 0.5 MB per session.
    for i in 0..3 {
        let script = format!("head -c 400000 /dev/urandom | base64; echo session-{i}");
        sb.run(
            sb.cmd("auditty-agent")
                .args(["record", "-q", "--", "sh", "-c", &script])
                .stdout(std::process::Stdio::null()),
        );
    }
    let fs = sb.path().join("small");
    let _fs = Tmpfs::mount(&fs, "2m");
    // Most of the room is taken by something else; freeing it is "space coming back".
    let filler = fs.join("filler");
    std::fs::write(&filler, vec![0u8; 1_700_000]).expect("filler");
    let store = fs.join("store");
    let ingest = |log: &str| {
        let mut c = sb.cmd("auditty-ingest");
        c.args(["run", "--once", "--store"]).arg(&store);
        let out = sb.output(&mut c);
        std::fs::write(sb.path().join(log), &out.stderr).expect("log");
        out
    };
    let out = ingest("full.log");
    assert!(!out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("No space left on device"), "{err}");
    // Nothing half-written is left in the store, and the spool still holds everything
    // not durably stored.
    let leftovers: Vec<_> = files_under(&store)
        .into_iter()
        .filter(|p| !p.to_string_lossy().ends_with(".parquet"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    assert!(!spool::list_segments(&sb.spool()).unwrap().is_empty());

    std::fs::remove_file(&filler).expect("free the room");
    let out = ingest("resumed.log");
    assert!(out.status.success(), "{}", show(&out));
    let s = store::LocalStore::new(&store).expect("store");
    let rows = all_event_rows(&s);
    assert_exactly_once(&rows);
    let sessions: std::collections::BTreeSet<_> = rows.iter().map(|r| r.session_id).collect();
    assert_eq!(sessions.len(), 3);
    assert!(spool::list_segments(&sb.spool()).unwrap().is_empty());
}
