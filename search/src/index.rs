//! The full-text index of sessions and commands (DESIGN.md §8): tantivy, partitioned by
//! day, derived from the store and rebuildable from it.
//!
//! # Layout
//!
//! `<index dir>/date=YYYY-MM-DD/` is one tantivy index per UTC date of session start (the
//! date in the session id, a UUIDv7 whose timestamp is the start, so a session never moves
//! between days however its rows arrive). `<index dir>/manifest.json` lists the store
//! objects already indexed and, per day, the latest wall time of a document in it, so a
//! query bounded by `--since`/`--until` opens only the days that can match
//! ([`days_to_open`]).
//!
//! # Documents
//!
//! One per session (`type` = `session`: id, user, host, remote address, command line,
//! start, end, duration, exit status, sealed, and `listing`: the object `replay ls`
//! prints, as JSON, which the caller makes through [`Hooks::listing`]) and one per command (`type` = `command`:
//! session id, index, offset, wall time, command line, rendered output, exit status, and
//! the session's user and host, copied for filtering). `cmd` and `output` are tokenized
//! for full-text search; `session`, `user` and `host` are raw (exact) terms; `time` (wall
//! time, UTC ns) is a fast field for ranges and sorting. The objects holding a session's
//! rows are not recorded: the catalog finds them again from the id in a few requests.
//!
//! # Incremental updates and crashes
//!
//! [`update`] lists `events/` and `sessions/`, takes the objects the manifest does not
//! list, reads the session ids they hold and re-indexes each of those sessions completely:
//! every document with its id is deleted (a raw `session` term) and its documents are
//! added again from everything the store holds for it. Each touched day is committed, and
//! only then is the manifest written (temporary file, fsync, rename). So:
//!
//! - a crash before a commit leaves that day as it was, and the objects are not in the
//!   manifest: the next run reads them again;
//! - a crash after the commits but before the manifest is written also re-reads those
//!   objects; re-indexing a session deletes what the first attempt added before adding
//!   it again, so nothing is duplicated;
//! - an object is in the manifest only once every session it touches is committed, so
//!   nothing is skipped. An object that cannot be read stays out of the manifest and is
//!   tried again next time.
//!
//! # Sealed sessions
//!
//! Indexed by their clear metadata (the session document) unless the caller hands
//! [`update`] a way to open them ([`Hooks::unseal`]); their command text then lies in
//! the index in clear.

mod forget;
mod manifest;
mod query;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use schemas::{Event, SessionId};
use store::layout;
use store::parquet_io::EventRef;
use store::{ObjectStore, StoreError, parquet_io};
use tantivy::schema::{FAST, Field, INDEXED, STORED, STRING, Schema, TEXT};
use tantivy::{Index, IndexWriter, TantivyDocument, Term};

use crate::catalog::{OpenedSession, SessionInfo, open_session, open_sessions_observing};

pub use forget::forget_sessions;
pub use manifest::{MANIFEST_FILE, Manifest};
pub use query::{
    Hit, ListQuery, Listed, SearchQuery, days_to_open, list_sessions, search, stale_objects,
};

/// Format version of the index, in the manifest. Version 2 added the `listing` field;
/// version 3 lists the signed `start`/`end` rows instead of the `sessions/` copy (and
/// says where they came from); version 4 adds `findings` to the listing (the rules' names
/// that fire on the session's commands). [`update`] rebuilds an older index (it is derived from the
/// store), and queries refuse it with [`IndexError::Outdated`].
pub const INDEX_VERSION: u32 = 4;

/// Memory an index writer may use before it flushes a segment (tantivy's minimum is
/// 15 MB); one writer is open at a time.
const WRITER_MEMORY: usize = 32_000_000;

/// Why the index could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// tantivy failed.
    #[error("index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// A file of the index could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The manifest does not parse.
    #[error("{}: {source}; `replay index --rebuild` recreates the index", path.display())]
    Manifest {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// There is no index there.
    #[error("no index at {}; run `replay index`", dir.display())]
    Missing {
        /// The index directory.
        dir: PathBuf,
    },
    /// The index was built by an older version and lacks fields.
    #[error("the index at {} was built by an older version; run `replay index`", dir.display())]
    Outdated {
        /// The index directory.
        dir: PathBuf,
    },
    /// The query does not parse.
    #[error("bad query: {0}")]
    Query(String),
}

/// The fields of every day index.
#[derive(Clone, Copy)]
pub(crate) struct Fields {
    doc_type: Field,
    session: Field,
    user: Field,
    host: Field,
    remote: Field,
    command_line: Field,
    time: Field,
    end: Field,
    duration: Field,
    exit_status: Field,
    sealed: Field,
    index: Field,
    offset: Field,
    cmd: Field,
    output: Field,
    listing: Field,
}

impl Fields {
    fn schema() -> (Schema, Fields) {
        let mut b = Schema::builder();
        let f = Fields {
            doc_type: b.add_text_field("type", STRING | STORED),
            session: b.add_text_field("session", STRING | STORED),
            user: b.add_text_field("user", STRING | STORED),
            host: b.add_text_field("host", STRING | STORED),
            remote: b.add_text_field("remote", STRING | STORED),
            command_line: b.add_text_field("command_line", TEXT | STORED),
            time: b.add_i64_field("time", INDEXED | STORED | FAST),
            end: b.add_i64_field("end", INDEXED | STORED | FAST),
            duration: b.add_u64_field("duration_ns", STORED),
            exit_status: b.add_i64_field("exit_status", INDEXED | STORED),
            sealed: b.add_bool_field("sealed", INDEXED | STORED),
            index: b.add_u64_field("index", STORED),
            offset: b.add_u64_field("offset_ns", STORED),
            cmd: b.add_text_field("cmd", TEXT | STORED),
            output: b.add_text_field("output", TEXT | STORED),
            listing: b.add_text_field("listing", STORED),
        };
        (b.build(), f)
    }

    /// The fields of an index opened from disk, by name.
    fn of(schema: &Schema) -> Result<Fields, IndexError> {
        let get = |name: &str| schema.get_field(name).map_err(IndexError::from);
        Ok(Fields {
            doc_type: get("type")?,
            session: get("session")?,
            user: get("user")?,
            host: get("host")?,
            remote: get("remote")?,
            command_line: get("command_line")?,
            time: get("time")?,
            end: get("end")?,
            duration: get("duration_ns")?,
            exit_status: get("exit_status")?,
            sealed: get("sealed")?,
            index: get("index")?,
            offset: get("offset_ns")?,
            cmd: get("cmd")?,
            output: get("output")?,
            listing: get("listing")?,
        })
    }
}

/// The directory of one day's index.
pub fn day_dir(dir: &Path, day: &str) -> PathBuf {
    dir.join(format!("date={day}"))
}

/// The day partition a session is filed under: the UTC date of its id's timestamp (its
/// start), else of the start the catalog found.
pub fn session_day(info: &SessionInfo) -> String {
    schemas::time::date(session_start_ns(info.id, info.start_time_ns))
}

fn session_start_ns(id: SessionId, fallback: i64) -> i64 {
    id.start_time_ns().unwrap_or(fallback)
}

/// Opens (creating if needed) the index of `day`.
fn open_day(dir: &Path, day: &str) -> Result<Index, IndexError> {
    let path = day_dir(dir, day);
    std::fs::create_dir_all(&path).map_err(|source| IndexError::Io {
        path: path.clone(),
        source,
    })?;
    let mmap = tantivy::directory::MmapDirectory::open(&path)
        .map_err(|e| IndexError::Tantivy(e.into()))?;
    Ok(Index::open_or_create(mmap, Fields::schema().0)?)
}

/// What [`update`] needs from its caller besides the store.
pub struct Hooks<'a> {
    /// Opens a sealed session's rows into events, or says `None` to index it by its
    /// metadata only.
    pub unseal: &'a mut dyn FnMut(&OpenedSession) -> Option<Vec<Event>>,
    /// Sees every `events` row of a session as it is read, duplicates included, before
    /// [`Hooks::listing`] is called for it (the caller verifies the session with them).
    pub observe: &'a mut dyn FnMut(&EventRef<'_>),
    /// The listing of a session (the JSON object `replay ls` prints) stored in its
    /// session document, so that a listing never reads the store; `None` stores none and
    /// the session is left out of [`list_sessions`]. With the session's commands (none
    /// for a sealed session `unseal` did not open), so that the listing can say what the
    /// rules flag in them.
    pub listing: &'a mut dyn FnMut(&SessionInfo, &[crate::commands::Command]) -> Option<String>,
    /// Called with (sessions done, sessions to do) as the update goes.
    pub progress: &'a mut dyn FnMut(usize, usize),
}

/// What one [`update`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UpdateReport {
    /// Store objects not indexed before this run.
    pub new_objects: usize,
    /// Sessions (re)indexed.
    pub sessions: usize,
    /// Command documents added.
    pub commands: usize,
    /// Day partitions committed.
    pub days: Vec<String>,
    /// Objects that could not be read (left for the next run).
    pub unreadable: Vec<String>,
}

/// The Parquet objects of `events/` and `sessions/`.
pub fn store_objects(store: &dyn ObjectStore) -> Result<Vec<String>, StoreError> {
    let mut keys = crate::catalog::objects(store, layout::EVENTS)?;
    keys.extend(crate::catalog::objects(store, layout::SESSIONS)?);
    Ok(keys)
}

/// Brings the index in `dir` up to date with the store (see the module doc); with
/// `rebuild`, drops it first and indexes everything.
pub fn update(
    store: &dyn ObjectStore,
    dir: &Path,
    rebuild: bool,
    hooks: Hooks<'_>,
) -> Result<UpdateReport, IndexError> {
    update_inner(store, dir, rebuild, hooks, &mut |_| Ok(()))
}

/// [`update`] with a step between the commits and the manifest write, which tests use to
/// stop there as a crash would.
pub(crate) fn update_inner(
    store: &dyn ObjectStore,
    dir: &Path,
    rebuild: bool,
    hooks: Hooks<'_>,
    before_manifest: &mut dyn FnMut(&Manifest) -> Result<(), IndexError>,
) -> Result<UpdateReport, IndexError> {
    let io = |source| IndexError::Io {
        path: dir.to_path_buf(),
        source,
    };
    // An index of an older format lacks fields: rebuild it rather than mix formats.
    let outdated = Manifest::load(dir)?.is_some_and(|m| m.version < INDEX_VERSION);
    if rebuild || outdated {
        remove_index(dir)?;
    }
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut manifest = Manifest::load(dir)?.unwrap_or_default();
    manifest.version = INDEX_VERSION;
    let listed = store_objects(store)?;
    // Objects a compaction merged away (or a purge removed) leave the manifest: their
    // rows are in the objects that replaced them, which are new here and re-index the
    // sessions they hold.
    let present: std::collections::HashSet<&String> = listed.iter().collect();
    manifest.objects.retain(|k| present.contains(k));
    let new: Vec<String> = listed
        .iter()
        .filter(|k| !manifest.objects.contains(*k))
        .cloned()
        .collect();
    let mut report = UpdateReport {
        new_objects: new.len(),
        ..Default::default()
    };
    if new.is_empty() && dir.join(MANIFEST_FILE).exists() {
        return Ok(report);
    }
    let (touched, readable) = touched_sessions(store, &new, &mut report.unreadable);
    index_sessions(store, dir, &touched, hooks, &mut manifest, &mut report)?;
    manifest.objects.extend(readable);
    before_manifest(&manifest)?;
    manifest.store(dir)?;
    Ok(report)
}

/// Removes the day indexes and the manifest of `dir` (nothing else: the directory may
/// be one the user chose).
fn remove_index(dir: &Path) -> Result<(), IndexError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(IndexError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let res = if name.starts_with("date=") {
            std::fs::remove_dir_all(&path)
        } else if name == MANIFEST_FILE {
            std::fs::remove_file(&path)
        } else {
            Ok(())
        };
        res.map_err(|source| IndexError::Io { path, source })?;
    }
    Ok(())
}

/// The sessions the objects `keys` hold rows of, and the keys that could be read (those
/// that could not are added to `unreadable`).
fn touched_sessions(
    store: &dyn ObjectStore,
    keys: &[String],
    unreadable: &mut Vec<String>,
) -> (BTreeSet<SessionId>, Vec<String>) {
    let mut ids = BTreeSet::new();
    let mut readable = Vec::new();
    for key in keys {
        let read = store.get(key).and_then(|bytes| {
            if key.starts_with(&format!("{}/", layout::SESSIONS)) {
                let rows = parquet_io::decode_sessions(key, &bytes)?;
                ids.extend(rows.iter().map(|r| r.session_id));
                Ok(())
            } else {
                parquet_io::scan_events(key, &bytes, None, |r| {
                    ids.insert(r.session_id);
                })
            }
        });
        match read {
            Ok(()) => readable.push(key.clone()),
            Err(e) => {
                tracing::warn!(key = %key, error = %e, "cannot read an object; it will be indexed on the next run");
                unreadable.push(key.clone());
            }
        }
    }
    (ids, readable)
}

/// Re-indexes `ids`, one day partition at a time (one writer open at a time), committing
/// each day.
fn index_sessions(
    store: &dyn ObjectStore,
    dir: &Path,
    ids: &BTreeSet<SessionId>,
    hooks: Hooks<'_>,
    manifest: &mut Manifest,
    report: &mut UpdateReport,
) -> Result<(), IndexError> {
    // Sessions whose id carries no timestamp are filed by the start the catalog finds,
    // which needs the session read first; they are rare (ids are UUIDv7), so read them
    // up front.
    let mut by_day: BTreeMap<String, Vec<SessionId>> = BTreeMap::new();
    for &id in ids {
        let day = match id.start_time_ns() {
            Some(t) => schemas::time::date(t),
            None => session_day(&open_session(store, id)?.info),
        };
        by_day.entry(day).or_default().push(id);
    }
    let total = ids.len();
    let Hooks {
        unseal,
        observe,
        listing,
        progress,
    } = hooks;
    for (day, ids) in &by_day {
        let index = open_day(dir, day)?;
        let fields = Fields::of(&index.schema())?;
        let mut writer: IndexWriter<TantivyDocument> =
            index.writer_with_num_threads(1, WRITER_MEMORY)?;
        open_sessions_observing(store, ids, observe, &mut |opened: OpenedSession| {
            let id = opened.info.id;
            for w in &opened.warnings {
                tracing::warn!(session = %id, error = %w, "skipped an unreadable object");
            }
            writer.delete_term(Term::from_field_text(fields.session, &id.to_string()));
            let docs = session_docs(&fields, &opened, listing, unseal);
            report.commands += docs
                .iter()
                .filter(|(_, d)| d.get_first(fields.index).is_some())
                .count();
            for (time, doc) in docs {
                manifest.saw(day, time);
                writer.add_document(doc)?;
            }
            report.sessions += 1;
            progress(report.sessions, total);
            Ok::<(), IndexError>(())
        })?;
        writer.commit()?;
        writer.wait_merging_threads()?;
        report.days.push(day.clone());
    }
    Ok(())
}

/// The documents of one session with their wall times: the session's, then one per
/// command (none for a sealed session that `unseal` does not open).
fn session_docs(
    f: &Fields,
    opened: &OpenedSession,
    listing: &mut dyn FnMut(&SessionInfo, &[crate::commands::Command]) -> Option<String>,
    unseal: &mut dyn FnMut(&OpenedSession) -> Option<Vec<Event>>,
) -> Vec<(i64, TantivyDocument)> {
    let info = &opened.info;
    let start_ns = info.start_time_ns;
    let events = if info.sealed {
        unseal(opened)
    } else {
        Some(opened.rows.iter().filter_map(|r| r.to_event()).collect())
    };
    let size = info
        .start
        .as_ref()
        .filter(|s| s.cols > 0 && s.rows > 0)
        .map_or((80, 24), |s| (s.cols, s.rows));
    let extracted = events.map(|events| crate::commands::extract(&events, size));
    let commands = extracted.as_ref().map_or(&[][..], |e| &e.commands[..]);
    let mut session = session_doc(f, info);
    if let Some(l) = listing(info, commands) {
        session.add_text(f.listing, l);
    }
    let mut docs = vec![(start_ns.saturating_add_unsigned(info.duration_ns), session)];
    let Some(extracted) = extracted else {
        return docs;
    };
    if !extracted.leading_output.trim().is_empty() {
        // Output no command precedes: found like a command's, at the session's start,
        // with no command line and no command index.
        let mut d = TantivyDocument::default();
        d.add_text(f.doc_type, "command");
        d.add_text(f.session, info.id.to_string());
        add_who(f, &mut d, info);
        d.add_i64(f.time, start_ns);
        d.add_u64(f.offset, 0);
        d.add_text(f.cmd, "");
        d.add_text(f.output, &extracted.leading_output);
        docs.push((start_ns, d));
    }
    for c in extracted.commands {
        let time = start_ns.saturating_add_unsigned(c.elapsed_ns);
        let mut d = TantivyDocument::default();
        d.add_text(f.doc_type, "command");
        d.add_text(f.session, info.id.to_string());
        add_who(f, &mut d, info);
        d.add_i64(f.time, time);
        d.add_u64(f.index, c.index as u64);
        d.add_u64(f.offset, c.elapsed_ns);
        d.add_text(f.cmd, &c.line);
        d.add_text(f.output, &c.output);
        if let Some(s) = c.exit_status {
            d.add_i64(f.exit_status, i64::from(s));
        }
        docs.push((time, d));
    }
    docs
}

fn add_who(f: &Fields, d: &mut TantivyDocument, info: &SessionInfo) {
    if let Some(s) = &info.start {
        d.add_text(f.user, &s.user);
        d.add_text(f.host, &s.host);
    }
}

fn session_doc(f: &Fields, info: &SessionInfo) -> TantivyDocument {
    let mut d = TantivyDocument::default();
    d.add_text(f.doc_type, "session");
    d.add_text(f.session, info.id.to_string());
    add_who(f, &mut d, info);
    if let Some(s) = &info.start {
        if let Some(r) = &s.remote_addr {
            d.add_text(f.remote, r);
        }
        d.add_text(f.command_line, s.command_line());
    }
    d.add_i64(f.time, info.start_time_ns);
    if info.end.is_some() {
        d.add_i64(
            f.end,
            info.start_time_ns.saturating_add_unsigned(info.duration_ns),
        );
    }
    d.add_u64(f.duration, info.duration_ns);
    if let Some(s) = info.end.as_ref().and_then(|e| e.exit_status) {
        d.add_i64(f.exit_status, i64::from(s));
    }
    d.add_bool(f.sealed, info.sealed);
    d
}

#[cfg(test)]
mod tests;
