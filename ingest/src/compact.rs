//! `auditty-ingest compact`: the command around [`store::compact`], which holds the
//! merge and its safety rules. This file resolves the store and the dates, wires the
//! failpoints and prints the plan or the summary.

use std::path::Path;
use std::time::{Instant, SystemTime};

use anyhow::{Context, bail};
use schemas::data_dir::DataDir;
use store::StoreUrl;
use store::compact::{self, Options};

use crate::cli::CompactArgs;
use crate::failpoint;

/// Runs `compact`.
pub fn run(data_dir: Option<&Path>, args: CompactArgs) -> anyhow::Result<()> {
    let store_url = match &args.store {
        Some(s) => args.s3.store_url(s)?,
        None => StoreUrl::Local(DataDir::resolve(data_dir)?.store()),
    };
    let store = store_url
        .open()
        .with_context(|| format!("cannot open store {store_url}"))?;
    for d in &args.date {
        if !is_date(d) {
            bail!("--date {d:?} is not a day; write it as YYYY-MM-DD (UTC), e.g. 2026-11-27");
        }
    }
    let dates = if args.date.is_empty() {
        compact::dates(store.as_ref())
            .with_context(|| format!("cannot list the days of {store_url}"))?
    } else {
        args.date.clone()
    };
    let options = Options {
        target_bytes: args.target_bytes,
        memory_bytes: args.max_memory,
        min_age: args.min_age,
        now: SystemTime::now(),
        dry_run: args.dry_run,
        // Retention decides which sessions expired; until it is wired here, none.
        drop_sessions: Default::default(),
    };
    let started = Instant::now();
    let cpu_started = cpu_time();
    let summary = compact::compact(store.as_ref(), &dates, &options, &mut |point| {
        failpoint::hit(point)
    })
    .with_context(|| {
        format!(
            "compacting {store_url} failed; the store is readable as it is, and running \
             compact again finishes the merge it was doing"
        )
    })?;
    if args.dry_run {
        for m in &summary.plan {
            let bytes: u64 = m.inputs.iter().map(|o| o.size).sum();
            println!(
                "would merge {} {} objects ({bytes} bytes):",
                m.inputs.len(),
                m.table
            );
            for o in &m.inputs {
                println!("  {} ({} bytes)", o.key, o.size);
            }
        }
        if summary.plan.is_empty() {
            println!("nothing to merge");
        }
    }
    if !args.quiet {
        let verb = if args.dry_run { "would leave" } else { "left" };
        eprintln!(
            "auditty-ingest: compacted {} day(s) of {store_url} in {:.1}s ({:.1}s CPU): \
             {} objects ({} bytes) before, {verb} {} objects ({} bytes); {} merged objects \
             written, {} inputs deleted, {} rows in, {} rows out ({} identical duplicates \
             dropped, {} rows of dropped sessions); {} interrupted merges finished; {} \
             objects younger than --min-age left alone",
            dates.len(),
            started.elapsed().as_secs_f64(),
            cpu_time().saturating_sub(cpu_started).as_secs_f64(),
            summary.objects_before,
            summary.bytes_before,
            summary.objects_after,
            summary.bytes_after,
            summary.merged,
            summary.deleted,
            summary.rows_in,
            summary.rows_out,
            summary.duplicates,
            summary.dropped,
            summary.resumed,
            summary.too_young,
        );
    }
    Ok(())
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

/// CPU time of this process so far (user + system), for the summary.
fn cpu_time() -> std::time::Duration {
    // SAFETY: getrusage fills the struct we pass; RUSAGE_SELF is always valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return std::time::Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        std::time::Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + std::time::Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}
