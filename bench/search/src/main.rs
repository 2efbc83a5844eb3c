//! Search and listing benchmark (issue 15): how fast `replay index` builds the index of a
//! large store, and how long a user waits for `replay search`, `replay ls` and the first
//! frame of `replay play`, and for the first frame of a cast from `replay serve` while
//! other viewers fetch theirs (`--web-viewers`, issue 18).
//!
//! It writes N synthetic bash sessions straight to a local store (see `generate`), runs
//! the real `replay` binary for every measurement (so process start is included: that is
//! what a user waits for), and prints Markdown tables. It asserts nothing.

mod generate;
mod http;
mod measure;
mod rng;
mod s3;
mod shell;
mod web;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;

use generate::Made;
use measure::percentiles;
use rng::Rng;

/// Measures index build, search, listing and playback start on a synthetic store.
#[derive(Parser, Debug)]
#[command(name = "auditty-bench-search", version, about)]
struct Args {
    /// Sessions to generate.
    #[arg(long, default_value_t = 100_000)]
    sessions: usize,
    /// `replay search` runs.
    #[arg(long, default_value_t = 200)]
    searches: usize,
    /// `replay ls` runs.
    #[arg(long, default_value_t = 50)]
    listings: usize,
    /// `replay play` starts.
    #[arg(long, default_value_t = 20)]
    plays: usize,
    /// Directory holding `replay` (default: the directory of this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Keep the store and the index here instead of a temporary directory.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Small run for smoke tests: 200 sessions, few runs of each command, at most 4 web
    /// viewers of 2 casts each.
    #[arg(long)]
    quick: bool,
    /// Also time `replay play` from an S3 store at this endpoint (e.g. a moto server,
    /// `moto_server -H 127.0.0.1 -p 5055`): the store is copied into a new bucket there.
    #[arg(long, value_name = "URL")]
    s3_endpoint: Option<String>,
    /// Concurrent viewers of `replay serve` (each fetching the asciicast of
    /// --web-fetches different sessions over loopback HTTP); 0: no web stage.
    #[arg(long, default_value_t = 50, value_name = "N")]
    web_viewers: usize,
    /// Casts each web viewer fetches, one after another.
    #[arg(long, default_value_t = 20, value_name = "N")]
    web_fetches: usize,
    /// Write the store (DIR/store) and its trust file (DIR/data/trusted-keys) into
    /// --work-dir DIR and stop: the corpus for other harnesses, such as the compaction
    /// figures (tests/examples/compaction_figures.rs).
    #[arg(long, requires = "work_dir")]
    generate_only: bool,
}

/// The bucket an `--s3-endpoint` run copies the store into: new for each run, since the
/// store's conditional writes refuse to replace an object of an earlier run.
fn bucket() -> String {
    format!("auditty-bench-search-{}", std::process::id())
}

/// Paths and flags every `replay` run gets.
struct Replay {
    bin: PathBuf,
    data_dir: PathBuf,
    store: PathBuf,
    index: PathBuf,
}

impl Replay {
    fn cmd(&self, sub: &str) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--store")
            .arg(format!("file://{}", self.store.display()))
            .arg(sub)
            .env("AUDITTY_LOG", "warn")
            .stdin(Stdio::null());
        c
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.quick {
        (args.sessions, args.searches, args.listings, args.plays) = (200, 12, 4, 3);
        args.web_viewers = args.web_viewers.min(4);
        args.web_fetches = args.web_fetches.min(2);
    }
    let bin_dir = auditty_bench::bin_dir(args.bin_dir.clone())?;
    let bin = auditty_bench::binary(&bin_dir, "replay", "cargo build --release -p replay")?;
    let temp = tempfile::Builder::new()
        .prefix("auditty-bench-search-")
        .tempdir()?;
    let work = args.work_dir.clone().unwrap_or_else(|| temp.path().into());
    let r = Replay {
        bin,
        data_dir: work.join("data"),
        store: work.join("store"),
        index: work.join("index"),
    };
    std::fs::create_dir_all(&r.data_dir)?;

    eprintln!(
        "generating {} sessions in {}",
        args.sessions,
        r.store.display()
    );
    let started = Instant::now();
    let (written, made) =
        generate::generate(&r.store, &r.data_dir.join("trusted-keys"), args.sessions, 2)?;
    let gen_secs = started.elapsed().as_secs_f64();
    eprintln!("generated in {gen_secs:.1} s");

    println!("# Search and listing benchmark\n");
    println!(
        "{} sessions over {} days, {} users, {} hosts; {} events; {:.1} MB of terminal \
         output and input; {} Parquet objects, {:.1} MB at rest (generated in {gen_secs:.1} s).\n",
        written.sessions,
        generate::DAYS,
        generate::USERS,
        generate::HOSTS,
        written.events,
        written.terminal_bytes as f64 / 1e6,
        written.objects,
        dir_size(&r.store) as f64 / 1e6,
    );
    if args.generate_only {
        return Ok(());
    }
    eprintln!("indexing");
    index_build(&r, &written)?;
    report_build(&r, &written)?;
    let mut rng = Rng::new(15);
    eprintln!("searching");
    let search = search_latency(&r, &mut rng, args.searches)?;
    eprintln!("listing");
    let ls = ls_latency(&r, &mut rng, &made, args.listings)?;
    eprintln!("playing");
    let play = play_latency(&r, &mut rng, &made, args.plays, &Source::Local)?;
    let s3_play = match &args.s3_endpoint {
        Some(endpoint) => {
            eprintln!("copying the store to {endpoint}");
            let bucket = bucket();
            let copied = s3::copy_store(&r.store, endpoint, &bucket)?;
            eprintln!("copied {copied} objects to bucket {bucket}; playing from S3");
            let source = Source::S3 {
                endpoint: endpoint.clone(),
                bucket,
            };
            Some(play_latency(&r, &mut rng, &made, args.plays, &source)?)
        }
        None => None,
    };
    if args.web_viewers > 0 {
        eprintln!(
            "serving: {} viewers x {} casts",
            args.web_viewers, args.web_fetches
        );
        web::web_load(&r, &mut rng, &made, args.web_viewers, args.web_fetches)?;
    }
    targets(search, ls, play, s3_play);
    Ok(())
}

/// `replay report` over the whole store (JSON), and over one week of it (HTML and JSON):
/// wall and CPU time, sessions, commands and findings reported, output size.
fn report_build(r: &Replay, w: &generate::Written) -> anyhow::Result<()> {
    println!("## Report (`replay report`)\n");
    println!(
        "| period | format | sessions | commands | findings | wall s | CPU s | sessions/s | output MB |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let day = |n: i64| schemas::time::date(generate::BASE_NS + n * 86_400 * 1_000_000_000);
    let week = (day(generate::DAYS / 2), day(generate::DAYS / 2 + 6));
    for (period, format, window) in [
        ("all", "json", None),
        ("7 days", "json", Some(&week)),
        ("7 days", "html", Some(&week)),
    ] {
        let out = r
            .data_dir
            .join(format!("report-{}.{format}", period.replace(' ', "")));
        let _ = std::fs::remove_file(&out);
        let mut c = r.cmd("report");
        c.args(["--format", format, "--out"]).arg(&out);
        if let Some((since, until)) = window {
            let (since, until) = (since.as_str(), until.as_str());
            c.args(["--since", since, "--until", until]);
        }
        let (wall, cpu) = auditty_bench::timed(c.stdout(Stdio::null()).stderr(Stdio::null()))?;
        // The JSON form says what the report holds; the HTML one is counted from its JSON twin.
        let json_twin = out.with_extension("json");
        let header: serde_json::Value = serde_json::from_slice(&std::fs::read(&json_twin)?)?;
        let h = &header["header"];
        let sessions = h["sessions"].as_u64().unwrap_or(0);
        println!(
            "| {period} | {format} | {sessions} | {} | {} | {:.1} | {cpu:.1} | {:.0} | {:.1} |",
            h["commands"],
            h["findings"],
            wall.as_secs_f64(),
            sessions as f64 / wall.as_secs_f64(),
            std::fs::metadata(&out)?.len() as f64 / 1e6,
        );
    }
    println!(
        "\n{} sessions in the store; every session is verified and its commands read for \
         each report (the ledger check needs the whole store; the period only filters what \
         is shown). CPU = user+system (wait4).\n",
        w.sessions
    );
    Ok(())
}

/// One full `replay index` over the store: wall and CPU time.
fn index_build(r: &Replay, w: &generate::Written) -> anyhow::Result<()> {
    let (wall, cpu) = auditty_bench::timed(
        r.cmd("index")
            .arg("--index")
            .arg(&r.index)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )?;
    let mb = w.terminal_bytes as f64 / 1e6;
    let wall = wall.as_secs_f64();
    println!("## Index build (`replay index`, from empty)\n");
    println!(
        "| sessions | terminal MB | wall s | CPU s | MB/s (wall) | MB/s per core (CPU) | sessions/s | index MB |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {mb:.1} | {wall:.1} | {cpu:.1} | {:.2} | {:.2} | {:.0} | {:.1} |\n",
        w.sessions,
        mb / wall,
        mb / cpu.max(1e-9),
        w.sessions as f64 / wall,
        dir_size(&r.index) as f64 / 1e6,
    );
    println!(
        "terminal MB = 10^6 bytes of output and input event data; CPU = user+system of \
         `replay index` (wait4); sessions are signed as the agent signs them, so the index \
         checks every checkpoint signature (integrity state \"complete\").\n"
    );
    Ok(())
}

/// A `--since/--until` window of 3 days somewhere in the generated month.
fn window(rng: &mut Rng) -> (String, String) {
    let day = 86_400 * 1_000_000_000i64;
    let from = generate::BASE_NS + rng.below(generate::DAYS as u64 - 3) as i64 * day;
    (
        schemas::time::date(from),
        schemas::time::date(from + 2 * day),
    )
}

/// `replay search` runs of four kinds, interleaved; p50/p99 per kind and overall.
fn search_latency(r: &Replay, rng: &mut Rng, runs: usize) -> anyhow::Result<f64> {
    let kinds = ["command word", "phrase", "output word", "user: field"];
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); kinds.len()];
    let mut hits = vec![0usize; kinds.len()];
    for i in 0..runs {
        let k = i % kinds.len();
        let query = match k {
            0 => format!("cmd:{}", rng.pick(&generate::COMMAND_WORDS)),
            1 => format!("\"{}\"", rng.pick(&generate::PHRASES)),
            2 => format!("output:{}", rng.pick(&generate::OUTPUT_WORDS)),
            _ => format!(
                "user:{} {}",
                generate::user(rng.below(50) as usize),
                rng.pick(&generate::COMMAND_WORDS)
            ),
        };
        let (since, until) = window(rng);
        let (took, found, _) = measure::latency(
            r.cmd("search")
                .arg(&query)
                .args(["--since", &since, "--until", &until, "--json"])
                .arg("--index")
                .arg(&r.index),
        )?;
        samples[k].push(took);
        hits[k] += usize::from(found);
    }
    println!("## `replay search` latency (ms, process start to exit)\n");
    println!("| query kind | example | runs | runs with hits | p50 | p99 | max |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    let examples = [
        "`cmd:grep`",
        "`\"connection refused\"`",
        "`output:deadlock`",
        "`user:alice0 git`",
    ];
    let mut all = Vec::new();
    for (k, kind) in kinds.iter().enumerate() {
        all.extend_from_slice(&samples[k]);
        let (p50, p99, max) = percentiles(&mut samples[k]);
        println!(
            "| {kind} | {} | {} | {} | {p50:.1} | {p99:.1} | {max:.1} |",
            examples[k],
            samples[k].len(),
            hits[k]
        );
    }
    let (p50, p99, max) = percentiles(&mut all);
    println!(
        "| all | | {} | {} | {p50:.1} | {p99:.1} | {max:.1} |\n",
        all.len(),
        hits.iter().sum::<usize>()
    );
    println!(
        "Each query with `--since D --until D+2` (3 UTC days) and `--json` (default limit 20).\n"
    );
    Ok(p99)
}

/// `replay ls --user U --since T` from the index.
fn ls_latency(r: &Replay, rng: &mut Rng, made: &[Made], runs: usize) -> anyhow::Result<f64> {
    let mut samples = Vec::new();
    let mut rows = 0usize;
    for _ in 0..runs {
        let m = &made[rng.below(made.len() as u64) as usize];
        let since = schemas::time::date(m.start_ns);
        let (took, _, out) = measure::latency(
            r.cmd("ls")
                .args(["--user", &m.user, "--since", &since])
                .arg("--index")
                .arg(&r.index),
        )?;
        samples.push(took);
        rows += out.iter().filter(|&&b| b == b'\n').count();
    }
    let (p50, p99, max) = percentiles(&mut samples);
    println!("## `replay ls --user U --since T` latency (ms, from the index)\n");
    println!("| runs | mean lines listed | p50 | p99 | max |");
    println!("|---:|---:|---:|---:|---:|");
    println!(
        "| {runs} | {:.0} | {p50:.1} | {p99:.1} | {max:.1} |\n",
        rows as f64 / runs.max(1) as f64
    );
    println!("T = the start day of a random session of user U; the table output, not --json.\n");
    Ok(p99)
}

/// Where `replay play` reads the store from.
enum Source {
    Local,
    S3 { endpoint: String, bucket: String },
}

/// `replay play <id>` on a PTY: time to its first byte and to the session's first prompt.
fn play_latency(
    r: &Replay,
    rng: &mut Rng,
    made: &[Made],
    runs: usize,
    source: &Source,
) -> anyhow::Result<f64> {
    let (mut first, mut prompt) = (Vec::new(), Vec::new());
    let mut base = vec!["--data-dir".to_string(), r.data_dir.display().to_string()];
    let (store, label) = match source {
        Source::Local => (format!("file://{}", r.store.display()), "local store"),
        Source::S3 { endpoint, bucket } => {
            base.extend(["--s3-endpoint".to_string(), endpoint.clone()]);
            (format!("s3://{bucket}"), "S3 on moto")
        }
    };
    base.extend(["--store".to_string(), store, "play".to_string()]);
    let env = match source {
        Source::Local => Vec::new(),
        Source::S3 { .. } => s3::env(),
    };
    for _ in 0..runs {
        let m = &made[rng.below(made.len() as u64) as usize];
        let mut args = base.to_vec();
        args.push(m.id.to_string());
        let (f, p) = measure::first_output(
            &r.bin,
            &args,
            &env,
            format!("{}@", m.user).as_bytes(),
            Duration::from_secs(10),
        )?;
        first.push(f);
        prompt.push(p);
    }
    let (f50, f99, fmax) = percentiles(&mut first);
    let (p50, p99, pmax) = percentiles(&mut prompt);
    println!("## `replay play <id>`: time to the first frame (ms, {label})\n");
    println!("| measure | runs | p50 | p99 | max |");
    println!("|---|---:|---:|---:|---:|");
    println!("| first byte on the terminal | {runs} | {f50:.1} | {f99:.1} | {fmax:.1} |");
    println!("| first prompt of the session drawn | {runs} | {p50:.1} | {p99:.1} | {pmax:.1} |\n");
    println!(
        "From spawn on a PTY; the session's first prompt was recorded 2 ms after its start, \
         and play keeps that delay.\n"
    );
    Ok(p50)
}

fn targets(search_p99: f64, ls_p99: f64, play_p50: f64, s3_play_p50: Option<f64>) {
    let verdict = |v: f64, t: f64| if v < t { "met" } else { "missed" };
    println!("## Targets\n");
    println!("| target | measured | |");
    println!("|---|---:|---|");
    println!(
        "| `replay search` p99 < 50 ms | {search_p99:.1} ms | {} |",
        verdict(search_p99, 50.0)
    );
    println!(
        "| `replay ls --user --since` p99 < 300 ms | {ls_p99:.1} ms | {} |",
        verdict(ls_p99, 300.0)
    );
    println!(
        "| `replay play` first frame p50 < 100 ms (local) | {play_p50:.1} ms | {} |",
        verdict(play_p50, 100.0)
    );
    match s3_play_p50 {
        Some(p) => println!(
            "| `replay play` first frame p50 < 300 ms (S3 on moto) | {p:.1} ms | {} |\n",
            verdict(p, 300.0)
        ),
        None => println!(
            "| `replay play` first frame p50 < 300 ms (S3 on moto) | not run (no --s3-endpoint) | |\n"
        ),
    }
}

fn dir_size(p: &Path) -> u64 {
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
