//! `replay import`: other recorders' files as ordinary sessions in the store.
//!
//! Each recording found by [`import::plan`] is read and decoded whole before anything is
//! written, then stored as the ingester stores a batch: `events/` objects (one per UTC
//! date its rows fall on), then `sessions/` objects, named
//! `date=YYYY-MM-DD/import-<sha256>-00000000000000000000.parquet` after the digest of
//! what was imported, and last a marker `imports/<sha256>.json` naming the sessions and
//! objects. The marker is the commit: an import interrupted before it is simply run
//! again and rewrites the same objects with the same bytes (names and contents derive
//! from the digest), and once it exists, importing the same bytes again is a no-op.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context;
use import::detect::{Loaded, Source};
use import::{Defaults, Digest, ImportedSession};
use schemas::EventKind;
use serde_json::json;
use store::layout;
use store::parquet_io::{encode_events, encode_sessions};
use store::{EventRow, ObjectMeta, ObjectStore, SessionRow};

use crate::cli::ImportArgs;
use crate::cmd::search::time_bound;
use crate::open::StoreArgs;

/// Top-level folder of the import markers (one JSON per imported digest).
pub const IMPORTS: &str = "imports";
/// The `source` of imported objects (the ingester's are `spool` and `kafka`).
const SOURCE: &str = "import";

/// Imports every recording in `args.paths`; a file that cannot be imported is named on
/// stderr and the others go on, with exit status 2 at the end.
pub fn run(store_args: &StoreArgs, args: ImportArgs) -> anyhow::Result<()> {
    let (_, store) = store_args.open()?;
    let plan = import::plan(&args.paths);
    let mut failed = plan.problems.len();
    for (what, e) in &plan.problems {
        eprintln!("replay: cannot import {what}: {e}; nothing of it was stored");
    }
    if let Some(first) = plan.skipped.first() {
        eprintln!(
            "replay: skipped {} file(s) that hold no recording we import, e.g. {}",
            plan.skipped.len(),
            first.display()
        );
    }
    let start = time_bound(args.start.as_deref(), false)?;
    let mut out = std::io::stdout().lock();
    let (mut imported, mut already) = (0usize, 0usize);
    for source in &plan.sources {
        let label = source.label();
        let loaded = match source.load() {
            Ok(l) => l,
            Err(e) => {
                eprintln!("replay: cannot import {label}: {e}; nothing of it was stored");
                failed += 1;
                continue;
            }
        };
        let marker = format!("{IMPORTS}/{}.json", loaded.digest.hex());
        if store
            .exists(&marker)
            .with_context(|| format!("cannot look for {marker} in {}", store.describe()))?
        {
            eprintln!(
                "replay: {label} is already imported{} (same sha256, {marker}); nothing to do",
                already_as(store.as_ref(), &marker)
            );
            already += 1;
            continue;
        }
        let sessions = sessions_of(&loaded, &args, start);
        store_import(store.as_ref(), source, &loaded, &sessions, &marker)
            .with_context(|| format!("cannot store the import of {label}"))?;
        for s in &sessions {
            writeln!(out, "{}  {}  {label}", s.id, source.format())?;
            imported += 1;
        }
    }
    eprintln!(
        "replay: imported {imported} session(s){}{}",
        if already > 0 {
            format!(", {already} recording(s) already imported")
        } else {
            String::new()
        },
        if imported > 0 {
            "; run `replay index` to make them searchable"
        } else {
            ""
        }
    );
    if failed > 0 {
        anyhow::bail!("{failed} path(s) could not be imported (named above)");
    }
    Ok(())
}

/// ` as session ID` from an existing marker, for the message.
fn already_as(store: &dyn ObjectStore, marker: &str) -> String {
    let ids: Vec<String> = store
        .get(marker)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            v["sessions"].as_array().map(|a| {
                a.iter()
                    .filter_map(|s| s["id"].as_str().map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_default();
    match ids.as_slice() {
        [] => String::new(),
        [one] => format!(" as session {one}"),
        many => format!(" as sessions {}", many.join(", ")),
    }
}

/// The sessions of a loaded source, with the flags' defaults where it says nothing.
fn sessions_of(loaded: &Loaded, args: &ImportArgs, start: Option<i64>) -> Vec<ImportedSession> {
    loaded
        .recordings
        .iter()
        .enumerate()
        .map(|(i, rec)| {
            let fallback_start = start.unwrap_or_else(|| {
                loaded.modified_ns.map_or(0, |m| {
                    m.saturating_sub(i64::try_from(rec.duration()).unwrap_or(0))
                })
            });
            let defaults = Defaults {
                user: args.user.clone(),
                host: args.host.clone(),
                start_time_ns: fallback_start,
                size: args.size,
            };
            rec.to_session(
                &loaded.digest,
                u32::try_from(i).unwrap_or(u32::MAX),
                &defaults,
            )
        })
        .collect()
}

/// Writes the objects of an import, then its marker (module doc).
fn store_import(
    store: &dyn ObjectStore,
    source: &Source,
    loaded: &Loaded,
    sessions: &[ImportedSession],
    marker: &str,
) -> anyhow::Result<()> {
    let digest: &Digest = &loaded.digest;
    let stem = layout::object_stem(SOURCE, &digest.hex(), 0);
    let meta = ObjectMeta {
        source: SOURCE.to_string(),
        partition: digest.hex(),
        first_offset: 0,
        end_offset: digest.bytes,
    };
    let mut events: BTreeMap<String, Vec<EventRow>> = BTreeMap::new();
    let mut session_rows: BTreeMap<String, Vec<SessionRow>> = BTreeMap::new();
    for s in sessions {
        for e in &s.events {
            let row = EventRow::from_event(s.id, s.start.start_time_ns, e);
            if matches!(e.kind, EventKind::Start | EventKind::End) {
                session_rows
                    .entry(schemas::time::date(row.time_ns))
                    .or_default()
                    .push(SessionRow {
                        session_id: s.id,
                        kind: e.kind,
                        seq: e.seq,
                        time_ns: row.time_ns,
                        elapsed_ns: e.elapsed_ns,
                        metadata: e.data.clone(),
                    });
            }
            events
                .entry(schemas::time::date(row.time_ns))
                .or_default()
                .push(row);
        }
    }
    let mut keys = Vec::new();
    // events/ first: once they are there, the session reads whole (its start and end
    // rows are among them); sessions/ is the copy listings use.
    for (date, mut rows) in events {
        let key = layout::events_key(&date, &stem);
        store.put(&key, &encode_events(&mut rows, &meta)?)?;
        keys.push(key);
    }
    for (date, mut rows) in session_rows {
        let key = layout::sessions_key(&date, &stem);
        store.put(&key, &encode_sessions(&mut rows, &meta)?)?;
        keys.push(key);
    }
    let record = json!({
        "format": source.format().as_str(),
        "sha256": digest.hex(),
        "bytes": digest.bytes,
        "sessions": sessions.iter().map(|s| json!({
            "id": s.id.to_string(),
            "start_time_ns": s.start.start_time_ns,
            "events": s.events.len(),
        })).collect::<Vec<_>>(),
        "objects": keys,
    });
    let mut bytes = serde_json::to_vec_pretty(&record)?;
    bytes.push(b'\n');
    store.put(marker, &bytes)?;
    Ok(())
}
