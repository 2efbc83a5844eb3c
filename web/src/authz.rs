//! Authorization, in one place: [`Authz::visible`] says whether a caller may see a
//! session, and [`Scoped`] is the only way handlers reach the [`Backend`]: every listing,
//! search hit, report input and single-session lookup it returns has passed through
//! `visible`. What is not visible is treated exactly as what does not exist.

use std::collections::HashSet;
use std::sync::Arc;

use schemas::SessionId;
use search::index::{Hit, SearchQuery};

use crate::auth::Caller;
use crate::backend::{
    Backend, Found, ListFilter, Opened, ReportFilter, SessionSegments, SessionSummary,
};

/// The one authorization rule: default-deny, a session is visible to a caller when one of
/// the caller's roles covers its user and host.
pub struct Authz;

impl Authz {
    /// Whether `caller` may list, search, play and report on a session of `user` on
    /// `host`.
    pub fn visible(caller: &Caller, user: &str, host: &str) -> bool {
        caller.roles.iter().any(|r| r.covers(user, host))
    }
}

/// The backend as one caller sees it.
pub struct Scoped<'a> {
    backend: &'a Arc<dyn Backend>,
    caller: &'a Caller,
}

/// Most commands a search reads from the index to find enough visible hits.
const SEARCH_READ_MAX: usize = 10_000;

impl<'a> Scoped<'a> {
    /// The backend as `caller` sees it.
    pub fn new(backend: &'a Arc<dyn Backend>, caller: &'a Caller) -> Scoped<'a> {
        Scoped { backend, caller }
    }

    fn sees(&self, s: &SessionSummary) -> bool {
        Authz::visible(self.caller, &s.user, &s.host)
    }

    /// Page `page` (0-based) of `per_page` visible sessions matching `filter` and `keep`, newest
    /// first, and whether more follow. Reads from the backend only the latest sessions
    /// it needs, more as invisible ones are skipped, so that the first pages of a large
    /// store are fast.
    pub fn list_page(
        &self,
        filter: &ListFilter,
        keep: &dyn Fn(&SessionSummary) -> bool,
        page: usize,
        per_page: usize,
    ) -> anyhow::Result<(Vec<SessionSummary>, bool)> {
        let need = page
            .saturating_add(1)
            .saturating_mul(per_page)
            .saturating_add(1);
        let mut read = need;
        loop {
            let q = ListFilter {
                limit: Some(read),
                ..filter.clone()
            };
            let raw = self.backend.list(&q)?;
            let exhausted = raw.len() < read;
            let visible: Vec<SessionSummary> = raw
                .into_iter()
                .rev()
                .filter(|s| self.sees(s) && keep(s))
                .collect();
            if visible.len() >= need || exhausted {
                let more = visible.len() > (page + 1) * per_page;
                let rows = visible
                    .into_iter()
                    .skip(page * per_page)
                    .take(per_page)
                    .collect();
                return Ok((rows, more));
            }
            read = read.saturating_mul(4);
        }
    }

    /// Session `id` opened, or `None` when it is missing or not visible (the same
    /// answer).
    pub fn open(&self, id: SessionId) -> anyhow::Result<Option<Opened>> {
        if !self.may_read(id)? {
            return Ok(None);
        }
        Ok(self.backend.open(id)?.filter(|o| self.sees(&o.summary)))
    }

    /// Whether session `id` may be read at all, from the index when there is one: a
    /// session that is not visible costs the same index lookup as one that is not there,
    /// and none of its rows are read. (What is read is checked again on its own metadata.)
    fn may_read(&self, id: SessionId) -> anyhow::Result<bool> {
        Ok(match self.backend.find(id)? {
            Found::Absent => false,
            Found::Listed(s) => self.sees(&s),
            Found::Unknown => true,
        })
    }

    /// Session `id` as the player's segments, or `None` when it is missing or not
    /// visible (the same answer): refused as [`Scoped::open`] refuses.
    pub fn segments(&self, id: SessionId) -> anyhow::Result<Option<SessionSegments>> {
        if !self.may_read(id)? {
            return Ok(None);
        }
        Ok(self.backend.segments(id)?.filter(|s| self.sees(&s.summary)))
    }

    /// The visible hits of `q`, newest first, at most `q.limit`: hits outside the
    /// caller's roles are dropped before they are counted.
    pub fn search(&self, q: &SearchQuery) -> anyhow::Result<Vec<Hit>> {
        let want = q.limit;
        let mut read = want.max(1).saturating_mul(4);
        loop {
            let query = SearchQuery {
                limit: read,
                ..q.clone()
            };
            let raw = self.backend.search(&query)?;
            let exhausted = raw.len() < read || read >= SEARCH_READ_MAX;
            let mut hits: Vec<Hit> = raw
                .into_iter()
                .filter(|h| Authz::visible(self.caller, &h.user, &h.host))
                .collect();
            if hits.len() >= want || exhausted {
                hits.truncate(want);
                return Ok(hits);
            }
            read = read.saturating_mul(4).min(SEARCH_READ_MAX);
        }
    }

    /// The report (HTML) over the visible sessions of `filter`, and their ids.
    pub fn report(&self, filter: &ReportFilter) -> anyhow::Result<(String, Vec<String>)> {
        let caller = self.caller;
        let visible = move |user: &str, host: &str| Authz::visible(caller, user, host);
        let (html, ids) = self.backend.report_html(filter, &visible)?;
        Ok((html, ids))
    }

    /// Ids of `sessions` (for the access log), each once.
    pub fn ids(sessions: impl IntoIterator<Item = String>) -> Vec<String> {
        let mut seen = HashSet::new();
        sessions
            .into_iter()
            .filter(|s| seen.insert(s.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::backend::Content;
    use std::sync::Mutex;

    /// Sessions 0..n alternating web-N / db-N hosts, started at second N; records which
    /// sessions were opened.
    struct Fake {
        n: usize,
        opened: Mutex<Vec<String>>,
        store: store::LocalStore,
        _dir: tempfile::TempDir,
    }

    impl Fake {
        fn new(n: usize) -> Fake {
            let dir = tempfile::tempdir().unwrap();
            Fake {
                n,
                opened: Mutex::default(),
                store: store::LocalStore::new(dir.path()).unwrap(),
                _dir: dir,
            }
        }
    }

    fn id(i: usize) -> String {
        format!("00000000-0000-7000-8000-{i:012}")
    }

    fn summary(i: usize) -> SessionSummary {
        let host = if i.is_multiple_of(2) { "web" } else { "db" };
        SessionSummary {
            id: id(i),
            user: "alice".into(),
            host: format!("{host}-{i}"),
            start_time_ns: i as i64,
            duration_ns: 1,
            sealed: false,
            integrity: "complete".into(),
            listing: serde_json::Value::Null,
        }
    }

    impl Backend for Fake {
        fn store(&self) -> &dyn store::ObjectStore {
            &self.store
        }
        fn parse_time(&self, _: &str, _: bool) -> Option<i64> {
            None
        }
        fn list(&self, f: &ListFilter) -> anyhow::Result<Vec<SessionSummary>> {
            let all: Vec<SessionSummary> = (0..self.n).map(summary).collect();
            let skip = f.limit.map_or(0, |l| all.len().saturating_sub(l));
            Ok(all.into_iter().skip(skip).collect())
        }
        fn find(&self, id: SessionId) -> anyhow::Result<Found> {
            Ok((0..self.n)
                .find(|i| self::id(*i) == id.to_string())
                .map_or(Found::Absent, |i| Found::Listed(summary(i))))
        }
        fn open(&self, id: SessionId) -> anyhow::Result<Option<Opened>> {
            self.opened.lock().unwrap().push(id.to_string());
            let i = (0..self.n).find(|i| self::id(*i) == id.to_string());
            Ok(i.map(|i| Opened {
                summary: summary(i),
                content: Content::Sealed {
                    sealed_for: "x".into(),
                },
            }))
        }
        fn search(&self, q: &SearchQuery) -> anyhow::Result<Vec<Hit>> {
            Ok((0..self.n)
                .rev()
                .map(|i| {
                    let s = summary(i);
                    Hit {
                        session: s.id,
                        user: s.user,
                        host: s.host,
                        time_ns: i as i64,
                        offset_ns: 0,
                        index: Some(0),
                        command: "ls".into(),
                        exit_status: None,
                        snippet: "ls".into(),
                        highlighted: vec![],
                    }
                })
                .take(q.limit)
                .collect())
        }
        fn report_html(
            &self,
            _: &ReportFilter,
            visible: &(dyn Fn(&str, &str) -> bool + Sync),
        ) -> anyhow::Result<(String, Vec<String>)> {
            let ids = (0..self.n)
                .map(summary)
                .filter(|s| visible(&s.user, &s.host))
                .map(|s| s.id)
                .collect();
            Ok((String::new(), ids))
        }
    }

    fn web_caller() -> Caller {
        Caller {
            name: "t".into(),
            roles: vec![Role {
                name: "web".into(),
                hosts: vec!["web-*".into()],
                users: vec!["*".into()],
            }],
        }
    }

    fn fake(n: usize) -> Arc<dyn Backend> {
        Arc::new(Fake::new(n))
    }

    #[test]
    fn scoped_views_hold_only_visible_sessions() {
        let backend = fake(100);
        let caller = web_caller();
        let scoped = Scoped::new(&backend, &caller);
        let (page, more) = scoped
            .list_page(&ListFilter::default(), &|_| true, 0, 10)
            .unwrap();
        let hosts: Vec<&str> = page.iter().map(|s| s.host.as_str()).collect();
        assert_eq!(hosts[..3], ["web-98", "web-96", "web-94"]);
        assert_eq!(page.len(), 10);
        assert!(more);
        let (last, more) = scoped
            .list_page(&ListFilter::default(), &|_| true, 4, 10)
            .unwrap();
        assert_eq!(last.len(), 10);
        assert!(!more);
        assert_eq!(last[9].host, "web-0");
        // Hits of db are dropped before counting: 20 asked, 20 web hits given.
        let hits = scoped
            .search(&SearchQuery {
                text: "ls".into(),
                limit: 20,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(hits.len(), 20);
        assert!(hits.iter().all(|h| h.host.starts_with("web-")));
        let (_, ids) = scoped.report(&ReportFilter::default()).unwrap();
        assert_eq!(ids.len(), 50);
        assert!(
            ids.iter()
                .all(|i| summary(i[24..].parse().unwrap()).host.starts_with("web"))
        );
    }

    #[test]
    fn invisible_and_missing_sessions_are_refused_alike_without_reading() {
        let fake = Arc::new(Fake::new(4));
        let backend: Arc<dyn Backend> = fake.clone();
        let caller = web_caller();
        let scoped = Scoped::new(&backend, &caller);
        let parse = |i: usize| id(i).parse::<SessionId>().unwrap();
        assert!(scoped.open(parse(0)).unwrap().is_some());
        assert!(scoped.open(parse(1)).unwrap().is_none(), "db-1");
        assert!(scoped.open(parse(7)).unwrap().is_none(), "missing");
        assert_eq!(*fake.opened.lock().unwrap(), vec![id(0)]);
    }

    #[test]
    fn default_deny_and_any_role_grants() {
        let nobody = Caller {
            name: "n".into(),
            roles: vec![],
        };
        assert!(!Authz::visible(&nobody, "alice", "web-1"));
        let two = Caller {
            name: "t".into(),
            roles: vec![
                Role {
                    name: "web".into(),
                    hosts: vec!["web-*".into()],
                    users: vec!["*".into()],
                },
                Role {
                    name: "db-alice".into(),
                    hosts: vec!["db-*".into()],
                    users: vec!["alice".into()],
                },
            ],
        };
        assert!(Authz::visible(&two, "bob", "web-2"));
        assert!(Authz::visible(&two, "alice", "db-1"));
        assert!(!Authz::visible(&two, "bob", "db-1"));
    }
}
