//! Sessions opened recently, kept for a minute: one player page makes several requests
//! for the same session (the page with its commands, then the cast or its index and
//! segments), and each would otherwise read and render the session from the store again.
//!
//! The cache sits under the authorization, not beside it: [`crate::authz::Scoped`] asks
//! it like any backend, so every request is still checked against the caller's roles
//! (from the index, and on the opened session's own metadata) before anything cached is
//! returned. A session changed in the store (a purge) is seen at most [`TTL`] late.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use schemas::SessionId;
use search::index::{Hit, SearchQuery};
use store::ObjectStore;

use crate::backend::{
    Backend, Content, Found, ListFilter, Opened, ReportFilter, SessionSegments, SessionSummary,
};
use crate::segments::Segmented;

/// How long an opened session is kept.
pub const TTL: Duration = Duration::from_secs(60);
/// Bytes of casts and segments kept at most; the oldest go first.
const BUDGET: usize = 256 << 20;

struct Entry {
    opened: Opened,
    segments: Option<Arc<Segmented>>,
    at: Instant,
    bytes: usize,
}

/// A [`Backend`] that keeps what [`Backend::open`] and [`Backend::segments`] gave.
pub struct CachingBackend {
    inner: Arc<dyn Backend>,
    entries: Mutex<HashMap<SessionId, Entry>>,
}

impl CachingBackend {
    /// Caches `inner`'s sessions.
    pub fn new(inner: Arc<dyn Backend>) -> CachingBackend {
        CachingBackend {
            inner,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn with_entries<T>(&self, f: impl FnOnce(&mut HashMap<SessionId, Entry>) -> T) -> T {
        // A panic while holding the lock leaves entries that are still whole: go on.
        let mut guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        guard.retain(|_, e| e.at.elapsed() < TTL);
        f(&mut guard)
    }

    fn keep(&self, id: SessionId, opened: &Opened, segments: Option<Arc<Segmented>>) {
        let cast = match &opened.content {
            Content::Clear { cast, .. } => cast.len(),
            Content::Sealed { .. } => 0,
        };
        let bytes = cast + segments.as_ref().map_or(0, |s| s.bytes);
        if bytes > BUDGET {
            return;
        }
        self.with_entries(|entries| {
            let at = entries.get(&id).map_or_else(Instant::now, |e| e.at);
            entries.insert(
                id,
                Entry {
                    opened: opened.clone(),
                    segments,
                    at,
                    bytes,
                },
            );
            let mut total: usize = entries.values().map(|e| e.bytes).sum();
            while total > BUDGET {
                let Some((&oldest, _)) = entries.iter().min_by_key(|(_, e)| e.at) else {
                    break;
                };
                total -= entries.remove(&oldest).map_or(0, |e| e.bytes);
            }
        });
    }
}

impl Backend for CachingBackend {
    fn store(&self) -> &dyn ObjectStore {
        self.inner.store()
    }

    fn parse_time(&self, text: &str, end: bool) -> Option<i64> {
        self.inner.parse_time(text, end)
    }

    fn list(&self, filter: &ListFilter) -> anyhow::Result<Vec<SessionSummary>> {
        self.inner.list(filter)
    }

    fn find(&self, id: SessionId) -> anyhow::Result<Found> {
        self.inner.find(id)
    }

    fn open(&self, id: SessionId) -> anyhow::Result<Option<Opened>> {
        if let Some(o) = self.with_entries(|e| e.get(&id).map(|e| e.opened.clone())) {
            return Ok(Some(o));
        }
        let opened = self.inner.open(id)?;
        if let Some(o) = &opened {
            self.keep(id, o, None);
        }
        Ok(opened)
    }

    fn segments(&self, id: SessionId) -> anyhow::Result<Option<SessionSegments>> {
        let hit = self.with_entries(|e| {
            e.get(&id)
                .and_then(|e| Some((e.opened.clone(), Arc::clone(e.segments.as_ref()?))))
        });
        if let Some((opened, segments)) = hit {
            return Ok(Some(SessionSegments {
                summary: opened.summary,
                segments: Ok(segments),
            }));
        }
        let Some(opened) = self.open(id)? else {
            return Ok(None);
        };
        let made = SessionSegments::of(&opened)?;
        if let Ok(s) = &made.segments {
            self.keep(id, &opened, Some(Arc::clone(s)));
        }
        Ok(Some(made))
    }

    fn search(&self, q: &SearchQuery) -> anyhow::Result<Vec<Hit>> {
        self.inner.search(q)
    }

    fn report_html(
        &self,
        filter: &ReportFilter,
        visible: &(dyn Fn(&str, &str) -> bool + Sync),
    ) -> anyhow::Result<(String, Vec<String>)> {
        self.inner.report_html(filter, visible)
    }
}
