//! The access log: every `replay` run that shows recordings records who, what, when and
//! from where in the store's `access/` folder, before it shows anything.
//!
//! Failing closed: if the event cannot be written, the command fails and shows nothing,
//! unless `--no-access-log` was given (README, "Reviews and the access log", says why).

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use store::ObjectStore;

/// Whether runs are recorded; `--no-access-log` clears it, once, in `main`.
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the access log on (the default) or off (`--no-access-log`) for this process.
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Records that this process is about to show `sessions` (full ids, or what the user
/// typed: an id prefix is resolved to its full id where it names exactly one session) for
/// `action` (`play`, `export`, `search`, `commands`, `report`, `review`), with `detail`
/// (the query of a search, the format of an export, the filters of a report, …).
///
/// Call it after the data was read and before any of it is shown or written. An error
/// means nothing must be shown: the caller returns it.
pub fn record(
    store: &dyn ObjectStore,
    action: &str,
    sessions: &[&str],
    detail: &str,
) -> anyhow::Result<()> {
    if skipped(action) {
        return Ok(());
    }
    let sessions = sessions
        .iter()
        .map(|s| full_id(store, s))
        .collect::<Vec<_>>();
    let access = review::Access {
        user: review::login_user(),
        action: action.to_string(),
        sessions,
        detail: detail.to_string(),
        time_ns: schemas::time::now_ns(),
        host: review::host_name(),
        key: String::new(),
    };
    match review::record_access(store, &access) {
        Ok(_) => Ok(()),
        Err(e) => Err(anyhow::anyhow!(
            "cannot record this {action} in the access log: {e}\n  \
             nothing was shown: play, export, search, commands, report and review are logged in the store's access/ folder first\n  \
             try: give this user write access to the store's access/ and reviews/ folders (on S3: s3:PutObject on PREFIX/access/* and PREFIX/reviews/*),\n       \
             or pass --no-access-log to go on without a record"
        )),
    }
}

/// Whether the access log is off (`--no-access-log`); says so on stderr.
fn skipped(action: &str) -> bool {
    let off = !ENABLED.load(Ordering::Relaxed);
    if off {
        eprintln!("replay: --no-access-log: this {action} is not recorded in the access log");
    }
    off
}

/// The full id of `query`: itself when it is one, else the one session it is a unique
/// prefix of, else (unknown, ambiguous, store unreadable) the text as given.
fn full_id(store: &dyn ObjectStore, query: &str) -> String {
    if let Ok(id) = query.trim().parse::<schemas::SessionId>() {
        return id.to_string();
    }
    search::find_session(store, query).map_or_else(|_| query.to_string(), |id| id.to_string())
}

/// [`record`] for `replay search`: the sessions of the hits (each once, in the order
/// shown), and as detail the query followed by its filters as flags
/// (`QUERY [--user U] [--host H] [--since T] [--until T]`). Opens the store, which the
/// search itself does not need.
pub fn record_search(
    store_args: &crate::open::StoreArgs,
    args: &crate::cli::SearchArgs,
    hits: &[search::index::Hit],
) -> anyhow::Result<()> {
    if skipped("search") {
        return Ok(());
    }
    let (_, store) = store_args
        .open()
        .context("cannot record this search in the access log, so nothing was shown (pass --no-access-log to go on without a record)")?;
    let mut ids: Vec<&str> = Vec::new();
    for h in hits {
        if !ids.contains(&h.session.as_str()) {
            ids.push(&h.session);
        }
    }
    let mut detail = args.query.clone();
    for (flag, value) in [
        ("--user", &args.user),
        ("--host", &args.host),
        ("--since", &args.since),
        ("--until", &args.until),
    ] {
        if let Some(v) = value {
            detail.push_str(&format!(" {flag} {v}"));
        }
    }
    record(store.as_ref(), "search", &ids, &detail)
}

/// [`record`] for `play` and `commands`: the one session opened, no detail.
pub fn record_opened(
    store: &dyn ObjectStore,
    action: &str,
    session: &crate::open::OpenSession,
) -> anyhow::Result<()> {
    record(store, action, &[&session.info.id.to_string()], "")
}

/// [`record`] for `export`: the session asked for (a prefix is resolved) and as detail the
/// format, followed by ` -o FILE` when written to a file.
pub fn record_export(store: &dyn ObjectStore, args: &crate::cli::ExportArgs) -> anyhow::Result<()> {
    let format = clap::ValueEnum::to_possible_value(&args.format).map_or_else(
        || format!("{:?}", args.format),
        |v| v.get_name().to_string(),
    );
    let detail = match &args.output {
        Some(path) => format!("{format} -o {}", path.display()),
        None => format,
    };
    record(store, "export", &[&args.session], &detail)
}
