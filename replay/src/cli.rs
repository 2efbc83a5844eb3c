//! Command-line definitions of `replay`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Lists, plays, exports and verifies recorded terminal sessions, and lists the commands
/// run in them.
#[derive(Parser, Debug)]
#[command(name = "replay", version, about, long_about = None, after_help = "Exit status: 0 done, 1 nothing found, 2 the job could not run.")]
pub struct Cli {
    /// Where spool/, store/ and the node key live.
    #[command(flatten)]
    pub data_dir: schemas::data_dir::DataDirArg,

    /// Store to read: `file:///PATH`, a path, or `s3://BUCKET/PREFIX`.
    /// Default: <data dir>/store.
    #[arg(long, global = true, env = "AUDITTY_STORE", value_name = "URL")]
    pub store: Option<String>,

    /// How to reach an s3:// store.
    #[command(flatten)]
    pub s3: store::S3Args,

    /// Trust file of the node keys whose signatures `verify` and `ls` accept (lines
    /// `ed25519:BASE64 host`; `auditty-agent node-key` prints a node's line).
    /// Default: <data dir>/trusted-keys, where the local agent adds its own key.
    #[arg(long, global = true, env = "AUDITTY_TRUST_FILE", value_name = "FILE")]
    pub trust: Option<PathBuf>,

    /// How to open sealed sessions.
    #[command(flatten)]
    pub keys: envelope::IdentityArgs,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// List recorded sessions, oldest first.
    #[command(
        after_help = "Columns: session id, user, host, start (UTC), duration, exit status (\"-\" while\nrunning or when cut off: the agent never wrote an end), size of input+output, SEALED\n(encrypted for recipients), INTEGRITY (complete, open = never ended, untrusted = signed\nby a key not in the trust file, unsigned, FAILED: see `replay verify`), command.\n\nWith an index (`replay index`), sessions are listed from it without reading the store;\nINTEGRITY is then the state computed when the session was last indexed, with the trust\nfile then in force (`replay verify` recomputes it). --scan reads the store instead.\nWithout an index, the store is read.\n\nExamples:\n  replay ls --user alice --since 2026-11-01\n  replay ls --limit 20 --json"
    )]
    Ls(LsArgs),
    /// Play a session in this terminal with its original timing.
    #[command(
        after_help = "Keys while playing: space pauses and resumes, n jumps to the next command or marker,\np to the previous one, . (while paused) shows the next bit of output, q (or Ctrl-C) quits.\nA jump draws the screen up to that moment at once.\n\nExamples:\n  replay play 01a21f3b\n  replay play 01a21f3b --speed 4 --idle-limit 2\n  replay play 01a21f3b --at 12:34\n  replay play 01a21f3b --at-command 7      # N as `replay commands` numbers them"
    )]
    Play(PlayArgs),
    /// Write a session as asciicast v2 (plays in asciinema) or plain text.
    #[command(
        after_help = "Examples:\n  replay export 01a21f3b -o session.cast && asciinema play session.cast\n  replay export 01a21f3b --format text"
    )]
    Export(ExportArgs),
    /// Check that sessions are complete and untampered: recompute each hash chain and
    /// check the signed checkpoints against the trust file. Needs no decryption key.
    #[command(
        after_help = "Reports per session: complete, or each problem: gap at seq N, altered at seq N,\nbad signature, unknown signature (key not in the trust file), never ended (agent killed,\nstill running, or tail removed), truncated, unsigned.\n\nExit status: 0 every session is complete, 1 any session is not (or was not found),\n2 the check could not run.\n\nExamples:\n  replay verify 01a21f3b\n  replay verify --all --trust /etc/auditty/trusted-keys"
    )]
    Verify(VerifyArgs),
    /// List the commands run in a session, as the user saw them: read off the rendered
    /// screen, so after line editing, history recall, Ctrl-R and tab completion.
    #[command(
        after_help = "Text: one line per command: index, offset into the session (MM:SS.mmm, or H:MM:SS\nfrom an hour on), wall time (UTC), exit status (\"-\" unless the shell reports it with\nOSC 133 marks; see the README), the command with control characters escaped.\n\n--json: one JSON object per line (JSON Lines) with index, offset_ns, time (RFC 3339 UTC),\ncommand, exit_status (null if unknown), output (rendered text, at most 64 KiB) and\noutput_truncated.\n\nSealed sessions need --identity (or --kms), as for play and export.\n\nExamples:\n  replay commands 01a21f3b\n  replay commands 01a21f3b --json | jq -r 'select((.exit_status // 0) != 0) | .command'"
    )]
    Commands(CommandsArgs),
    /// Build or update the search index from the store: only objects not indexed yet are
    /// read, and each session they touch is indexed again in full.
    #[command(
        after_help = "The index lives in <data dir>/index (or --index DIR), one tantivy index per UTC day of\nsession start (date=YYYY-MM-DD/) and a manifest of the store objects it holds. It is\nderived data: --rebuild drops it and indexes the whole store again.\n\nSealed sessions are indexed by their clear metadata only (user, host, times), unless\n--index-sealed-text is given together with --identity (or --kms): the index then holds\ntheir command lines and output IN CLEAR, readable by anyone who can read the index.\n\nExamples:\n  replay index\n  replay index --follow --interval 10\n  replay index --rebuild"
    )]
    Index(IndexArgs),
    /// Search the commands of all sessions (command lines and their output) in the index
    /// `replay index` builds.
    #[command(
        after_help = "Query syntax: words (all required), \"a phrase\", word* (prefix), OR, -word, and fields:\ncmd:WORD, output:WORD, user:NAME, host:NAME (exact). Words are searched in the\ncommand and its output.\n\nText: one line per hit, newest first: session id (8 characters), user, host, wall time\n(UTC), offset into the session, the command; then an indented snippet with the match in\n[brackets] (bold on a terminal). --json: one object per line with id, user, host, time,\noffset_ns, index, command, exit_status and snippet.\n\nExit status: 0 something matched, 1 nothing matched, 2 the search could not run (no\nindex, bad query).\n\nExamples:\n  replay search 'cmd:\"rm -rf\"'\n  replay search 'passw*' --user alice --since 2026-11-01\n  replay search 'output:denied host:db1' --json | jq -r .id"
    )]
    Search(SearchArgs),
}

/// Options of `index`.
#[derive(Args, Debug)]
pub struct IndexArgs {
    /// Index directory. Default: <data dir>/index.
    #[arg(long, value_name = "DIR")]
    pub index: Option<PathBuf>,
    /// Drop the index and build it again from the whole store.
    #[arg(long)]
    pub rebuild: bool,
    /// Keep indexing new objects every --interval seconds until interrupted.
    #[arg(long)]
    pub follow: bool,
    /// Seconds between two updates with --follow.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_seconds)]
    pub interval: Duration,
    /// Also index the commands and output of sealed sessions that --identity (or --kms)
    /// opens. The index then holds their text in clear.
    #[arg(long)]
    pub index_sealed_text: bool,
}

/// Options of `search`.
#[derive(Args, Debug)]
pub struct SearchArgs {
    /// What to look for (see below).
    pub query: String,
    /// Only sessions of this user (exact).
    #[arg(long)]
    pub user: Option<String>,
    /// Only sessions on this host (exact).
    #[arg(long)]
    pub host: Option<String>,
    /// Only commands run at or after this time: RFC 3339 (2026-11-27T10:00:00Z) or a UTC
    /// date (2026-11-27).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only commands run at or before this time: RFC 3339 or a UTC date (the whole day).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Most hits shown.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// One JSON object per hit and line (JSON Lines) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Index directory. Default: <data dir>/index.
    #[arg(long, value_name = "DIR")]
    pub index: Option<PathBuf>,
}

/// Options of `commands`.
#[derive(Args, Debug)]
pub struct CommandsArgs {
    /// Session id or a unique prefix of it.
    pub session: String,
    /// One JSON object per command and line (JSON Lines) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Session ids or unique prefixes.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub sessions: Vec<String>,
    /// Verify every session in the store.
    #[arg(long)]
    pub all: bool,
    /// One JSON object per session instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `ls`.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// One JSON array of sessions instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Only sessions of this user (exact).
    #[arg(long)]
    pub user: Option<String>,
    /// Only sessions on this host (exact).
    #[arg(long)]
    pub host: Option<String>,
    /// Only sessions started at or after this time: RFC 3339 (2026-11-27T10:00:00Z) or a
    /// UTC date (2026-11-27).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only sessions started at or before this time: RFC 3339 or a UTC date (the whole
    /// day).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only the latest N sessions (still listed oldest first).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Read the store even if there is an index (slow on a large store; the integrity
    /// state is computed now).
    #[arg(long)]
    pub scan: bool,
    /// Index directory. Default: <data dir>/index.
    #[arg(long, value_name = "DIR")]
    pub index: Option<PathBuf>,
}

/// Options of `play`.
#[derive(Args, Debug)]
pub struct PlayArgs {
    /// Session id or a unique prefix of it.
    pub session: String,
    /// Playback speed factor (2 = twice as fast).
    #[arg(long, default_value_t = 1.0, value_parser = parse_speed)]
    pub speed: f64,
    /// Cap pauses longer than this many seconds.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub idle_limit: Option<Duration>,
    /// Start at this offset into the session (SECS, MM:SS or H:MM:SS, with fractions):
    /// the screen up to it is drawn at once.
    #[arg(long, value_name = "TIME", value_parser = parse_offset, conflicts_with = "at_command")]
    pub at: Option<Duration>,
    /// Start at the moment command N was run (N as `replay commands` numbers them).
    #[arg(long, value_name = "N")]
    pub at_command: Option<usize>,
}

/// Export formats.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ExportFormat {
    /// asciicast v2: `asciinema play FILE`.
    Asciicast,
    /// What the user saw, as plain text (rendered through a terminal emulator).
    Text,
}

/// Options of `export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Session id or a unique prefix of it.
    pub session: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Asciicast)]
    pub format: ExportFormat,
    /// Write to FILE instead of standard output (refuses to overwrite; use --force).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Overwrite FILE if it exists.
    #[arg(long)]
    pub force: bool,
    /// Cap pauses longer than this many seconds (asciicast only).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub idle_limit: Option<Duration>,
}

fn parse_speed(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err("speed must be greater than 0".into())
    }
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if v >= 0.0 {
        Duration::try_from_secs_f64(v).map_err(|_| format!("{s:?} seconds is too long"))
    } else {
        Err("seconds must be 0 or more".into())
    }
}

/// `SECS`, `MM:SS` or `H:MM:SS`, each with an optional fraction of a second.
pub fn parse_offset(s: &str) -> Result<Duration, String> {
    let bad = || {
        format!("{s:?} is not an offset: give SECS, MM:SS or H:MM:SS (e.g. 95, 1:35, 0:01:35.5)")
    };
    let parts: Vec<&str> = s.trim().split(':').collect();
    if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(bad());
    }
    let (last, whole) = parts.split_last().ok_or_else(bad)?;
    let mut secs = 0u64;
    for (i, p) in whole.iter().enumerate() {
        let v: u64 = p.parse().map_err(|_| bad())?;
        // Minutes (and, after hours, seconds) are two-digit fields below 60.
        if i > 0 && v >= 60 {
            return Err(bad());
        }
        secs = secs
            .checked_mul(60)
            .and_then(|x| x.checked_add(v))
            .ok_or_else(bad)?;
    }
    let tail = parse_seconds(last).map_err(|_| bad())?;
    if !whole.is_empty() && tail >= Duration::from_secs(60) {
        return Err(bad());
    }
    Duration::from_secs(secs)
        .checked_mul(if whole.is_empty() { 1 } else { 60 })
        .and_then(|d| d.checked_add(tail))
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_take_seconds_minutes_and_hours() {
        let d = |s: &str| parse_offset(s).map(|d| d.as_millis());
        assert_eq!(d("95"), Ok(95_000));
        assert_eq!(d("1:35"), Ok(95_000));
        assert_eq!(d("0:01:35.5"), Ok(95_500));
        assert_eq!(d("2:00:00"), Ok(7_200_000));
        for bad in [
            "", "1:", ":5", "1:75", "1:60:00", "a", "-3", "1:2:3:4", "1e300", "NaN",
        ] {
            assert!(parse_offset(bad).is_err(), "{bad:?}");
        }
    }
}
