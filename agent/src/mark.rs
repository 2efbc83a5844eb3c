//! `auditty-agent mark LABEL`: add a marker to the session this runs inside.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::cli::MarkArgs;
use crate::control::{ENV_CONTROL, ENV_SESSION, MAX_LABEL_BYTES};

/// Sends the label to the agent recording this session and waits for its answer.
pub fn run(args: MarkArgs) -> anyhow::Result<()> {
    let Some(path) = std::env::var_os(ENV_CONTROL) else {
        bail!(
            "cannot add a marker: this shell is not inside a recorded session ({ENV_CONTROL} is not set)\n  try: run it inside `auditty-agent record`"
        );
    };
    if args.label.len() > MAX_LABEL_BYTES {
        bail!(
            "marker label is {} bytes; the limit is {MAX_LABEL_BYTES}",
            args.label.len()
        );
    }
    let session = std::env::var(ENV_SESSION).unwrap_or_else(|_| "?".into());
    let mut stream = UnixStream::connect(&path).with_context(|| {
        format!(
            "cannot reach the agent recording session {session} at {} (did it exit?)",
            std::path::Path::new(&path).display()
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(args.label.as_bytes())?;
    stream.shutdown(Shutdown::Write)?;
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .with_context(|| format!("no answer from the agent recording session {session}"))?;
    if reply.trim() != "ok" {
        bail!(
            "the agent recording session {session} did not record the marker (answer: {reply:?})"
        );
    }
    Ok(())
}
