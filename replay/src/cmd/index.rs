//! `replay index`: builds or updates the search index from the store.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use search::index::{Hooks, UpdateReport};
use search::{OpenedSession, SessionInfo};
use store::ObjectStore;
use store::parquet_io::EventRef;

use crate::cli::IndexArgs;
use crate::cmd::ls;
use crate::open::{StoreArgs, operator_trust, trust, unseal};

/// Fewer sessions than this are indexed without a progress bar: it would only flicker.
const PROGRESS_MIN_SESSIONS: usize = 8;

/// Updates the index once, or with `--follow` until SIGINT/SIGTERM.
pub fn run(store_args: &StoreArgs, args: IndexArgs) -> anyhow::Result<()> {
    let keys = &store_args.keys;
    if args.index_sealed_text && keys.identities.is_empty() && !keys.kms {
        anyhow::bail!("--index-sealed-text needs --identity (or --kms) to open sealed sessions");
    }
    let (_, store) = store_args.open()?;
    let dir = store_args.index_dir(args.index.as_deref())?;
    let stop = Arc::new(AtomicBool::new(false));
    if args.follow {
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, Arc::clone(&stop)).context("cannot handle signals")?;
        }
    }
    let mut rebuild = args.rebuild;
    loop {
        let report = once(store.as_ref(), &dir, rebuild, store_args, &args)?;
        rebuild = false;
        if !args.follow || report.sessions > 0 {
            eprintln!("{}", summary(&report, &dir));
        }
        if !args.follow || sleep_unless(&stop, args.interval) {
            return Ok(());
        }
    }
}

/// Sleeps `d` in short steps; true if `stop` was set meanwhile.
/// The names of the rules that fire on any of `commands`, each once, in the rules' order.
fn findings(rules: &report::RuleSet, commands: &[search::commands::Command]) -> Vec<String> {
    rules
        .rules()
        .iter()
        .filter(|r| {
            commands
                .iter()
                .any(|c| r.matches(&c.line, &c.output).is_some())
        })
        .map(|r| r.name.clone())
        .collect()
}

fn sleep_unless(stop: &AtomicBool, d: Duration) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100).min(d));
    }
    stop.load(Ordering::Relaxed)
}

fn once(
    store: &dyn ObjectStore,
    dir: &Path,
    rebuild: bool,
    store_args: &StoreArgs,
    args: &IndexArgs,
) -> anyhow::Result<UpdateReport> {
    let mut unseal_text = |opened: &OpenedSession| {
        if !args.index_sealed_text {
            return None;
        }
        match unseal(&opened.info, &opened.rows, &store_args.keys) {
            Ok(events) => Some(events),
            Err(e) => {
                eprintln!(
                    "replay: indexing session {} by its metadata only: {e:#}",
                    opened.info.id
                );
                None
            }
        }
    };
    // Each session is verified as it is indexed, with the trust file in force now, so
    // that `replay ls` can show its integrity without reading the store. Both hooks
    // need the units, one after the other.
    let (_, trust) = trust(store_args)?;
    let units = std::cell::RefCell::new(crate::verdict::Units::default());
    let mut observe = |r: &EventRef<'_>| units.borrow_mut().observe(r);
    // The built-in rules of `replay report`, so that the web list can filter by what
    // they flag without running them over every command at each request.
    let rules = report::RuleSet::builtin();
    let mut listing = |info: &SessionInfo, commands: &[search::commands::Command]| {
        let report = crate::verdict::report(info, units.borrow_mut().take(info.id), &trust);
        let mut json = ls::to_json(info, report.state());
        json["findings"] = findings(&rules, commands).into();
        Some(json.to_string())
    };
    let mut bar: Option<ProgressBar> = None;
    let mut progress = |done: usize, total: usize| {
        if total < PROGRESS_MIN_SESSIONS || !std::io::stderr().is_terminal() {
            return;
        }
        let b = bar.get_or_insert_with(|| new_bar(total));
        b.set_position(done as u64);
    };
    let hooks = Hooks {
        unseal: &mut unseal_text,
        observe: &mut observe,
        listing: &mut listing,
        progress: &mut progress,
    };
    let report = search::index::update(store, dir, rebuild, hooks)
        .with_context(|| format!("cannot update the index at {}", dir.display()));
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let report = report?;
    for key in &report.unreadable {
        eprintln!("replay: could not read {key}; it will be tried again on the next run");
    }
    forget_purged(store, dir, store_args)?;
    Ok(report)
}

/// Drops from the index the sessions that trusted tombstones say were purged. A tombstone
/// by a key outside the operators' trust file hides nothing: otherwise anyone who can
/// write to the store could take a session out of every search.
fn forget_purged(
    store: &dyn ObjectStore,
    dir: &Path,
    store_args: &StoreArgs,
) -> anyhow::Result<()> {
    let (_, operators) = operator_trust(store_args)?;
    let (tombstones, problems) = lifecycle::read_tombstones(store, &operators)
        .with_context(|| format!("cannot read the tombstones in {}", store.describe()))?;
    for p in &problems {
        eprintln!(
            "replay: skipped a tombstone: {}",
            schemas::text::escape_controls(&p.to_string())
        );
    }
    let ids: Vec<schemas::SessionId> = tombstones
        .iter()
        .filter(|t| t.state.is_trusted())
        .map(|t| t.tombstone.session_id)
        .collect();
    let n = search::index::forget_sessions(dir, &ids).with_context(|| {
        format!(
            "cannot drop purged sessions from the index at {}",
            dir.display()
        )
    })?;
    if n > 0 {
        eprintln!("replay: dropped {n} purged session(s) from the index");
    }
    Ok(())
}

fn new_bar(total: usize) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    if let Ok(style) = ProgressStyle::with_template("indexing {bar:40} {pos}/{len} sessions {eta}")
    {
        bar.set_style(style);
    }
    bar
}

fn summary(r: &UpdateReport, dir: &Path) -> String {
    if r.new_objects == 0 {
        return format!("replay: the index at {} is up to date", dir.display());
    }
    format!(
        "replay: indexed {} new object(s): {} session(s), {} command(s), {} day(s) in {}",
        r.new_objects,
        r.sessions,
        r.commands,
        r.days.len(),
        dir.display()
    )
}
