//! What the generated sessions type and what comes back: command lines and their output
//! as a terminal shows it (`\r\n` line ends).

use std::fmt::Write;

use crate::rng::Rng;

/// A command line and its output.
pub fn command(rng: &mut Rng, user: &str, host: &str) -> (String, Vec<u8>) {
    let svc = service(rng);
    match rng.below(10) {
        0 | 1 => ("ls -la".into(), listing(rng, user)),
        2 => {
            let w = word(rng);
            (format!("grep -rn {w} src/"), grep_hits(rng, w))
        }
        3 => {
            let n = 10 + rng.below(40) as usize;
            let out = log_lines(rng, n, 0);
            (format!("tail -n 50 /var/log/{svc}/{svc}.log"), out)
        }
        4 => (
            format!("systemctl status {svc}"),
            format!(
                "* {svc}.service - {svc} daemon\r\n     Loaded: loaded (/lib/systemd/system/{svc}.service; enabled)\r\n     Active: active (running) since Mon 2026-10-05 08:12:44 UTC\r\n   Main PID: {} ({svc})\r\n      Tasks: {}\r\n     Memory: {}M\r\n",
                1000 + rng.below(30_000),
                1 + rng.below(64),
                10 + rng.below(900)
            )
            .into_bytes(),
        ),
        5 => ("git log --oneline -n 10".into(), git_log(rng)),
        6 => (
            format!("kubectl get pods -n {svc}"),
            pods(rng, svc),
        ),
        7 => {
            let n = rng.below(15) as usize;
            (
                format!("journalctl -u {svc} --since today | grep -i error"),
                log_lines(rng, n, 0),
            )
        }
        8 => (
            format!("docker ps --filter name={svc}"),
            format!(
                "CONTAINER ID   IMAGE            STATUS        NAMES\r\n{:012x}   {svc}:1.{}   Up {} hours   {svc}-{host}\r\n",
                rng.next() >> 16,
                rng.below(30),
                1 + rng.below(90)
            )
            .into_bytes(),
        ),
        _ => (
            format!("psql -c 'select count(*) from {}' {svc}", word(rng)),
            format!(" count\r\n-------\r\n {}\r\n(1 row)\r\n\r\n", rng.below(1_000_000)).into_bytes(),
        ),
    }
}

fn listing(rng: &mut Rng, user: &str) -> Vec<u8> {
    let n = 5 + rng.below(30);
    let mut s = format!("total {}\r\n", n * 4);
    for _ in 0..n {
        let dir = rng.below(3) == 0;
        let _ = write!(
            s,
            "{} {:>2} {user} staff {:>8} Oct {:>2} {:02}:{:02} {}{}\r\n",
            if dir { "drwxr-xr-x" } else { "-rw-r--r--" },
            1 + rng.below(4),
            if dir { 4096 } else { rng.below(2_000_000) },
            1 + rng.below(30),
            rng.below(24),
            rng.below(60),
            word(rng),
            if dir {
                String::new()
            } else {
                format!("-{}.txt", rng.below(100))
            },
        );
    }
    s.into_bytes()
}

fn grep_hits(rng: &mut Rng, w: &str) -> Vec<u8> {
    let mut s = String::new();
    for _ in 0..rng.below(20) {
        let _ = write!(
            s,
            "src/{}/{}.rs:{}:    let {w} = {}::new({w}_{});\r\n",
            word(rng),
            word(rng),
            1 + rng.below(900),
            word(rng),
            rng.below(10),
        );
    }
    s.into_bytes()
}

/// `n` log lines, timed from `t0_ns` (or a fixed day when 0).
pub fn log_lines(rng: &mut Rng, n: usize, t0_ns: i64) -> Vec<u8> {
    let t0 = if t0_ns == 0 {
        1_790_812_800
    } else {
        t0_ns / 1_000_000_000
    };
    let mut s = String::new();
    for i in 0..n {
        let level = ["INFO", "INFO", "INFO", "WARN", "ERROR"][rng.below(5) as usize];
        let _ = write!(
            s,
            "{} {level} {}[{}]: {} id={:08x} tenant={} took {}ms\r\n",
            schemas::time::rfc3339((t0 + i as i64) * 1_000_000_000),
            service(rng),
            100 + rng.below(900),
            message(rng),
            rng.next() as u32,
            word(rng),
            rng.below(2000),
        );
    }
    s.into_bytes()
}

fn git_log(rng: &mut Rng) -> Vec<u8> {
    let mut s = String::new();
    for _ in 0..10 {
        let _ = write!(
            s,
            "{:07x} {}: fix {} handling in {}\r\n",
            rng.next() >> 36,
            service(rng),
            word(rng),
            word(rng)
        );
    }
    s.into_bytes()
}

fn pods(rng: &mut Rng, svc: &str) -> Vec<u8> {
    let mut s = "NAME                         READY   STATUS    RESTARTS   AGE\r\n".to_string();
    for _ in 0..1 + rng.below(8) {
        let status = [
            "Running",
            "Running",
            "Running",
            "CrashLoopBackOff",
            "Pending",
        ][rng.below(5) as usize];
        let _ = write!(
            s,
            "{svc}-{:010x}-{:05x}   1/1     {status:<9} {:<10} {}d\r\n",
            rng.next() >> 24,
            rng.next() >> 44,
            rng.below(5),
            1 + rng.below(60)
        );
    }
    s.into_bytes()
}

const SERVICES: [&str; 8] = [
    "nginx",
    "postgres",
    "redis",
    "billing",
    "auth",
    "scheduler",
    "gateway",
    "exporter",
];
const WORDS: [&str; 16] = [
    "config", "handler", "session", "token", "retry", "backend", "invoice", "payload", "cursor",
    "shard", "replica", "quota", "tenant", "widget", "ledger", "socket",
];
/// Log messages; the phrases the search benchmark looks for are among them.
const MESSAGES: [&str; 10] = [
    "request completed",
    "connection refused by upstream",
    "permission denied while opening socket",
    "timeout waiting for replica",
    "disk quota exceeded on volume",
    "deadlock detected, retrying transaction",
    "cache miss for tenant",
    "certificate expires soon",
    "worker restarted after panic",
    "health check passed",
];

/// A service the commands name.
pub fn service(rng: &mut Rng) -> &'static str {
    rng.pick(&SERVICES)
}

/// A word of the code base the sessions grep in.
pub fn word(rng: &mut Rng) -> &'static str {
    rng.pick(&WORDS)
}

/// A log message.
pub fn message(rng: &mut Rng) -> &'static str {
    rng.pick(&MESSAGES)
}
