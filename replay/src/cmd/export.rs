//! `replay export`: asciicast v2 or v3, JSON lines, plain text ([`crate::formats`]), or
//! an evidence bundle ([`crate::bundle`]).

use std::io::Write;

use anyhow::{Context, bail};

use crate::cli::{ExportArgs, ExportFormat};
use crate::formats::{View, asciicast, asciicast_v3, jsonl, text};
use crate::open::{StoreArgs, open_session};

/// Exports one session.
pub fn run(store_args: &StoreArgs, args: ExportArgs) -> anyhow::Result<()> {
    if args.idle_limit.is_some()
        && matches!(args.format, ExportFormat::Jsonl | ExportFormat::Bundle)
    {
        bail!(
            "--idle-limit applies to asciicast exports only: JSON lines and bundles keep the recorded timing"
        );
    }
    let (_, store) = store_args.open()?;
    let bytes = if args.format == ExportFormat::Bundle {
        crate::bundle::export(store.as_ref(), &args.session, &store_args.keys)?
    } else {
        let session = open_session(store.as_ref(), &args.session, &store_args.keys)?;
        let view = View::from(&session);
        match args.format {
            ExportFormat::Asciicast => asciicast(&view, args.idle_limit),
            ExportFormat::AsciicastV3 => asciicast_v3(&view, args.idle_limit),
            ExportFormat::Jsonl => jsonl(&view),
            ExportFormat::Text => text(&view),
            ExportFormat::Bundle => unreachable!("handled above"),
        }
    };
    crate::access::record_export(store.as_ref(), &args)?;
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
