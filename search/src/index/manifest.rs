//! The manifest: which store objects the index already holds, and the latest wall time of
//! any document in each day partition.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::IndexError;

/// File name of the manifest inside the index directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// What the index has taken in.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version.
    pub version: u32,
    /// Store keys (`events/…`, `sessions/…`) whose sessions are indexed.
    pub objects: BTreeSet<String>,
    /// Per day partition (`YYYY-MM-DD`), the latest wall time (UTC ns) of a document in
    /// it. Sessions are filed under their start date but can run past midnight, so a
    /// `--since` query needs this to know which earlier days can still hold a match. It
    /// only grows: a re-indexed session never makes it smaller, and a bound that is too
    /// high only opens a day for nothing.
    pub days: BTreeMap<String, i64>,
    /// Sessions whose documents were deleted because they were purged
    /// ([`super::forget_sessions`]), so that later runs do not delete them again.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub forgotten: BTreeSet<String>,
}

impl Manifest {
    /// The manifest in `dir`, or `None` if there is none (no index there yet).
    pub fn load(dir: &Path) -> Result<Option<Manifest>, IndexError> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(IndexError::Io { path, source }),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| IndexError::Manifest { path, source })
    }

    /// Writes the manifest to `dir` atomically: a temporary file, fsynced, renamed over the
    /// old one, and the directory fsynced, so a crash leaves the old or the new manifest.
    pub fn store(&self, dir: &Path) -> Result<(), IndexError> {
        let path = dir.join(MANIFEST_FILE);
        let tmp = dir.join(format!("{MANIFEST_FILE}.tmp"));
        let io = |source| IndexError::Io {
            path: path.clone(),
            source,
        };
        let bytes = serde_json::to_vec_pretty(self).map_err(|source| IndexError::Manifest {
            path: path.clone(),
            source,
        })?;
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(io)?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        Ok(())
    }

    /// Raises the latest wall time of `day` to `time_ns`.
    pub fn saw(&mut self, day: &str, time_ns: i64) {
        let t = self.days.entry(day.to_string()).or_insert(time_ns);
        *t = (*t).max(time_ns);
    }
}
