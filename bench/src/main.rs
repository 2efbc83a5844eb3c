//! `auditty-bench`: auditty-agent side by side with script, tlog-rec and asciinema on the
//! same machine in the same run. See bench/README.md.

mod measure;
mod recorders;
mod report;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

use recorders::{Artifacts, Kind, Recorder};

/// Benchmarks auditty-agent against script, tlog-rec and asciinema: output throughput
/// and CPU, keystroke echo latency, and bytes at rest. Prints Markdown tables to stdout
/// and progress to stderr.
#[derive(Parser, Debug)]
#[command(
    name = "auditty-bench",
    version,
    after_help = "Examples:\n  cargo build --release --workspace --bins && target/release/auditty-bench\n  target/release/auditty-bench --only auditty,script --runs 3\n  target/debug/auditty-bench --quick      # CI smoke test: tiny sizes, no targets judged\n\nPeers that are not installed are skipped with a line saying so (bench/install-peers installs them)."
)]
struct Cli {
    /// Tiny sizes and few samples: checks that everything still works, in seconds.
    #[arg(long)]
    quick: bool,

    /// Directory holding auditty-agent and auditty-ingest. Default: the directory of this
    /// executable (target/release when run as target/release/auditty-bench).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,

    /// Recorders to run, comma-separated, from: bare-pty, auditty, auditty-sealed,
    /// auditty-base, script, tlog, asciinema2, asciinema3. Default: all (auditty-base only
    /// with --baseline).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    only: Vec<String>,

    /// Another build's directory (holding auditty-agent), run as the recorder
    /// `auditty-base` beside `auditty`: compares two builds in one run, under the same
    /// load. On a shared machine, runs minutes apart differ by more than most changes.
    #[arg(long, value_name = "DIR")]
    baseline: Option<PathBuf>,

    /// Phases to run, comma-separated. Storage reports the bulk sessions only when the
    /// throughput phase ran (it keeps their recordings). Default: all.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        value_name = "LIST",
        default_value = "throughput,latency,storage"
    )]
    phases: Vec<Phase>,

    /// asciinema 3.x executable.
    #[arg(long, value_name = "PATH")]
    asciinema3: Option<PathBuf>,

    /// Runs per recorder and workload for throughput (the median is reported).
    /// Default: 5, or 1 with --quick.
    #[arg(long, value_name = "N")]
    runs: Option<usize>,

    /// `seq 1 N` for the first throughput workload. Default: 5000000, or 20000 with --quick.
    #[arg(long, value_name = "N")]
    seq: Option<u64>,

    /// Size of the text file for the `cat` workload, in MB. Default: 100, or 1 with --quick.
    #[arg(long, value_name = "MB")]
    file_mb: Option<u64>,

    /// Keystroke samples per recorder. Default: 10000, or 200 with --quick.
    #[arg(long, value_name = "N")]
    samples: Option<usize>,

    /// Commands typed into the interactive storage session. Default: 300, or 8 with --quick.
    #[arg(long, value_name = "N")]
    commands: Option<usize>,

    /// Working directory for recordings (kept). Default: a temporary directory, removed.
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
}

/// A part of the benchmark.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Output throughput and CPU (table 1).
    Throughput,
    /// Keystroke echo latency (table 2).
    Latency,
    /// Bytes at rest (table 3), with the interactive session it records.
    Storage,
}

/// A throughput workload.
struct Workload {
    name: String,
    shell_cmd: String,
}

fn main() {
    let cli = Cli::parse();
    // A shell starts background jobs with SIGINT ignored, and children inherit that: the
    // latency test ends `cat` with Ctrl-C, so the recorders must get the default.
    // SAFETY: setting a default disposition, before any thread is started.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::signal(libc::SIGQUIT, libc::SIG_DFL);
    }
    if let Err(e) = run(cli) {
        eprintln!("auditty-bench: {e:#}");
        std::process::exit(1);
    }
}

fn parse_only(only: &[String], baseline: bool) -> anyhow::Result<Vec<Kind>> {
    if only.is_empty() {
        return Ok(Kind::ALL
            .into_iter()
            .filter(|&k| baseline || k != Kind::AudittyBase)
            .collect());
    }
    let mut kinds = Vec::new();
    for name in only {
        match Kind::ALL.iter().find(|k| k.name() == name.trim()) {
            Some(&k) => kinds.push(k),
            None => bail!(
                "unknown recorder {name:?}; known: {}",
                Kind::ALL.map(Kind::name).join(", ")
            ),
        }
    }
    // Table order, whatever the order given.
    Ok(Kind::ALL
        .into_iter()
        .filter(|k| kinds.contains(k))
        .collect())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let q = cli.quick;
    let runs = cli.runs.unwrap_or(if q { 1 } else { 5 }).max(1);
    let seq_n = cli.seq.unwrap_or(if q { 20_000 } else { 5_000_000 });
    let file_mb = cli.file_mb.unwrap_or(if q { 1 } else { 100 });
    let samples = cli.samples.unwrap_or(if q { 200 } else { 10_000 }).max(1);
    let commands = cli.commands.unwrap_or(if q { 8 } else { 300 }).max(1);

    let bin_dir = auditty_bench::bin_dir(cli.bin_dir)?;
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    let asciinema3 = cli
        .asciinema3
        .unwrap_or_else(|| home.join(".cache/auditty/asciinema3/bin/asciinema"));
    let wanted = parse_only(&cli.only, cli.baseline.is_some())?;
    if wanted.contains(&Kind::AudittyBase) && cli.baseline.is_none() {
        bail!(
            "auditty-base runs the auditty-agent of another build: give its directory with --baseline DIR"
        );
    }
    let found = recorders::find(&bin_dir, cli.baseline.as_deref(), &asciinema3, &wanted)?;
    if let Some((_, why)) = found.missing.iter().find(|(k, _)| *k == Kind::AudittyBase) {
        // Asked for by name: a comparison without its baseline is not worth a run.
        bail!("--baseline: {why}");
    }
    let phase = |p: Phase| cli.phases.contains(&p);

    let tmp;
    let work = match &cli.work_dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            d.clone()
        }
        None => {
            tmp = tempfile::Builder::new()
                .prefix("auditty-bench-")
                .tempdir()
                .context("cannot create a temporary directory")?;
            tmp.path().to_path_buf()
        }
    };
    let fake_home = work.join("home");
    std::fs::create_dir_all(&fake_home)
        .with_context(|| format!("cannot create {}", fake_home.display()))?;
    let env = measure::env(&fake_home);

    let text = work.join("text.txt");
    if phase(Phase::Throughput) {
        write_text_file(&text, file_mb * 1_000_000)
            .with_context(|| format!("cannot write {}", text.display()))?;
    }
    let workloads = [
        Workload {
            name: format!("seq 1 {seq_n}"),
            shell_cmd: format!("seq 1 {seq_n}"),
        },
        Workload {
            name: format!("cat {file_mb} MB log text"),
            shell_cmd: format!("cat '{}'", text.display()),
        },
    ];

    let mut out = report::Report::new(q, &bin_dir, &found);
    out.header();
    for (kind, why) in &found.missing {
        out.line(&format!("- skipped {}: {why}", kind.name()));
    }

    let bulk_sessions = if phase(Phase::Throughput) {
        throughput(&found, &work, &env, runs, &workloads, &mut out)?
    } else {
        Vec::new()
    };
    if phase(Phase::Latency) {
        latency(&found, &work, &env, samples, &mut out)?;
    }
    if phase(Phase::Storage) {
        storage(&found, &work, &env, commands, bulk_sessions, &mut out)?;
    }
    out.targets();
    std::io::stdout()
        .flush()
        .context("cannot write the report")?;
    Ok(())
}

/// A session's name and the recordings of it, one per recorder in `Found` order.
type Sessions = Vec<(String, Vec<Artifacts>)>;

/// Table 1: throughput and CPU of each workload. Returns the last run's recordings of
/// each workload, for the storage table.
fn throughput(
    found: &recorders::Found,
    work: &Path,
    env: &[(&'static str, String)],
    runs: usize,
    workloads: &[Workload],
    out: &mut report::Report,
) -> anyhow::Result<Sessions> {
    let mut bulk: Vec<Vec<Vec<measure::BulkRun>>> = workloads
        .iter()
        .map(|_| found.recorders.iter().map(|_| Vec::new()).collect())
        .collect();
    let mut last: Vec<Vec<Artifacts>> = workloads.iter().map(|_| Vec::new()).collect();
    let machine = measure::CpuTimes::now();
    // Runs interleaved across recorders, so load from elsewhere on the machine spreads
    // over all of them rather than hitting one.
    for r in 0..runs {
        for (w, wl) in workloads.iter().enumerate() {
            last[w].clear();
            for (i, rec) in found.recorders.iter().enumerate() {
                let art = fresh(work, &format!("bulk{w}"), rec)?;
                progress(&format!(
                    "throughput {} run {}/{runs}: {}",
                    wl.name,
                    r + 1,
                    rec.kind.name()
                ));
                let (prog, args) = rec.command(&wl.shell_cmd, &art);
                let res = measure::bulk(&prog, &args, env, Duration::from_secs(900))
                    .with_context(|| format!("{} under {}", wl.name, rec.kind.name()))?;
                bulk[w][i].push(res);
                last[w].push(art);
            }
        }
    }
    let bulk_machine = machine.since();
    for (w, wl) in workloads.iter().enumerate() {
        out.throughput(&wl.name, &bulk[w]);
    }
    out.machine("the throughput runs", &bulk_machine);
    Ok(workloads
        .iter()
        .zip(last)
        .map(|(wl, arts)| (format!("bulk: {}", wl.name), arts))
        .collect())
}

/// Table 2: keystroke echo latency, every recorder's `cat` open at once, sampled in turn.
fn latency(
    found: &recorders::Found,
    work: &Path,
    env: &[(&'static str, String)],
    samples: usize,
    out: &mut report::Report,
) -> anyhow::Result<()> {
    progress(&format!(
        "latency: {samples} keystrokes into cat under each recorder, taken in turn"
    ));
    let mut echo = Vec::new();
    for rec in &found.recorders {
        let art = fresh(work, "latency", rec)?;
        let (prog, args) = rec.command(measure::LATENCY_CMD, &art);
        echo.push(
            measure::EchoSession::start(&prog, &args, env)
                .with_context(|| format!("latency under {}", rec.kind.name()))?,
        );
    }
    let mut lat = vec![Vec::with_capacity(samples); echo.len()];
    let machine = measure::CpuTimes::now();
    for i in 0..samples {
        for ((s, times), rec) in echo.iter_mut().zip(&mut lat).zip(&found.recorders) {
            times.push(
                s.sample(i)
                    .with_context(|| format!("latency under {}", rec.kind.name()))?,
            );
        }
    }
    let lat_machine = machine.since();
    for (s, rec) in echo.into_iter().zip(&found.recorders) {
        s.finish()
            .with_context(|| format!("ending the latency session of {}", rec.kind.name()))?;
    }
    out.latency(&mut lat, &lat_machine);
    Ok(())
}

/// Table 3: bytes at rest for the bulk sessions kept from the throughput runs (if any)
/// and an interactive session recorded here.
fn storage(
    found: &recorders::Found,
    work: &Path,
    env: &[(&'static str, String)],
    commands: usize,
    mut sessions: Sessions,
    out: &mut report::Report,
) -> anyhow::Result<()> {
    let mut inter_art = Vec::new();
    for rec in &found.recorders {
        progress(&format!(
            "interactive session: {commands} commands typed under {}",
            rec.kind.name()
        ));
        let art = fresh(work, "interactive", rec)?;
        let (prog, args) = rec.command(measure::INTERACTIVE_CMD, &art);
        measure::interactive(&prog, &args, env, commands)
            .with_context(|| format!("interactive session under {}", rec.kind.name()))?;
        inter_art.push(art);
    }

    sessions.push((format!("interactive: {commands} typed commands"), inter_art));
    let mut storage = Vec::new();
    for (name, arts) in &sessions {
        progress(&format!("storage: {name}"));
        let mut rows = Vec::new();
        for (rec, art) in found.recorders.iter().zip(arts) {
            rows.extend(report::stored(rec.kind, art, &found.ingest)?);
        }
        storage.push((name.clone(), rows));
    }
    out.storage(&storage);
    Ok(())
}

fn progress(msg: &str) {
    eprintln!("auditty-bench: {msg}");
}

/// An empty working directory for one session of `rec`.
fn fresh(work: &Path, what: &str, rec: &Recorder) -> anyhow::Result<Artifacts> {
    let dir = work.join(what).join(rec.kind.name());
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(Artifacts { dir })
}

/// Writes `bytes` of syslog-like text, the same every time: increasing timestamps, a few
/// hosts and services, messages from templates with variable fields (users, paths,
/// durations, request ids). Compresses like real log output: much less than `seq`, much
/// more than random bytes.
fn write_text_file(path: &Path, bytes: u64) -> std::io::Result<()> {
    const HOSTS: &[&str] = &["web-1", "web-2", "db-1", "cache-3", "batch-7"];
    const SERVICES: &[(&str, u32)] = &[
        ("nginx", 812),
        ("postgres", 1204),
        ("sshd", 655),
        ("cron", 431),
        ("app", 2290),
        ("kernel", 0),
    ];
    const USERS: &[&str] = &["alice", "bob", "carol", "deploy", "root", "svc-backup"];
    const PATHS: &[&str] = &[
        "/api/v1/users",
        "/api/v1/orders",
        "/healthz",
        "/static/app.js",
        "/login",
        "/api/v2/search?q=term",
    ];
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        // xorshift64: fast and deterministic; good enough to vary the text.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut written = 0u64;
    let mut line = String::with_capacity(200);
    let mut ms: u64 = 0;
    while written < bytes {
        line.clear();
        let r = next();
        ms += r % 40;
        let host = HOSTS[(r >> 8) as usize % HOSTS.len()];
        let (svc, pid) = SERVICES[(r >> 12) as usize % SERVICES.len()];
        let user = USERS[(r >> 16) as usize % USERS.len()];
        let path = PATHS[(r >> 20) as usize % PATHS.len()];
        let n = (r >> 24) % 1000;
        let msg = match (r >> 34) % 8 {
            0 => format!("GET {path} HTTP/1.1 200 {n} bytes in {}ms", n % 97),
            1 => format!("POST {path} HTTP/1.1 201 request_id={:08x}", r >> 40),
            2 => format!(
                "Accepted publickey for {user} from 10.0.{}.{} port {}",
                n % 8,
                n % 250,
                40000 + n
            ),
            3 => format!(
                "pam_unix(sshd:session): session opened for user {user}(uid={})",
                1000 + n % 7
            ),
            4 => format!("({user}) CMD (run-parts /etc/cron.hourly)"),
            5 => format!(
                "checkpoint complete: wrote {n} buffers ({}.{}%); 0 WAL file(s) added",
                n % 10,
                n % 100
            ),
            6 => format!(
                "upstream timed out (110: Connection timed out) while reading response header from upstream, client: 10.0.0.{}, request: \"GET {path}\"",
                n % 250
            ),
            _ => format!(
                "cache hit ratio {}.{:02} over {} requests",
                n % 100,
                n % 97,
                n * 13
            ),
        };
        let s = ms / 1000;
        line.push_str(&format!(
            "2025-06-{:02}T{:02}:{:02}:{:02}.{:03}Z {host} {svc}[{pid}]: {msg}\n",
            1 + s / 86_400 % 28,
            s / 3600 % 24,
            s / 60 % 60,
            s % 60,
            ms % 1000
        ));
        let take = (bytes - written).min(line.len() as u64) as usize;
        w.write_all(&line.as_bytes()[..take])?;
        written += take as u64;
    }
    w.flush()
}
