//! Dropping purged sessions from the index (DESIGN.md §6: a purged session leaves every
//! derived copy too, not only the store).

use std::collections::BTreeMap;
use std::path::Path;

use schemas::SessionId;
use tantivy::{IndexWriter, TantivyDocument, Term};

use super::{Fields, IndexError, Manifest, WRITER_MEMORY, day_dir, open_day};

/// Deletes every document (session and commands) of `ids` from the index in `dir` and
/// records them in the manifest's `forgotten` set, so that later runs skip them; returns
/// how many were newly forgotten. No index there: nothing to do.
///
/// Call it with the sessions that trusted tombstones name, after [`super::update`]: an
/// interrupted purge may have left rows that an update indexed again, and a session is
/// filed under the day of its id, so only that day's index is opened (every day's for
/// an id without a timestamp).
pub fn forget_sessions(dir: &Path, ids: &[SessionId]) -> Result<usize, IndexError> {
    let Some(mut manifest) = Manifest::load(dir)? else {
        return Ok(0);
    };
    let new: Vec<SessionId> = ids
        .iter()
        .filter(|id| !manifest.forgotten.contains(&id.to_string()))
        .copied()
        .collect();
    if new.is_empty() {
        return Ok(0);
    }
    let mut by_day: BTreeMap<String, Vec<SessionId>> = BTreeMap::new();
    for id in &new {
        match id.start_time_ns() {
            Some(t) => by_day.entry(schemas::time::date(t)).or_default().push(*id),
            None => {
                for day in manifest.days.keys() {
                    by_day.entry(day.clone()).or_default().push(*id);
                }
            }
        }
    }
    for (day, ids) in &by_day {
        if !day_dir(dir, day).exists() {
            continue;
        }
        let index = open_day(dir, day)?;
        let fields = Fields::of(&index.schema())?;
        let mut writer: IndexWriter<TantivyDocument> =
            index.writer_with_num_threads(1, WRITER_MEMORY)?;
        for id in ids {
            writer.delete_term(Term::from_field_text(fields.session, &id.to_string()));
        }
        writer.commit()?;
        writer.wait_merging_threads()?;
    }
    manifest
        .forgotten
        .extend(new.iter().map(ToString::to_string));
    manifest.store(dir)?;
    Ok(new.len())
}
