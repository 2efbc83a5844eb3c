//! `auditty-agent record`: one recorded session from start to end.

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use schemas::data_dir::DataDir;
use schemas::{EndReason, SessionEnd, SessionId};
use spool::{SpoolOptions, SpoolWriter};

use crate::cli::{RecordArgs, SshPolicy};
use crate::control::{ControlSocket, ENV_CONTROL, ENV_SESSION, runtime_dir};
use crate::login::SshRequest;
use crate::recorder::{ChunkPolicy, FinishError, Protection, Recorder, RecorderStats};
use crate::relay::{HiddenInput, Outcome, Relay, SignalFlags};
use integrity::{NodeKey, SessionChain};
use terminal::RawMode;
use terminal::pty::{self, WinSize};

use crate::runas::{RunAs, protect_dir};

/// Records one session; returns the exit code to leave with (the program's).
pub fn run(data_dir: Option<&Path>, args: RecordArgs) -> anyhow::Result<i32> {
    let spool_dir = match &args.spool {
        Some(dir) => dir.clone(),
        None => DataDir::resolve(data_dir)?.spool(),
    };
    let runas = args.user.as_deref().map(RunAs::lookup).transpose()?;
    let mut command = command_to_run(&args, runas.as_ref());
    if args.chunk_bytes == 0 || args.chunk_latency_ms == 0 {
        bail!("--chunk-bytes and --chunk-latency-ms must be greater than 0");
    }
    let without_terminal = match ssh_plan(data_dir, &args, runas.as_ref(), &mut command)? {
        SshPlan::Record { without_terminal } => without_terminal,
        SshPlan::Done(code) => return Ok(code),
    };
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let terminal_size = pty::get_size(stdin.as_raw_fd());
    let size = terminal_size
        .or_else(|| pty::get_size(stdout.as_raw_fd()))
        .unwrap_or_else(size_from_env);

    if runas.is_some() {
        protect_dir(&spool_dir)?;
    }
    let session_id = SessionId::new_v7_at(schemas::time::now_ns());
    let recorder = match start_recorder(
        data_dir,
        &args,
        &spool_dir,
        session_id,
        &command,
        size,
        runas.as_ref(),
    ) {
        Ok(r) => r,
        Err(e) => return break_glass(data_dir, &args, runas.as_ref(), &command, e),
    };
    let control = match runas {
        Some(_) => None,
        None => open_control(session_id),
    };
    let signals = SignalFlags::install().context("cannot install signal handlers")?;
    let env = session_env(session_id, control.as_ref());

    let started = Instant::now();
    if without_terminal && let Some(r) = runas.as_ref() {
        return record_without_terminal(
            &command, r, &env, recorder, &signals, started, session_id, &spool_dir,
        );
    }
    let spawned = spawn_program(&command, &env, size, runas.as_ref())
        .with_context(|| format!("cannot start {:?}", command[0]));
    let mut spawned = match spawned {
        Ok(s) => s,
        Err(e) => {
            end_unstarted(recorder, &e);
            return Err(e);
        }
    };

    let outcome = {
        // Raw mode only for the relay: every way out of this block restores the terminal.
        let _raw =
            RawMode::enter(stdin.as_raw_fd()).context("cannot put the terminal in raw mode")?;
        Relay {
            input: stdin.as_fd(),
            output: stdout.as_fd(),
            follow_size: terminal_size.is_some(),
            child: &mut spawned.child,
            master: spawned.master.as_fd(),
            recorder: &recorder,
            control: control.as_ref(),
            signals: &signals,
            started,
            hidden_input: HiddenInput::new(!args.no_redact_hidden_input),
        }
        .run()
    };
    let elapsed_ns = crate::relay::elapsed(started);
    let outcome = outcome.context("the terminal relay failed")?;
    let stats = recorder.finish(elapsed_ns, session_end(&outcome));
    drop(control);
    Ok(report(session_id, &spool_dir, args.quiet, outcome, stats))
}

/// What a forced login's ssh request comes to.
enum SshPlan {
    /// Record it here: on a PTY, or through pipes when the client gave no terminal.
    Record { without_terminal: bool },
    /// Already dealt with (denied, or run unrecorded): leave with this code.
    Done(i32),
}

/// Applies `--ssh-command`/`--file-transfer` to the command a forced ssh login asked
/// for (`SSH_ORIGINAL_COMMAND`), setting `command` to run it as sshd would.
fn ssh_plan(
    data_dir: Option<&Path>,
    args: &RecordArgs,
    runas: Option<&RunAs>,
    command: &mut Vec<OsString>,
) -> anyhow::Result<SshPlan> {
    let (Some(request), Some(r)) = (SshRequest::from_env(args), runas) else {
        return Ok(SshPlan::Record {
            without_terminal: false,
        });
    };
    *command = request.command_line(r);
    match request.policy(args) {
        SshPolicy::Deny => {
            eprintln!(
                "auditty: {} is not allowed on this server, whose logins are all recorded \
                 (policy: deny). Log in interactively, or ask its administrators.",
                request.what()
            );
            Ok(SshPlan::Done(1))
        }
        SshPolicy::Pass => {
            crate::login::log_unrecorded(
                data_dir,
                &r.name,
                command,
                &format!(
                    "{} passed through unrecorded (policy: pass)",
                    request.what()
                ),
            )?;
            Ok(SshPlan::Done(crate::login::run_unrecorded(command, r)?))
        }
        SshPolicy::Record => Ok(SshPlan::Record {
            without_terminal: !nix::unistd::isatty(std::io::stdin().as_raw_fd()).unwrap_or(false),
        }),
    }
}

/// Records a program that has no terminal (a command, scp or sftp through a forced ssh
/// login): its stdin, stdout and stderr through pipes.
#[allow(clippy::too_many_arguments)]
fn record_without_terminal(
    command: &[OsString],
    runas: &RunAs,
    env: &[(&'static str, String)],
    recorder: Recorder,
    signals: &SignalFlags,
    started: Instant,
    session_id: SessionId,
    spool_dir: &Path,
) -> anyhow::Result<i32> {
    let full = runas.environment(env);
    let full: Vec<(&str, String)> = full.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let spawned = pty::spawn_without_terminal(
        &command[0],
        &command[1..],
        &full,
        Some(&runas.credentials()),
        false,
    )
    .with_context(|| format!("cannot start {:?}", command[0]));
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            end_unstarted(recorder, &e);
            return Err(e);
        }
    };
    // So that a player shows why there is no prompt and no echo.
    recorder.send(
        schemas::EventKind::Marker,
        0,
        b"no terminal: a command given to ssh, its stdin, stdout and stderr recorded as pipes"
            .to_vec(),
    );
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let outcome = crate::pipes::PipeRelay {
        input: stdin.as_fd(),
        output: stdout.as_fd(),
        error: stderr.as_fd(),
        child: &mut child,
        recorder: &recorder,
        signals,
        started,
    }
    .run()
    .context("the relay of the program's pipes failed")?;
    let elapsed_ns = crate::relay::elapsed(started);
    let stats = recorder.finish(elapsed_ns, session_end(&outcome));
    // The client reads our stdout and stderr as the program's: no summary line there.
    Ok(report(session_id, spool_dir, true, outcome, stats))
}

/// A session that could not be recorded: refused, unless the spool is full and the user
/// is in the break-glass group, who then gets the session unrecorded, told so on their
/// terminal, and logged.
fn break_glass(
    data_dir: Option<&Path>,
    args: &RecordArgs,
    runas: Option<&RunAs>,
    command: &[OsString],
    error: anyhow::Error,
) -> anyhow::Result<i32> {
    let full = matches!(
        error.downcast_ref::<spool::SpoolError>(),
        Some(spool::SpoolError::Full { .. })
    );
    let (Some(group), Some(r), true) = (args.break_glass_group.as_deref(), runas, full) else {
        return Err(error);
    };
    if !crate::login::in_group(r, group) {
        return Err(error.context(format!(
            "{} is not in the break-glass group {group}: the login is refused",
            r.name
        )));
    }
    let log = crate::login::log_unrecorded(
        data_dir,
        &r.name,
        command,
        &format!("break-glass (group {group}): {error:#}"),
    )?;
    eprintln!(
        "auditty: BREAK-GLASS: this session is NOT recorded ({error:#}). You are let in as a \
         member of {group}; the fact is logged in {} and syslog.",
        log.display()
    );
    crate::login::run_unrecorded(command, r)
}

/// The command line to record: the one given, else the user's shell (the recorded
/// user's login shell with `--user`).
fn command_to_run(args: &RecordArgs, runas: Option<&RunAs>) -> Vec<OsString> {
    if !args.command.is_empty() {
        return args.command.clone();
    }
    let shell = match runas {
        Some(r) => Some(r.shell.clone().into_os_string()),
        None => std::env::var_os("SHELL"),
    };
    vec![
        shell
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| OsString::from("/bin/sh")),
    ]
}

/// Starts the program on a new PTY: as we are, or as the recorded user with an
/// environment of their own.
fn spawn_program(
    command: &[OsString],
    env: &[(&'static str, String)],
    size: WinSize,
    runas: Option<&RunAs>,
) -> std::io::Result<pty::Spawned> {
    match runas {
        None => pty::spawn(&command[0], &command[1..], env, size),
        Some(r) => {
            let full = r.environment(env);
            let full: Vec<(&str, String)> =
                full.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            pty::spawn_as(
                &command[0],
                &command[1..],
                &full,
                size,
                Some(&r.credentials()),
            )
        }
    }
}

/// Seals and signs the session as asked, creates its spool file, and starts the
/// recorder with the `start` event written.
fn start_recorder(
    data_dir: Option<&Path>,
    args: &RecordArgs,
    spool_dir: &Path,
    session_id: SessionId,
    command: &[OsString],
    size: WinSize,
    runas: Option<&RunAs>,
) -> anyhow::Result<Recorder> {
    // Before anything is written: a session that should be sealed and cannot be is not
    // recorded in the clear instead.
    let (data_key, envelope) = match args
        .recipients
        .wrap_session_key(&session_id.to_string())
        .context("cannot seal the session for its recipients; nothing was recorded")?
    {
        Some((key, envelope)) => (Some(key), Some(envelope)),
        None => (None, None),
    };
    let (node_key, key_path) = load_node_key(
        data_dir,
        args.node_key.as_deref(),
        &crate::metadata::host_name(),
    )?;
    if runas.is_some()
        && let Some(dir) = key_path.parent().filter(|d| !d.as_os_str().is_empty())
    {
        protect_dir(dir)?;
    }
    let chain = SessionChain::new(session_id, node_key);
    let writer = SpoolWriter::create(
        spool_dir,
        &session_id.to_string(),
        SpoolOptions {
            max_bytes: args.spool_max_bytes,
            ..SpoolOptions::default()
        },
    )
    .with_context(|| format!("cannot start recording into spool {}", spool_dir.display()))?;
    // Numbered before the `start` is written, which carries the number; after the spool
    // segment exists, so that a shipper that sees this number in the ledger also sees
    // the segment and heads the session only once it is shipped. A session the ledger
    // cannot number could vanish from the store unnoticed: it is not recorded.
    let place = crate::ledger::take_next(&crate::ledger::path_for_key(&key_path), session_id)
        .context("cannot number the session in the node's ledger; nothing was recorded")?;
    let start_time_ns = session_id
        .start_time_ns()
        .unwrap_or_else(schemas::time::now_ns);
    let mut start = crate::metadata::gather(start_time_ns, command, size);
    start.envelope = envelope;
    start.redacts_hidden_input = !args.no_redact_hidden_input;
    if let Some(r) = runas {
        start.user = r.name.clone();
        start.uid = r.uid;
    }
    start.node_seq = place.node_seq;
    start.prev_session = place.prev_session.map(|id| id.to_string());
    let policy = ChunkPolicy {
        max_bytes: args.chunk_bytes,
        max_latency: Duration::from_millis(args.chunk_latency_ms),
        compress: !args.no_compress,
        checkpoint_every: args.checkpoint_every,
    };
    let protection = Protection {
        key: data_key,
        chain,
    };
    Recorder::start(writer, session_id, &start, policy, protection).with_context(|| {
        format!(
            "cannot write the start of session {session_id} to {}",
            spool_dir.display()
        )
    })
}

/// The socket `auditty-agent mark` talks to; the session goes on without markers if it
/// cannot be created.
fn open_control(session_id: SessionId) -> Option<ControlSocket> {
    match ControlSocket::bind(&runtime_dir(), &session_id.to_string()) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(
                session = %session_id,
                error = %e,
                "Markers are unavailable: the control socket could not be created."
            );
            None
        }
    }
}

/// What the recorded program finds in its environment: its session, and where to ask
/// for markers.
fn session_env(
    session_id: SessionId,
    control: Option<&ControlSocket>,
) -> Vec<(&'static str, String)> {
    let mut env = vec![(ENV_SESSION, session_id.to_string())];
    if let Some(c) = control {
        env.push((ENV_CONTROL, c.path().display().to_string()));
    }
    env
}

/// Ends a session whose program could not be started, as a shell does: status 127.
fn end_unstarted(recorder: Recorder, error: &anyhow::Error) {
    let end = SessionEnd {
        version: schemas::session::METADATA_VERSION,
        exit_status: Some(127),
        reason: EndReason::Exit,
        detail: Some(format!("{error:#}")),
        ..Default::default()
    };
    let _ = recorder.finish(0, end);
}

/// The `end` event of a session the relay ran.
fn session_end(outcome: &Outcome) -> SessionEnd {
    let status = outcome.status;
    let reason = match (outcome.reason, status.signal()) {
        (EndReason::Exit, Some(_)) => EndReason::Signal,
        (r, _) => r,
    };
    SessionEnd {
        version: schemas::session::METADATA_VERSION,
        exit_status: status.code(),
        signal: status.signal(),
        reason,
        detail: outcome.detail.clone(),
        ..Default::default()
    }
}

/// Tells the user how recording went; returns the exit code to leave with: the
/// program's, but never success when the session was not recorded completely.
fn report(
    session_id: SessionId,
    spool_dir: &Path,
    quiet: bool,
    outcome: Outcome,
    stats: Result<RecorderStats, FinishError>,
) -> i32 {
    let status = outcome.status;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    let failed_code = if code == 0 { 1 } else { code };
    match stats {
        Ok(stats) => {
            if !quiet {
                eprintln!(
                    "auditty: session {session_id} recorded ({} events) in {}",
                    stats.events,
                    spool_dir.display()
                );
            }
        }
        Err(e) => {
            eprintln!("auditty-agent: session {session_id} was not recorded completely: {e}");
            if let Some(d) = outcome.detail {
                eprintln!("  cause: {d}");
            }
            return failed_code;
        }
    }
    if outcome.reason == EndReason::RecordingFailed {
        return failed_code;
    }
    code
}

/// Loads the node key (`--node-key`, else `<data dir>/node.key`), creating it on first
/// use. A new key's public half goes into `<data dir>/trusted-keys`, so that `replay
/// verify` on this machine trusts it; a fleet collects `auditty-agent node-key` lines.
/// Recording refuses to start without a key: an unsigned session could be forged.
pub fn load_node_key(
    data_dir: Option<&Path>,
    flag: Option<&Path>,
    host: &str,
) -> anyhow::Result<(NodeKey, PathBuf)> {
    let dir = DataDir::resolve(data_dir);
    let path = match (flag, &dir) {
        (Some(p), _) => p.to_path_buf(),
        (None, Ok(d)) => d.node_key(),
        (None, Err(e)) => bail!("{e}; or give --node-key FILE"),
    };
    let (key, created) = NodeKey::load_or_create(&path)
        .with_context(|| "cannot load the node key that signs sessions; give --node-key FILE")?;
    if created {
        tracing::info!(path = %path.display(), "Created a node key.");
        if let Ok(d) = &dir
            && let Err(e) = integrity::add_to_trust_file(&d.trusted_keys(), &key.public(), host)
        {
            tracing::warn!(
                path = %d.trusted_keys().display(),
                error = %e,
                "Could not add the new node key to the local trust file."
            );
        }
    }
    Ok((key, path))
}

fn size_from_env() -> WinSize {
    let get = |k: &str| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse::<u16>().ok())
            .filter(|&v| v > 0)
    };
    WinSize {
        cols: get("COLUMNS").unwrap_or(80),
        rows: get("LINES").unwrap_or(24),
    }
}
