//! The tables: Markdown on stdout, so a run can be pasted into bench/README.md.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::measure::{BulkRun, MachineShare};
use crate::recorders::{Artifacts, Found, Kind, Recorder};

/// One row of the storage table.
pub struct Stored {
    /// Which recorder.
    pub kind: Kind,
    /// What format.
    pub format: String,
    /// Bytes at rest.
    pub bytes: u64,
}

/// The best peer on one measure, and its value, if any peer ran.
type Best = Option<(Kind, f64)>;

/// What the throughput targets are judged on, for one workload.
struct ThroughputTarget {
    workload: String,
    rate: f64,
    best_rate: Best,
    cpu: f64,
    best_cpu: Best,
    machine: f64,
    best_machine: Best,
}

/// Collects what the targets are judged on while printing the tables.
pub struct Report {
    quick: bool,
    recorders: Vec<Recorder>,
    /// Per workload: auditty's figures and the best peer's.
    throughput: Vec<ThroughputTarget>,
    /// (auditty p99 - bare p99) in µs.
    latency_p99_added: Option<f64>,
    /// (session, auditty store bytes, asciicast v2 gzip bytes)
    storage: Vec<(String, Option<u64>, Option<u64>)>,
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

/// One recorder's line of a throughput table.
struct Row {
    kind: Kind,
    mbps: f64,
    mbps_range: String,
    cpu: f64,
    cpu_range: String,
    machine: f64,
    wall: f64,
    bytes: f64,
    runs: usize,
}

/// The peer with the lowest `value`, and that value.
fn best_peer(rows: &[Row], value: impl Fn(&Row) -> f64) -> Best {
    rows.iter()
        .filter(|r| r.kind.is_peer())
        .map(|r| (r.kind, value(r)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

/// "lowest–highest" of the runs, with `decimals`.
fn range(v: &[f64], decimals: usize) -> String {
    if v.is_empty() {
        return "-".into();
    }
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{lo:.decimals$}–{hi:.decimals$}")
}

/// Median of a non-empty list.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The `q` quantile (nearest rank) of sorted samples, in µs.
fn quantile_us(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e6
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

impl Report {
    /// A report for the recorders found.
    pub fn new(quick: bool, _bin_dir: &Path, found: &Found) -> Report {
        Report {
            quick,
            recorders: found.recorders.clone(),
            throughput: Vec::new(),
            latency_p99_added: None,
            storage: Vec::new(),
        }
    }

    /// Prints a line as is.
    pub fn line(&self, s: &str) {
        println!("{s}");
    }

    /// Machine and recorders.
    pub fn header(&self) {
        println!(
            "# auditty-bench{}",
            if self.quick { " (--quick)" } else { "" }
        );
        println!();
        println!(
            "- machine: {} cores, {}, kernel {}",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model(),
            read_trimmed("/proc/sys/kernel/osrelease")
        );
        println!("- load average at start: {}", read_trimmed("/proc/loadavg"));
        for r in &self.recorders {
            println!(
                "- {}: {} ({})",
                r.kind.name(),
                r.version,
                r.program.display()
            );
        }
    }

    /// Table 1 for one workload.
    pub fn throughput(&mut self, workload: &str, runs: &[Vec<BulkRun>]) {
        println!();
        println!("## Throughput and CPU: {workload}");
        println!();
        println!(
            "| recorder | MB/s | range | vs best peer | CPU s / 100 MB | range | vs best peer | machine s / 100 MB | vs best peer | wall s | MB | runs |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let rows: Vec<Row> = self
            .recorders
            .iter()
            .zip(runs)
            .map(|(r, rs)| {
                let rates: Vec<f64> = rs
                    .iter()
                    .map(|x| mb(x.bytes) / x.wall.as_secs_f64())
                    .collect();
                let per_100mb = |d: Duration, bytes: u64| d.as_secs_f64() / (mb(bytes) / 100.0);
                let cpus: Vec<f64> = rs.iter().map(|x| per_100mb(x.cpu, x.bytes)).collect();
                let machine: Vec<f64> = rs
                    .iter()
                    .map(|x| per_100mb(x.machine_cpu, x.bytes))
                    .collect();
                Row {
                    kind: r.kind,
                    mbps: median(rates.clone()),
                    mbps_range: range(&rates, 1),
                    cpu: median(cpus.clone()),
                    cpu_range: range(&cpus, 2),
                    machine: median(machine),
                    wall: median(rs.iter().map(|x| x.wall.as_secs_f64()).collect()),
                    bytes: median(rs.iter().map(|x| mb(x.bytes)).collect()),
                    runs: rs.len(),
                }
            })
            .collect();
        // The fastest peer, and the least CPU.
        let best_rate = best_peer(&rows, |r| -r.mbps).map(|(k, v)| (k, -v));
        let best_cpu = best_peer(&rows, |r| r.cpu);
        let best_machine = best_peer(&rows, |r| r.machine);
        let vs = |best: Best, x: f64| best.map_or("-".into(), |(_, b)| format!("{:.2}×", x / b));
        for r in &rows {
            println!(
                "| {} | {:.1} | {} | {} | {:.3} | {} | {} | {:.3} | {} | {:.2} | {:.1} | {} |",
                r.kind.name(),
                r.mbps,
                r.mbps_range,
                vs(best_rate, r.mbps),
                r.cpu,
                r.cpu_range,
                vs(best_cpu, r.cpu),
                r.machine,
                vs(best_machine, r.machine),
                r.wall,
                r.bytes,
                r.runs
            );
        }
        if let Some(r) = rows.iter().find(|r| r.kind == Kind::Auditty) {
            self.throughput.push(ThroughputTarget {
                workload: workload.to_string(),
                rate: r.mbps,
                best_rate,
                cpu: r.cpu,
                best_cpu,
                machine: r.machine,
                best_machine,
            });
        }
        println!();
        println!(
            "MB = 10^6 bytes received by the terminal; CPU = user+system of the recorder's whole process tree (the command included), per 100 MB; machine = CPU time the whole machine was busy from the start of a run until `sync` returned after it (the kernel's PTY and writeback threads included, and the harness draining the terminal, the same for all), per 100 MB; medians, and the lowest and highest run (differences inside the ranges are noise); \"vs best peer\" compares with the fastest / least-CPU of script, tlog, asciinema."
        );
    }

    /// Table 2.
    pub fn latency(&mut self, samples: &mut [Vec<Duration>], machine: &Option<MachineShare>) {
        println!();
        println!("## Keystroke echo latency (µs)");
        println!();
        println!(
            "| recorder | samples | p50 | p99 | p99.9 | p50 − bare | p99 − bare | p99.9 − bare |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
        for s in samples.iter_mut() {
            s.sort();
        }
        let qs = [0.5, 0.99, 0.999];
        let bare: Option<Vec<f64>> = self
            .recorders
            .iter()
            .zip(samples.iter())
            .find(|(r, _)| r.kind == Kind::Bare)
            .map(|(_, s)| qs.iter().map(|&q| quantile_us(s, q)).collect());
        for (r, s) in self.recorders.iter().zip(samples.iter()) {
            let v: Vec<f64> = qs.iter().map(|&q| quantile_us(s, q)).collect();
            let d: Vec<String> = match &bare {
                Some(b) => v
                    .iter()
                    .zip(b)
                    .map(|(x, b)| format!("{:+.1}", x - b))
                    .collect(),
                None => vec!["-".into(); 3],
            };
            println!(
                "| {} | {} | {:.1} | {:.1} | {:.1} | {} | {} | {} |",
                r.kind.name(),
                s.len(),
                v[0],
                v[1],
                v[2],
                d[0],
                d[1],
                d[2]
            );
            if r.kind == Kind::Auditty
                && let Some(b) = &bare
            {
                self.latency_p99_added = Some(v[1] - b[1]);
            }
        }
        println!();
        println!(
            "One byte written to the terminal, timed until `cat` (raw mode, under the recorder) echoes it back; one sample per recorder in turn, each sent as soon as the previous echo arrived."
        );
        self.machine("the latency test", machine);
    }

    /// How busy the machine was during a phase, and how much CPU time its hypervisor
    /// took: tail latencies and throughput mean little when steal is high.
    pub fn machine(&self, phase: &str, share: &Option<MachineShare>) {
        if let Some(m) = share {
            println!(
                "- machine during {phase}: {:.0}% busy, {:.1}% CPU steal (/proc/stat)",
                m.busy_pct, m.steal_pct
            );
        }
    }

    /// Table 3.
    pub fn storage(&mut self, sessions: &[(String, Vec<Stored>)]) {
        println!();
        println!("## Storage: bytes at rest");
        println!();
        println!("| session | recorder | format | bytes | vs asciicast v2 gzip |");
        println!("|---|---|---|---:|---:|");
        for (name, rows) in sessions {
            let gz = rows
                .iter()
                .find(|r| r.kind == Kind::Asciinema2 && r.format.contains("gzip"))
                .map(|r| r.bytes);
            for r in rows {
                let vs = gz.map_or("-".into(), |g| format!("{:.2}×", r.bytes as f64 / g as f64));
                println!(
                    "| {name} | {} | {} | {} | {vs} |",
                    r.kind.name(),
                    r.format,
                    r.bytes
                );
            }
            let ours = rows
                .iter()
                .find(|r| r.kind == Kind::Auditty && r.format.starts_with("Parquet"))
                .map(|r| r.bytes);
            self.storage.push((name.clone(), ours, gz));
        }
        println!();
        println!(
            "Every recorder logs input as well as output. gzip = `gzip -6` of the file. auditty's figure is everything under the store after `auditty-ingest run --once` (events/ and sessions/ Parquet)."
        );
    }

    /// The targets, each as measured.
    pub fn targets(&self) {
        println!();
        println!(
            "## Targets{}",
            if self.quick {
                " (--quick: sizes too small to judge; shown for the record)"
            } else {
                ""
            }
        );
        println!();
        println!("| target | measured | met |");
        println!("|---|---|---|");
        let yn = |ok: bool| if ok { "yes" } else { "NO" };
        for t in &self.throughput {
            let (w, rate, cpu) = (&t.workload, t.rate, t.cpu);
            match t.best_rate {
                Some((k, b)) => println!(
                    "| throughput ≥ best peer ({w}) | {rate:.1} MB/s vs {} {b:.1} MB/s | {} |",
                    k.name(),
                    yn(rate >= b)
                ),
                None => println!("| throughput ≥ best peer ({w}) | no peer ran | - |"),
            }
            match t.best_cpu {
                Some((k, b)) => println!(
                    "| CPU per 100 MB ≤ best peer ({w}) | {cpu:.3} s vs {} {b:.3} s | {} |",
                    k.name(),
                    yn(cpu <= b)
                ),
                None => println!("| CPU per 100 MB ≤ best peer ({w}) | no peer ran | - |"),
            }
            if let Some((k, b)) = t.best_machine {
                println!(
                    "| … the same, machine-wide with writeback ({w}) | {:.3} s vs {} {b:.3} s | {} |",
                    t.machine,
                    k.name(),
                    yn(t.machine <= b)
                );
            }
        }
        match self.latency_p99_added {
            Some(d) => println!(
                "| added echo latency ≤ 50 µs at p99 | {d:+.1} µs | {} |",
                yn(d <= 50.0)
            ),
            None => {
                println!("| added echo latency ≤ 50 µs at p99 | needs auditty and bare-pty | - |")
            }
        }
        for (name, ours, gz) in &self.storage {
            match (ours, gz) {
                (Some(o), Some(g)) => println!(
                    "| stored ≤ ½ asciicast v2 gzip ({name}) | {o} vs {g} B ({:.2}×) | {} |",
                    *o as f64 / *g as f64,
                    yn((*o as f64) <= *g as f64 / 2.0)
                ),
                _ => println!(
                    "| stored ≤ ½ asciicast v2 gzip ({name}) | needs auditty and asciinema2 | - |"
                ),
            }
        }
        println!();
        println!("- load average at end: {}", read_trimmed("/proc/loadavg"));
    }
}

fn file_len(path: &Path) -> anyhow::Result<u64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("the recorder left no {}", path.display()))?
        .len())
}

/// Total size of the regular files under `dir`.
fn tree_len(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    if !dir.exists() {
        return Ok(0);
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let meta = entry
            .metadata()
            .with_context(|| format!("cannot stat {}", entry.path().display()))?;
        if meta.is_dir() {
            total += tree_len(&entry.path())?;
        } else if meta.is_file() {
            total += meta.len();
        }
    }
    Ok(total)
}

/// Size of `path` after `gzip -6`.
fn gzip_len(path: &Path) -> anyhow::Result<u64> {
    let out = Command::new("gzip")
        .args(["-6", "-c"])
        .arg(path)
        .output()
        .context("cannot run gzip")?;
    if !out.status.success() {
        bail!("gzip {} failed: {}", path.display(), out.status);
    }
    Ok(out.stdout.len() as u64)
}

/// What `kind` left at rest for one session. For auditty this runs the ingester first.
pub fn stored(kind: Kind, art: &Artifacts, ingest: &Path) -> anyhow::Result<Vec<Stored>> {
    let row = |format: &str, bytes| Stored {
        kind,
        format: format.to_string(),
        bytes,
    };
    Ok(match kind {
        Kind::Bare => Vec::new(),
        Kind::Auditty | Kind::AudittySealed | Kind::AudittyBase => {
            let data = art.data_dir();
            let spool = tree_len(&data.join("spool"))?;
            let out = Command::new(ingest)
                .arg("--data-dir")
                .arg(&data)
                .args(["run", "--once", "-q"])
                .output()
                .with_context(|| format!("cannot run {}", ingest.display()))?;
            if !out.status.success() {
                bail!(
                    "auditty-ingest failed on {}: {}\n{}",
                    data.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            vec![
                row("spool (before ingest)", spool),
                row("Parquet store", tree_len(&data.join("store"))?),
            ]
        }
        Kind::Script => vec![row(
            "script log + timing",
            file_len(&art.script_log())? + file_len(&art.script_timing())?,
        )],
        Kind::Tlog => vec![row("tlog JSON", file_len(&art.tlog_json())?)],
        Kind::Asciinema2 => vec![
            row("asciicast v2", file_len(&art.cast())?),
            row("asciicast v2 gzip", gzip_len(&art.cast())?),
        ],
        Kind::Asciinema3 => vec![
            row("asciicast (asciinema 3 default)", file_len(&art.cast())?),
            row("asciicast (asciinema 3) gzip", gzip_len(&art.cast())?),
        ],
    })
}
