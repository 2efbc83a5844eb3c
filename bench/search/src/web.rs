//! `replay serve` under load (issue 18): the release server over the generated store and
//! index, on loopback, and N viewers at once, each fetching the asciicast of a different
//! session in turn (`GET /api/sessions/{id}/cast`, a new connection each, as a player
//! opening a session does). Per fetch: the time to the first byte of the body, to the
//! first `"o"` event (the first frame a player can draw), and to the end of the cast;
//! for the server, its CPU time over the load and its memory (`/proc/PID/status`).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::Replay;
use crate::generate::Made;
use crate::http::{self, Fetch};
use crate::measure::percentiles;
use crate::rng::Rng;

/// The API token the viewers send; the auth file holds its SHA-256
/// (`printf %s TOKEN | sha256sum`).
const TOKEN: &str = "auditty-bench-search-web-viewer";
const TOKEN_SHA256: &str = "4c269ea9312f0e5506d552d092f10f00ce528fada4bfb3841030ad9ebcc498a4";
/// How long one request may take before the run is called failed.
const TIMEOUT: Duration = Duration::from_secs(120);

/// The running server; stopped (SIGTERM, then SIGKILL) when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    /// Held so that the server's stdout stays open.
    _stdout: BufReader<ChildStdout>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: signals our own child, which has not been waited for yet.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `replay serve --listen 127.0.0.1:0` (the kernel picks a free port, which the
/// server prints) with a token whose role covers every host and user; returns once it
/// answers an API request.
fn start(r: &Replay) -> anyhow::Result<Server> {
    let auth = r.data_dir.join("web-auth.toml");
    std::fs::write(
        &auth,
        format!(
            "[[role]]\nname = \"bench-all\"\nhosts = [\"*\"]\nusers = [\"*\"]\n\n\
             [[token]]\nname = \"bench\"\nsha256 = \"{TOKEN_SHA256}\"\nroles = [\"bench-all\"]\n"
        ),
    )?;
    let log = r.data_dir.join("serve.log");
    let mut child = r
        .cmd("serve")
        .args(["--listen", "127.0.0.1:0", "--auth"])
        .arg(&auth)
        .arg("--index")
        .arg(&r.index)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("cannot start replay serve")?;
    let mut stdout = BufReader::new(child.stdout.take().context("no stdout")?);
    let mut line = String::new();
    stdout.read_line(&mut line)?;
    let addr = line
        .trim()
        .strip_prefix("replay serve: listening on http://")
        .and_then(|a| a.trim_end_matches('/').parse().ok());
    let Some(addr) = addr else {
        let _ = child.kill();
        let _ = child.wait();
        bail!(
            "replay serve did not say where it listens (stdout {line:?}); its stderr:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    };
    let server = Server {
        child,
        addr,
        _stdout: stdout,
    };
    let started = Instant::now();
    loop {
        match http::get(addr, "/api/sessions?per_page=1", TOKEN, TIMEOUT) {
            Ok(f) if f.status == 200 => return Ok(server),
            Ok(f) if started.elapsed() > Duration::from_secs(30) => bail!(
                "replay serve answers {}: {}",
                f.status,
                String::from_utf8_lossy(&f.head)
            ),
            Err(e) if started.elapsed() > Duration::from_secs(30) => return Err(e),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Fields of `/proc/PID/status` and `/proc/PID/stat`: memory in MB, CPU in seconds.
#[derive(Clone, Copy, Default)]
struct Usage {
    rss_mb: f64,
    hwm_mb: f64,
    cpu_s: f64,
}

fn usage(pid: u32) -> anyhow::Result<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok(Usage {
        rss_mb: kb("VmRSS:") / 1024.0,
        hwm_mb: kb("VmHWM:") / 1024.0,
        cpu_s: (tick(11) + tick(12)) / hz,
    })
}

/// The 1-minute load average.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// `count` different sessions (repeating only when the store holds fewer).
fn pick(rng: &mut Rng, made: &[Made], count: usize) -> Vec<String> {
    let mut order: Vec<usize> = (0..made.len()).collect();
    (0..count)
        .map(|i| {
            let k = i % order.len();
            let j = k + rng.below((order.len() - k) as u64) as usize;
            order.swap(k, j);
            made[order[k]].id.to_string()
        })
        .collect()
}

/// `viewers` threads, released together by a barrier, each fetching its sessions' casts
/// one after another; returns every fetch and the wall time from the release to the last.
fn run_viewers(
    addr: SocketAddr,
    ids: &[String],
    fetches: usize,
) -> anyhow::Result<(Vec<Fetch>, Duration)> {
    let barrier = Barrier::new(ids.chunks(fetches.max(1)).len() + 1);
    let (results, wall) = std::thread::scope(|s| {
        let threads: Vec<_> = ids
            .chunks(fetches.max(1))
            .map(|mine| {
                let barrier = &barrier;
                s.spawn(move || -> anyhow::Result<Vec<Fetch>> {
                    barrier.wait();
                    let mut out = Vec::new();
                    for id in mine {
                        let f =
                            http::get(addr, &format!("/api/sessions/{id}/cast"), TOKEN, TIMEOUT)
                                .with_context(|| format!("fetching the cast of {id}"))?;
                        if f.status != 200 || f.first_frame.is_none() {
                            bail!(
                                "the cast of {id}: status {}, no frame in {:?}",
                                f.status,
                                String::from_utf8_lossy(&f.head)
                            );
                        }
                        out.push(f);
                    }
                    Ok(out)
                })
            })
            .collect();
        barrier.wait();
        let released = Instant::now();
        let results: Vec<_> = threads
            .into_iter()
            .map(|t| t.join().expect("viewer thread panicked"))
            .collect();
        (results, released.elapsed())
    });
    let mut all = Vec::new();
    for r in results {
        all.extend(r?);
    }
    Ok((all, wall))
}

/// One phase of the web stage: `viewers` at once, `fetches` casts each.
struct Phase {
    viewers: usize,
    all: Vec<Fetch>,
    wall: Duration,
    /// The server's CPU time over the phase.
    cpu_s: f64,
    /// The server's memory at the end of the phase.
    after: Usage,
    /// The 1-minute load average before and after.
    load: (String, String),
}

fn phase(server: &Server, ids: &[String], viewers: usize, fetches: usize) -> anyhow::Result<Phase> {
    let pid = server.child.id();
    let load_before = load();
    let before = usage(pid)?;
    let (all, wall) = run_viewers(server.addr, ids, fetches)?;
    let after = usage(pid)?;
    Ok(Phase {
        viewers,
        all,
        wall,
        cpu_s: after.cpu_s - before.cpu_s,
        after,
        load: (load_before, load()),
    })
}

/// The web stage: starts the server, lets one viewer fetch `fetches` casts alone (the
/// cost of a fetch without contention), then `viewers` at once, each `fetches` others;
/// prints the tables. Returns the p99 time to the first frame under load (ms).
pub fn web_load(
    r: &Replay,
    rng: &mut Rng,
    made: &[Made],
    viewers: usize,
    fetches: usize,
) -> anyhow::Result<f64> {
    if viewers == 0 || fetches == 0 {
        bail!("--web-viewers and --web-fetches must both be above 0");
    }
    if made.is_empty() {
        bail!("no sessions to serve");
    }
    let server = start(r)?;
    let ready = usage(server.child.id())?;
    let ids = pick(rng, made, (viewers + 1) * fetches);
    let (alone, loaded) = ids.split_at(fetches);
    let phases = [
        phase(&server, alone, 1, fetches)?,
        phase(&server, loaded, viewers, fetches)?,
    ];
    drop(server);
    Ok(print(&phases, ready, fetches))
}

/// Prints the web stage's tables; returns the p99 time to the first frame of the last
/// phase (ms).
fn print(phases: &[Phase], ready: Usage, fetches: usize) -> f64 {
    let viewers = phases.last().map_or(0, |p| p.viewers);
    println!(
        "## `replay serve`: {viewers} concurrent viewers, cast fetches (ms, loopback HTTP/1.1)\n"
    );
    println!("| viewers | measure | fetches | p50 | p99 | max |");
    println!("|---:|---|---:|---:|---:|---:|");
    let mut frame_p99 = f64::NAN;
    for p in phases {
        let n = p.all.len();
        let row = |name: &str, mut s: Vec<Duration>| {
            let (p50, p99, max) = percentiles(&mut s);
            println!(
                "| {} | {name} | {n} | {p50:.1} | {p99:.1} | {max:.1} |",
                p.viewers
            );
            p99
        };
        let at = |d: Option<Duration>| d.unwrap_or_default();
        row(
            "first byte of the body",
            p.all.iter().map(|f| at(f.first_byte)).collect(),
        );
        frame_p99 = row(
            "first frame (first `\"o\"` event line)",
            p.all.iter().map(|f| at(f.first_frame)).collect(),
        );
        row("whole cast", p.all.iter().map(|f| f.total).collect());
    }
    println!();
    println!(
        "| viewers | fetches | wall s | fetches/s | cast KB mean | cast KB max | server CPU s | \
         CPU ms per fetch | VmRSS after MB | VmHWM after MB | load before → after |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for p in phases {
        let n = p.all.len();
        let bytes: u64 = p.all.iter().map(|f| f.bytes).sum();
        let max = p.all.iter().map(|f| f.bytes).max().unwrap_or(0);
        println!(
            "| {} | {n} | {:.2} | {:.1} | {:.1} | {:.1} | {:.2} | {:.1} | {:.1} | {:.1} | {} → {} |",
            p.viewers,
            p.wall.as_secs_f64(),
            n as f64 / p.wall.as_secs_f64(),
            bytes as f64 / n.max(1) as f64 / 1e3,
            max as f64 / 1e3,
            p.cpu_s,
            p.cpu_s * 1e3 / n.max(1) as f64,
            p.after.rss_mb,
            p.after.hwm_mb,
            p.load.0,
            p.load.1,
        );
    }
    println!(
        "\nServer VmRSS once it first answered: {:.1} MB (VmHWM {:.1} MB). One viewer fetches \
         {fetches} casts alone first, then {viewers} viewer threads, released together, \
         fetch {fetches} others each, in turn: `GET /api/sessions/{{id}}/cast` with a bearer \
         token, a new connection and `Connection: close` each; no session is fetched twice. \
         Times from connect; first frame = the first asciicast event line with code \"o\" \
         received whole. Memory from /proc/PID/status (VmHWM: the peak so far), CPU from \
         /proc/PID/stat; the access log is on (one access object written to the store per \
         fetch).\n",
        ready.rss_mb, ready.hwm_mb,
    );
    frame_p99
}
