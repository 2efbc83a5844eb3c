//! `replay commands`: the command lines of a session as the user saw them run.

use std::io::Write;

use schemas::text::escape_controls;
use schemas::time::{offset_text, rfc3339};
use search::Command;
use serde_json::json;

use crate::cli::CommandsArgs;
use crate::open::{OpenSession, StoreArgs, open_session};

/// Lists the commands of one session, as text or JSON lines.
pub fn run(store_args: &StoreArgs, args: CommandsArgs) -> anyhow::Result<()> {
    let (_, store) = store_args.open()?;
    let session = open_session(store.as_ref(), &args.session, &store_args.keys)?;
    let commands = commands(&session);
    crate::access::record_opened(store.as_ref(), "commands", &session)?;
    let start_ns = session.info.start_time_ns;
    let mut out = std::io::stdout().lock();
    for c in &commands {
        if args.json {
            serde_json::to_writer(&mut out, &to_json(c, start_ns))?;
            writeln!(out)?;
        } else {
            writeln!(out, "{}", text_line(c, start_ns))?;
        }
    }
    out.flush()?;
    if commands.is_empty() && !args.json {
        eprintln!("replay: no commands found in session {}", session.info.id);
    }
    Ok(())
}

/// The commands of an opened session, on a terminal of its recorded size.
pub fn commands(session: &OpenSession) -> Vec<Command> {
    let start = session.info.start.as_ref();
    let cols = start.map_or(0, |s| s.cols);
    let rows = start.map_or(0, |s| s.rows);
    let size = if cols > 0 && rows > 0 {
        (cols, rows)
    } else {
        (80, 24)
    };
    search::extract_commands(&session.events, size)
}

fn wall_time(start_ns: i64, elapsed_ns: u64) -> String {
    rfc3339(start_ns.saturating_add(i64::try_from(elapsed_ns).unwrap_or(i64::MAX)))
}

fn text_line(c: &Command, start_ns: i64) -> String {
    format!(
        "{:>4}  {:>9}  {}  {:>4}  {}",
        c.index,
        offset_text(c.elapsed_ns),
        wall_time(start_ns, c.elapsed_ns),
        c.exit_status
            .map_or_else(|| "-".to_string(), |s| s.to_string()),
        escape_controls(&c.line),
    )
}

fn to_json(c: &Command, start_ns: i64) -> serde_json::Value {
    json!({
        "index": c.index,
        "offset_ns": c.elapsed_ns,
        "time": wall_time(start_ns, c.elapsed_ns),
        "command": c.line,
        "exit_status": c.exit_status,
        "output": c.output,
        "output_truncated": c.output_truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_line_escapes_the_command() {
        let c = Command {
            index: 3,
            elapsed_ns: 1_500_000_000,
            line: "echo \x1b[2Jhi".into(),
            output: String::new(),
            output_truncated: false,
            exit_status: Some(1),
        };
        assert_eq!(
            text_line(&c, 0),
            "   3  00:01.500  1970-01-01T00:00:01Z     1  echo \\e[2Jhi"
        );
        let j = to_json(&c, 0);
        assert_eq!(j["command"], "echo \x1b[2Jhi");
        assert_eq!(j["offset_ns"], 1_500_000_000u64);
        assert_eq!(j["exit_status"], 1);
    }
}
