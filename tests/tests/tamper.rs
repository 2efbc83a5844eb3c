//! Issue 6: tamper evidence (DESIGN.md §6, `integrity/FORMAT.md`). Real sessions — one in
//! plaintext, one sealed — recorded on a PTY with a checkpoint every 2 chunks, ingested,
//! and then altered the way someone with write access to the store could: the stored
//! Parquet objects are decoded, changed and written back with the ingester's own encoder
//! and footer metadata. `replay verify` must name each change precisely, and `replay ls`
//! must show it.
//!
//! Each case works on a fresh copy of the store, so the cases are independent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use auditty_tests::{Sandbox, show};
use integrity::{NodeKey, SessionChain};
use schemas::{EventKind, RowKind, SessionEnd, SessionId, SessionStart};
use store::parquet_io::{decode_events, decode_sessions, encode_sessions, read_object_meta};
use store::{EventRow, LocalStore, ObjectStore, SessionRow};
use terminal::pty::WinSize;

const T: Duration = Duration::from_secs(30);
/// The seed of a node key that no trust file holds.
const FORGER: [u8; 32] = [0x5a; 32];

/// Records `bash` on a PTY printing 40 lines, 30 ms apart, in two loops with a command
/// typed between them: with `--chunk-latency-ms 20` that makes dozens of chunks, and with
/// `--checkpoint-every 2` a checkpoint after every other one.
fn record(sb: &Sandbox, extra: &[&str]) {
    let mut args = vec!["--checkpoint-every", "2", "--chunk-latency-ms", "20"];
    args.extend_from_slice(extra);
    let mut pty = sb.record_bash(&args, &[], WinSize { cols: 80, rows: 24 });
    pty.type_line("for i in $(seq 1 20); do echo line $i; sleep 0.03; done; echo half-$((6*7))");
    pty.wait_for("half-42", T);
    // Typing makes chunks of several events (keystrokes and their echo): some here, in
    // the middle of the session, not only at its ends.
    pty.type_line("echo typed-in-the-middle-$((2*3))");
    pty.wait_for("typed-in-the-middle-6", T);
    pty.type_line("for i in $(seq 21 40); do echo line $i; sleep 0.03; done; echo done-$((6*7))");
    pty.wait_for("done-42", T);
    pty.type_line("exit");
    let status = pty.wait(T);
    assert!(
        status.success(),
        "{status}; screen:\n{}",
        pty.rows().join("\n")
    );
}

/// Two recorded, ingested, intact sessions.
struct Fixture {
    sb: Sandbox,
    plain: SessionId,
    sealed: SessionId,
}

fn fixture() -> Fixture {
    let sb = Sandbox::new();
    let (_, recipient) = envelope::testsuite::new_age_identity();
    record(&sb, &[]);
    record(&sb, &["--recipient", &recipient.to_string()]);
    sb.ingest();
    let sessions = sb.sessions();
    assert_eq!(sessions.len(), 2, "{sessions:#?}");
    let id_where = |sealed: bool| -> SessionId {
        sessions
            .iter()
            .find(|s| s["sealed"] == sealed)
            .and_then(|s| s["id"].as_str())
            .unwrap_or_else(|| panic!("no session with sealed = {sealed}: {sessions:#?}"))
            .parse()
            .expect("session id")
    };
    let fx = Fixture {
        plain: id_where(false),
        sealed: id_where(true),
        sb,
    };
    // Enough of everything for the cases below to pick from.
    let base = Case { dir: fx.sb.store() };
    for id in [fx.plain, fx.sealed] {
        let rows = base.rows(id);
        assert!(
            kind_seqs(&rows, EventKind::Checkpoint).len() >= 6,
            "{}",
            dump(&rows)
        );
    }
    assert!(kind_seqs(&base.rows(fx.sealed), RowKind::Sealed).len() >= 6);
    fx
}

impl Fixture {
    /// A fresh copy of the ingested store.
    fn case(&self, name: &str) -> Case {
        let dir = self.sb.path().join("cases").join(name);
        auditty_tests::copy_tree(&self.sb.store(), &dir);
        Case { dir }
    }

    /// `replay --store DIR ARGS`.
    fn replay(&self, dir: &Path, args: &[&str]) -> Output {
        let mut c = self.sb.cmd("replay");
        c.arg("--store").arg(dir).args(args);
        self.sb.output(&mut c)
    }

    /// `replay verify ID [ARGS]` on the store in `case`: the exit status and the one line
    /// it printed.
    fn verify(&self, case: &Case, id: SessionId, extra: &[&str]) -> (Option<i32>, String) {
        let id = id.to_string();
        let mut args = vec!["verify", id.as_str()];
        args.extend_from_slice(extra);
        let out = self.replay(&case.dir, &args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 1, "one line per session:\n{}", show(&out));
        (out.status.code(), lines[0].to_string())
    }

    /// Asserts that `verify` fails (exit 1) with exactly `line`, after the id.
    fn assert_verify_says(&self, case: &Case, id: SessionId, expected: &str) {
        let (code, line) = self.verify(case, id, &[]);
        assert_eq!(
            line,
            format!("{id}  {expected}"),
            "replay verify in {}",
            case.dir.display()
        );
        assert_eq!(code, Some(1), "{line}");
    }

    /// The INTEGRITY column of `replay ls --json`, by session id.
    fn integrity(&self, case: &Case) -> BTreeMap<String, String> {
        let out = self.replay(&case.dir, &["ls", "--json"]);
        assert!(out.status.success(), "{}", show(&out));
        let list: Vec<serde_json::Value> =
            serde_json::from_slice(&out.stdout).expect("ls --json is JSON");
        list.iter()
            .map(|s| {
                (
                    s["id"].as_str().expect("id").to_string(),
                    s["integrity"].as_str().expect("integrity").to_string(),
                )
            })
            .collect()
    }

    /// Asserts `replay ls` shows `altered` as `state` and the other session as complete
    /// (which also verifies, exit 0).
    fn assert_listed(&self, case: &Case, altered: SessionId, state: &str) {
        let other = if altered == self.plain {
            self.sealed
        } else {
            self.plain
        };
        let listed = self.integrity(case);
        assert_eq!(
            listed,
            BTreeMap::from([
                (altered.to_string(), state.to_string()),
                (other.to_string(), "complete".to_string()),
            ])
        );
        let (code, line) = self.verify(case, other, &[]);
        assert!(line.starts_with(&format!("{other}  complete: ")), "{line}");
        assert_eq!(code, Some(0), "{line}");
    }
}

/// One copy of the store.
struct Case {
    dir: PathBuf,
}

impl Case {
    fn store(&self) -> LocalStore {
        LocalStore::new(&self.dir).expect("open store copy")
    }

    /// A session's `events` rows, by seq.
    fn rows(&self, id: SessionId) -> Vec<EventRow> {
        let store = self.store();
        let mut rows = Vec::new();
        for key in store.list("events/").expect("list") {
            let bytes = store.get(&key).expect("get");
            rows.extend(decode_events(&key, &bytes, Some(id)).expect("decode events"));
        }
        rows.sort_by_key(|r| r.seq);
        rows
    }

    /// Rewrites a session's `events` rows ([`auditty_tests::edit_event_rows`]).
    fn edit_events(&self, id: SessionId, edit: impl FnOnce(&mut Vec<EventRow>)) {
        auditty_tests::edit_event_rows(&self.dir, id, edit);
    }

    /// Drops the `sessions` rows for which `drop` holds, rewriting the objects that held
    /// them.
    fn drop_session_rows(&self, drop: impl Fn(&SessionRow) -> bool) {
        let store = self.store();
        for key in store.list("sessions/").expect("list") {
            let bytes = store.get(&key).expect("get");
            let meta = read_object_meta(&key, &bytes).expect("footer metadata");
            let mut rows = decode_sessions(&key, &bytes).expect("decode sessions");
            let before = rows.len();
            rows.retain(|r| !drop(r));
            if rows.len() != before {
                let bytes = encode_sessions(&mut rows, &meta).expect("encode sessions");
                store.put(&key, &bytes).expect("write the altered object");
            }
        }
    }

    /// Changes `sessions` rows in place with `edit`, rewriting every object.
    fn edit_session_rows(&self, edit: impl Fn(&mut SessionRow)) {
        let store = self.store();
        for key in store.list("sessions/").expect("list") {
            let bytes = store.get(&key).expect("get");
            let meta = read_object_meta(&key, &bytes).expect("footer metadata");
            let mut rows = decode_sessions(&key, &bytes).expect("decode sessions");
            rows.iter_mut().for_each(&edit);
            let bytes = encode_sessions(&mut rows, &meta).expect("encode sessions");
            store.put(&key, &bytes).expect("write the altered object");
        }
    }

    /// Makes the `sessions/` copies of `id`'s `start` and `end` say what its `events`
    /// rows say, as a forger who re-signed the session would.
    fn copy_signed_rows_to_sessions_table(&self, id: SessionId) {
        let rows = self.rows(id);
        let data = |kind: EventKind| {
            rows.iter()
                .find(|r| r.kind == RowKind::Event(kind))
                .map(|r| r.data.clone())
                .expect("the session's start and end rows")
        };
        let (start, end) = (data(EventKind::Start), data(EventKind::End));
        self.edit_session_rows(|r| match r.kind {
            _ if r.session_id != id => {}
            EventKind::Start => r.metadata = start.clone(),
            EventKind::End => r.metadata = end.clone(),
            _ => {}
        });
    }

    /// The keys of every object holding rows of `id`.
    fn objects_of(&self, id: SessionId) -> Vec<String> {
        let store = self.store();
        let mut keys = Vec::new();
        for key in store.list("").expect("list") {
            let bytes = store.get(&key).expect("get");
            let holds = if key.starts_with("events/") {
                !decode_events(&key, &bytes, Some(id))
                    .expect("decode")
                    .is_empty()
            } else if key.starts_with("sessions/") {
                decode_sessions(&key, &bytes)
                    .expect("decode")
                    .iter()
                    .any(|r| r.session_id == id)
            } else {
                false
            };
            if holds {
                keys.push(key);
            }
        }
        keys
    }

    /// Overwrites every object holding rows of `id` with noise; their keys.
    fn garble_objects_of(&self, id: SessionId) -> Vec<String> {
        let keys = self.objects_of(id);
        for key in &keys {
            let path = self.dir.join(key);
            let len = std::fs::metadata(&path).expect("object").len() as usize;
            let noise: Vec<u8> = (0..len).map(|i| (i * 131 % 251) as u8).collect();
            std::fs::write(&path, noise).expect("write garbage");
        }
        keys
    }

    /// The `event_count` of a session's end row in `sessions/`.
    fn end_event_count(&self, id: SessionId) -> u64 {
        let store = self.store();
        let mut counts = Vec::new();
        for key in store.list("sessions/").expect("list") {
            let bytes = store.get(&key).expect("get");
            for r in decode_sessions(&key, &bytes).expect("decode sessions") {
                if r.session_id == id && r.kind == schemas::EventKind::End {
                    counts.push(
                        SessionEnd::from_bytes(&r.metadata)
                            .expect("end metadata")
                            .event_count,
                    );
                }
            }
        }
        assert_eq!(counts.len(), 1, "one end row");
        counts[0]
    }
}

/// The seqs of the rows of `kind`.
fn kind_seqs(rows: &[EventRow], kind: impl Into<RowKind>) -> Vec<u64> {
    let kind = kind.into();
    rows.iter()
        .filter(|r| r.kind == kind)
        .map(|r| r.seq)
        .collect()
}

/// The row at `seq`.
fn at(rows: &mut [EventRow], seq: u64) -> &mut EventRow {
    rows.iter_mut()
        .find(|r| r.seq == seq)
        .unwrap_or_else(|| panic!("no row at seq {seq}"))
}

/// How `replay verify` names the altered rows at `seqs` of a session stored as `rows`: by
/// the tag group each falls in, `g` rows per tag as its checkpoint chose
/// (integrity/FORMAT.md), so a row alone in its group is named exactly.
fn altered(rows: &[EventRow], seqs: &[u64]) -> String {
    let mut named: Vec<String> = Vec::new();
    for &n in seqs {
        let (from, through, g) = rows
            .iter()
            .filter(|r| r.kind == RowKind::Event(EventKind::Checkpoint))
            .find_map(|r| {
                let cp: serde_json::Value = serde_json::from_slice(&r.data).ok()?;
                let (from, through) = (cp["from"].as_u64()?, cp["through"].as_u64()?);
                (from <= n && n < through).then(|| (from, through, cp["g"].as_u64().unwrap_or(1)))
            })
            .unwrap_or_else(|| panic!("no checkpoint covers seq {n}:\n{}", dump(rows)));
        // Groups are counted in rows (units) from the checkpoint's `from`.
        let mut interval: Vec<&EventRow> = rows
            .iter()
            .filter(|r| from <= r.seq && r.seq < through)
            .collect();
        interval.sort_by_key(|r| r.seq);
        let at = interval
            .iter()
            .position(|r| r.seq == n)
            .expect("the row is in its interval");
        let g = usize::try_from(g).expect("g");
        let group = &interval[at / g * g..(at / g * g + g).min(interval.len())];
        let (first, last) = (group[0], group[group.len() - 1]);
        let sealed = group.iter().any(|r| r.kind == RowKind::Sealed);
        let text = match (group.len(), sealed) {
            (1, false) => format!("altered at seq {n}"),
            (1, true) => format!(
                "altered at seq {n} (sealed chunk of seq {n}..{})",
                first.seq_last
            ),
            (k, false) => format!(
                "altered between seq {} and seq {} (one or more of {k} rows)",
                first.seq, last.seq_last
            ),
            (k, true) => format!(
                "altered between seq {} and seq {} (one or more of {k} rows, sealed chunks \
                 among them)",
                first.seq, last.seq_last
            ),
        };
        if !named.contains(&text) {
            named.push(text);
        }
    }
    named.join("; ")
}

/// The seq of the first output row that prints `line N`.
fn seq_of_line(rows: &[EventRow], n: u32) -> u64 {
    let needle = format!("line {n}\r");
    rows.iter()
        .find(|r| {
            r.kind == RowKind::Event(EventKind::Output)
                && r.data.windows(needle.len()).any(|w| w == needle.as_bytes())
        })
        .unwrap_or_else(|| panic!("no output row prints {needle:?}:\n{}", dump(rows)))
        .seq
}

/// The rows, one per line, for failure messages.
fn dump(rows: &[EventRow]) -> String {
    rows.iter()
        .map(|r| {
            format!(
                "{}..{} {} {:?}",
                r.seq,
                r.seq_last,
                r.kind,
                String::from_utf8_lossy(&r.data[..r.data.len().min(40)])
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where the last interval between checkpoints starts: the seq of the last checkpoint
/// before `end`. Damage after it leaves the session's tail unsigned as well, which
/// `verify` reports besides the damage itself.
fn last_interval(rows: &[EventRow]) -> u64 {
    let end = kind_seqs(rows, EventKind::End)[0];
    kind_seqs(rows, EventKind::Checkpoint)
        .into_iter()
        .filter(|&c| c < end)
        .max()
        .expect("a checkpoint before the end")
}

/// The sealed rows that hold more than one event, which `verify` names with their range
/// (a sealed chunk of one event is reported as `altered at seq N`, like a plaintext
/// row), before the [`last_interval`].
fn multi_event_sealed_rows(rows: &[EventRow]) -> Vec<&EventRow> {
    let tail = last_interval(rows);
    let multi: Vec<&EventRow> = rows
        .iter()
        .filter(|r| r.kind == RowKind::Sealed && r.seq_last > r.seq && r.seq_last < tail)
        .collect();
    assert!(
        multi.len() >= 2,
        "too few sealed chunks of several events:\n{}",
        dump(rows)
    );
    multi
}

/// Recomputes a session's chain over its (altered) rows and signs every checkpoint anew
/// with `key`, as someone holding a node key of their own would: the chain, the tags and
/// the end event's chain hash all agree with the altered rows.
fn re_sign(id: SessionId, rows: &mut [EventRow], key: NodeKey) {
    let mut chain = SessionChain::new(id, key);
    for r in rows.iter_mut() {
        match r.kind {
            RowKind::Sealed => chain.add_sealed_chunk(&r.data),
            _ => {
                if r.kind == RowKind::Event(EventKind::Checkpoint) {
                    r.data = chain.checkpoint(r.seq);
                } else if r.kind == RowKind::Event(EventKind::End) {
                    let mut end = SessionEnd::from_bytes(&r.data).expect("end data");
                    end.chain_hash = Some(integrity::chain::hex(&chain.hash()));
                    r.data = end.to_bytes();
                }
                chain.add_event(&r.to_event().expect("a known event kind"));
            }
        }
    }
}

#[test]
fn untouched_sessions_verify_complete_and_a_faithful_rewrite_changes_nothing() {
    let fx = fixture();
    let case = fx.case("untouched");
    for id in [fx.plain, fx.sealed] {
        let (code, line) = fx.verify(&case, id, &[]);
        assert!(line.starts_with(&format!("{id}  complete: ")), "{line}");
        assert_eq!(code, Some(0), "{line}");
    }
    // Decoding and re-encoding every object, as the cases below do, is invisible to the
    // verifier: what they find is the tampering, not the rewrite.
    let case = fx.case("rewritten");
    for id in [fx.plain, fx.sealed] {
        case.edit_events(id, |_| {});
    }
    let listed = fx.integrity(&case);
    assert_eq!(
        listed.values().collect::<Vec<_>>(),
        ["complete", "complete"]
    );
    let out = fx.replay(&case.dir, &["verify", "--all"]);
    assert!(out.status.success(), "{}", show(&out));
}

#[test]
fn a_flipped_byte_is_named_by_its_seq() {
    let fx = fixture();

    let case = fx.case("flip-plain");
    let rows = case.rows(fx.plain);
    let n = seq_of_line(&rows, 20);
    case.edit_events(fx.plain, |rows| at(rows, n).data[0] ^= 0x01);
    fx.assert_verify_says(
        &case,
        fx.plain,
        &format!("FAILED: {}", altered(&rows, &[n])),
    );
    fx.assert_listed(&case, fx.plain, "FAILED");

    let case = fx.case("flip-sealed");
    let rows = case.rows(fx.sealed);
    let row = multi_event_sealed_rows(&rows)[0].clone();
    let n = row.seq;
    case.edit_events(fx.sealed, |rows| {
        let data = &mut at(rows, n).data;
        let last = data.len() - 1;
        data[last] ^= 0x80;
    });
    fx.assert_verify_says(
        &case,
        fx.sealed,
        &format!("FAILED: {}", altered(&rows, &[row.seq])),
    );
    fx.assert_listed(&case, fx.sealed, "FAILED");
}

#[test]
fn swapped_rows_are_named_at_both_seqs() {
    let fx = fixture();

    let case = fx.case("swap-plain");
    let rows = case.rows(fx.plain);
    let (a, b) = (seq_of_line(&rows, 10), seq_of_line(&rows, 30));
    case.edit_events(fx.plain, |rows| {
        let da = at(rows, a).data.clone();
        let db = std::mem::replace(&mut at(rows, b).data, da);
        assert_ne!(at(rows, a).data, db, "two rows with different data");
        at(rows, a).data = db;
    });
    fx.assert_verify_says(
        &case,
        fx.plain,
        &format!("FAILED: {}", altered(&rows, &[a, b])),
    );
    fx.assert_listed(&case, fx.plain, "FAILED");

    let case = fx.case("swap-sealed");
    let rows = case.rows(fx.sealed);
    let multi = multi_event_sealed_rows(&rows);
    let (row_a, row_b) = (multi[0].clone(), multi[multi.len() - 1].clone());
    let (a, b) = (row_a.seq, row_b.seq);
    case.edit_events(fx.sealed, |rows| {
        at(rows, a).data = row_b.data.clone();
        at(rows, b).data = row_a.data.clone();
    });
    fx.assert_verify_says(
        &case,
        fx.sealed,
        &format!("FAILED: {}", altered(&rows, &[a, b])),
    );
    fx.assert_listed(&case, fx.sealed, "FAILED");
}

#[test]
fn a_deleted_row_is_a_gap_at_its_seq() {
    let fx = fixture();

    let case = fx.case("delete-plain");
    let n = seq_of_line(&case.rows(fx.plain), 21);
    case.edit_events(fx.plain, |rows| rows.retain(|r| r.seq != n));
    fx.assert_verify_says(&case, fx.plain, &format!("FAILED: gap at seq {n}"));
    fx.assert_listed(&case, fx.plain, "FAILED");

    let case = fx.case("delete-sealed");
    let rows = case.rows(fx.sealed);
    let tail = last_interval(&rows);
    let sealed: Vec<u64> = kind_seqs(&rows, RowKind::Sealed)
        .into_iter()
        .filter(|&s| s < tail)
        .collect();
    let n = sealed[sealed.len() / 2];
    let last = rows.iter().find(|r| r.seq == n).expect("row").seq_last;
    case.edit_events(fx.sealed, |rows| rows.retain(|r| r.seq != n));
    let expected = if last == n {
        format!("FAILED: gap at seq {n}")
    } else {
        format!(
            "FAILED: gap at seq {n} ({} events missing, through seq {last})",
            last - n + 1
        )
    };
    fx.assert_verify_says(&case, fx.sealed, &expected);
    fx.assert_listed(&case, fx.sealed, "FAILED");
}

#[test]
fn a_removed_tail_is_truncated_or_never_ended() {
    let fx = fixture();
    let id = fx.plain;

    // The tail from `line 25` on is gone, `end` and the final checkpoint with it; the
    // `sessions/` end row still says how many events there were.
    let case = fx.case("truncate");
    let rows = case.rows(id);
    let k = seq_of_line(&rows, 25);
    let expected = case.end_event_count(id);
    assert_eq!(
        expected,
        kind_seqs(&rows, EventKind::End)[0] + 1,
        "the end row counts the events through `end`"
    );
    case.edit_events(id, |rows| rows.retain(|r| r.seq < k));
    fx.assert_verify_says(
        &case,
        id,
        &format!(
            "FAILED: truncated: events stop at seq {} but the end row counts {expected} events",
            k - 1
        ),
    );
    fx.assert_listed(&case, id, "FAILED");

    // The end row removed as well: nothing says the session ever ended. What is left is
    // intact and signed up to the last checkpoint before the cut.
    let case = fx.case("truncate-and-unend");
    case.edit_events(id, |rows| rows.retain(|r| r.seq < k));
    case.drop_session_rows(|r| r.session_id == id && r.kind == schemas::EventKind::End);
    let signed = *kind_seqs(&rows, EventKind::Checkpoint)
        .iter()
        .filter(|&&s| s < k)
        .max()
        .expect("a checkpoint before the cut");
    fx.assert_verify_says(
        &case,
        id,
        &format!(
            "OPEN: never ended: events stop at seq {} (signed below seq {signed}); the agent was \
             killed, the session still runs, or its tail was removed",
            k - 1
        ),
    );
    fx.assert_listed(&case, id, "open");
}

#[test]
fn a_replaced_signature_is_a_bad_signature() {
    let fx = fixture();
    let id = fx.plain;
    let case = fx.case("bad-signature");
    let rows = case.rows(id);
    let checkpoints = kind_seqs(&rows, EventKind::Checkpoint);
    // A checkpoint in the middle gets the (genuine, well-formed) signature of the first.
    let (donor, n) = (checkpoints[0], checkpoints[checkpoints.len() / 2]);
    let sig = |rows: &[EventRow], seq: u64| -> String {
        let data = &rows.iter().find(|r| r.seq == seq).expect("row").data;
        let cp: serde_json::Value = serde_json::from_slice(data).expect("checkpoint JSON");
        cp["sig"].as_str().expect("sig").to_string()
    };
    let donor_sig = sig(&rows, donor);
    assert_ne!(donor_sig, sig(&rows, n));
    case.edit_events(id, |rows| {
        let row = at(rows, n);
        let mut cp: serde_json::Value = serde_json::from_slice(&row.data).expect("JSON");
        cp["sig"] = serde_json::Value::String(donor_sig);
        row.data = serde_json::to_vec(&cp).expect("JSON");
    });
    // The checkpoint row itself changed, so the next checkpoint finds it altered too.
    fx.assert_verify_says(
        &case,
        id,
        &format!(
            "FAILED: bad signature on the checkpoint at seq {n}; {}",
            altered(&rows, &[n])
        ),
    );
    fx.assert_listed(&case, id, "FAILED");
}

#[test]
fn a_session_re_signed_with_another_key_has_unknown_signatures() {
    let fx = fixture();
    let forger_public = NodeKey::from_seed(FORGER).public().to_string();

    for (id, name) in [(fx.plain, "re-sign-plain"), (fx.sealed, "re-sign-sealed")] {
        let case = fx.case(name);
        let rows = case.rows(id);
        let checkpoints = kind_seqs(&rows, EventKind::Checkpoint);
        let target = if id == fx.plain {
            seq_of_line(&rows, 20)
        } else {
            let sealed = kind_seqs(&rows, RowKind::Sealed);
            sealed[sealed.len() / 2]
        };
        case.edit_events(id, |rows| {
            let data = &mut at(rows, target).data;
            let last = data.len() - 1;
            data[last] ^= 0x01;
            re_sign(id, rows, NodeKey::from_seed(FORGER));
        });
        case.copy_signed_rows_to_sessions_table(id);
        let (code, line) = fx.verify(&case, id, &[]);
        assert_eq!(code, Some(1), "{line}");
        // Nothing is altered as far as the chain goes: only the signer gives it away.
        assert!(!line.contains("altered"), "{line}");
        for c in &checkpoints {
            let unknown = format!(
                "unknown signature: the checkpoint at seq {c} is signed by {forger_public}, \
                 which is not in the trust file"
            );
            assert!(line.contains(&unknown), "{unknown:?} not in:\n{line}");
        }
        assert_ne!(fx.integrity(&case)[&id.to_string()], "complete");

        // A verifier that trusted the forger's key would take it: the forgery is
        // consistent, and the trust file is what stands in its way.
        let trust = case.dir.with_extension("trusted-keys");
        let mut text = std::fs::read_to_string(fx.sb.data_dir().join("trusted-keys"))
            .expect("the agent's trust file");
        text.push_str(&format!("{forger_public} forger\n"));
        std::fs::write(&trust, text).expect("write trust file");
        let trust = trust.to_str().expect("UTF-8 path").to_string();
        let (code, line) = fx.verify(&case, id, &["--trust", &trust]);
        assert!(
            line.starts_with(&format!("{id}  complete: ")) && line.ends_with("signed by forger"),
            "{line}"
        );
        assert_eq!(code, Some(0), "{line}");
    }
}

/// `replay ls --help` ("untrusted = signed by a key not in the trust file") and `replay
/// verify` (its UNTRUSTED word) promise a state of its own for a session that is intact
/// but signed by a key the trust file does not hold, apart from FAILED (tampered).
#[test]
fn a_session_signed_by_a_key_outside_the_trust_file_is_untrusted() {
    let fx = fixture();
    let case = fx.case("untrusted");
    let other = fx.sb.path().join("other-trusted-keys");
    std::fs::write(
        &other,
        format!("{} someone-else\n", NodeKey::from_seed([7; 32]).public()),
    )
    .expect("write trust file");
    let other = other.to_str().expect("UTF-8 path");
    let (code, line) = fx.verify(&case, fx.plain, &["--trust", other]);
    assert_eq!(code, Some(1), "{line}");
    assert!(
        line.starts_with(&format!("{}  UNTRUSTED: unknown signature: ", fx.plain)),
        "{line}"
    );
    let out = fx.replay(&case.dir, &["--trust", other, "ls", "--json"]);
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(
        list.iter().all(|s| s["integrity"] == "untrusted"),
        "{list:#?}"
    );

    // To the verifier, a session altered and re-signed with a key of the forger's own
    // is the same: intact, signed by a stranger.
    let case = fx.case("untrusted-re-signed");
    let target = seq_of_line(&case.rows(fx.plain), 20);
    case.edit_events(fx.plain, |rows| {
        at(rows, target).data[0] ^= 0x01;
        re_sign(fx.plain, rows, NodeKey::from_seed(FORGER));
    });
    case.copy_signed_rows_to_sessions_table(fx.plain);
    let (code, line) = fx.verify(&case, fx.plain, &[]);
    assert_eq!(code, Some(1), "{line}");
    assert!(
        line.starts_with(&format!("{}  UNTRUSTED: unknown signature: ", fx.plain)),
        "{line}"
    );
    assert_eq!(fx.integrity(&case)[&fx.plain.to_string()], "untrusted");
}

#[test]
fn the_unsigned_sessions_table_and_unreadable_objects_hide_nothing() {
    let fx = fixture();
    let listed = |case: &Case| -> serde_json::Value {
        let out = fx.replay(&case.dir, &["ls", "--json"]);
        assert!(out.status.success(), "{}", show(&out));
        let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
        list.into_iter()
            .find(|s| s["id"] == fx.plain.to_string())
            .expect("the plain session is listed")
    };
    let signed_user = listed(&fx.case("before"))["user"].clone();
    assert!(signed_user.as_str().is_some_and(|u| !u.is_empty()));

    // A user name rewritten in `sessions/`, the table nothing signs: `ls` still shows the
    // signed name, and says the table disagrees; `verify` fails the session.
    let case = fx.case("renamed");
    case.edit_session_rows(|r| {
        if r.session_id == fx.plain && r.kind == EventKind::Start {
            let mut start = SessionStart::from_bytes(&r.metadata).expect("start metadata");
            start.user = "mallory".into();
            r.metadata = start.to_bytes();
        }
    });
    let shown = listed(&case);
    assert_eq!(shown["user"], signed_user, "{shown:#}");
    assert_eq!(shown["metadata"], "sessions-table-differs", "{shown:#}");
    assert_eq!(shown["integrity"], "FAILED", "{shown:#}");
    fx.assert_verify_says(
        &case,
        fx.plain,
        "FAILED: the sessions/ table's start or end differs from the signed rows (shown: the signed ones)",
    );
    let out = fx.replay(&case.dir, &["verify", "--all"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{}  FAILED: the sessions/", fx.plain)),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{}  complete: ", fx.sealed)),
        "{stdout}"
    );

    // The objects holding a session replaced by garbage: `verify --all` fails and names
    // each of them; `ls` lists what it can read and names what it cannot.
    let case = fx.case("garbage");
    let garbled = case.garble_objects_of(fx.plain);
    assert!(
        garbled.iter().any(|k| k.starts_with("events/")),
        "{garbled:?}"
    );
    assert!(
        garbled.iter().any(|k| k.starts_with("sessions/")),
        "{garbled:?}"
    );
    let out = fx.replay(&case.dir, &["verify", "--all"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for key in &garbled {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("FAILED: unreadable object: ") && l.contains(key.as_str())),
            "{key} not named:\n{}",
            show(&out)
        );
    }
    let out = fx.replay(&case.dir, &["ls", "--json"]);
    assert!(out.status.success(), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for key in &garbled {
        assert!(
            stderr.contains(key.as_str()),
            "{key} not named:\n{}",
            show(&out)
        );
    }
}

/// Sessions numbered by their node's ledger: one deleted from the store whole (every
/// object that held any of its rows) is named by the session after it.
#[test]
fn a_session_deleted_whole_is_named_by_the_next_one_in_its_nodes_ledger() {
    let fx = fixture();
    // A third session on the same node, after the two of the fixture.
    record(&fx.sb, &[]);
    fx.sb.ingest();
    let sessions = fx.sb.sessions();
    assert_eq!(sessions.len(), 3, "{sessions:#?}");
    let ids: Vec<SessionId> = sessions
        .iter()
        .map(|s| s["id"].as_str().expect("id").parse().expect("session id"))
        .collect();
    let out = fx.replay(&fx.sb.store(), &["verify", "--all"]);
    assert!(out.status.success(), "{}", show(&out));

    // The middle one, by start time: the node numbered them 1, 2, 3.
    let case = fx.case("deleted");
    let gone = ids[1];
    let keys = case.objects_of(gone);
    assert!(!keys.is_empty());
    for key in &keys {
        std::fs::remove_file(case.dir.join(key)).expect("delete object");
    }
    assert!(case.objects_of(gone).is_empty());
    let out = fx.replay(&case.dir, &["verify", "--all"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", show(&out));
    for id in [ids[0], ids[2]] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{id}  complete: "))),
            "{}",
            show(&out)
        );
    }
    let missing = lines
        .iter()
        .find(|l| {
            l.starts_with(&format!(
                "{gone}  FAILED: missing from the store: session #2 of node "
            ))
        })
        .unwrap_or_else(|| panic!("no line for {gone}:\n{}", show(&out)));
    assert!(
        missing.ends_with(&format!("({gone}, named by {})", ids[2])),
        "{missing}"
    );

    // Rewriting the successor's `start` to hide the gap breaks its chain instead (and an
    // unverified start numbers nothing, so the failure is that session's).
    case.edit_events(ids[2], |rows| {
        let start = rows
            .iter_mut()
            .find(|r| r.kind == RowKind::Event(EventKind::Start))
            .expect("start row");
        let mut meta = SessionStart::from_bytes(&start.data).expect("start metadata");
        meta.node_seq = 2;
        meta.prev_session = Some(ids[0].to_string());
        start.data = meta.to_bytes();
    });
    let out = fx.replay(&case.dir, &["verify", "--all"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        // "altered at seq 0", or "between seq 0 and …" when its checkpoint tags a group.
        stdout.lines().any(|l| {
            let prefix = format!("{}  FAILED: altered ", ids[2]);
            l.starts_with(&prefix) && (l.contains("at seq 0") || l.contains("between seq 0 "))
        }),
        "{}",
        show(&out)
    );
}
