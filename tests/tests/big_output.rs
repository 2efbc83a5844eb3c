//! Issue 16: a single gigabyte of output (`seq 1 120000000` through the PTY: 1.2 GB with
//! the terminal's CR LF) recorded, ingested and verified end to end, every (session, seq)
//! once and in order, checked by streaming over the stored objects rather than holding
//! the gigabyte in memory.

use auditty_tests::{Sandbox, show};
use schemas::{EventKind, RowKind};

#[test]
fn a_single_gigabyte_of_output_is_recorded_stored_and_verified_whole() {
    let sb = Sandbox::new();
    let out = sb.output(
        sb.cmd("auditty-agent")
            .args(["record", "-q", "--", "seq", "1", "120000000"])
            .stdout(std::process::Stdio::null()),
    );
    assert!(out.status.success(), "{}", show(&out));
    sb.ingest();

    let store = sb.open_store();
    let mut seqs = Vec::new();
    let mut output_bytes = 0u64;
    let mut last_output = (0u64, Vec::new());
    for key in store.list("events/").unwrap() {
        let bytes = store.get(&key).unwrap();
        store::parquet_io::scan_events(&key, &bytes, None, |r| {
            seqs.push(r.seq);
            if r.kind == RowKind::Event(EventKind::Output) {
                output_bytes += r.data.len() as u64;
                if r.seq >= last_output.0 {
                    last_output = (r.seq, r.data.to_vec());
                }
            }
        })
        .unwrap();
    }
    seqs.sort_unstable();
    let n = seqs.len() as u64;
    assert!(
        seqs.iter().copied().eq(0..n),
        "every seq once, none missing"
    );
    // `seq` prints 1,088,888,898 bytes; the terminal turns each of its 120 M newlines
    // into CR LF.
    assert_eq!(output_bytes, 1_088_888_898 + 120_000_000);
    assert!(
        last_output.1.ends_with(b"119999999\r\n120000000\r\n"),
        "the last output ends with the last number"
    );
    let sessions = sb.sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["bytes"].as_u64(), Some(output_bytes));
    let id = sessions[0]["id"].as_str().unwrap();
    let out = sb.output(sb.cmd("replay").args(["verify", id]));
    assert!(out.status.success(), "{}", show(&out));
    eprintln!("{n} events, {output_bytes} bytes of output");
}
