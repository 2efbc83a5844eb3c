//! Purge (one session or many) and the retention selection.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use integrity::{Checkpoint, Expectations, NodeKey, TrustSet, Unit};
use schemas::{EventKind, RowKind, SessionEnd, SessionId, SessionStart};
use store::parquet_io::{self, EventRef};
use store::{ObjectStore, layout};

use crate::tombstone::{self, LedgerPlace};
use crate::{Error, Hold, Problem, read_holds, tombstone_key};

/// Who purges: the operator key that signs the tombstones and the names written in them.
pub struct Operator<'a> {
    /// The operator's signing key (node-key format).
    pub key: &'a NodeKey,
    /// The operator's name (given, else the login name).
    pub name: String,
    /// The OS user running the purge.
    pub os_user: String,
    /// The host it runs on.
    pub host: String,
}

/// One session [`purge`] handled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Purged {
    /// The session.
    pub session: SessionId,
    /// Its tombstone's key.
    pub tombstone: String,
    /// A tombstone was already there: an earlier purge was interrupted and this one
    /// finished it (the earlier tombstone is kept).
    pub resumed: bool,
    /// Rows removed (`events` and `sessions`).
    pub rows: u64,
}

/// What [`purge`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// The sessions, in the order asked.
    pub purged: Vec<Purged>,
    /// The objects rewritten without their rows, each once.
    pub rewritten: Vec<String>,
}

/// What the scan found of the sessions to purge.
#[derive(Default)]
struct Found {
    units: Vec<Unit>,
    start: Option<SessionStart>,
    end: Option<SessionEnd>,
    /// The lowest-seq checkpoint signed by a key the node trust file holds.
    first_trusted_checkpoint: Option<(u64, integrity::PublicKey)>,
    first_ns: Option<i64>,
    last_ns: Option<i64>,
    rows: u64,
    objects: BTreeSet<String>,
}

impl Found {
    fn saw_time(&mut self, start_ns: i64, row_ns: i64) {
        self.first_ns = Some(self.first_ns.map_or(start_ns, |t| t.min(start_ns)));
        self.last_ns = Some(self.last_ns.map_or(row_ns, |t| t.max(row_ns)));
    }

    fn event(&mut self, key: &str, r: &EventRef<'_>, node_trust: &TrustSet) {
        self.rows += 1;
        self.objects.insert(key.to_string());
        self.units.push(integrity::unit_of_row(
            &r.kind,
            r.seq,
            r.seq_last,
            r.elapsed_ns,
            r.data,
        ));
        self.saw_time(r.time_ns.saturating_sub_unsigned(r.elapsed_ns), r.time_ns);
        match r.kind {
            RowKind::Event(EventKind::Start) if self.start.is_none() => {
                self.start = SessionStart::from_bytes(r.data).ok();
            }
            RowKind::Event(EventKind::End) if self.end.is_none() => {
                self.end = SessionEnd::from_bytes(r.data).ok();
            }
            RowKind::Event(EventKind::Checkpoint) => {
                if let Ok(cp) = Checkpoint::parse(r.data)
                    && node_trust.get(&cp.key).is_some()
                    && self.first_trusted_checkpoint.is_none_or(|(s, _)| r.seq < s)
                {
                    self.first_trusted_checkpoint = Some((r.seq, cp.key));
                }
            }
            _ => {}
        }
    }

    /// The session's place in its node's ledger: its `start` numbered and covered by a
    /// good checkpoint of exactly one trusted key, as `replay verify` requires of a
    /// session's own `start` before its ledger check counts it.
    fn ledger_place(&self, id: SessionId, node_trust: &TrustSet) -> Option<LedgerPlace> {
        let start = self.start.as_ref().filter(|s| s.node_seq > 0)?;
        let report = integrity::verify(
            id,
            self.units.clone(),
            node_trust,
            Expectations {
                end_event_count: self.end.as_ref().map(|e| e.event_count),
                imported: None,
            },
        );
        if report.signed_through == 0 || report.signers.len() != 1 {
            return None;
        }
        let (_, key) = self.first_trusted_checkpoint?;
        Some(LedgerPlace {
            node_key: key.to_string(),
            node: report.signers.first()?.clone(),
            node_seq: start.node_seq,
            prev_session: start.prev_session.as_deref().and_then(|p| p.parse().ok()),
        })
    }
}

/// The Parquet objects of `events/` and `sessions/` that can hold rows of sessions started
/// at or after `from_ns` (all of them when `None`): those dated from the day before (a
/// day of slack, as the catalog keeps) and those without a date.
fn table_objects(store: &dyn ObjectStore, from_ns: Option<i64>) -> Result<Vec<String>, Error> {
    let from = from_ns.map(|t| schemas::time::date(t.saturating_sub(86_400_000_000_000)));
    let mut keys = Vec::new();
    for table in [layout::EVENTS, layout::SESSIONS] {
        let prefix = format!("{table}/");
        let listed = store
            .list(&prefix)
            .map_err(|e| Error::store("list", &prefix, store, e))?;
        keys.extend(listed.into_iter().filter(|k| {
            layout::is_parquet(k)
                && match (layout::key_date(k), &from) {
                    (Some(d), Some(f)) => d >= f.as_str(),
                    _ => true,
                }
        }));
    }
    Ok(keys)
}

fn is_sessions_key(key: &str) -> bool {
    key.starts_with(&format!("{}/", layout::SESSIONS))
}

/// Reads every object that can hold rows of `targets` and gathers what is needed of them.
/// An object that cannot be read stops everything: a purge must not claim rows are gone
/// from an object it could not look into.
fn scan(
    store: &dyn ObjectStore,
    targets: &BTreeSet<SessionId>,
    node_trust: &TrustSet,
) -> Result<HashMap<SessionId, Found>, Error> {
    // Rows are dated by their own time (start + elapsed), so no row of a session lies
    // before its start date; ids carry their start (UUIDv7).
    let from = targets
        .iter()
        .map(|id| id.start_time_ns())
        .collect::<Option<Vec<i64>>>()
        .and_then(|v| v.into_iter().min());
    let mut found: HashMap<SessionId, Found> = HashMap::new();
    for key in table_objects(store, from)? {
        let bytes = store
            .get(&key)
            .map_err(|e| Error::store("read", &key, store, e))?;
        let unreadable = |e: store::StoreError| Error::Rewrite {
            key: key.clone(),
            reason: format!("it cannot be decoded ({e}), so it cannot be searched for rows"),
        };
        if is_sessions_key(&key) {
            for row in parquet_io::decode_sessions(&key, &bytes).map_err(unreadable)? {
                if targets.contains(&row.session_id) {
                    let f = found.entry(row.session_id).or_default();
                    f.rows += 1;
                    f.objects.insert(key.clone());
                    f.saw_time(
                        row.time_ns.saturating_sub_unsigned(row.elapsed_ns),
                        row.time_ns,
                    );
                }
            }
        } else {
            parquet_io::scan_events(&key, &bytes, None, |r| {
                if targets.contains(&r.session_id) {
                    found
                        .entry(r.session_id)
                        .or_default()
                        .event(&key, &r, node_trust);
                }
            })
            .map_err(unreadable)?;
        }
    }
    Ok(found)
}

/// Rewrites the object `key` without the rows of `targets`, keeping every other row and
/// its footer metadata (the ingester's cut offsets), under the same key. An object left
/// with no rows is written empty rather than deleted: the ingester finds its cut points
/// in the footers of the `events/` objects (DESIGN.md §4). Returns the rows removed.
fn rewrite(
    store: &dyn ObjectStore,
    key: &str,
    targets: &BTreeSet<SessionId>,
) -> Result<u64, Error> {
    let bytes = store
        .get(key)
        .map_err(|e| Error::store("read", key, store, e))?;
    let fail = |reason: String| Error::Rewrite {
        key: key.to_string(),
        reason,
    };
    let meta = parquet_io::read_object_meta(key, &bytes)
        .map_err(|e| fail(format!("its footer metadata cannot be read: {e}")))?;
    let (new, removed) = if is_sessions_key(key) {
        let mut rows = parquet_io::decode_sessions(key, &bytes).map_err(|e| fail(e.to_string()))?;
        let before = rows.len();
        rows.retain(|r| !targets.contains(&r.session_id));
        let removed = before - rows.len();
        (
            parquet_io::encode_sessions(&mut rows, &meta).map_err(|e| fail(e.to_string()))?,
            removed,
        )
    } else {
        let mut rows =
            parquet_io::decode_events(key, &bytes, None).map_err(|e| fail(e.to_string()))?;
        let before = rows.len();
        rows.retain(|r| !targets.contains(&r.session_id));
        let removed = before - rows.len();
        (
            parquet_io::encode_events(&mut rows, &meta).map_err(|e| fail(e.to_string()))?,
            removed,
        )
    };
    if removed == 0 {
        return Ok(0);
    }
    store
        .replace(key, &new)
        .map_err(|e| fail(format!("writing it back failed ({e})")))?;
    Ok(removed as u64)
}

/// Purges `sessions`: writes a signed tombstone for each (who, when, `reason`, the objects
/// holding its rows, its time range and ledger place), then rewrites every `events/` and
/// `sessions/` object holding rows of any of them without those rows, each object once.
///
/// - Refuses (before writing anything) if any session is on legal hold, if the reason is
///   empty, or if a session has neither rows nor a tombstone (nothing to purge).
/// - A session that already has a tombstone (an interrupted purge) keeps it, and its
///   remaining rows are removed: running the same purge again finishes it.
/// - Sealed sessions are purged the same way: their rows are removed as stored, no key
///   is needed.
/// - `node_trust` (the node trust file) decides whether a session's `start` is signed, and
///   so whether its tombstone carries its ledger place.
///
/// Objects are rewritten with [`ObjectStore::replace`] (atomic on a local store and on
/// S3).
pub fn purge(
    store: &dyn ObjectStore,
    sessions: &[SessionId],
    reason: &str,
    operator: &Operator<'_>,
    node_trust: &TrustSet,
) -> Result<PurgeReport, Error> {
    if reason.trim().is_empty() {
        return Err(Error::Invalid(
            "a purge needs a reason (--reason TEXT): it is kept, signed, in the tombstone".into(),
        ));
    }
    let (holds, _) = read_holds(store)?;
    refuse_held(sessions, &holds)?;
    let targets: BTreeSet<SessionId> = sessions.iter().copied().collect();
    let existing = existing_tombstones(store, &targets, operator)?;
    let found = scan(store, &targets, node_trust)?;
    for id in &targets {
        if !found.contains_key(id) && !existing.contains(id) {
            return Err(Error::Invalid(format!(
                "session {id} has no rows in {} and no tombstone: there is nothing to purge",
                store.describe()
            )));
        }
    }
    // The tombstones first: from here on, a crash leaves "purge incomplete", never rows
    // gone without a record of who removed them and why.
    for id in targets.iter().filter(|id| !existing.contains(id)) {
        let f = &found[id];
        let start = f
            .start
            .as_ref()
            .map(|s| s.start_time_ns)
            .or(id.start_time_ns())
            .or(f.first_ns)
            .unwrap_or(0);
        let t = tombstone::unsigned(
            *id,
            f.ledger_place(*id, node_trust),
            (start, f.last_ns.unwrap_or(start)),
            operator,
            reason,
            f.objects.iter().cloned().collect(),
        );
        let key = tombstone_key(*id);
        let bytes = t.sign(operator.key)?;
        store
            .put(&key, &bytes)
            .map_err(|e| Error::store("write", &key, store, e))?;
    }
    let objects: BTreeSet<&String> = found.values().flat_map(|f| &f.objects).collect();
    let mut report = PurgeReport::default();
    let mut removed_total = 0u64;
    for key in objects {
        removed_total += rewrite(store, key, &targets)?;
        report.rewritten.push(key.clone());
        failpoint();
    }
    tracing::debug!(rows = removed_total, "purged rows");
    report.purged = sessions
        .iter()
        .map(|id| Purged {
            session: *id,
            tombstone: tombstone_key(*id),
            resumed: existing.contains(id),
            rows: found.get(id).map_or(0, |f| f.rows),
        })
        .collect();
    Ok(report)
}

fn refuse_held(sessions: &[SessionId], holds: &BTreeMap<SessionId, Hold>) -> Result<(), Error> {
    match sessions.iter().find_map(|id| holds.get(id)) {
        Some(h) => Err(Error::Held {
            session: h.session_id,
            when: schemas::time::rfc3339(h.time_ns),
            who: schemas::text::escape_controls(&h.who),
            reason: schemas::text::escape_controls(&h.reason),
        }),
        None => Ok(()),
    }
}

/// The sessions of `targets` that already have a tombstone with a good signature (any
/// key: an earlier, interrupted purge, perhaps by another operator). A tombstone that
/// does not decode or whose signature does not match is refused: overwriting it would
/// hide evidence, keeping it would keep a forgery.
fn existing_tombstones(
    store: &dyn ObjectStore,
    targets: &BTreeSet<SessionId>,
    operator: &Operator<'_>,
) -> Result<BTreeSet<SessionId>, Error> {
    let mut own = TrustSet::default();
    own.insert(operator.key.public(), "");
    let mut out = BTreeSet::new();
    for &id in targets {
        match crate::read_tombstone(store, id, &own)? {
            None => {}
            Some(Ok(t)) if t.state != crate::TombstoneState::Bad => {
                out.insert(id);
            }
            Some(Ok(t)) => {
                return Err(Error::Invalid(format!(
                    "{} exists but its signature does not match (changed or forged); nothing was purged\n  \
                     try: look at it, move it away if it is not genuine, and purge again",
                    t.key
                )));
            }
            Some(Err(p)) => {
                return Err(Error::Invalid(format!(
                    "{p}; nothing was purged\n  try: look at it, move it away if it is not genuine, and purge again"
                )));
            }
        }
    }
    Ok(out)
}

/// `AUDITTY_FAILPOINT=purge-after-first-rewrite`: abort as a crash would, once the first
/// object is rewritten (tests of an interrupted purge).
fn failpoint() {
    if std::env::var(crate::FAILPOINT_ENV).ok().as_deref()
        == Some(crate::FAILPOINT_AFTER_FIRST_REWRITE)
    {
        eprintln!(
            "lifecycle: failpoint {}: killing the process",
            crate::FAILPOINT_AFTER_FIRST_REWRITE
        );
        // SIGKILL, as `auditty-ingest`'s failpoints: no handler, no core file, no cleanup.
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        std::process::exit(137);
    }
}

/// The retention selection: sessions that started before `cutoff_ns` (UTC ns) and are not
/// in `holds`, in id order (oldest first), with the objects that could not be read (their
/// sessions may be missing from the answer; the next run tries again).
///
/// A session's start is its id's timestamp (UUIDv7: the agent and `replay import` make
/// every id so). Only objects dated up to the cutoff's day are looked at, since a session
/// that started before the cutoff has its first rows there, and of each only the
/// `session_id` column (ranged reads on S3). An id that is not a UUIDv7 carries no start:
/// it is left out and named as a [`Problem`] (purge it by id).
///
/// Hand the answer to [`purge`] with a reason such as `retention: older than 365 days`;
/// it writes the tombstones and rewrites each object once for all of them.
pub fn expired(
    store: &dyn ObjectStore,
    cutoff_ns: i64,
    holds: &BTreeMap<SessionId, Hold>,
) -> Result<(Vec<SessionId>, Vec<Problem>), Error> {
    let last_day = schemas::time::date(cutoff_ns);
    let mut ids: BTreeSet<SessionId> = BTreeSet::new();
    let mut problems = Vec::new();
    for key in table_objects(store, None)? {
        if layout::key_date(&key).is_some_and(|d| d > last_day.as_str()) {
            continue;
        }
        match store::ranged::ids_with_prefix(store, &key, "") {
            Ok(found) => ids.extend(found.iter().filter_map(|t| t.parse::<SessionId>().ok())),
            Err(e) => problems.push(Problem {
                key,
                reason: format!("cannot be read: {e}"),
            }),
        }
    }
    let mut out = Vec::new();
    for id in ids {
        match id.start_time_ns() {
            Some(start) if start < cutoff_ns && !holds.contains_key(&id) => out.push(id),
            Some(_) => {}
            None => problems.push(Problem {
                key: id.to_string(),
                reason: "this session id is not a UUIDv7, so it carries no start time: left out of retention (purge it by id)".into(),
            }),
        }
    }
    Ok((out, problems))
}

#[cfg(test)]
mod tests;
