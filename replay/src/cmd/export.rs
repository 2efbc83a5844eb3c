//! `replay export`: asciicast v2 or plain text.

use std::io::Write;

use anyhow::{Context, bail};
use schemas::EventKind;
use schemas::asciicast::{Encoder, HeaderV2};
use search::render::Screen;

use crate::cli::{ExportArgs, ExportFormat};
use crate::open::{OpenSession, StoreArgs, open_session};
use crate::stream::{cap_idle, timed};

/// Exports one session.
pub fn run(store_args: &StoreArgs, args: ExportArgs) -> anyhow::Result<()> {
    let (_, store) = store_args.open()?;
    let session = open_session(store.as_ref(), &args.session, &store_args.keys)?;
    let bytes = match args.format {
        ExportFormat::Asciicast => asciicast(&session, args.idle_limit),
        ExportFormat::Text => text(&session),
    };
    match &args.output {
        Some(path) => {
            if path.exists() && !args.force {
                bail!(
                    "{} already exists; pass --force to overwrite it, or choose another -o FILE",
                    path.display()
                );
            }
            std::fs::write(path, &bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)?;
            out.flush()?;
        }
    }
    Ok(())
}

/// asciicast v2 of a session: output as `o`, input as `i`, resizes as `r`, markers as `m`,
/// and input left out of the recording (`redacted`) as a marker that says how much.
pub fn asciicast(session: &OpenSession, idle_limit: Option<std::time::Duration>) -> Vec<u8> {
    let start = session.info.start.clone().unwrap_or_default();
    let mut env = std::collections::BTreeMap::new();
    env.insert("TERM".to_string(), start.term.clone());
    let header = HeaderV2 {
        version: 2,
        width: if start.cols > 0 { start.cols } else { 80 },
        height: if start.rows > 0 { start.rows } else { 24 },
        timestamp: Some(session.info.start_time_ns.div_euclid(1_000_000_000)),
        duration: None,
        idle_time_limit: idle_limit.map(|d| d.as_secs_f64()),
        command: (!start.command.is_empty()).then(|| start.command_line()),
        title: Some(format!("auditty session {}", session.info.id)),
        env,
    };
    let mut enc = Encoder::default();
    let mut out = enc.header(&header);
    let events = timed(session.events.iter().cloned());
    let events: Box<dyn Iterator<Item = _>> = match idle_limit {
        Some(limit) => Box::new(cap_idle(events, limit)),
        None => Box::new(events),
    };
    for t in events {
        let label;
        let (code, data) = match t.event.kind {
            EventKind::Output => ('o', t.event.data.as_slice()),
            EventKind::Input => ('i', t.event.data.as_slice()),
            EventKind::Resize => ('r', t.event.data.as_slice()),
            EventKind::Marker => ('m', t.event.data.as_slice()),
            EventKind::Redacted => {
                label = redacted_label(&t.event.data);
                ('m', label.as_bytes())
            }
            EventKind::Start | EventKind::End | EventKind::Checkpoint => continue,
        };
        if let Some(line) = enc.event(t.at.as_nanos() as u64, code, data) {
            out.push_str(&line);
        }
    }
    out.into_bytes()
}

/// The marker label for a `redacted` event, whose data is a byte count in ASCII decimal.
fn redacted_label(data: &[u8]) -> String {
    match std::str::from_utf8(data)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        Some(1) => "[1 byte of hidden input not recorded]".to_string(),
        Some(n) => format!("[{n} bytes of hidden input not recorded]"),
        None => "[hidden input not recorded]".to_string(),
    }
}

/// What the user saw, line by line.
pub fn text(session: &OpenSession) -> Vec<u8> {
    let start = session.info.start.clone().unwrap_or_default();
    let mut screen = Screen::new(start.cols.max(1), start.rows.max(1));
    for e in &session.events {
        screen.apply(e);
    }
    screen.transcript().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::redacted_label;

    #[test]
    fn redacted_labels_say_how_much_was_left_out() {
        assert_eq!(
            redacted_label(b"20"),
            "[20 bytes of hidden input not recorded]"
        );
        assert_eq!(
            redacted_label(b"1"),
            "[1 byte of hidden input not recorded]"
        );
        assert_eq!(redacted_label(b"x\xff"), "[hidden input not recorded]");
    }
}
