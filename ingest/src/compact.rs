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
    let expired = match args.retention_days {
        Some(days) => retention(data_dir, &args, store.as_ref(), days)?,
        None => Vec::new(),
    };
    let options = Options {
        target_bytes: args.target_bytes,
        memory_bytes: args.max_memory,
        min_age: args.min_age,
        now: SystemTime::now(),
        dry_run: args.dry_run,
        // Purged already (tombstones written, rows removed); dropped again while merging,
        // so that no copy of their rows in an input could come back.
        drop_sessions: expired.iter().copied().collect(),
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

/// Retention: purges the sessions that started more than `days` days ago and are not
/// held (the `lifecycle` crate, as `replay purge --expired-before` does), with tombstones
/// signed by the operator key; returns them. With --dry-run, lists them only.
fn retention(
    data_dir: Option<&Path>,
    args: &CompactArgs,
    store: &dyn store::ObjectStore,
    days: u32,
) -> anyhow::Result<Vec<schemas::SessionId>> {
    let key_path = args.operator_key.as_deref().context(
        "--retention-days needs --operator-key FILE: every session it removes gets a tombstone \
         signed with it (`replay operator-key --operator-key FILE` makes one)",
    )?;
    let key = lifecycle::load_operator_key(key_path)
        .context("--retention-days cannot run, so nothing was compacted")?;
    let trust_path = match &args.trust {
        Some(p) => p.clone(),
        None => DataDir::resolve(data_dir)?.trusted_keys(),
    };
    let node_trust = integrity::TrustSet::load(&trust_path).with_context(|| {
        format!(
            "cannot read the nodes' trust file {} (give --trust FILE): without it the \
             tombstones could not keep the sessions' places in their nodes' ledgers",
            trust_path.display()
        )
    })?;
    let cutoff_ns =
        schemas::time::now_ns().saturating_sub(i64::from(days) * 86_400 * 1_000_000_000);
    let (holds, problems) = lifecycle::read_holds(store)?;
    for p in &problems {
        eprintln!("auditty-ingest: {p} (its session counts as held)");
    }
    let (expired, problems) = lifecycle::expired(store, cutoff_ns, &holds)?;
    for p in &problems {
        eprintln!("auditty-ingest: {p}; sessions only it holds are left for the next run");
    }
    let reason = format!("retention: started more than {days} days ago");
    if args.dry_run {
        for id in &expired {
            println!("{id}  would be purged ({reason})");
        }
        return Ok(Vec::new());
    }
    if expired.is_empty() {
        return Ok(expired);
    }
    // The access log says who removed what, before anything is removed (as `replay purge`).
    review::record_access(
        store,
        &review::Access {
            user: review::login_user(),
            action: "purge".into(),
            sessions: expired.iter().map(ToString::to_string).collect(),
            detail: format!("auditty-ingest compact --retention-days {days}"),
            time_ns: schemas::time::now_ns(),
            host: review::host_name(),
            key: String::new(),
        },
    )
    .context("cannot record the purge in the access log, so nothing was purged")?;
    let operator = lifecycle::Operator {
        key: &key,
        name: review::login_user(),
        os_user: review::login_user(),
        host: review::host_name(),
    };
    let report = lifecycle::purge(store, &expired, &reason, &operator, &node_trust)?;
    if !args.quiet {
        eprintln!(
            "auditty-ingest: retention purged {} session(s) ({} object(s) rewritten), each with a \
             signed tombstone",
            report.purged.len(),
            report.rewritten.len()
        );
    }
    Ok(expired)
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
