//! `replay verify`: recompute a session's chain from its stored rows and hold it against
//! the signed checkpoints.
//!
//! Needs no data key: sealed rows are hashed as stored. Problems are located as precisely
//! as the evidence allows: a row whose hash differs from the tag its checkpoint recorded
//! is "altered at seq N"; where the checkpoint tags groups of rows (keystroke-sized
//! events), a group whose tag differs is "altered between seq A and seq B (one or more of
//! K rows)"; a chain that does not match although every tag does (tags and data both
//! rewritten) is "altered between seq A and seq B", and its signature fails.

use std::collections::BTreeSet;
use std::fmt;

use schemas::{EventKind, RowKind, SessionId};

use crate::chain::{Chain, Hash, event_unit_hash, sealed_unit_hash};
use crate::checkpoint::{Checkpoint, ParsedCheckpoint};
use crate::keys::TrustSet;

/// What a row holds, for the verifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnitKind {
    /// The `start` event.
    Start,
    /// The `end` event.
    End,
    /// A checkpoint; its data.
    Checkpoint(Vec<u8>),
    /// A sealed chunk.
    Sealed,
    /// Any other event.
    Other,
}

/// One stored row, reduced to what verifying needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    /// First seq of the row.
    pub seq: u64,
    /// Last seq of the row (= `seq` but for sealed chunks).
    pub seq_last: u64,
    /// The unit hash of the row as stored.
    pub hash: Hash,
    /// What it is.
    pub kind: UnitKind,
}

/// The unit of an `events` row.
pub fn unit_of_row(kind: &RowKind, seq: u64, seq_last: u64, elapsed_ns: u64, data: &[u8]) -> Unit {
    let (hash, kind) = match kind {
        &RowKind::Event(k) => (
            event_unit_hash(seq, elapsed_ns, k, data),
            match k {
                EventKind::Start => UnitKind::Start,
                EventKind::End => UnitKind::End,
                EventKind::Checkpoint => UnitKind::Checkpoint(data.to_vec()),
                _ => UnitKind::Other,
            },
        ),
        RowKind::Sealed => (sealed_unit_hash(data), UnitKind::Sealed),
        // A kind nobody writes: hashed so that it can never match what the agent chained.
        RowKind::Unknown(name) => {
            let mut h = blake3::Hasher::new();
            h.update(b"auditty-unknown-kind");
            h.update(name.as_bytes());
            h.update(data);
            (*h.finalize().as_bytes(), UnitKind::Other)
        }
    };
    Unit {
        seq,
        seq_last: seq_last.max(seq),
        hash,
        kind,
    }
}

/// One thing wrong with a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Seqs `from..=to` are missing.
    Gap {
        /// First missing seq.
        from: u64,
        /// Last missing seq.
        to: u64,
    },
    /// The row at `seq` (covering `seq..=seq_last`) is not what was signed; or, when
    /// `rows` > 1, at least one of the `rows` rows in `seq..=seq_last`, which the
    /// checkpoint tagged as one group.
    Altered {
        /// First seq of the row (of the group's first row).
        seq: u64,
        /// Last seq of the row (of the group's last row).
        seq_last: u64,
        /// Rows in the group: 1 when the checkpoint names the exact row.
        rows: u64,
        /// The row is a sealed chunk (one of the group's rows is).
        sealed: bool,
    },
    /// Something in `from..=to` was altered, and the checkpoint's tags were rewritten too.
    AlteredBetween {
        /// First seq of the range.
        from: u64,
        /// Last seq of the range.
        to: u64,
    },
    /// Two different rows claim the same seq.
    Conflict {
        /// The seq.
        seq: u64,
    },
    /// A checkpoint's signature does not match its contents.
    BadSignature {
        /// Seq of the checkpoint event.
        seq: u64,
    },
    /// A checkpoint is signed by a key the trust file does not hold.
    UnknownKey {
        /// Seq of the checkpoint event.
        seq: u64,
        /// The key, `ed25519:…`.
        key: String,
    },
    /// A checkpoint does not parse or contradicts its position.
    MalformedCheckpoint {
        /// Seq of the checkpoint event.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// No `end` event and no end row: the agent was killed, or the tail was removed.
    NeverEnded {
        /// Last seq present.
        last_seq: u64,
        /// Everything below this is covered by a good checkpoint.
        signed_through: u64,
    },
    /// The end row says there were more events than the store holds.
    Truncated {
        /// Last seq present.
        last_seq: u64,
        /// Events the end row counts.
        expected: u64,
    },
    /// The session ended but its last rows are not covered by a good checkpoint.
    UnsignedTail {
        /// First seq not covered.
        from: u64,
        /// Last seq present.
        to: u64,
    },
    /// The session has no checkpoint at all.
    Unsigned,
    /// The session has no checkpoint because it was recorded by another tool and imported
    /// (`replay import`): it was never signed at capture. Not evidence of tampering, but
    /// nothing vouches for its rows either.
    NotSignedAtCapture {
        /// Where it came from, for messages: format and digest of the imported file.
        source: String,
    },
    /// The session has no rows.
    Empty,
    /// The `sessions/` table's copy of the `start` or `end` differs from the chained
    /// rows (DESIGN.md §6): that table was altered. Found by the catalog, not the chain.
    SessionsTableDiffers,
    /// An object that may hold rows of the session could not be read, so the session
    /// cannot be shown complete. Found by the catalog, not the chain.
    Unreadable {
        /// The object's key and why it could not be read.
        object: String,
    },
}

impl Problem {
    /// The seq a located problem points at.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Problem::Gap { from, .. } | Problem::AlteredBetween { from, .. } => Some(*from),
            Problem::Altered { seq, .. }
            | Problem::Conflict { seq }
            | Problem::BadSignature { seq }
            | Problem::UnknownKey { seq, .. }
            | Problem::MalformedCheckpoint { seq, .. } => Some(*seq),
            _ => None,
        }
    }

    /// Problems that only say the session is still running or was cut off by a kill.
    pub fn is_open_only(&self) -> bool {
        matches!(self, Problem::NeverEnded { .. })
    }
}

/// [`Problem::Altered`]: one row, or a group of rows of which at least one was altered.
fn fmt_altered(
    f: &mut fmt::Formatter<'_>,
    seq: u64,
    seq_last: u64,
    rows: u64,
    sealed: bool,
) -> fmt::Result {
    match (rows, sealed) {
        (0 | 1, false) => write!(f, "altered at seq {seq}"),
        (0 | 1, true) => write!(
            f,
            "altered at seq {seq} (sealed chunk of seq {seq}..{seq_last})"
        ),
        (_, false) => write!(
            f,
            "altered between seq {seq} and seq {seq_last} (one or more of {rows} rows)"
        ),
        (_, true) => write!(
            f,
            "altered between seq {seq} and seq {seq_last} (one or more of {rows} rows, sealed chunks among them)"
        ),
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Gap { from, to } if from == to => write!(f, "gap at seq {from}"),
            Problem::Gap { from, to } => {
                write!(
                    f,
                    "gap at seq {from} ({} events missing, through seq {to})",
                    to - from + 1
                )
            }
            &Problem::Altered {
                seq,
                seq_last,
                rows,
                sealed,
            } => fmt_altered(f, seq, seq_last, rows, sealed),
            Problem::AlteredBetween { from, to } => {
                write!(f, "altered between seq {from} and seq {to}")
            }
            Problem::Conflict { seq } => {
                write!(f, "altered at seq {seq}: two different rows for it")
            }
            Problem::BadSignature { seq } => {
                write!(f, "bad signature on the checkpoint at seq {seq}")
            }
            Problem::UnknownKey { seq, key } => write!(
                f,
                "unknown signature: the checkpoint at seq {seq} is signed by {key}, which is not in the trust file"
            ),
            Problem::MalformedCheckpoint { seq, reason } => {
                write!(f, "bad checkpoint at seq {seq}: {reason}")
            }
            Problem::NeverEnded {
                last_seq,
                signed_through,
            } => write!(
                f,
                "never ended: events stop at seq {last_seq} (signed below seq {signed_through}); the agent was killed, the session still runs, or its tail was removed"
            ),
            Problem::Truncated { last_seq, expected } => write!(
                f,
                "truncated: events stop at seq {last_seq} but the end row counts {expected} events"
            ),
            Problem::UnsignedTail { from, to } => {
                write!(
                    f,
                    "seq {from}..{to} not covered by a good signed checkpoint"
                )
            }
            Problem::Unsigned => write!(f, "unsigned: no checkpoints (recorded without integrity)"),
            Problem::NotSignedAtCapture { source } => write!(
                f,
                "not signed at capture: imported from {source}; nothing vouches for its rows"
            ),
            Problem::Empty => write!(f, "no events stored"),
            Problem::SessionsTableDiffers => write!(
                f,
                "the sessions/ table's start or end differs from the signed rows (shown: the signed ones)"
            ),
            Problem::Unreadable { object } => write!(f, "unreadable object: {object}"),
        }
    }
}

/// The verdict on one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The session.
    pub session: SessionId,
    /// Everything wrong, in seq order; empty = complete.
    pub problems: Vec<Problem>,
    /// One past the last seq present.
    pub events: u64,
    /// Every seq below this is covered by a good, trusted checkpoint.
    pub signed_through: u64,
    /// Trusted signers seen (their trust-file comments, else their keys).
    pub signers: BTreeSet<String>,
    /// An `end` event is present.
    pub ended: bool,
}

impl Report {
    /// Nothing is wrong.
    pub fn is_complete(&self) -> bool {
        self.problems.is_empty()
    }

    /// One word for listings: `complete`, `open` (what is there verifies, but the session
    /// never ended), `untrusted` (intact as signed, but by keys not in the trust file),
    /// `unsigned`, `imported` (recorded by another tool: never signed at capture, and no
    /// gap or conflict among its rows) or `FAILED`.
    pub fn state(&self) -> &'static str {
        let only = |allowed: fn(&Problem) -> bool| self.problems.iter().all(allowed);
        if self.problems.is_empty() {
            "complete"
        } else if only(|p| matches!(p, Problem::NotSignedAtCapture { .. })) {
            "imported"
        } else if only(Problem::is_open_only) {
            "open"
        } else if only(|p| matches!(p, Problem::Unsigned | Problem::NeverEnded { .. })) {
            "unsigned"
        } else if only(|p| {
            matches!(
                p,
                Problem::UnknownKey { .. }
                    | Problem::UnsignedTail { .. }
                    | Problem::NeverEnded { .. }
            )
        }) {
            "untrusted"
        } else {
            "FAILED"
        }
    }
}

/// What the verifier knows beyond the rows.
#[derive(Clone, Debug, Default)]
pub struct Expectations {
    /// `event_count` of the session's end row in `sessions/`, if there is one.
    pub end_event_count: Option<u64>,
    /// The session's `start` says it was imported from another recorder's file (this
    /// describes it: format and digest). A session without checkpoints is then
    /// [`Problem::NotSignedAtCapture`] rather than [`Problem::Unsigned`]; one with
    /// checkpoints is judged by them as any other.
    pub imported: Option<String>,
}

/// A unit since the last checkpoint.
struct IntervalUnit {
    seq: u64,
    seq_last: u64,
    sealed: bool,
    /// The full unit hash: group tags hash the hashes of several units.
    hash: Hash,
}

#[derive(Default)]
struct Interval {
    units: Vec<IntervalUnit>,
    broken: bool,
}

/// Verifies a session's rows (any order, duplicates allowed) against the trusted keys.
pub fn verify(
    session: SessionId,
    mut units: Vec<Unit>,
    trust: &TrustSet,
    expect: Expectations,
) -> Report {
    units.sort_by_key(|u| (u.seq, u.seq_last));
    let mut report = Report {
        session,
        problems: Vec::new(),
        events: 0,
        signed_through: 0,
        signers: BTreeSet::new(),
        ended: false,
    };
    if units.is_empty() {
        report.problems.push(Problem::Empty);
        return report;
    }
    let walked = walk(session, &units, trust, &mut report);
    report.events = walked.next;
    judge_ending(&mut report, &walked, expect);
    report
}

/// What walking the rows found besides problems.
struct Walked {
    /// One past the last seq covered.
    next: u64,
    /// Checkpoints met, good or bad.
    checkpoints: usize,
    /// Seq of the `end` event, if there is one.
    end_seq: Option<u64>,
}

/// Recomputes the chain over `units` (sorted by seq), noting gaps, conflicting duplicates
/// and every checkpoint's verdict in `report`.
fn walk(session: SessionId, units: &[Unit], trust: &TrustSet, report: &mut Report) -> Walked {
    let mut chain = Chain::new(session);
    let mut interval = Interval::default();
    let mut walked = Walked {
        next: 0,
        checkpoints: 0,
        end_seq: None,
    };
    let mut prev: Option<&Unit> = None;
    for u in units {
        if let Some(p) = prev
            && p.seq == u.seq
        {
            if p.hash != u.hash || p.seq_last != u.seq_last {
                report.problems.push(Problem::Conflict { seq: u.seq });
                interval.broken = true;
            }
            continue;
        }
        prev = Some(u);
        if u.seq > walked.next {
            report.problems.push(Problem::Gap {
                from: walked.next,
                to: u.seq - 1,
            });
            interval.broken = true;
        } else if u.seq < walked.next {
            report.problems.push(Problem::Conflict { seq: u.seq });
            interval.broken = true;
        }
        walked.next = walked.next.max(u.seq_last.saturating_add(1));
        match &u.kind {
            UnitKind::End => {
                report.ended = true;
                walked.end_seq = Some(u.seq);
            }
            UnitKind::Checkpoint(data) => {
                walked.checkpoints += 1;
                let good = check_checkpoint(session, u.seq, data, &chain, &interval, trust, report);
                if let Some(cp_chain) = good.resync {
                    chain = Chain::from_hash(cp_chain);
                }
                if good.trusted && !interval.broken {
                    report.signed_through = u.seq;
                }
                interval = Interval::default();
            }
            _ => {}
        }
        chain.push(&u.hash);
        interval.units.push(IntervalUnit {
            seq: u.seq,
            seq_last: u.seq_last,
            sealed: u.kind == UnitKind::Sealed,
            hash: u.hash,
        });
    }
    walked
}

/// The problems of the session as a whole: never signed, never ended (or cut short of the
/// count its end row promised), or a tail after the last good checkpoint.
fn judge_ending(report: &mut Report, walked: &Walked, expect: Expectations) {
    let next = walked.next;
    let last_seq = next.saturating_sub(1);
    if walked.checkpoints == 0 {
        report.problems.push(match expect.imported {
            Some(source) => Problem::NotSignedAtCapture { source },
            None => Problem::Unsigned,
        });
    }
    match (walked.end_seq, expect.end_event_count) {
        (None, Some(expected)) if expected > next => report
            .problems
            .push(Problem::Truncated { last_seq, expected }),
        (None, _) => report.problems.push(Problem::NeverEnded {
            last_seq,
            signed_through: report.signed_through,
        }),
        // Damage already located in the tail explains why it is not covered.
        (Some(_), _)
            if walked.checkpoints > 0
                && report.signed_through < last_seq
                && !report
                    .problems
                    .iter()
                    .any(|p| p.seq().is_some_and(|s| s >= report.signed_through)) =>
        {
            report.problems.push(Problem::UnsignedTail {
                from: report.signed_through,
                to: last_seq,
            })
        }
        (Some(_), _) => {}
    }
}

struct CheckpointOutcome {
    /// The chain the checkpoint claims, to continue from when ours differs.
    resync: Option<Hash>,
    /// Signature good, key trusted, chain matched.
    trusted: bool,
}

fn check_checkpoint(
    session: SessionId,
    seq: u64,
    data: &[u8],
    chain: &Chain,
    interval: &Interval,
    trust: &TrustSet,
    report: &mut Report,
) -> CheckpointOutcome {
    let mut out = CheckpointOutcome {
        resync: None,
        trusted: false,
    };
    let cp = match Checkpoint::parse(data) {
        Ok(cp) => cp,
        Err(e) => {
            report.problems.push(Problem::MalformedCheckpoint {
                seq,
                reason: e.to_string(),
            });
            return out;
        }
    };
    if cp.through != seq {
        report.problems.push(Problem::MalformedCheckpoint {
            seq,
            reason: format!(
                "it says it covers seqs below {}, but sits at seq {seq}",
                cp.through
            ),
        });
        return out;
    }
    let signature_ok = cp.check_signature(session).is_ok();
    if !signature_ok {
        report.problems.push(Problem::BadSignature { seq });
    }
    let trusted_as = trust.get(&cp.key);
    if signature_ok && trusted_as.is_none() {
        report.problems.push(Problem::UnknownKey {
            seq,
            key: cp.key.to_string(),
        });
    }
    let chain_ok = cp.chain == chain.hash();
    if !chain_ok {
        out.resync = Some(cp.chain);
        if !interval.broken {
            let altered = altered_groups(&cp, &interval.units);
            if altered.is_empty() {
                report.problems.push(Problem::AlteredBetween {
                    from: cp.from,
                    to: seq.saturating_sub(1),
                });
            } else {
                report.problems.extend(altered);
            }
        }
    }
    if let Some(name) = trusted_as
        && signature_ok
    {
        report.signers.insert(if name.is_empty() {
            cp.key.to_string()
        } else {
            name.to_string()
        });
        out.trusted = chain_ok;
    }
    out
}

/// The groups of `units` (the interval's, in order) whose tags differ from what `cp`
/// recorded, as [`Problem::Altered`]; none when the tags cannot be matched to the units.
fn altered_groups(cp: &ParsedCheckpoint, units: &[IntervalUnit]) -> Vec<Problem> {
    let g = usize::try_from(cp.g.max(1)).unwrap_or(usize::MAX);
    if cp.tags.len() != units.len().div_ceil(g) {
        return Vec::new();
    }
    let hashes: Vec<Hash> = units.iter().map(|u| u.hash).collect();
    units
        .chunks(g)
        .zip(cp.expected_tags(&hashes))
        .zip(&cp.tags)
        .filter(|((_, ours), theirs)| ours != *theirs)
        .filter_map(|((group, _), _)| {
            Some(Problem::Altered {
                seq: group.first()?.seq,
                seq_last: group.last()?.seq_last,
                rows: u64::try_from(group.len()).unwrap_or(u64::MAX),
                sealed: group.iter().any(|u| u.sealed),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NodeKey, SessionChain};
    use schemas::Event;

    const SID: [u8; 16] = [7; 16];

    /// A stored row: (kind, seq, seq_last, elapsed, data).
    type Row = (RowKind, u64, u64, u64, Vec<u8>);

    /// Writes a plaintext event at the next seq, as the agent would.
    fn emit(c: &mut SessionChain, rows: &mut Vec<Row>, kind: EventKind, data: Vec<u8>) {
        let seq = rows.last().map_or(0, |r| r.2 + 1);
        let e = Event {
            seq,
            elapsed_ns: seq * 10,
            kind,
            data,
        };
        c.add_event(&e);
        rows.push((kind.into(), seq, seq, seq * 10, e.data));
    }

    /// Rows as the agent would write them: start, outputs with a checkpoint every 4, end,
    /// final checkpoint. Output lines of 100 bytes: enough for a tag per row (`g` = 1).
    fn session(key: NodeKey, outputs: u64) -> Vec<Row> {
        let sid = SessionId::from_bytes(SID);
        let mut c = SessionChain::new(sid, key);
        let mut rows: Vec<Row> = Vec::new();
        emit(&mut c, &mut rows, EventKind::Start, b"{}".to_vec());
        for i in 0..outputs {
            emit(
                &mut c,
                &mut rows,
                EventKind::Output,
                format!("line {i:<94}\n").into_bytes(),
            );
            if i % 4 == 3 {
                let cp = c.checkpoint(next_seq(&rows));
                emit(&mut c, &mut rows, EventKind::Checkpoint, cp);
            }
        }
        end(&mut c, &mut rows);
        rows
    }

    fn next_seq(rows: &[Row]) -> u64 {
        rows.last().map_or(0, |r| r.2 + 1)
    }

    /// `end` and the final checkpoint.
    fn end(c: &mut SessionChain, rows: &mut Vec<Row>) {
        emit(c, rows, EventKind::End, b"{}".to_vec());
        let cp = c.checkpoint(next_seq(rows));
        emit(c, rows, EventKind::Checkpoint, cp);
    }

    fn run(rows: &[Row], trust: &TrustSet) -> Report {
        let units = rows
            .iter()
            .map(|(k, s, l, e, d)| unit_of_row(k, *s, *l, *e, d))
            .collect();
        verify(
            SessionId::from_bytes(SID),
            units,
            trust,
            Expectations::default(),
        )
    }

    fn trust() -> TrustSet {
        let mut t = TrustSet::default();
        t.insert(NodeKey::from_seed([1; 32]).public(), "node-1");
        t
    }

    fn find(rows: &[Row], seq: u64) -> usize {
        rows.iter().position(|r| r.1 == seq).unwrap()
    }

    #[test]
    fn an_untouched_session_is_complete() {
        let rows = session(NodeKey::from_seed([1; 32]), 10);
        let r = run(&rows, &trust());
        assert_eq!(r.problems, vec![]);
        assert_eq!(r.state(), "complete");
        assert!(r.signers.contains("node-1"));
        // Any order, duplicates included.
        let mut shuffled = rows.clone();
        shuffled.reverse();
        shuffled.push(rows[3].clone());
        assert!(run(&shuffled, &trust()).is_complete());
    }

    #[test]
    #[allow(
        clippy::too_many_lines,
        reason = "one case after another, each a few lines; the limit is for code, not test tables"
    )]
    fn each_kind_of_tampering_is_named_precisely() {
        let rows = session(NodeKey::from_seed([1; 32]), 10);
        // A flipped byte.
        let mut t = rows.clone();
        let i = find(&t, 3);
        t[i].4[0] ^= 1;
        assert_eq!(
            run(&t, &trust()).problems,
            vec![Problem::Altered {
                seq: 3,
                seq_last: 3,
                rows: 1,
                sealed: false
            }]
        );
        // A deleted row.
        let mut t = rows.clone();
        t.remove(find(&t, 7));
        assert_eq!(
            run(&t, &trust()).problems,
            vec![Problem::Gap { from: 7, to: 7 }]
        );
        // Two rows' contents swapped.
        let mut t = rows.clone();
        let (a, b) = (find(&t, 2), find(&t, 3));
        let d = t[a].4.clone();
        t[a].4 = t[b].4.clone();
        t[b].4 = d;
        assert_eq!(
            run(&t, &trust()).problems,
            vec![
                Problem::Altered {
                    seq: 2,
                    seq_last: 2,
                    rows: 1,
                    sealed: false
                },
                Problem::Altered {
                    seq: 3,
                    seq_last: 3,
                    rows: 1,
                    sealed: false
                }
            ]
        );
        // Truncated: the last rows removed.
        let mut t = rows.clone();
        t.truncate(9);
        let r = run(&t, &trust());
        assert!(
            matches!(
                r.problems[..],
                [Problem::NeverEnded {
                    last_seq: 8,
                    signed_through: 5
                }]
            ),
            "{:?}",
            r.problems
        );
        assert_eq!(r.state(), "open");
        let units = t
            .iter()
            .map(|(k, s, l, e, d)| unit_of_row(k, *s, *l, *e, d))
            .collect();
        let r = verify(
            SessionId::from_bytes(SID),
            units,
            &trust(),
            Expectations {
                end_event_count: Some(16),
                ..Default::default()
            },
        );
        assert_eq!(
            r.problems,
            vec![Problem::Truncated {
                last_seq: 8,
                expected: 16
            }]
        );
        assert_eq!(r.state(), "FAILED");
        // A replaced signature.
        let mut t = rows.clone();
        let i = find(&t, 5);
        let mut cp: Checkpoint = serde_json::from_slice(&t[i].4).unwrap();
        let other = Checkpoint::sign(
            &NodeKey::from_seed([1; 32]),
            SessionId::from_bytes(SID),
            0,
            5,
            1,
            &[0; 32],
            &[],
        );
        cp.sig = other.sig;
        t[i].4 = cp.to_bytes();
        let r = run(&t, &trust());
        assert!(
            r.problems.contains(&Problem::BadSignature { seq: 5 }),
            "{:?}",
            r.problems
        );
        // Re-signed (data altered, chain and tags recomputed) with an untrusted key.
        let forged = session(NodeKey::from_seed([2; 32]), 10);
        let r = run(&forged, &trust());
        assert_eq!(r.problems.len(), 3, "{:?}", r.problems);
        assert!(
            r.problems
                .iter()
                .all(|p| matches!(p, Problem::UnknownKey { .. } | Problem::UnsignedTail { .. })),
            "{:?}",
            r.problems
        );
        assert_eq!(r.state(), "untrusted");
    }

    #[test]
    fn rows_after_the_final_checkpoint_and_unsigned_sessions_are_reported() {
        let mut rows = session(NodeKey::from_seed([1; 32]), 3);
        let last = rows.last().unwrap().1;
        rows.push((
            EventKind::Output.into(),
            last + 1,
            last + 1,
            0,
            b"injected".to_vec(),
        ));
        let r = run(&rows, &trust());
        assert_eq!(
            r.problems,
            vec![Problem::UnsignedTail {
                from: last,
                to: last + 1
            }]
        );
        let plain: Vec<_> = rows
            .into_iter()
            .filter(|r| r.0 != RowKind::Event(EventKind::Checkpoint))
            .collect();
        let r = run(&plain, &trust());
        assert!(r.problems.contains(&Problem::Unsigned));
    }

    #[test]
    fn imported_sessions_say_so_unless_rows_are_missing() {
        let sid = SessionId::from_bytes(SID);
        let unit = |seq: u64, kind: EventKind| unit_of_row(&kind.into(), seq, seq, seq, b"x");
        let rows = vec![
            unit(0, EventKind::Start),
            unit(1, EventKind::Output),
            unit(2, EventKind::End),
        ];
        let imported = Expectations {
            imported: Some("ttyrec file sha256 ab12".into()),
            ..Default::default()
        };
        let r = verify(sid, rows.clone(), &trust(), imported.clone());
        assert_eq!(r.state(), "imported");
        assert_eq!(
            r.problems[0].to_string(),
            "not signed at capture: imported from ttyrec file sha256 ab12; nothing vouches for its rows"
        );
        // A gap in an imported session is still a failure.
        let r = verify(
            sid,
            vec![rows[0].clone(), rows[2].clone()],
            &trust(),
            imported,
        );
        assert_eq!(r.state(), "FAILED");
        // Without the import marker the same rows are merely unsigned.
        let r = verify(sid, rows, &trust(), Expectations::default());
        assert_eq!(r.state(), "unsigned");
    }

    #[test]
    fn sealed_rows_are_checked_as_stored() {
        let sid = SessionId::from_bytes(SID);
        let mut c = SessionChain::new(sid, NodeKey::from_seed([1; 32]));
        let start = Event {
            seq: 0,
            elapsed_ns: 0,
            kind: EventKind::Start,
            data: b"{}".to_vec(),
        };
        c.add_event(&start);
        // Long enough for a tag per unit (`g` = 1).
        let chunk = b"pretend sealed chunk ".repeat(10);
        c.add_sealed_chunk(&chunk);
        let cp = c.checkpoint(6);
        let mut units = vec![
            unit_of_row(&EventKind::Start.into(), 0, 0, 0, b"{}"),
            unit_of_row(&RowKind::Sealed, 1, 5, 10, &chunk),
            unit_of_row(&EventKind::Checkpoint.into(), 6, 6, 20, &cp),
        ];
        let r = verify(sid, units.clone(), &trust(), Expectations::default());
        assert_eq!(
            r.problems,
            vec![Problem::NeverEnded {
                last_seq: 6,
                signed_through: 6
            }]
        );
        let mut altered = chunk.clone();
        altered[0] ^= 1;
        units[1] = unit_of_row(&RowKind::Sealed, 1, 5, 10, &altered);
        let r = verify(sid, units, &trust(), Expectations::default());
        assert_eq!(
            r.problems[0],
            Problem::Altered {
                seq: 1,
                seq_last: 5,
                rows: 1,
                sealed: true
            }
        );
        assert_eq!(
            r.problems[0].to_string(),
            "altered at seq 1 (sealed chunk of seq 1..5)"
        );
    }

    /// The `g` of the checkpoint in `row`.
    fn g_of(row: &Row) -> u32 {
        Checkpoint::parse(&row.4).unwrap().g
    }

    /// An interactive session: start, `n` one-byte inputs, a checkpoint over them all
    /// (one interval of `n + 1` units), end, final checkpoint.
    fn keystrokes(n: u64) -> Vec<Row> {
        let mut c = SessionChain::new(SessionId::from_bytes(SID), NodeKey::from_seed([1; 32]));
        let mut rows = Vec::new();
        emit(&mut c, &mut rows, EventKind::Start, b"{}".to_vec());
        for i in 0..n {
            emit(
                &mut c,
                &mut rows,
                EventKind::Input,
                vec![b'a' + (i % 26) as u8],
            );
        }
        let cp = c.checkpoint(next_seq(&rows));
        emit(&mut c, &mut rows, EventKind::Checkpoint, cp);
        end(&mut c, &mut rows);
        rows
    }

    #[test]
    fn small_intervals_name_the_exact_row() {
        let rows = session(NodeKey::from_seed([1; 32]), 10);
        for r in rows
            .iter()
            .filter(|r| r.0 == RowKind::Event(EventKind::Checkpoint))
        {
            let cp: serde_json::Value = serde_json::from_slice(&r.4).unwrap();
            assert_eq!((&cp["v"], &cp["g"]), (&2.into(), &1.into()), "{cp}");
        }
        let mut t = rows.clone();
        let i = find(&t, 7);
        t[i].4[0] ^= 1;
        let r = run(&t, &trust());
        assert_eq!(
            r.problems,
            vec![Problem::Altered {
                seq: 7,
                seq_last: 7,
                rows: 1,
                sealed: false
            }]
        );
        assert_eq!(r.problems[0].to_string(), "altered at seq 7");
    }

    #[test]
    fn a_long_run_of_keystrokes_names_the_altered_group() {
        let rows = keystrokes(10_000);
        // One interval: start and 10,000 one-byte events, 10,002 bytes: tags of 64 units.
        let cp = find(&rows, 10_001);
        assert_eq!(g_of(&rows[cp]), 64);
        assert_eq!(Checkpoint::parse(&rows[cp].4).unwrap().tags.len(), 157);
        assert!(run(&rows, &trust()).is_complete());

        let mut t = rows.clone();
        let i = find(&t, 5_000);
        t[i].4[0] ^= 1;
        let r = run(&t, &trust());
        // Units 4992..=5055 (by position from the interval's start at seq 0) share a tag.
        assert_eq!(
            r.problems,
            vec![Problem::Altered {
                seq: 4_992,
                seq_last: 5_055,
                rows: 64,
                sealed: false
            }]
        );
        assert_eq!(
            r.problems[0].to_string(),
            "altered between seq 4992 and seq 5055 (one or more of 64 rows)"
        );
        assert_eq!(r.state(), "FAILED");

        // Two groups altered; the last group is shorter (seq 9984..=10000).
        let mut t = rows.clone();
        for seq in [17, 10_000] {
            let i = find(&t, seq);
            t[i].4[0] ^= 1;
        }
        assert_eq!(
            run(&t, &trust()).problems,
            vec![
                Problem::Altered {
                    seq: 0,
                    seq_last: 63,
                    rows: 64,
                    sealed: false
                },
                Problem::Altered {
                    seq: 9_984,
                    seq_last: 10_000,
                    rows: 17,
                    sealed: false
                }
            ]
        );

        // A deleted event is still a gap at its seq, whatever the grouping.
        let mut t = rows.clone();
        t.remove(find(&t, 4_000));
        assert_eq!(
            run(&t, &trust()).problems,
            vec![Problem::Gap {
                from: 4_000,
                to: 4_000
            }]
        );
    }

    #[test]
    fn a_group_with_sealed_chunks_says_so() {
        // 300 small sealed chunks of two events each: 301 units, 12,002 bytes: pairs.
        let sid = SessionId::from_bytes(SID);
        let mut c = SessionChain::new(sid, NodeKey::from_seed([1; 32]));
        let mut rows = Vec::new();
        emit(&mut c, &mut rows, EventKind::Start, b"{}".to_vec());
        for k in 0..300u64 {
            let seq = next_seq(&rows);
            let chunk = format!("chunk {k:<34}").into_bytes();
            c.add_sealed_chunk(&chunk);
            rows.push((RowKind::Sealed, seq, seq + 1, seq * 10, chunk));
        }
        let cp = c.checkpoint(next_seq(&rows));
        emit(&mut c, &mut rows, EventKind::Checkpoint, cp);
        end(&mut c, &mut rows);
        assert_eq!(g_of(&rows[find(&rows, 601)]), 2);
        assert!(run(&rows, &trust()).is_complete());
        // Chunk 75 (seq 151..=152) is unit 76, paired with unit 77 (seq 153..=154).
        let i = find(&rows, 151);
        let mut t = rows.clone();
        t[i].4[0] ^= 1;
        let r = run(&t, &trust());
        assert_eq!(
            r.problems,
            vec![Problem::Altered {
                seq: 151,
                seq_last: 154,
                rows: 2,
                sealed: true
            }]
        );
        assert_eq!(
            r.problems[0].to_string(),
            "altered between seq 151 and seq 154 (one or more of 2 rows, sealed chunks among them)"
        );
    }

    /// Signs a session's checkpoints as the previous build did: version 1, one tag (a unit
    /// hash prefix) per unit.
    fn v1_session(outputs: u64) -> Vec<Row> {
        let sid = SessionId::from_bytes(SID);
        let key = NodeKey::from_seed([1; 32]);
        let mut chain = Chain::new(sid);
        let mut tags = Vec::new();
        let mut from = 0;
        let mut rows: Vec<Row> = Vec::new();
        let mut push = |rows: &mut Vec<Row>, kind: EventKind, data: Vec<u8>| {
            let seq = next_seq(rows);
            let data = if kind == EventKind::Checkpoint {
                let cp =
                    crate::checkpoint::tests::sign_v1(&key, sid, from, seq, &chain.hash(), &tags);
                tags.clear();
                from = seq;
                cp.to_bytes()
            } else {
                data
            };
            let unit = event_unit_hash(seq, seq * 10, kind, &data);
            chain.push(&unit);
            tags.extend_from_slice(&crate::chain::tag(&unit));
            rows.push((kind.into(), seq, seq, seq * 10, data));
        };
        push(&mut rows, EventKind::Start, b"{}".to_vec());
        for i in 0..outputs {
            push(
                &mut rows,
                EventKind::Output,
                format!("line {i}\n").into_bytes(),
            );
            if i % 4 == 3 {
                push(&mut rows, EventKind::Checkpoint, Vec::new());
            }
        }
        push(&mut rows, EventKind::End, b"{}".to_vec());
        push(&mut rows, EventKind::Checkpoint, Vec::new());
        rows
    }

    #[test]
    fn sessions_signed_with_v1_checkpoints_still_verify() {
        let rows = v1_session(10);
        let cp = &rows[find(&rows, 5)];
        assert_eq!(Checkpoint::parse(&cp.4).unwrap().v, 1);
        let r = run(&rows, &trust());
        assert_eq!(r.problems, vec![]);
        assert!(r.signers.contains("node-1"));
        let mut t = rows.clone();
        let i = find(&t, 3);
        t[i].4[0] ^= 1;
        assert_eq!(
            run(&t, &trust()).problems,
            vec![Problem::Altered {
                seq: 3,
                seq_last: 3,
                rows: 1,
                sealed: false
            }]
        );
        // A v1 checkpoint re-labelled v2 (with a g) fails its signature.
        let mut t = rows.clone();
        let i = find(&t, 5);
        let mut cp: Checkpoint = serde_json::from_slice(&t[i].4).unwrap();
        cp.v = 2;
        cp.g = Some(1);
        t[i].4 = cp.to_bytes();
        assert!(
            run(&t, &trust())
                .problems
                .contains(&Problem::BadSignature { seq: 5 })
        );
    }

    #[test]
    fn an_altered_group_whose_tag_collides_is_named_by_its_range() {
        // 748 keystrokes: g = 64; replacing the `a` typed at seq 1 by the bytes 20, 193
        // leaves the 2-byte tag of its group (0..=63) as it was, a 2⁻¹⁶ chance found by
        // searching. The chain still tells: the checkpoint's whole range is named instead.
        let rows = keystrokes(748);
        assert_eq!(g_of(&rows[find(&rows, 749)]), 64);
        let mut t = rows.clone();
        let i = find(&t, 1);
        t[i].4 = vec![20, 193];
        let r = run(&t, &trust());
        assert_eq!(
            r.problems,
            vec![Problem::AlteredBetween { from: 0, to: 748 }]
        );
        assert_eq!(
            r.problems[0].to_string(),
            "altered between seq 0 and seq 748"
        );
        // Other bytes do change the tag.
        t[i].4 = vec![20, 194];
        assert_eq!(
            run(&t, &trust()).problems,
            vec![Problem::Altered {
                seq: 0,
                seq_last: 63,
                rows: 64,
                sealed: false
            }]
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        #[test]
        fn any_altered_keystroke_is_named_within_its_group(n in 1u64..3_000, at in proptest::prelude::any::<u64>(), flip in 1u8..=255) {
            let rows = keystrokes(n);
            let cp = Checkpoint::parse(&rows[find(&rows, n + 1)].4).unwrap();
            let g = u64::from(cp.g);
            proptest::prop_assert_eq!(g, u64::from(crate::checkpoint::choose_group(n as usize + 1, n + 2)));
            let seq = 1 + at % n;
            let mut t = rows.clone();
            let i = find(&t, seq);
            t[i].4[0] ^= flip;
            let first = seq / g * g;
            let last = (first + g - 1).min(n);
            // The group's tag, recomputed over the altered rows: equal to the signed one
            // with probability 2⁻¹⁶, and then only the whole range can be named.
            let group: Vec<Hash> = t[first as usize..=last as usize]
                .iter()
                .map(|(k, s, l, e, d)| unit_of_row(k, *s, *l, *e, d).hash)
                .collect();
            let expected = if crate::chain::group_tag(&group) == cp.tags[(seq / g) as usize] {
                Problem::AlteredBetween { from: 0, to: n }
            } else {
                Problem::Altered { seq: first, seq_last: last, rows: last - first + 1, sealed: false }
            };
            proptest::prop_assert_eq!(run(&t, &trust()).problems, vec![expected]);
        }
    }
}
