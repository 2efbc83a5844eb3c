//! The session catalog, for `replay`: which sessions exist and what they hold.
//!
//! This scans the Parquet objects of the store directly. It is what `replay ls` runs on a
//! small store and what the search index (DESIGN.md §8) is rebuilt from.
//!
//! - [`list_sessions`]: every session, from one pass over `sessions/` and `events/`.
//! - [`find_session`], [`open_session`], [`find_and_open_session`], [`session_events`]:
//!   one session, reading only the footers and row groups that can hold it.
//! - [`open_sessions_observing`]: many sessions, each object read once (the index).
//! - [`resolve_session`]: an id prefix against an already listed catalog.
//!
//! The `_observing` variants also hand every `events` row they read to a callback, in
//! the same pass: `replay verify` and `replay ls` collect what the integrity check needs
//! that way, without the catalog knowing about integrity and without a second read of
//! the store.

use std::collections::{BTreeMap, HashMap};

use schemas::{EventKind, SessionEnd, SessionId, SessionStart};

use store::layout;
use store::parquet_io::{self, EventRef, EventRow, SessionRow};
use store::{ObjectStore, StoreError};

use crate::CatalogError;

mod bulk;
pub use bulk::open_sessions_observing;

/// Widest `seq..=seq_last` a sealed row is believed to cover. A chunk is ~64 KiB, so a real
/// one covers far fewer events; a wider range is damage and counts as its first seq only.
const MAX_SEALED_SPAN: u64 = 1 << 20;

/// What the store knows about one session.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    /// The session.
    pub id: SessionId,
    /// Its `start` metadata; `None` if the start row is missing or does not parse.
    pub start: Option<SessionStart>,
    /// Its `end` metadata; `None` while it runs, or if it was cut off (agent killed).
    pub end: Option<SessionEnd>,
    /// Wall-clock start, UTC ns: the start row's time, else the earliest time implied by
    /// any row (time − elapsed), else 0.
    pub start_time_ns: i64,
    /// The end row's `elapsed_ns` if there is one, else the largest `elapsed_ns` seen.
    pub duration_ns: u64,
    /// Distinct sequence numbers found in `events/` (sealed rows count their whole range).
    pub event_count: u64,
    /// Bytes of input and output found in `events/`. For sealed sessions, whose payloads
    /// cannot be measured without the key, the end row's input + output byte counts.
    pub bytes: u64,
    /// Some of its rows are sealed chunks (DESIGN.md §5).
    pub sealed: bool,
    /// Where `start` and `end` were taken from.
    pub provenance: Provenance,
}

/// Where a session's `start` and `end` metadata come from (DESIGN.md §6: what is shown is
/// what was signed).
///
/// The agent chains and signs the `start` and `end` events, which the ingester stores as
/// `events` rows and copies into `sessions/` for readers that want metadata alone. Nothing
/// signs the copy, so the catalog shows the chained rows and only checks the copy
/// against them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Provenance {
    /// From the `start`/`end` rows of `events`, which `replay verify` checks against the
    /// signed chain; `sessions/` agrees with them or has none.
    #[default]
    Chained,
    /// From the `events` rows as for `Chained`, but a `sessions/` row says something else:
    /// that table was altered, and what it says is not shown. (A `sessions/` row whose
    /// chained twin is missing is not this: the chain reports the missing row, and the
    /// copy is shown meanwhile.)
    SessionsTableDiffers,
    /// No `start`/`end` row of `events` was read: the metadata is the `sessions/` copy,
    /// which nothing signed vouches for.
    Unchained,
}

impl Provenance {
    /// The name `replay ls --json` gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Provenance::Chained => "signed-rows",
            Provenance::SessionsTableDiffers => "sessions-table-differs",
            Provenance::Unchained => "sessions-table-only",
        }
    }
}

/// Disjoint, non-adjacent inclusive ranges of sequence numbers. Seqs of a session are
/// dense, so this is usually a single range however many events it holds.
#[derive(Default)]
struct SeqSet {
    ranges: BTreeMap<u64, u64>,
    len: u64,
}

impl SeqSet {
    /// Adds `lo..=hi`; returns how many of those seqs were new.
    fn insert(&mut self, lo: u64, hi: u64) -> u64 {
        let (mut new_lo, mut new_hi) = (lo, hi);
        let mut overlap = 0u64;
        let touching: Vec<(u64, u64)> = self
            .ranges
            .range(..=hi.saturating_add(1))
            .rev()
            .take_while(|&(_, &end)| end.saturating_add(1) >= lo)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in touching {
            self.ranges.remove(&s);
            let (a, b) = (s.max(lo), e.min(hi));
            if a <= b {
                overlap += b - a + 1;
            }
            self.len -= e - s + 1;
            new_lo = new_lo.min(s);
            new_hi = new_hi.max(e);
        }
        self.ranges.insert(new_lo, new_hi);
        self.len += new_hi - new_lo + 1;
        (hi - lo + 1) - overlap
    }
}

/// A `start` or `end` row as read: its time (wall ns for `start`, elapsed ns for `end`)
/// and metadata bytes.
type MetaRow = (i64, Vec<u8>);

#[derive(Default)]
struct Acc {
    /// The first `start`/`end` rows of `sessions/` (a re-ingested duplicate changes
    /// nothing) and of `events` (the chained ones).
    listed_start: Option<MetaRow>,
    listed_end: Option<MetaRow>,
    chained_start: Option<MetaRow>,
    chained_end: Option<MetaRow>,
    first_seen_ns: Option<i64>,
    seqs: SeqSet,
    max_elapsed_ns: u64,
    io_bytes: u64,
    sealed: bool,
}

impl Acc {
    fn saw(&mut self, time_ns: i64, elapsed_ns: u64) {
        let start = time_ns.saturating_sub_unsigned(elapsed_ns);
        self.first_seen_ns = Some(self.first_seen_ns.map_or(start, |t| t.min(start)));
    }

    /// Counts one `events` row.
    fn account(&mut self, r: &EventRef<'_>) {
        self.saw(r.time_ns, r.elapsed_ns);
        self.max_elapsed_ns = self.max_elapsed_ns.max(r.elapsed_ns);
        // A row this build cannot read in the clear (sealed, or of a kind it does not
        // know) is opaque: it may cover a range of seqs and its bytes cannot be measured.
        let plain = r.kind.event();
        let hi = if plain.is_none() && r.seq_last >= r.seq && r.seq_last - r.seq < MAX_SEALED_SPAN {
            r.seq_last
        } else {
            r.seq
        };
        self.sealed |= plain.is_none();
        match plain {
            Some(EventKind::Start) if self.chained_start.is_none() => {
                self.chained_start = Some((r.time_ns, r.data.to_vec()));
            }
            Some(EventKind::End) if self.chained_end.is_none() => {
                self.chained_end = Some((elapsed_i64(r.elapsed_ns), r.data.to_vec()));
            }
            _ => {}
        }
        let new = self.seqs.insert(r.seq, hi);
        if new > 0 && matches!(plain, Some(EventKind::Input | EventKind::Output)) {
            self.io_bytes = self.io_bytes.saturating_add(r.data.len() as u64);
        }
    }

    /// Takes one `sessions` row: the first `start` and the first `end` row of a session
    /// win, so a re-ingested duplicate changes nothing.
    fn session_row(&mut self, row: &SessionRow) {
        self.saw(row.time_ns, row.elapsed_ns);
        match row.kind {
            EventKind::Start if self.listed_start.is_none() => {
                self.listed_start = Some((row.time_ns, row.metadata.clone()));
            }
            EventKind::End if self.listed_end.is_none() => {
                self.listed_end = Some((elapsed_i64(row.elapsed_ns), row.metadata.clone()));
            }
            _ => {}
        }
    }

    /// The `start` and `end` rows shown: the chained ones, else the `sessions/` copies.
    fn shown(&self) -> (Option<&MetaRow>, Option<&MetaRow>) {
        (
            self.chained_start.as_ref().or(self.listed_start.as_ref()),
            self.chained_end.as_ref().or(self.listed_end.as_ref()),
        )
    }

    /// Whether a `start` row was read (from either table).
    fn has_start(&self) -> bool {
        self.shown().0.is_some()
    }

    /// The shown start's wall time and end's elapsed time.
    fn start_and_end(&self) -> (Option<i64>, Option<u64>) {
        let (start, end) = self.shown();
        (start.map(|(t, _)| *t), end.map(|(e, _)| elapsed_u64(*e)))
    }

    /// The chained rows where there are any, and how they compare with `sessions/`.
    fn provenance(&self) -> Provenance {
        let differs = |chained: &Option<MetaRow>, listed: &Option<MetaRow>| match (chained, listed)
        {
            (Some(c), Some(l)) => c != l,
            _ => false,
        };
        let none_chained = self.chained_start.is_none() && self.chained_end.is_none();
        let any_listed = self.listed_start.is_some() || self.listed_end.is_some();
        if none_chained && any_listed {
            Provenance::Unchained
        } else if differs(&self.chained_start, &self.listed_start)
            || differs(&self.chained_end, &self.listed_end)
        {
            Provenance::SessionsTableDiffers
        } else {
            Provenance::Chained
        }
    }

    fn into_info(self, id: SessionId) -> SessionInfo {
        let provenance = self.provenance();
        let (start_ns, end_elapsed) = self.start_and_end();
        let start_time_ns = start_ns.or(self.first_seen_ns).unwrap_or(0);
        let duration_ns = end_elapsed.unwrap_or(self.max_elapsed_ns);
        let (start_row, end_row) = self.shown();
        let start = start_row.and_then(|(_, m)| SessionStart::from_bytes(m).ok());
        let end = end_row.and_then(|(_, m)| SessionEnd::from_bytes(m).ok());
        let bytes = match &end {
            Some(e) if self.sealed && self.io_bytes == 0 => {
                e.input_bytes.saturating_add(e.output_bytes)
            }
            _ => self.io_bytes,
        };
        SessionInfo {
            id,
            start,
            end,
            start_time_ns,
            duration_ns,
            event_count: self.seqs.len,
            bytes,
            sealed: self.sealed,
            provenance,
        }
    }
}

/// `elapsed_ns` kept beside wall times in a [`MetaRow`]; no session lasts 292 years.
fn elapsed_i64(ns: u64) -> i64 {
    i64::try_from(ns).unwrap_or(i64::MAX)
}

fn elapsed_u64(ns: i64) -> u64 {
    u64::try_from(ns).unwrap_or(0)
}

/// Parquet objects of one table, e.g. `events/`.
pub(crate) fn objects(store: &dyn ObjectStore, table: &str) -> Result<Vec<String>, StoreError> {
    let mut keys = store.list(&format!("{table}/"))?;
    keys.retain(|k| layout::is_parquet(k));
    Ok(keys)
}

/// How many times a reader lists a table again after finding a listed object gone. Each
/// time means a compaction deleted an object between the listing and the read; its rows
/// are then in an object the new listing holds (written before the delete).
const MAX_RELISTS: usize = 8;

/// Reads every object of `table` and hands it to `use_it`; a failure is logged, kept in
/// `warnings` and does not stop the caller, so one damaged object does not hide the rest
/// of the store. When an object it listed is gone by the time it reads it (compaction merged it into another object, `store::compact`), it lists the
/// table again and reads the objects that appeared meanwhile, so no row is missed.
/// Duplicate rows this may bring are dropped by the callers, as those of a re-ingest.
fn each_object_relisting(
    store: &dyn ObjectStore,
    table: &str,
    warnings: &mut Vec<StoreError>,
    seen: &mut dyn FnMut(&str, &[u8]),
    mut use_it: impl FnMut(&str, &[u8]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut done: std::collections::HashSet<String> = Default::default();
    let mut keys = objects(store, table)?;
    for round in 0.. {
        let mut gone = Vec::new();
        for key in &keys {
            done.insert(key.clone());
            let used = store.get(key).and_then(|bytes| {
                seen(key, &bytes);
                use_it(key, &bytes)
            });
            match used {
                Ok(()) => {}
                Err(StoreError::NotFound { .. }) if round < MAX_RELISTS => gone.push(key),
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, "skipping an object that cannot be read");
                    warnings.push(e);
                }
            }
        }
        if gone.is_empty() {
            break;
        }
        tracing::debug!(
            table,
            gone = gone.len(),
            "objects vanished while reading; listing again"
        );
        keys = objects(store, table)?;
        keys.retain(|k| !done.contains(k));
    }
    Ok(())
}

/// Every session in the store: `start` and `end` rows from `sessions/` merged by id, and
/// duration, event count and bytes from `events/` (duplicate (session, seq) rows counted
/// once), sorted by start time.
///
/// An object that cannot be read is logged with `tracing::warn!`, skipped, and returned in
/// the second list (rows read from it before the damage still count); only a failure to
/// list the store is fatal.
pub fn list_sessions(
    store: &dyn ObjectStore,
) -> Result<(Vec<SessionInfo>, Vec<StoreError>), StoreError> {
    list_sessions_observing(store, |_| {})
}

/// [`list_sessions`], also calling `observe` with every `events` row it reads (duplicates
/// included, in no particular order), in the same single pass over the store.
pub fn list_sessions_observing(
    store: &dyn ObjectStore,
    observe: impl FnMut(&EventRef<'_>),
) -> Result<(Vec<SessionInfo>, Vec<StoreError>), StoreError> {
    list_sessions_observing_objects(store, observe, &mut |_, _| {})
}

/// [`list_sessions_observing`], also calling `seen` with the key and bytes of every object
/// it reads (`sessions/` then `events/`, each in key order), decodable or not: a report
/// digests what it was made from without reading the store twice.
pub fn list_sessions_observing_objects(
    store: &dyn ObjectStore,
    mut observe: impl FnMut(&EventRef<'_>),
    seen: &mut dyn FnMut(&str, &[u8]),
) -> Result<(Vec<SessionInfo>, Vec<StoreError>), StoreError> {
    let mut warnings = Vec::new();
    let mut accs: HashMap<SessionId, Acc> = HashMap::new();

    each_object_relisting(
        store,
        layout::SESSIONS,
        &mut warnings,
        seen,
        |key, bytes| {
            for row in parquet_io::decode_sessions(key, bytes)? {
                accs.entry(row.session_id).or_default().session_row(&row);
            }
            Ok(())
        },
    )?;

    each_object_relisting(store, layout::EVENTS, &mut warnings, seen, |key, bytes| {
        parquet_io::scan_events(key, bytes, None, |r| {
            accs.entry(r.session_id).or_default().account(&r);
            observe(&r);
        })
    })?;

    let mut sessions: Vec<SessionInfo> = accs
        .into_iter()
        .map(|(id, acc)| acc.into_info(id))
        .collect();
    sessions.sort_by_key(|s| (s.start_time_ns, s.id));
    Ok((sessions, warnings))
}

/// The session named by a full id or a unique prefix of its text form (hyphenated, or
/// without hyphens if the query has none; case-insensitive).
pub fn resolve_session(sessions: &[SessionInfo], query: &str) -> Result<SessionId, CatalogError> {
    let q = query.trim().to_ascii_lowercase();
    let not_found = || CatalogError::SessionNotFound {
        query: query.to_string(),
    };
    if q.is_empty() {
        return Err(not_found());
    }
    let hyphens = q.contains('-');
    let mut matches: Vec<SessionId> = sessions
        .iter()
        .map(|s| s.id)
        .filter(|id| {
            if hyphens {
                id.to_string().starts_with(&q)
            } else {
                id.0.simple().to_string().starts_with(&q)
            }
        })
        .collect();
    matches.sort();
    matches.dedup();
    match matches.as_slice() {
        [] => Err(not_found()),
        [one] => Ok(*one),
        many => Err(CatalogError::AmbiguousSession {
            query: query.to_string(),
            candidates: many.iter().map(SessionId::to_string).collect(),
        }),
    }
}

/// All events of one session from `events/`, sorted by seq, duplicates (same seq) dropped.
///
/// Reads only footers and the row groups that may hold the session (ranged reads, see
/// [`open_session`]). Objects that cannot be read are logged and skipped, as in
/// [`list_sessions`]; the events they held show up as gaps. Use
/// [`session_events_with_warnings`] to get those failures.
pub fn session_events(store: &dyn ObjectStore, id: SessionId) -> Result<Vec<EventRow>, StoreError> {
    session_events_with_warnings(store, id).map(|(rows, _)| rows)
}

/// [`session_events`], also returning the objects that could not be read.
pub fn session_events_with_warnings(
    store: &dyn ObjectStore,
    id: SessionId,
) -> Result<(Vec<EventRow>, Vec<StoreError>), StoreError> {
    let opened = open_session(store, id)?;
    Ok((opened.rows, opened.warnings))
}

/// The object keys of the two tables, each listed once per lookup (a LIST is a request).
struct Tables<'a> {
    store: &'a dyn ObjectStore,
    sessions: Option<Vec<String>>,
    events: Option<Vec<String>>,
}

impl<'a> Tables<'a> {
    fn new(store: &'a dyn ObjectStore) -> Self {
        Tables {
            store,
            sessions: None,
            events: None,
        }
    }

    fn all(&mut self, table: &str) -> Result<&[String], StoreError> {
        let slot = if table == layout::SESSIONS {
            &mut self.sessions
        } else {
            &mut self.events
        };
        if slot.is_none() {
            *slot = Some(objects(self.store, table)?);
        }
        Ok(slot.as_deref().unwrap_or_default())
    }

    /// Keys of `table` whose `date=` lies in `[from, to]` (unbounded when `None`); keys
    /// without a date are always kept.
    fn between(
        &mut self,
        table: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        Ok(self
            .all(table)?
            .iter()
            .filter(|k| dated_within(k, from, to))
            .cloned()
            .collect())
    }

    /// Drops the cached listing of `table`, so that the next call lists it again.
    fn forget(&mut self, table: &str) {
        if table == layout::SESSIONS {
            self.sessions = None;
        } else {
            self.events = None;
        }
    }

    /// Runs `read` on `keys`; failures are logged and kept in `warnings`, as in
    /// [`each_object_relisting`]. When an object listed is gone by the time it is read (merged by a compaction), lists `table` again and reads the objects that
    /// appeared meanwhile and `wanted` accepts, as [`each_object_relisting`]. Returns every
    /// key read.
    fn each_key_relisting(
        &mut self,
        table: &str,
        keys: Vec<String>,
        wanted: impl Fn(&str) -> bool,
        warnings: &mut Vec<StoreError>,
        mut read: impl FnMut(&str) -> Result<(), StoreError>,
    ) -> Result<Vec<String>, StoreError> {
        let mut done: Vec<String> = Vec::new();
        let mut keys = keys;
        for round in 0.. {
            let mut gone = false;
            for key in &keys {
                match read(key) {
                    Ok(()) => {}
                    Err(StoreError::NotFound { .. }) if round < MAX_RELISTS => gone = true,
                    Err(e) => {
                        tracing::warn!(key = %key, error = %e, "skipping an object that cannot be read");
                        warnings.push(e);
                    }
                }
            }
            done.append(&mut keys);
            if !gone {
                break;
            }
            self.forget(table);
            keys = self
                .all(table)?
                .iter()
                .filter(|k| !done.contains(k) && wanted(k))
                .cloned()
                .collect();
        }
        Ok(done)
    }

    /// Keys of `table` not in `seen`.
    fn all_but(&mut self, table: &str, seen: &[String]) -> Result<Vec<String>, StoreError> {
        Ok(self
            .all(table)?
            .iter()
            .filter(|k| !seen.contains(k))
            .cloned()
            .collect())
    }
}

/// Whether the `date=` of `key` lies in `[from, to]` (unbounded when `None`); keys
/// without a date are always in.
fn dated_within(key: &str, from: Option<&str>, to: Option<&str>) -> bool {
    match layout::key_date(key) {
        Some(d) => from.is_none_or(|f| d >= f) && to.is_none_or(|t| d <= t),
        None => true,
    }
}

/// One session as [`open_session`] reads it.
#[derive(Debug)]
pub struct OpenedSession {
    /// What the catalog knows of it.
    pub info: SessionInfo,
    /// Its `events` rows, sorted by seq, duplicates (same seq) dropped.
    pub rows: Vec<EventRow>,
    /// Objects that could not be read (logged and skipped).
    pub warnings: Vec<StoreError>,
}

/// One session's [`SessionInfo`] and events (sorted by seq, duplicates dropped) and the
/// objects that could not be read, fetching as little as possible: `replay play` and
/// `export` on a large S3 store.
///
/// A session id is a UUIDv7 whose timestamp is the session start, and every row is stored
/// under the date of its own time (start + elapsed). So the `start` row lies in the
/// sessions objects of the start date, and the events between the start date and the
/// date of the end (from the `end` row; open-ended without one), one day of slack on
/// each side. Only those objects are opened, and of each only the footer and the row
/// groups whose statistics and bloom filter allow the id, with ranged reads. If that finds
/// nothing (an id whose timestamp is not its start), every object is searched.
pub fn open_session(store: &dyn ObjectStore, id: SessionId) -> Result<OpenedSession, StoreError> {
    open_in(&mut Tables::new(store), id, &mut |_| {})
}

/// [`open_session`], also calling `observe` with every `events` row of the session it
/// reads, before duplicates are dropped (what the verifier needs).
pub fn open_session_observing(
    store: &dyn ObjectStore,
    id: SessionId,
    observe: &mut dyn FnMut(&EventRef<'_>),
) -> Result<OpenedSession, StoreError> {
    open_in(&mut Tables::new(store), id, observe)
}

/// [`find_session`] followed by [`open_session`], listing each table only once.
pub fn find_and_open_session(
    store: &dyn ObjectStore,
    query: &str,
) -> Result<OpenedSession, CatalogError> {
    find_and_open_session_observing(store, query, |_| {})
}

/// [`find_and_open_session`], also calling `observe` with every `events` row of the
/// session it reads, before duplicates are dropped.
pub fn find_and_open_session_observing(
    store: &dyn ObjectStore,
    query: &str,
    mut observe: impl FnMut(&EventRef<'_>),
) -> Result<OpenedSession, CatalogError> {
    let mut tables = Tables::new(store);
    // A full id needs no lookup of its own: reading its rows tells whether it exists,
    // which saves reading the session_id column.
    let full = hyphenated_prefix(query)
        .filter(|p| p.len() == 36)
        .and_then(|p| p.parse::<SessionId>().ok());
    let id = match full {
        Some(id) => id,
        None => find_in(&mut tables, query)?,
    };
    let opened = open_in(&mut tables, id, &mut observe)?;
    let info = &opened.info;
    if full.is_some() && opened.rows.is_empty() && info.start.is_none() && info.end.is_none() {
        return Err(CatalogError::SessionNotFound {
            query: query.to_string(),
        });
    }
    Ok(opened)
}

fn open_in(
    tables: &mut Tables<'_>,
    id: SessionId,
    observe: &mut dyn FnMut(&EventRef<'_>),
) -> Result<OpenedSession, StoreError> {
    let start = id.start_time_ns();
    let day = |ns: i64| schemas::time::date(ns);
    // The start row's time is the id's timestamp (the agent makes it so), so its date
    // is exact.
    let from = start.map(day);
    let mut warnings = Vec::new();
    let mut acc = Acc::default();
    read_session_rows(tables, id, from.as_deref(), &mut acc, &mut warnings)?;
    let (start_ns, end_elapsed) = acc.start_and_end();
    let until = match (end_elapsed, start_ns.or(start)) {
        (Some(elapsed), Some(t)) => Some(day(t.saturating_add_unsigned(elapsed))),
        _ => None,
    };
    let span = (from.as_deref(), until.as_deref());
    let mut rows = read_event_rows(tables, id, span, &mut acc, observe, &mut warnings)?;
    rows.sort_by_key(|r| r.seq);
    rows.dedup_by_key(|r| r.seq);
    Ok(OpenedSession {
        info: acc.into_info(id),
        rows,
        warnings,
    })
}

/// The session's `sessions` rows into `acc`: those of the start date `from`, or of every
/// date if the start row is not there.
fn read_session_rows(
    tables: &mut Tables<'_>,
    id: SessionId,
    from: Option<&str>,
    acc: &mut Acc,
    warnings: &mut Vec<StoreError>,
) -> Result<(), StoreError> {
    let store = tables.store;
    let read = |key: &str, acc: &mut Acc| -> Result<(), StoreError> {
        for row in store::ranged::session_rows(store, key, id)? {
            acc.session_row(&row);
        }
        Ok(())
    };
    let keys = tables.between(layout::SESSIONS, from, from)?;
    let in_range = |k: &str| dated_within(k, from, from);
    let keys =
        tables.each_key_relisting(layout::SESSIONS, keys, in_range, warnings, |k| read(k, acc))?;
    if !acc.has_start() && from.is_some() {
        // The start row is not where the id says: look everywhere.
        let rest = tables.all_but(layout::SESSIONS, &keys)?;
        tables.each_key_relisting(layout::SESSIONS, rest, |_| true, warnings, |k| read(k, acc))?;
    }
    Ok(())
}

/// The session's `events` rows, counted into `acc` and shown to `observe`: those dated
/// within `from..=until` (open-ended where `None`), or of every date if there are none.
fn read_event_rows(
    tables: &mut Tables<'_>,
    id: SessionId,
    (from, until): (Option<&str>, Option<&str>),
    acc: &mut Acc,
    observe: &mut dyn FnMut(&EventRef<'_>),
    warnings: &mut Vec<StoreError>,
) -> Result<Vec<EventRow>, StoreError> {
    let store = tables.store;
    let mut rows = Vec::new();
    let mut read = |key: &str, rows: &mut Vec<EventRow>| {
        store::ranged::session_event_rows(store, key, id, |r| {
            acc.account(&r);
            observe(&r);
            rows.push(r.to_row())
        })
    };
    let keys = tables.between(layout::EVENTS, from, until)?;
    let in_range = |k: &str| dated_within(k, from, until);
    let keys = tables.each_key_relisting(layout::EVENTS, keys, in_range, warnings, |k| {
        read(k, &mut rows)
    })?;
    if rows.is_empty() && (from.is_some() || until.is_some()) {
        let rest = tables.all_but(layout::EVENTS, &keys)?;
        tables.each_key_relisting(
            layout::EVENTS,
            rest,
            |_| true,
            warnings,
            |k| read(k, &mut rows),
        )?;
    }
    Ok(rows)
}

/// The session named by a full id or a unique prefix (as [`resolve_session`]), found by
/// reading only the `session_id` column of the row groups that can match, instead of
/// listing every session. With at least the first 12 hex digits (the id's timestamp),
/// only the `sessions` objects of that date are searched; `events` are searched only if
/// `sessions` has no match.
pub fn find_session(store: &dyn ObjectStore, query: &str) -> Result<SessionId, CatalogError> {
    find_in(&mut Tables::new(store), query)
}

fn find_in(tables: &mut Tables<'_>, query: &str) -> Result<SessionId, CatalogError> {
    let store = tables.store;
    let not_found = || CatalogError::SessionNotFound {
        query: query.to_string(),
    };
    let Some(prefix) = hyphenated_prefix(query) else {
        return Err(not_found());
    };
    // The id's 48-bit millisecond timestamp is its first 12 hex digits.
    let start_ns = (prefix.len() >= 13)
        .then(|| u64::from_str_radix(&prefix[..13].replace('-', ""), 16).ok())
        .flatten()
        .and_then(|ms| i64::try_from(ms).ok())
        .and_then(|ms| ms.checked_mul(1_000_000));
    let from = start_ns.map(schemas::time::date);
    let to = from.clone();
    let mut warnings = Vec::new();
    let mut search =
        |table: &str, from: Option<&str>, to: Option<&str>| -> Result<Vec<String>, StoreError> {
            let mut ids = Vec::new();
            let keys = tables.between(table, from, to)?;
            let wanted = |k: &str| dated_within(k, from, to);
            tables.each_key_relisting(table, keys, wanted, &mut warnings, |key| {
                ids.extend(store::ranged::ids_with_prefix(store, key, &prefix)?);
                Ok(())
            })?;
            ids.sort();
            ids.dedup();
            Ok(ids)
        };
    let mut ids = search(layout::SESSIONS, from.as_deref(), to.as_deref())?;
    if ids.is_empty() {
        ids = search(layout::EVENTS, from.as_deref(), None)?;
    }
    if ids.is_empty() && start_ns.is_some() {
        ids = search(layout::SESSIONS, None, None)?;
        if ids.is_empty() {
            ids = search(layout::EVENTS, None, None)?;
        }
    }
    let parsed: Vec<SessionId> = ids
        .iter()
        .filter_map(|t| t.parse::<SessionId>().ok())
        .collect();
    match parsed.as_slice() {
        [] => Err(not_found()),
        [one] => Ok(*one),
        many => Err(CatalogError::AmbiguousSession {
            query: query.to_string(),
            candidates: many.iter().map(SessionId::to_string).collect(),
        }),
    }
}

/// The hyphenated, lowercase form of what a user typed as an id prefix (hyphens where
/// the text form has them), or `None` if it cannot be the start of an id.
fn hyphenated_prefix(query: &str) -> Option<String> {
    let q = query.trim().to_ascii_lowercase();
    if q.is_empty() {
        return None;
    }
    if q.contains('-') {
        let ok = q.chars().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
        return (ok && q.len() <= 36).then_some(q);
    }
    if q.len() > 32 || !q.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = String::with_capacity(36);
    for (i, c) in q.chars().enumerate() {
        if matches!(i, 8 | 12 | 16 | 20) {
            out.push('-');
        }
        out.push(c);
    }
    Some(out)
}

#[cfg(test)]
mod tests;
