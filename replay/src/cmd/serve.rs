//! `replay serve`: the web player (`web` crate) over this store. [`StoreBackend`] is how
//! the server reads it: listings from the index (the store when there is none), sessions
//! opened with the global `--identity`/`--kms` keys, asciicast as `replay export` writes
//! it, commands as `replay commands` lists them, reports as `replay report` builds them.

use std::path::PathBuf;
use std::sync::Arc;

use integrity::TrustSet;
use report::{Filters, RuleSet};
use schemas::SessionId;
use search::CatalogError;
use search::index::{Hit, IndexError, ListQuery, SearchQuery};
use serde_json::Value;
use store::ObjectStore;
use web::backend::{
    Backend, CommandRow, Content, Found, ListFilter, Opened, ReportFilter, SessionSummary,
};

use crate::cli::{ReportArgs, ReportFormat, ServeAction, ServeArgs};
use crate::cmd::search::time_bound;
use crate::formats::{View, asciicast};
use crate::open::{OpenSession, StoreArgs, session_key, trust, unseal};
use crate::verdict::Units;

/// Serves, or prints a password hash.
pub fn run(store_args: &StoreArgs, args: ServeArgs, access_log: bool) -> anyhow::Result<()> {
    if let Some(ServeAction::HashPassword) = args.action {
        println!("{}", web::hash_password_from_stdin()?);
        return Ok(());
    }
    let Some(auth) = args.auth.clone() else {
        anyhow::bail!("give --auth FILE (users, tokens and roles; see `replay serve --help`)");
    };
    let tls = match (args.tls_cert.clone(), args.tls_key.clone()) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => anyhow::bail!("--tls-cert and --tls-key go together"),
    };
    let config = web::ServeConfig {
        listen: args.listen,
        tls,
        insecure_http: args.insecure_http,
        auth,
        access_log,
    };
    web::check_listen(&config).map_err(anyhow::Error::msg)?;
    if !access_log {
        eprintln!(
            "replay: --no-access-log: nothing this server shows is recorded in the access log"
        );
    }
    let (_, store) = store_args.open()?;
    let (_, trust) = trust(store_args)?;
    let backend = StoreBackend {
        index: store_args.index_dir(args.index.as_deref())?,
        store_args: store_args.clone(),
        store,
        trust,
    };
    web::run(&config, Arc::new(backend))
}

/// How far from the time in its id a session's start is looked for in the index.
const FIND_WINDOW_NS: i64 = 3600 * 1_000_000_000;

/// The store as the web server reads it.
pub struct StoreBackend {
    store_args: StoreArgs,
    store: Box<dyn ObjectStore>,
    index: PathBuf,
    trust: TrustSet,
}

fn summary(v: Value) -> SessionSummary {
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    SessionSummary {
        id: text("id"),
        user: text("user"),
        host: text("host"),
        start_time_ns: v["start_time_ns"].as_i64().unwrap_or(0),
        duration_ns: v["duration_ns"].as_u64().unwrap_or(0),
        sealed: v["sealed"].as_bool().unwrap_or(false),
        integrity: text("integrity"),
        listing: v,
    }
}

impl StoreBackend {
    fn content(&self, session: &OpenSession) -> Content {
        let cast = asciicast(&View::from(session), None);
        let commands = crate::cmd::commands::commands(session)
            .into_iter()
            .map(|c| CommandRow {
                index: c.index,
                offset_ns: c.elapsed_ns,
                offset: c.elapsed_ns as f64 / 1e9,
                command: c.line,
                exit_status: c.exit_status,
            })
            .collect();
        Content::Clear {
            cast: cast.into(),
            commands,
        }
    }
}

impl Backend for StoreBackend {
    fn store(&self) -> &dyn ObjectStore {
        self.store.as_ref()
    }

    fn parse_time(&self, text: &str, end: bool) -> Option<i64> {
        time_bound(Some(text), end).ok().flatten()
    }

    fn list(&self, f: &ListFilter) -> anyhow::Result<Vec<SessionSummary>> {
        let query = ListQuery {
            user: f.user.clone(),
            host: f.host.clone(),
            since_ns: f.since_ns,
            until_ns: f.until_ns,
            limit: f.limit,
        };
        let list = match crate::cmd::ls::from_index(&self.index, &query) {
            Ok(list) => list,
            Err(IndexError::Missing { .. } | IndexError::Outdated { .. }) => {
                crate::cmd::ls::scan(&self.store_args, &query)?
            }
            Err(e) => return Err(e.into()),
        };
        Ok(list.into_iter().map(summary).collect())
    }

    fn find(&self, id: SessionId) -> anyhow::Result<Found> {
        // A session id (UUIDv7) carries its start to the millisecond: only the index
        // documents of sessions started around then are read.
        let Some((secs, _)) = id.0.get_timestamp().map(|t| t.to_unix()) else {
            return Ok(Found::Unknown);
        };
        let t = i64::try_from(secs).unwrap_or(i64::MAX / 2) * 1_000_000_000;
        let query = ListQuery {
            since_ns: Some(t.saturating_sub(FIND_WINDOW_NS)),
            until_ns: Some(t.saturating_add(FIND_WINDOW_NS)),
            ..ListQuery::default()
        };
        let want = id.to_string();
        match crate::cmd::ls::from_index(&self.index, &query) {
            Ok(list) => Ok(list
                .into_iter()
                .find(|v| v["id"].as_str() == Some(want.as_str()))
                .map_or(Found::Absent, |v| Found::Listed(summary(v)))),
            Err(IndexError::Missing { .. } | IndexError::Outdated { .. }) => Ok(Found::Unknown),
            Err(e) => Err(e.into()),
        }
    }

    fn open(&self, id: SessionId) -> anyhow::Result<Option<Opened>> {
        let mut units = Units::default();
        let opened = match search::find_and_open_session_observing(
            self.store.as_ref(),
            &id.to_string(),
            |r| units.observe(r),
        ) {
            Ok(o) => o,
            Err(CatalogError::SessionNotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let state = crate::verdict::report(&opened.info, units.take(id), &self.trust).state();
        let summary = summary(crate::cmd::ls::to_json(&opened.info, state));
        let content = if opened.info.sealed {
            match session_key(&opened.info, &self.store_args.keys) {
                Ok(_) => {
                    let events = unseal(&opened.info, &opened.rows, &self.store_args.keys)?;
                    self.content(&OpenSession {
                        info: opened.info,
                        events,
                    })
                }
                Err(_) => Content::Sealed {
                    sealed_for: sealed_for(&summary.listing),
                },
            }
        } else {
            let events = opened.rows.iter().filter_map(|r| r.to_event()).collect();
            self.content(&OpenSession {
                info: opened.info,
                events,
            })
        };
        Ok(Some(Opened { summary, content }))
    }

    fn search(&self, q: &SearchQuery) -> anyhow::Result<Vec<Hit>> {
        Ok(search::index::search(&self.index, q)?)
    }

    fn report_html(
        &self,
        f: &ReportFilter,
        visible: &(dyn Fn(&str, &str) -> bool + Sync),
    ) -> anyhow::Result<(String, Vec<String>)> {
        let filters = Filters {
            since_ns: f.since_ns,
            until_ns: f.until_ns,
            user: f.user.clone(),
            host: f.host.clone(),
            flagged: f.flagged,
        };
        let args = report_args(f.flagged);
        let inputs = crate::cmd::report::gather(
            self.store.as_ref(),
            &self.store_args,
            &self.trust,
            filters,
            &args,
            visible,
        )?;
        let ids = inputs.sessions.iter().map(|s| s.id.clone()).collect();
        let report = report::build(inputs, &RuleSet::builtin());
        Ok((report::html::render(&report), ids))
    }
}

/// Whom a sealed session is sealed for, from its listing.
fn sealed_for(listing: &Value) -> String {
    match &listing["sealed_for"] {
        Value::Array(a) => a
            .iter()
            .map(|r| r.as_str().map_or_else(|| r.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Null => "recipients it does not name".into(),
        v => v.to_string(),
    }
}

/// `replay report`'s defaults, for a report made by the server.
fn report_args(flagged: bool) -> ReportArgs {
    ReportArgs {
        since: None,
        until: None,
        user: None,
        host: None,
        flagged,
        format: ReportFormat::Html,
        out: None,
        force: false,
        rules: None,
        no_default_rules: false,
        print_rules: false,
        review_max_age_days: 7.0,
        reviewer_trust: None,
    }
}
