//! Kafka → Parquet ingest benchmark: how fast `auditty-ingest` turns a topic of chunks
//! into Parquet, and what it costs in CPU.
//!
//! It starts a real broker (tansu, like the tests), produces synthetic sessions as chunks,
//! then times one `auditty-ingest run --source kafka://… --once` over the whole topic and
//! reads the ingester's CPU time from `wait4`. It prints numbers; it asserts nothing.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use auditty_tests::broker::Broker;
use auditty_tests::synthetic;
use clap::Parser;
use schemas::SessionId;

/// Measures Kafka → Parquet ingest throughput and CPU.
#[derive(Parser, Debug)]
#[command(name = "auditty-bench-kafka", version, about)]
struct Args {
    /// Events in total.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Sessions the events are spread over.
    #[arg(long, default_value_t = 100)]
    sessions: u64,
    /// Events per chunk (one Kafka record).
    #[arg(long, default_value_t = 200)]
    chunk_events: usize,
    /// Topic partitions.
    #[arg(long, default_value_t = 3)]
    partitions: u32,
    /// Directory holding auditty-ingest (default: target/release next to this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Small run for smoke tests: 20,000 events.
    #[arg(long)]
    quick: bool,
}

/// What a typical shell session writes: short lines of mixed text.
fn output_line(seq: u64) -> Vec<u8> {
    format!(
        "{seq:>8}  drwxr-xr-x  2 alice staff  4096 Nov 27 22:46 project-{:04}\r\n",
        seq % 997
    )
    .into_bytes()
}

fn session_records(id: SessionId, n: u64, per_chunk: usize) -> (Vec<Vec<u8>>, u64) {
    let events = synthetic::session_events(n, 250_000, output_line);
    let raw: u64 = events.iter().map(|e| e.data.len() as u64).sum();
    (synthetic::chunks(id, &events, per_chunk), raw)
}

fn dir_size(p: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.quick {
        args.events = 20_000;
        args.sessions = 10;
    }
    let bin_dir = auditty_bench::bin_dir(args.bin_dir.clone())?;
    let ingest = auditty_bench::binary(&bin_dir, "auditty-ingest", "cargo build --release --bins")?;
    let work = tempfile::Builder::new()
        .prefix("auditty-bench-kafka-")
        .tempdir()?;
    let broker = Broker::start(&work.path().join("broker"));
    broker.create_topic("bench", args.partitions);

    let per_session = (args.events / args.sessions.max(1)).max(2);
    let mut records = Vec::new();
    let (mut raw_bytes, mut events) = (0u64, 0u64);
    for _ in 0..args.sessions {
        let id = SessionId::new_v7_at(schemas::time::now_ns());
        let (chunks, raw) = session_records(id, per_session, args.chunk_events.max(1));
        raw_bytes += raw;
        events += per_session;
        records.extend(chunks.into_iter().map(|c| (id.to_string().into_bytes(), c)));
    }
    let record_bytes: u64 = records.iter().map(|(_, p)| p.len() as u64).sum();
    let started = Instant::now();
    broker.produce("bench", &records);
    let produce = started.elapsed();

    let store = work.path().join("store");
    let idle = Duration::from_millis(1000);
    let (wall, cpu) = auditty_bench::timed(
        Command::new(&ingest)
            .args(["run", "--once", "--quiet", "--group", "bench"])
            .arg("--source")
            .arg(format!("kafka://{}/bench", broker.address()))
            .arg("--store")
            .arg(format!("file://{}", store.display()))
            .args(["--idle-exit-ms", &idle.as_millis().to_string()])
            .env("AUDITTY_LOG", "warn")
            .stdout(Stdio::null()),
    )?;
    // The ingester waits out --idle-exit-ms before it stops; that wait is not work.
    let busy = wall.saturating_sub(idle).as_secs_f64().max(1e-9);
    let stored = dir_size(&store);

    println!(
        "Kafka -> Parquet ingest ({} events in {} sessions, {} records of {} events, {} partitions)",
        events,
        args.sessions,
        records.len(),
        args.chunk_events,
        args.partitions
    );
    println!("| measure | value |");
    println!("|---|---|");
    println!("| events/s | {:.0} |", events as f64 / busy);
    println!(
        "| record MB/s (compressed chunks from Kafka) | {:.1} |",
        record_bytes as f64 / 1e6 / busy
    );
    println!(
        "| event data MB/s (terminal bytes) | {:.1} |",
        raw_bytes as f64 / 1e6 / busy
    );
    println!(
        "| CPU s per million events | {:.2} |",
        cpu / (events as f64 / 1e6)
    );
    println!("| ingest wall time (s, idle wait excluded) | {busy:.2} |");
    println!(
        "| Parquet bytes stored / terminal bytes | {} / {} ({:.2}x) |",
        stored,
        raw_bytes,
        stored as f64 / raw_bytes.max(1) as f64
    );
    println!(
        "| produce time (s, for reference) | {:.2} |",
        produce.as_secs_f64()
    );
    Ok(())
}
