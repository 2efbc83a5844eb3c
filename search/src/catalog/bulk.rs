//! Opening many sessions at once, for `replay index`.
//!
//! [`open_session`](super::open_session) reads, for one session, the row groups of the
//! objects of its dates that can hold it. Called once per session over a day of 3,000
//! sessions, it decompressed the same few objects 3,000 times: 72% of the index build
//! (bench/README.md). Here each object is read once per pass and its rows are dealt to
//! the sessions of the pass, with exactly the rules of `open_session` (which objects a
//! session's rows are taken from), so both give the same [`OpenedSession`].
//!
//! Sessions this cannot settle in one pass go through `open_session` itself: those whose id
//! carries no timestamp, whose `start` row is not where the id says, that have not ended
//! (their rows may be in any later object), with no rows in their dates, or that an
//! unreadable object might hold rows of (so that their warnings are theirs).

use std::collections::{BTreeSet, HashMap};

use schemas::{SessionEnd, SessionId};
use store::layout;
use store::parquet_io::{self, EventRef, EventRow};
use store::{ObjectStore, StoreError};

use super::{Acc, OpenedSession, Tables, open_in};

/// Terminal bytes (from the sessions' `end` rows) one pass holds in memory at most; a
/// session larger than this gets a pass of its own.
const PASS_BYTES: u64 = 256 << 20;

/// One session being gathered.
struct Pending {
    acc: Acc,
    /// Dates (`YYYY-MM-DD`) of the objects its rows are taken from.
    from: String,
    until: String,
    /// Every row read, duplicates included (the observer sees them all).
    rows: Vec<EventRow>,
    /// An object it might have rows in could not be read.
    damaged: bool,
}

impl Pending {
    fn spans(&self, date: Option<&str>) -> bool {
        date.is_none_or(|d| self.from.as_str() <= d && d <= self.until.as_str())
    }
}

/// [`open_session_observing`](super::open_session_observing) for each of `ids`, in that
/// order, handing each opened session to `each`; `observe` sees a session's rows just
/// before it is handed over. Only a failure to list the store, or an error of `each`,
/// stops it.
pub fn open_sessions_observing<E: From<StoreError>>(
    store: &dyn ObjectStore,
    ids: &[SessionId],
    observe: &mut dyn FnMut(&EventRef<'_>),
    each: &mut dyn FnMut(OpenedSession) -> Result<(), E>,
) -> Result<(), E> {
    let mut tables = Tables::new(store);
    let mut pending = read_session_rows(&mut tables, ids)?;
    for pass in passes(ids, &pending) {
        let mut gathered: HashMap<SessionId, Pending> = pass
            .iter()
            .filter_map(|id| pending.remove_entry(id))
            .collect();
        read_event_rows(&mut tables, &mut gathered)?;
        for id in pass {
            match gathered.remove(&id) {
                Some(p) if !p.damaged && !p.rows.is_empty() => each(finish(id, p, observe))?,
                _ => each(open_in(&mut tables, id, observe)?)?,
            }
        }
    }
    Ok(())
}

/// The sessions among `ids` that can be gathered, with their `sessions` rows read: each
/// object of their start dates is read once.
fn read_session_rows(
    tables: &mut Tables<'_>,
    ids: &[SessionId],
) -> Result<HashMap<SessionId, Pending>, StoreError> {
    let mut starts: HashMap<SessionId, (String, Acc, bool)> = ids
        .iter()
        .filter_map(|&id| {
            let day = schemas::time::date(id.start_time_ns()?);
            Some((id, (day, Acc::default(), false)))
        })
        .collect();
    let days: BTreeSet<&str> = starts.values().map(|(d, ..)| d.as_str()).collect();
    let mut keys = BTreeSet::new();
    for day in days {
        keys.extend(tables.between(layout::SESSIONS, Some(day), Some(day))?);
    }
    for key in &keys {
        let date = layout::key_date(key);
        let mine = |day: &str| date.is_none_or(|d| d == day);
        match tables
            .store
            .get(key)
            .and_then(|b| parquet_io::decode_sessions(key, &b))
        {
            Ok(rows) => {
                for row in rows {
                    if let Some((day, acc, _)) = starts.get_mut(&row.session_id)
                        && mine(day)
                    {
                        acc.session_row(&row);
                    }
                }
            }
            Err(_) => starts
                .values_mut()
                .filter(|(day, ..)| mine(day))
                .for_each(|(.., damaged)| *damaged = true),
        }
    }
    Ok(starts
        .into_iter()
        .filter_map(|(id, (from, acc, damaged))| {
            // As `open_in`: the events of the dates from the start to the end.
            let (start_ns, elapsed) = acc.start_and_end();
            let until = schemas::time::date(start_ns?.saturating_add_unsigned(elapsed?));
            (!damaged).then_some((
                id,
                Pending {
                    acc,
                    from,
                    until,
                    rows: Vec::new(),
                    damaged,
                },
            ))
        })
        .collect())
}

/// `ids` cut, in order, into passes whose gathered sessions hold at most [`PASS_BYTES`]
/// of terminal data together (as their `end` rows count it).
fn passes(ids: &[SessionId], pending: &HashMap<SessionId, Pending>) -> Vec<Vec<SessionId>> {
    let mut passes: Vec<Vec<SessionId>> = Vec::new();
    let mut bytes = 0u64;
    for &id in ids {
        let size = pending
            .get(&id)
            .and_then(|p| SessionEnd::from_bytes(&p.acc.listed_end.as_ref()?.1).ok())
            .map_or(0, |e| e.input_bytes.saturating_add(e.output_bytes));
        match passes.last_mut() {
            Some(pass) if bytes.saturating_add(size) <= PASS_BYTES => {
                pass.push(id);
                bytes = bytes.saturating_add(size);
            }
            _ => {
                passes.push(vec![id]);
                bytes = size;
            }
        }
    }
    passes
}

/// The `events` rows of the `gathered` sessions: each object of their dates read once.
fn read_event_rows(
    tables: &mut Tables<'_>,
    gathered: &mut HashMap<SessionId, Pending>,
) -> Result<(), StoreError> {
    let spans: BTreeSet<(String, String)> = gathered
        .values()
        .map(|p| (p.from.clone(), p.until.clone()))
        .collect();
    let mut keys = BTreeSet::new();
    for (from, until) in &spans {
        keys.extend(tables.between(layout::EVENTS, Some(from), Some(until))?);
    }
    for key in &keys {
        let date = layout::key_date(key);
        let read = tables.store.get(key).and_then(|bytes| {
            parquet_io::scan_events(key, &bytes, None, |r| {
                if let Some(p) = gathered.get_mut(&r.session_id)
                    && p.spans(date)
                {
                    p.acc.account(&r);
                    p.rows.push(r.to_row());
                }
            })
        });
        if read.is_err() {
            gathered
                .values_mut()
                .filter(|p| p.spans(date))
                .for_each(|p| p.damaged = true);
        }
    }
    Ok(())
}

/// The gathered session as `open_in` returns it.
fn finish(id: SessionId, p: Pending, observe: &mut dyn FnMut(&EventRef<'_>)) -> OpenedSession {
    let Pending { acc, mut rows, .. } = p;
    for r in &rows {
        observe(&r.borrowed());
    }
    rows.sort_by_key(|r| r.seq);
    rows.dedup_by_key(|r| r.seq);
    OpenedSession {
        info: acc.into_info(id),
        rows,
        warnings: Vec::new(),
    }
}
