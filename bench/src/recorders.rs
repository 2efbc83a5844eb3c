//! The recorders under test and how each one is started on a command.
//!
//! Every recorder gets the same shell command line (run with `sh -c`), a working
//! directory of its own for its files, and records input as well as output where it can
//! (auditty always records input, so the peers do too: `script -B`, `tlog-rec
//! --log-input`, `asciinema rec --stdin` / `--capture-input`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The recipient sealed sessions are recorded for. Sealing needs only the public key; the
/// private half of this one was thrown away.
const BENCH_RECIPIENT: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEb57C4AQNhT7oEtsVMk/xhX7q5xosTD7BL/yF697QqC bench";

/// Which recorder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// No recorder: the command directly on the harness's PTY.
    Bare,
    /// `auditty-agent record`.
    Auditty,
    /// `auditty-agent record --recipient …`: every chunk sealed (issue #6).
    AudittySealed,
    /// `auditty-agent record` from another build (`--baseline DIR`): an A/B of two builds
    /// in one run, under the same load, which runs minutes apart on a shared machine are
    /// not.
    AudittyBase,
    /// util-linux `script`.
    Script,
    /// Debian `tlog-rec` with the file writer.
    Tlog,
    /// asciinema 2.x (Debian, Python).
    Asciinema2,
    /// asciinema 3.x (crates.io, Rust).
    Asciinema3,
}

impl Kind {
    /// Every recorder, in table order.
    pub const ALL: [Kind; 8] = [
        Kind::Bare,
        Kind::Auditty,
        Kind::AudittySealed,
        Kind::AudittyBase,
        Kind::Script,
        Kind::Tlog,
        Kind::Asciinema2,
        Kind::Asciinema3,
    ];

    /// Short name used on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bare => "bare-pty",
            Kind::Auditty => "auditty",
            Kind::AudittySealed => "auditty-sealed",
            Kind::AudittyBase => "auditty-base",
            Kind::Script => "script",
            Kind::Tlog => "tlog",
            Kind::Asciinema2 => "asciinema2",
            Kind::Asciinema3 => "asciinema3",
        }
    }

    /// True for the recorders auditty is compared with.
    pub fn is_peer(self) -> bool {
        self != Kind::Bare && !self.is_auditty()
    }

    /// True for the ones that run `auditty-agent`.
    pub fn is_auditty(self) -> bool {
        matches!(
            self,
            Kind::Auditty | Kind::AudittySealed | Kind::AudittyBase
        )
    }
}

/// A recorder that was found on this machine.
#[derive(Clone, Debug)]
pub struct Recorder {
    /// Which one.
    pub kind: Kind,
    /// Its executable (unused for [`Kind::Bare`]).
    pub program: PathBuf,
    /// Version string, for the report.
    pub version: String,
}

/// Where the tools are, as found (or not) on this machine.
pub struct Found {
    /// Recorders that can run.
    pub recorders: Vec<Recorder>,
    /// Recorders that cannot, with the reason.
    pub missing: Vec<(Kind, String)>,
    /// `auditty-ingest`, to turn auditty's spool into the Parquet store.
    pub ingest: PathBuf,
}

/// Looks `name` up in `$PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn version_of(program: &Path, arg: &str) -> String {
    match std::process::Command::new(program).arg(arg).output() {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            text.lines().next().unwrap_or("").trim().to_string()
        }
        Err(e) => format!("unknown ({e})"),
    }
}

/// Finds our binaries in `bin_dir` (and `baseline`, the build to compare with, if any)
/// and the peers on `$PATH` (asciinema 3 at `asciinema3`), keeping those `wanted`.
pub fn find(
    bin_dir: &Path,
    baseline: Option<&Path>,
    asciinema3: &Path,
    wanted: &[Kind],
) -> anyhow::Result<Found> {
    let agent = bin_dir.join("auditty-agent");
    let ingest = bin_dir.join("auditty-ingest");
    for p in [&agent, &ingest] {
        anyhow::ensure!(
            p.is_file(),
            "{} is missing: build the workspace first (`cargo build --release --workspace --bins`) or pass --bin-dir",
            p.display()
        );
    }
    let mut recorders = Vec::new();
    let mut missing = Vec::new();
    for &kind in wanted {
        let found = match kind {
            Kind::Bare => Ok((PathBuf::from("/bin/sh"), "kernel PTY".to_string())),
            Kind::Auditty | Kind::AudittySealed => {
                Ok((agent.clone(), version_of(&agent, "--version")))
            }
            Kind::AudittyBase => match baseline.map(|d| d.join("auditty-agent")) {
                Some(p) if p.is_file() => {
                    let v = version_of(&p, "--version");
                    Ok((p, v))
                }
                Some(p) => Err(format!("{} is missing", p.display())),
                None => Err("no --baseline DIR given".to_string()),
            },
            Kind::Script => which("script")
                .map(|p| {
                    let v = version_of(&p, "--version");
                    (p, v)
                })
                .ok_or_else(|| "`script` not on PATH (util-linux)".to_string()),
            Kind::Tlog => which("tlog-rec")
                .map(|p| {
                    let v = version_of(&p, "--version");
                    (p, v)
                })
                .ok_or_else(|| "`tlog-rec` not on PATH (bench/install-peers)".to_string()),
            Kind::Asciinema2 => which("asciinema")
                .map(|p| {
                    let v = version_of(&p, "--version");
                    (p, v)
                })
                .ok_or_else(|| "`asciinema` not on PATH (Debian asciinema)".to_string())
                .and_then(|(p, v)| {
                    if v.contains(" 2.") {
                        Ok((p, v))
                    } else {
                        Err(format!("`asciinema` on PATH is {v:?}, not 2.x"))
                    }
                }),
            Kind::Asciinema3 => {
                if asciinema3.is_file() {
                    Ok((
                        asciinema3.to_path_buf(),
                        version_of(asciinema3, "--version"),
                    ))
                } else {
                    Err(format!(
                        "{} not found (bench/install-peers builds it from crates.io)",
                        asciinema3.display()
                    ))
                }
            }
        };
        match found {
            Ok((program, version)) => recorders.push(Recorder {
                kind,
                program,
                version,
            }),
            Err(why) => missing.push((kind, why)),
        }
    }
    if wanted.contains(&Kind::Tlog) && recorders.iter().any(|r| r.kind == Kind::Tlog) {
        ensure_utmp()?;
    }
    Ok(Found {
        recorders,
        missing,
        ingest,
    })
}

/// tlog-rec refuses to start unless the utmp file exists (it looks the login up there).
fn ensure_utmp() -> anyhow::Result<()> {
    let utmp = Path::new("/var/run/utmp");
    if !utmp.exists() {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(utmp)
            .with_context(|| {
                format!(
                    "tlog-rec needs {} to exist; create it (as root) or run bench/install-peers",
                    utmp.display()
                )
            })?;
    }
    Ok(())
}

/// The files a recorder leaves for one session, for the storage table.
#[derive(Clone, Debug)]
pub struct Artifacts {
    /// Working directory of the session.
    pub dir: PathBuf,
}

impl Artifacts {
    /// auditty's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
    /// script's output log.
    pub fn script_log(&self) -> PathBuf {
        self.dir.join("script.log")
    }
    /// script's timing log.
    pub fn script_timing(&self) -> PathBuf {
        self.dir.join("script.timing")
    }
    /// tlog's JSON log.
    pub fn tlog_json(&self) -> PathBuf {
        self.dir.join("tlog.json")
    }
    /// asciinema's recording.
    pub fn cast(&self) -> PathBuf {
        self.dir.join("session.cast")
    }
}

impl Recorder {
    /// Program and arguments that run `shell_cmd` under this recorder, writing into `art`.
    pub fn command(&self, shell_cmd: &str, art: &Artifacts) -> (OsString, Vec<OsString>) {
        let s = |x: &str| OsString::from(x);
        let p = |x: PathBuf| x.into_os_string();
        match self.kind {
            Kind::Bare => (s("/bin/sh"), vec![s("-c"), s(shell_cmd)]),
            Kind::Auditty | Kind::AudittySealed | Kind::AudittyBase => {
                let mut args = vec![s("--data-dir"), p(art.data_dir()), s("record"), s("-q")];
                if self.kind == Kind::AudittySealed {
                    args.extend([s("--recipient"), s(BENCH_RECIPIENT)]);
                }
                args.extend([s("--"), s("/bin/sh"), s("-c"), s(shell_cmd)]);
                (p(self.program.clone()), args)
            }
            Kind::Script => (
                p(self.program.clone()),
                vec![
                    s("-q"),
                    s("-B"),
                    p(art.script_log()),
                    s("-T"),
                    p(art.script_timing()),
                    s("-c"),
                    s(shell_cmd),
                ],
            ),
            Kind::Tlog => (
                p(self.program.clone()),
                vec![
                    s("--writer=file"),
                    OsString::from(format!("--file-path={}", art.tlog_json().display())),
                    s("--log-input=true"),
                    s("--"),
                    s("/bin/sh"),
                    s("-c"),
                    s(shell_cmd),
                ],
            ),
            Kind::Asciinema2 => (
                p(self.program.clone()),
                vec![
                    s("rec"),
                    s("-q"),
                    s("--stdin"),
                    s("-c"),
                    s(shell_cmd),
                    p(art.cast()),
                ],
            ),
            Kind::Asciinema3 => (
                p(self.program.clone()),
                vec![
                    s("rec"),
                    s("-q"),
                    s("--capture-input"),
                    s("-c"),
                    s(shell_cmd),
                    p(art.cast()),
                ],
            ),
        }
    }
}
