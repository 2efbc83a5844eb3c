//! What the server needs of the store, as a trait: `replay` implements it (opening
//! sessions with its identities, making asciicast, building reports), so that this crate
//! holds only HTTP, authentication and authorization. Every call is blocking; handlers
//! call it on tokio's blocking pool, and only through [`crate::authz::Scoped`].

use schemas::SessionId;
use search::index::{Hit, SearchQuery};
use serde::Serialize;
use store::ObjectStore;

/// One session as listed: what the list page and `GET /api/sessions` show.
#[derive(Clone, Debug, Serialize)]
pub struct SessionSummary {
    /// Session id, hyphenated.
    pub id: String,
    /// The user it recorded.
    pub user: String,
    /// The host it ran on.
    pub host: String,
    /// Start, UTC ns.
    pub start_time_ns: i64,
    /// Length.
    pub duration_ns: u64,
    /// Sealed for recipients.
    pub sealed: bool,
    /// Integrity state, as `replay ls` shows it.
    pub integrity: String,
    /// Everything `replay ls --json` says of it.
    pub listing: serde_json::Value,
}

impl SessionSummary {
    /// The names of the built-in rules that fire on its commands, as `replay index`
    /// stored them in the listing (empty when the index holds none).
    pub fn findings(&self) -> Vec<String> {
        self.listing["findings"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the listing says which rules fire (an index of version 4 or later).
    pub fn knows_findings(&self) -> bool {
        self.listing["findings"].is_array()
    }
}

/// A command of a session, with its offset.
#[derive(Clone, Debug, Serialize)]
pub struct CommandRow {
    /// Its number, as `replay commands` numbers them.
    pub index: usize,
    /// Offset into the session, ns.
    pub offset_ns: u64,
    /// Offset into the session, seconds.
    pub offset: f64,
    /// The command line.
    pub command: String,
    /// Exit status, if the shell reported it.
    pub exit_status: Option<i32>,
}

/// What opening a session gave.
#[derive(Clone, Debug)]
pub enum Content {
    /// Its asciicast v2 and its commands.
    Clear {
        /// asciicast v2, as `replay export` writes it (shared: cached and cloned cheaply).
        cast: axum::body::Bytes,
        /// Its commands.
        commands: Vec<CommandRow>,
    },
    /// Sealed and none of the server's identities opens it.
    Sealed {
        /// Whom it is sealed for.
        sealed_for: String,
    },
}

/// A session opened.
#[derive(Clone, Debug)]
pub struct Opened {
    /// Its metadata.
    pub summary: SessionSummary,
    /// Its content.
    pub content: Content,
}

/// What the index says of a session, before any of it is read.
#[derive(Clone, Debug)]
pub enum Found {
    /// Listed, with this metadata.
    Listed(SessionSummary),
    /// Not in the index.
    Absent,
    /// There is no index to ask: the session must be read to know.
    Unknown,
}

/// Filters of a listing (all optional, all must hold).
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    /// Exact user.
    pub user: Option<String>,
    /// Exact host.
    pub host: Option<String>,
    /// Started at or after, UTC ns.
    pub since_ns: Option<i64>,
    /// Started at or before, UTC ns.
    pub until_ns: Option<i64>,
    /// Only the latest this many (still oldest first).
    pub limit: Option<usize>,
}

/// Filters of a report.
#[derive(Clone, Debug, Default)]
pub struct ReportFilter {
    /// Started at or after, UTC ns.
    pub since_ns: Option<i64>,
    /// Started at or before, UTC ns.
    pub until_ns: Option<i64>,
    /// Exact user.
    pub user: Option<String>,
    /// Exact host.
    pub host: Option<String>,
    /// Only sessions with a finding.
    pub flagged: bool,
}

/// The store as the server reads it.
pub trait Backend: Send + Sync + 'static {
    /// The store, for the access log.
    fn store(&self) -> &dyn ObjectStore;
    /// A time as the command line takes it (RFC 3339 or a UTC date; `end`: a date means
    /// its last nanosecond), UTC ns; `None` if it is not one.
    fn parse_time(&self, text: &str, end: bool) -> Option<i64>;
    /// Every session matching `filter`, oldest first (from the index when there is one).
    fn list(&self, filter: &ListFilter) -> anyhow::Result<Vec<SessionSummary>>;
    /// What the index holds of session `id`, without reading the store: so that a
    /// session the caller may not see is refused at the cost of a missing one, before
    /// its rows are read.
    fn find(&self, id: SessionId) -> anyhow::Result<Found>;
    /// Session `id` (a full id), or `None` if it is not in the store.
    fn open(&self, id: SessionId) -> anyhow::Result<Option<Opened>>;
    /// Search hits of `q` (the index), newest first.
    fn search(&self, q: &SearchQuery) -> anyhow::Result<Vec<Hit>>;
    /// The HTML report over the sessions of `filter` for which `visible(user, host)`
    /// holds, and nothing of any other session (no rows, reviews, access events,
    /// baselines or ledger problems); with the ids of the sessions it covers.
    fn report_html(
        &self,
        filter: &ReportFilter,
        visible: &(dyn Fn(&str, &str) -> bool + Sync),
    ) -> anyhow::Result<(String, Vec<String>)>;
    /// Session `id` cut into the player's segments ([`crate::segments`]), or `None` if
    /// it is not in the store. Backends that keep sessions keep these too.
    fn segments(&self, id: SessionId) -> anyhow::Result<Option<SessionSegments>> {
        self.open(id)?.map(|o| SessionSegments::of(&o)).transpose()
    }
}

/// A session as the segmented player takes it.
#[derive(Clone, Debug)]
pub struct SessionSegments {
    /// Its metadata.
    pub summary: SessionSummary,
    /// The segments, or whom it is sealed for.
    pub segments: Result<std::sync::Arc<crate::segments::Segmented>, String>,
}

impl SessionSegments {
    /// Cuts an opened session.
    pub fn of(opened: &Opened) -> anyhow::Result<SessionSegments> {
        let segments = match &opened.content {
            Content::Sealed { sealed_for } => Err(sealed_for.clone()),
            Content::Clear { cast, commands } => {
                let base = format!("/api/sessions/{}/cast/segments", opened.summary.id);
                let markers: Vec<(u64, &str)> = commands
                    .iter()
                    .map(|c| (c.offset_ns, c.command.as_str()))
                    .collect();
                Ok(std::sync::Arc::new(crate::segments::build(
                    cast, &base, &markers,
                )?))
            }
        };
        Ok(SessionSegments {
            summary: opened.summary.clone(),
            segments,
        })
    }
}
