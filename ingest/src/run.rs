//! `auditty-ingest run`: passes over the source until told to stop.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use schemas::data_dir::DataDir;
use store::StoreUrl;

use crate::cli::RunArgs;
use crate::spool_source::{PassSummary, SpoolSource};

/// Parses `spool:DIR` (also `spool://DIR`).
pub fn parse_source(s: &str) -> anyhow::Result<PathBuf> {
    if let Some(rest) = s.strip_prefix("spool:") {
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        if rest.is_empty() {
            bail!("source {s:?} names no directory; expected spool:DIR");
        }
        return Ok(PathBuf::from(rest));
    }
    if s.starts_with("kafka://") {
        bail!("source {s:?}: Kafka sources are not built yet; use spool:DIR");
    }
    bail!("source {s:?} is not understood; expected spool:DIR")
}

/// Runs the ingester.
pub fn run(data_dir: Option<&Path>, args: RunArgs) -> anyhow::Result<()> {
    let resolve = || DataDir::resolve(data_dir);
    let spool_dir = match &args.source {
        Some(s) => parse_source(s)?,
        None => resolve()?.spool(),
    };
    let store_url = match &args.store {
        Some(s) => StoreUrl::parse(s)?,
        None => StoreUrl::Local(resolve()?.store()),
    };
    let store = store_url
        .open()
        .with_context(|| format!("cannot open store {store_url}"))?;
    let source = SpoolSource::new(spool_dir);

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("cannot install signal handlers")?;
    }

    let mut total = PassSummary::default();
    let started = Instant::now();
    loop {
        let pass = source
            .pass(store.as_ref(), &stop)
            .with_context(|| format!("ingesting {} into {store_url} failed; nothing past the last durable object was marked ingested, so a re-run picks up from there", source.dir().display()))?;
        accumulate(&mut total, &pass);
        if args.once || stop.load(Ordering::Relaxed) {
            break;
        }
        let wake = Instant::now() + Duration::from_millis(args.poll_interval_ms);
        while Instant::now() < wake && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    if !args.quiet {
        eprintln!(
            "auditty-ingest: {} events and {} session rows from {} spool files into {store_url} in {:.1}s ({} objects; {} dead letters, {} damaged stretches, {} torn tails; {} files done and removed)",
            total.written.events,
            total.written.sessions,
            total.segments,
            started.elapsed().as_secs_f64(),
            total.written.objects,
            total.written.dead_letters,
            total.damaged,
            total.torn_tails,
            total.deleted,
        );
    }
    if total.failed > 0 {
        bail!(
            "{} spool files could not be read (see above); they were left in place",
            total.failed
        );
    }
    Ok(())
}

fn accumulate(total: &mut PassSummary, pass: &PassSummary) {
    total.segments += pass.segments;
    total.written += pass.written;
    total.damaged += pass.damaged;
    total.torn_tails += pass.torn_tails;
    total.deleted += pass.deleted;
    total.failed += pass.failed;
}
