//! Command-line definitions of `replay`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Lists, plays, exports and verifies recorded terminal sessions, lists the commands
/// run in them, and imports other recorders' files.
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

    /// Trust file of the operator keys whose tombstones `verify` accepts as a record of a
    /// purge (lines `ed25519:BASE64 NAME`, as `replay operator-key` prints them). Kept
    /// apart from the node trust file (--trust). Default: <data dir>/trusted-operators.
    #[arg(
        long,
        global = true,
        env = "AUDITTY_OPERATOR_TRUST",
        value_name = "FILE"
    )]
    pub operator_trust: Option<PathBuf>,

    /// Do not record this run in the store's access log. Without it, play, export,
    /// search, commands, review (and report) refuse to run when the access event cannot
    /// be written (a read-only store): see "Reviews and the access log" in the README.
    #[arg(long, global = true)]
    pub no_access_log: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// List recorded sessions, oldest first.
    #[command(
        after_help = "Columns: session id, user, host, start (UTC), duration, exit status (\"-\" while\nrunning or when cut off: the agent never wrote an end), size of input+output, SEALED\n(encrypted for recipients), INTEGRITY (complete, open = never ended, untrusted = signed\nby a key not in the trust file, unsigned, imported = brought in by `replay import`, not\nsigned at capture, FAILED: see `replay verify`), command.\n\nWith an index (`replay index`), sessions are listed from it without reading the store;\nINTEGRITY is then the state computed when the session was last indexed, with the trust\nfile then in force (`replay verify` recomputes it). --scan reads the store instead.\nWithout an index, the store is read.\n\nExamples:\n  replay ls --user alice --since 2026-11-01\n  replay ls --limit 20 --json"
    )]
    Ls(LsArgs),
    /// Play a session in this terminal with its original timing.
    #[command(
        after_help = "Keys while playing: space pauses and resumes, n jumps to the next command or marker,\np to the previous one, . (while paused) shows the next bit of output, q (or Ctrl-C) quits.\nA jump draws the screen up to that moment at once.\n\nExamples:\n  replay play 01a21f3b\n  replay play 01a21f3b --speed 4 --idle-limit 2\n  replay play 01a21f3b --at 12:34\n  replay play 01a21f3b --at-command 7      # N as `replay commands` numbers them"
    )]
    Play(PlayArgs),
    /// Write a session as asciicast (plays in asciinema), JSON lines or plain text, or as
    /// an evidence bundle that `replay verify --bundle` checks offline.
    #[command(
        after_help = "Formats:\n  asciicast     asciicast v2, plays in every asciinema (`asciinema play FILE`)\n  asciicast-v3  asciicast v3 (asciinema 3): intervals between events, term type in the\n                header, the exit status as a last `x` event\n  jsonl         one JSON object per stored event: session, seq, kind, elapsed_ns, time\n                (UTC, ns), data (text) or data_base64 (when not UTF-8)\n  text          what the screen showed, rendered through a terminal emulator\n  bundle        one uncompressed .tar for a recipient without auditty: README.txt,\n                MANIFEST.sha256 (sha256sum -c), session.json (metadata), session.cast,\n                transcript.txt, rows.jsonl (the stored rows, lossless), proof/ (signed\n                checkpoints, signing keys, chain head) and, for a sealed session opened\n                with --identity/--kms, data-key.txt (that session's key only). Sealed and\n                no key given: rows and proof only, contents left out, as the README says.\n\nSealed sessions need --identity (or --kms) for every format but bundle.\n\nExamples:\n  replay export 01a21f3b -o session.cast && asciinema play session.cast\n  replay export 01a21f3b --format asciicast-v3 -o session-v3.cast\n  replay export 01a21f3b --format jsonl | jq -r 'select(.kind==\"input\") | .data'\n  replay export 01a21f3b --format text\n  replay export 01a21f3b --format bundle -o evidence.tar && replay verify --bundle evidence.tar"
    )]
    Export(ExportArgs),
    /// Check that sessions are complete and untampered: recompute each hash chain and
    /// check the signed checkpoints against the trust file. Needs no decryption key.
    /// With --bundle, check an evidence bundle offline instead (no store, no network).
    #[command(
        after_help = "Reports per session: complete, or each problem: gap at seq N, altered at seq N,\nbad signature, unknown signature (key not in the trust file), never ended (agent killed,\nstill running, or tail removed), truncated, unsigned, imported (`replay import`: not signed\nat capture; the source format and SHA-256 are named).\n\nA session removed by `replay purge` is reported as purged, with who, when and why, when its\ntombstone is signed by a key in the operators' trust file (--operator-trust, else\n<data dir>/trusted-operators); that is not a failure, and the node ledger check counts it.\nA tombstone signed by any other key, or changed, does not count: the session is missing.\nA tombstone whose session still has rows is \"purge incomplete\" (re-run the purge).\n\n--bundle FILE (from `replay export --format bundle`) reads only that file: it recomputes\nthe hash chain from the bundled rows and checks the checkpoint signatures with the keys\nthey name (proof/keys.txt), says whether each key is in the trust file (--trust, else\n<data dir>/trusted-keys; a key that is not, or no trust file at all, fails the check),\nchecks every member against MANIFEST.sha256, refuses unknown and missing members, and\nderives the asciicast, transcript, metadata, README, proof files and manifest again from\nthe rows, comparing them, and the tar framing, byte for byte. Each change is reported\nwith the member it is in.\n\nExit status: 0 every session (or the bundle) is complete and trusted, 1 any is not (or\nwas not found), 2 the check could not run.\n\nExamples:\n  replay verify 01a21f3b\n  replay verify --all --trust /etc/auditty/trusted-keys\n  replay verify --bundle evidence.tar --trust node-keys.txt"
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
    /// A compliance report over the sessions of a period: who did what, when, where and
    /// from where, what the rules flagged, whether the records are intact, who reviewed
    /// and who watched them. HTML (one self-contained file), CSV (a directory of tables)
    /// or JSON (schemas/report.schema.json).
    #[command(
        after_help = "Header of evidence: period and filters, generator and schema version, objects read and
their BLAKE3 digest, integrity verdicts (complete, altered, gap, never-ended, unsigned,
untrusted, imported, unreadable), sessions missing from a node's ledger, sealed sessions,
the oldest record in the store, the rules in force, review cadence.

Then one row per session (user, run-as, source address, host, start and end UTC,
duration, how it ended, commands, input recorded or redacted, sealed, integrity,
highest finding, last review), one per command of the sessions this reader can open
(offset, wall time, command, exit status, rule hits, `replay play ID --at …`), the
findings, summaries per user, host and rule, baseline deviations (a user's first
session on a host, a new source address, a start outside their usual hours), reviews,
sessions awaiting review longer than --review-max-age, and the access log of the period.

Findings come from rules: the built-in set (history tampering, log wiping, download and
execute, reverse shells, privilege and account changes, defence impairment, persistence,
destructive commands; `replay report --print-rules` shows it) laid under --rules FILE
(same TOML layout: a rule of the same name replaces the built-in one). Every rule is a
heuristic: a lead for a reviewer, not a verdict.

Sealed sessions are reported by their metadata; their commands and findings need
--identity (or --kms). The run is recorded in the access log.

The session table is also plain SQL over the Parquet tables (schemas/report.md), for
Athena, Trino or DuckDB over the same bucket.

Exit status: 0 written, 2 it could not be made.

Examples:
  replay report --since 2026-07-01 --until 2026-09-30 --out q3.html
  replay report --host db1 --flagged --format json --out flagged.json
  replay report --since 2026-11-01 --format csv --out report-nov/
  replay report --rules site-rules.toml --user alice --out alice.html"
    )]
    Report(ReportArgs),
    /// Record a review of a session: who decided what (ok or escalate) and when, signed
    /// with the reviewer's key when one is configured.
    #[command(
        after_help = "The review is one JSON object in the store's reviews/ folder (schemas/reviews-and-access.md):\nsession (full id; a unique prefix is resolved, an unknown id refused), reviewer (--reviewer,\nelse the login name), decision, comment, time (UTC), host and auditty version.\n\nWith --reviewer-key FILE (or AUDITTY_REVIEWER_KEY) it is signed with that ed25519 key\n(`replay review-key` makes one); `replay reviews` then shows it as verified when the key is\nin the reviewers' trust file, untrusted when not, and BAD when the object was changed.\n\nExamples:\n  replay review 01a21f3b --decision ok\n  replay review 01a21f3b --decision escalate --comment 'curl | sh as root, ask alice'\n  AUDITTY_REVIEWER_KEY=~/.config/auditty/reviewer.key replay review 01a21f3b --decision ok"
    )]
    Review(ReviewArgs),
    /// Create a reviewer's signing key (if FILE does not exist yet) and print its public
    /// key line for the reviewers' trust file.
    #[command(
        after_help = "The key file has the node-key format (`AUDITTY-NODE-KEY-1 BASE64`, mode 0600). Stdout is\none line, `ed25519:BASE64 NAME`: add it to the reviewers' trust file of every auditor who\nchecks reviews (<data dir>/trusted-reviewers, or --reviewer-trust FILE). Keep reviewer\nkeys out of the node trust file (--trust): a reviewer key must not vouch for recordings.\n\nExamples:\n  replay review-key --reviewer-key ~/.config/auditty/reviewer.key\n  replay review-key --reviewer-key k.key >> /etc/auditty/trusted-reviewers"
    )]
    ReviewKey(ReviewKeyArgs),
    /// List the reviews in the store, oldest first, with what each signature proves.
    #[command(
        after_help = "Text: one line per review: time (UTC), session id, decision, reviewer@host, signature,\ncomment. Signature: verified (NAME) = signed by a key in the reviewers' trust file (NAME\nis its comment there), untrusted (KEY) = signed by a key not in it, unsigned, or BAD =\nthe review was changed after it was signed.\n\n--json: one object per line (JSON Lines): session_id, reviewer, decision, comment, time,\ntime_ns, host, signature (verified|untrusted|unsigned|bad), signer_key, signer, key (the\nstore object).\n\nObjects that cannot be read, or that were changed or renamed after they were written,\nare named on stderr.\n\nExit status: 0 reviews listed, 1 none found, or any review has a bad signature or any\nobject is unreadable or changed, 2 the store could not be read.\n\nExamples:\n  replay reviews\n  replay reviews --session 01a21f3b --json"
    )]
    Reviews(ReviewsArgs),
    /// List the access log: who played, exported, searched, listed the commands of,
    /// reported on or reviewed which recordings, when, from which host.
    #[command(
        after_help = "Every play, export, search, commands, report and review run writes one JSON object\nto the store's access/ folder before it shows anything (schemas/reviews-and-access.md).\n\nText: one line per event, oldest first: time (UTC), user@host, action, sessions (full\nids, comma-separated, or -), detail (the query of a search, the format of an export,\nthe filters of a report, the decision of a review; control characters escaped).\n\n--json: one object per line (JSON Lines): time, time_ns, user, host, action, sessions,\ndetail, key (the store object).\n\nObjects that cannot be read, or that were changed or renamed after they were written,\nare named on stderr. Reading the access log is not itself logged.\n\nExit status: 0 events listed, 1 none found, or an object unreadable or changed, 2 the\nstore could not be read.\n\nExamples:\n  replay access-log --since 2026-11-01\n  replay access-log --session 01a21f3b      # who watched this recording\n  replay access-log --user bob --json | jq -r .action"
    )]
    AccessLog(AccessLogArgs),
    /// Import recordings made by other tools as sessions in the store: asciicast v1, v2
    /// and v3, ttyrec, util-linux `script` (timing file + typescript), sudo I/O log
    /// directories and tlog JSON.
    #[command(
        after_help = "The format is told from each file's content, never its name. A directory is walked:\nsudo I/O log directories in it are imported whole, a script timing file is paired with\nthe typescript beside it (or the logs an advanced timing file names), and files of no\nformat we read are skipped. Each imported session is an ordinary session (ls, play,\nexport, commands, index, search), marked as imported with its format and the SHA-256\nof what was read; `verify` and `ls` show it as \"imported\" (not signed at capture).\n\nA malformed file is rejected whole with the line or byte offset of the problem, and\nnothing of it is stored. Importing the same bytes again is a no-op (said on stderr).\nUser and host come from the recording when it has them (sudo, tlog, asciicast env),\nelse from --user/--host; the start from the recording, else --start, else the file's\nmodification time less the recording's duration.\n\nStdout: one line per imported session: id, format, source.\n\nExit status: 0 everything imported (or already was), 2 something could not be\nimported (each named on stderr; the rest was imported).\n\nExamples:\n  replay import demo.cast old.json\n  replay import /var/log/sudo-io          # every session sudo logged\n  replay import session.tm session.typescript --user alice --host web-1\n  replay import ~/ttyrecs --size 120x40"
    )]
    Import(ImportArgs),
    /// Serve the web player: a session list, search, a player with the commands beside
    /// it, and the report, in a browser and as a JSON API, to users and tokens of an auth
    /// file, each seeing only the sessions their roles cover.
    #[command(after_help = SERVE_HELP, args_conflicts_with_subcommands = true)]
    Serve(ServeArgs),
    /// Put a session on legal hold (or release it): a held session is exempt from
    /// retention and `replay purge` refuses it.
    #[command(
        after_help = "The hold is one JSON object, holds/<session id>.json in the store: session, who (--who,\nelse the login name), OS user, host, time and reason. Placing a hold again replaces the\nreason. Placing and releasing are recorded in the access log (actions hold and\nhold-release, with the reason).\n\nExamples:\n  replay hold 01a21f3b --reason 'case 2026-117, litigation hold'\n  replay hold --release 01a21f3b --reason 'case 2026-117 closed'"
    )]
    Hold(HoldArgs),
    /// List the sessions on legal hold.
    #[command(
        after_help = "Text: one line per hold: session id, time placed (UTC), who@host (OS user), reason.\n--json: one object per line (JSON Lines): session_id, who, os_user, host, time, time_ns,\nreason.\n\nExit status: 0 holds listed, 1 none, 2 the store could not be read."
    )]
    Holds(HoldsArgs),
    /// Remove sessions from the store for good: every row of them, from every object that
    /// holds one, leaving a signed tombstone (who, when, why) so that `replay verify`
    /// reports them as purged rather than missing.
    #[command(after_help = PURGE_HELP)]
    Purge(PurgeArgs),
    /// Create an operator's signing key (if FILE does not exist yet) and print its public
    /// key line for the operators' trust file, which `replay verify` checks tombstones
    /// against.
    #[command(
        after_help = "The key file has the node-key format (`AUDITTY-NODE-KEY-1 BASE64`, mode 0600). Stdout is\none line, `ed25519:BASE64 NAME`: add it to the operators' trust file of every auditor who\nverifies the store (<data dir>/trusted-operators, or --operator-trust FILE). Keep it out\nof the node trust file (--trust) and the reviewers' trust file.\n\nExample:\n  replay operator-key --operator-key /etc/auditty/operator.key >> /etc/auditty/trusted-operators"
    )]
    OperatorKey(OperatorKeyArgs),
}

/// The long help of `replay purge`.
const PURGE_HELP: &str = "What happens, in this order (so that a crash leaves a state `verify` names):\n\
  1. refused if any session is on legal hold (`replay holds`), before anything is written;\n\
  2. the purge is recorded in the access log (action purge, with the reason);\n\
  3. a tombstone per session, tombstones/<id>.json, signed with --operator-key: session,\n\
     its time range, its place in its node's ledger (node key, number, previous session,\n\
     from its signed start row), who (--operator, else the login name; OS user; host),\n\
     when, the reason, and the objects that held its rows;\n\
  4. every events/ and sessions/ object holding its rows is rewritten without them, under\n\
     the same name, keeping every other row and the footer (the ingester's offsets).\n\
\n\
Interrupted between 3 and 4, `replay verify` says \"purge incomplete\" and fails; running the\n\
same purge again finishes it. Sealed sessions are purged the same way, without a key.\n\
\n\
--expired-before DATE selects every session that started before DATE and is not held\n\
(retention); --dry-run lists what would be purged and changes nothing.\n\
\n\
Afterwards `replay verify` (with the operator's key in --operator-trust) lists each as\n\
purged, with who, when and why, and the node ledger check counts it; `replay index` drops\n\
it from the index, and play, export and commands say it was purged.\n\
\n\
The store must replace objects in place: a local store does (atomic rename); an s3://\n\
store is refused for now, since its writes never replace an object.\n\
\n\
Exit status: 0 purged, 1 not found, 2 refused or failed (named on stderr).\n\
\n\
Examples:\n\
  replay operator-key --operator-key ~/.config/auditty/operator.key >> ~/.local/share/auditty/trusted-operators\n\
  replay purge 01a21f3b --reason 'GDPR erasure request 2026-0042' --operator-key ~/.config/auditty/operator.key\n\
  replay purge --expired-before 2025-12-01 --reason 'retention: 365 days' --operator-key op.key --dry-run";

/// Options of `hold`.
#[derive(Args, Debug)]
pub struct HoldArgs {
    /// Session id or a unique prefix of it.
    pub session: String,
    /// Why (kept in the hold and the access log). Required.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Release the hold instead of placing it.
    #[arg(long)]
    pub release: bool,
    /// Who places the hold. Default: the login name of the user running this.
    #[arg(long, value_name = "NAME")]
    pub who: Option<String>,
}

/// Options of `holds`.
#[derive(Args, Debug)]
pub struct HoldsArgs {
    /// One JSON object per hold and line (JSON Lines) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `purge`.
#[derive(Args, Debug)]
pub struct PurgeArgs {
    /// Session ids or unique prefixes.
    #[arg(
        required_unless_present = "expired_before",
        conflicts_with = "expired_before"
    )]
    pub sessions: Vec<String>,
    /// Purge every session that started before this time (RFC 3339 or a UTC date) and is
    /// not on hold.
    #[arg(long, value_name = "TIME")]
    pub expired_before: Option<String>,
    /// Why (signed into each tombstone and kept in the access log). Required.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// The operator key that signs the tombstones (`replay operator-key` makes one).
    #[arg(long, env = "AUDITTY_OPERATOR_KEY", value_name = "FILE")]
    pub operator_key: PathBuf,
    /// Who purges, as written in the tombstones. Default: the login name.
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
    /// List what would be purged; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Options of `operator-key`.
#[derive(Args, Debug)]
pub struct OperatorKeyArgs {
    /// The key file: created (mode 0600) if it does not exist, else read.
    #[arg(long, env = "AUDITTY_OPERATOR_KEY", value_name = "FILE")]
    pub operator_key: PathBuf,
    /// The name written after the key (the trust file's comment). Default: the login name.
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
}

/// The long help of `replay serve`.
const SERVE_HELP: &str = "Pages: / (sessions, with filters user, host, since, until, sealed, integrity, and\n\
paging), /search?q=… (a hit opens the player at its moment), /sessions/ID?t=SECS (the\n\
player from SECS, with the session's commands beside it), /report?since=&until=&user=&host=\n\
(the report of `replay report` over the sessions the caller may see), /login.\n\
\n\
JSON API (a browser session's cookie, or `Authorization: Bearer TOKEN`):\n\
  GET /api/sessions?user=&host=&since=&until=&sealed=&integrity=&page=&per_page=\n\
  GET /api/sessions/ID            metadata, integrity, commands with offsets\n\
  GET /api/sessions/ID/cast       asciicast v2, as `replay export` (?download=1: export)\n\
  GET /api/sessions/ID/commands   the commands with offsets\n\
  GET /api/search?q=…&limit=N     hits, newest first\n\
A session is named by its full id only: prefixes are not resolved over HTTP.\n\
\n\
The auth file (TOML), default-deny:\n\
  [[role]]\n\
  name = \"web-auditors\"\n\
  hosts = [\"web-*\"]            # globs: * any run of characters, ? one\n\
  users = [\"*\"]\n\
  [[user]]\n\
  name = \"alice\"\n\
  password_hash = \"$argon2id$…\"  # replay serve hash-password\n\
  roles = [\"web-auditors\"]\n\
  [[token]]\n\
  name = \"ci\"\n\
  sha256 = \"…\"                 # printf %s TOKEN | sha256sum\n\
  roles = [\"web-auditors\"]\n\
A caller sees a session when one of its roles matches both the session's host and its\n\
user. Everything else answers as if it did not exist: the same 404, no search hit, no\n\
report row.\n\
\n\
Security: browser sessions are random 256-bit ids in the server's memory (8 hours; a\n\
restart logs everyone out) in an HttpOnly, SameSite=Strict cookie (Secure with TLS);\n\
every POST carries a CSRF token; 5 failed logins per minute per user and per address,\n\
then 429 with Retry-After. Answers carry a Content-Security-Policy without inline\n\
script, X-Content-Type-Options: nosniff, Referrer-Policy: no-referrer and, but for\n\
/static/, Cache-Control: no-store. Plain HTTP is refused on a non-loopback address\n\
unless --insecure-http (e.g. behind a TLS proxy).\n\
\n\
Every list, search, player page, cast fetch (play; export with ?download=1) and report\n\
is recorded in the access log with the caller's name and address (`replay access-log`).\n\
Sealed sessions play only when the server was started with --identity (or --kms) that\n\
opens them; otherwise the page says whom they are sealed for.\n\
\n\
Examples:\n\
  replay serve hash-password                 # prints a PHC hash for the auth file\n\
  replay serve --auth /etc/auditty/web.toml\n\
  replay serve --auth web.toml --listen 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem\n\
  curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:8080/api/sessions";

/// Options of `serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Auth file (TOML): users, tokens and roles (see below). Required to serve.
    #[arg(long, value_name = "FILE")]
    pub auth: Option<PathBuf>,
    /// Address to listen on (port 0: any free port, printed on stdout).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP on a non-loopback address (only behind a TLS-terminating proxy).
    #[arg(long)]
    pub insecure_http: bool,
    /// Index directory. Default: <data dir>/index.
    #[arg(long, value_name = "DIR")]
    pub index: Option<PathBuf>,
    /// Something else to do.
    #[command(subcommand)]
    pub action: Option<ServeAction>,
}

/// Subcommands of `serve`.
#[derive(Subcommand, Debug)]
pub enum ServeAction {
    /// Read a password from stdin (without echo on a terminal) and print its argon2id
    /// PHC hash, for `password_hash` in the auth file.
    HashPassword,
}

/// Options of `import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Files and directories to import.
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
    /// User of recordings that do not name theirs (ttyrec, script, most asciicast).
    #[arg(long, default_value = "unknown")]
    pub user: String,
    /// Host of recordings that do not name theirs (all but sudo and tlog).
    #[arg(long, default_value = "unknown")]
    pub host: String,
    /// Start of recordings that do not date themselves (asciicast without a timestamp):
    /// RFC 3339 or a UTC date. Default: the file's modification time less the
    /// recording's duration.
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// Terminal size of recordings that do not say (ttyrec): COLSxROWS.
    #[arg(long, value_name = "COLSxROWS", default_value = "80x24", value_parser = parse_size)]
    pub size: (u16, u16),
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

/// Options of `report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Sessions that started at or after this time: RFC 3339 or a UTC date.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Sessions that started at or before this time: RFC 3339 or a UTC date (the whole
    /// day).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only sessions of this user (exact).
    #[arg(long)]
    pub user: Option<String>,
    /// Only sessions on this host (exact).
    #[arg(long)]
    pub host: Option<String>,
    /// Only sessions with at least one finding.
    #[arg(long)]
    pub flagged: bool,
    /// html: one self-contained page; csv: a directory of tables; json: one document.
    #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
    pub format: ReportFormat,
    /// Where to write: a file (html, json) or a directory (csv). Default: stdout (html,
    /// json).
    #[arg(long, short = 'o', value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Overwrite --out if it exists.
    #[arg(long)]
    pub force: bool,
    /// Rules file (TOML) laid over the built-in rules.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Leave the built-in rules out (only --rules apply).
    #[arg(long)]
    pub no_default_rules: bool,
    /// Print the built-in rules file and exit.
    #[arg(long)]
    pub print_rules: bool,
    /// Flag sessions not reviewed within this many days of their end.
    #[arg(long, value_name = "DAYS", default_value_t = 7.0, value_parser = parse_days)]
    pub review_max_age_days: f64,
    /// Trust file of the reviewers' keys. Default: <data dir>/trusted-reviewers.
    #[arg(long, value_name = "FILE")]
    pub reviewer_trust: Option<PathBuf>,
}

/// Report formats.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ReportFormat {
    /// One self-contained HTML page (charts inline, nothing fetched); prints to PDF.
    Html,
    /// A directory of CSV tables (layout in schemas/report.md).
    Csv,
    /// One JSON document (schemas/report.schema.json).
    Json,
}

impl ReportFormat {
    /// The name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormat::Html => "html",
            ReportFormat::Csv => "csv",
            ReportFormat::Json => "json",
        }
    }
}

fn parse_days(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(d) if d.is_finite() && d > 0.0 && d <= 36_500.0 => Ok(d),
        _ => Err(format!(
            "{s:?} is not a number of days (more than 0, e.g. 7 or 0.5)"
        )),
    }
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
    #[arg(required_unless_present_any = ["all", "bundle"], conflicts_with_all = ["all", "bundle"])]
    pub sessions: Vec<String>,
    /// Verify every session in the store.
    #[arg(long, conflicts_with = "bundle")]
    pub all: bool,
    /// Check an evidence bundle (`replay export --format bundle`) offline instead of the
    /// store.
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<PathBuf>,
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
    /// asciicast v2: `asciinema play FILE` (any asciinema version).
    Asciicast,
    /// asciicast v3 (asciinema 3.0 and later): times as intervals, the terminal type in
    /// the header, and the exit status as a final `x` event.
    #[value(name = "asciicast-v3")]
    AsciicastV3,
    /// JSON Lines: one object per event (session, seq, kind, elapsed_ns, time, and data
    /// as text, or data_base64 when it is not UTF-8); schemas/export-events.schema.json.
    Jsonl,
    /// What the user saw, as plain text (rendered through a terminal emulator).
    Text,
    /// An evidence bundle (one .tar file) for someone without auditty: asciicast,
    /// transcript, metadata, the stored rows, their signed checkpoints and keys, a
    /// manifest of digests and a README. `replay verify --bundle FILE` checks it offline.
    Bundle,
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
    /// Cap pauses longer than this many seconds (asciicast and asciicast-v3 only).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub idle_limit: Option<Duration>,
}

fn parse_size(s: &str) -> Result<(u16, u16), String> {
    schemas::event::parse_size(s.as_bytes())
        .ok_or_else(|| format!("{s:?} is not COLSxROWS with both above 0 (e.g. 80x24)"))
}

/// A review's decision.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ReviewDecision {
    /// Seen; nothing to follow up.
    Ok,
    /// Needs someone else to look at it.
    Escalate,
}

/// Options of `review`.
#[derive(Args, Debug)]
pub struct ReviewArgs {
    /// Session id or a unique prefix of it.
    pub session: String,
    /// What the review decided.
    #[arg(long, value_enum)]
    pub decision: ReviewDecision,
    /// A comment kept with the review.
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,
    /// Who reviewed. Default: the login name of the user running this.
    #[arg(long, value_name = "NAME")]
    pub reviewer: Option<String>,
    /// Sign the review with this reviewer key (`replay review-key` makes one).
    #[arg(long, env = "AUDITTY_REVIEWER_KEY", value_name = "FILE")]
    pub reviewer_key: Option<PathBuf>,
}

/// Options of `review-key`.
#[derive(Args, Debug)]
pub struct ReviewKeyArgs {
    /// The key file: created (mode 0600) if it does not exist, else read.
    #[arg(long, env = "AUDITTY_REVIEWER_KEY", value_name = "FILE")]
    pub reviewer_key: PathBuf,
    /// The name written after the key (the trust file's comment, shown by `replay
    /// reviews`). Default: the login name.
    #[arg(long, value_name = "NAME")]
    pub reviewer: Option<String>,
}

/// Options of `reviews`.
#[derive(Args, Debug)]
pub struct ReviewsArgs {
    /// Only reviews of this session (id or prefix).
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// One JSON object per review and line (JSON Lines) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Trust file of reviewer keys (lines `ed25519:BASE64 NAME`, as `replay review-key`
    /// prints them). Default: <data dir>/trusted-reviewers (none trusted if missing).
    #[arg(long, env = "AUDITTY_REVIEWER_TRUST", value_name = "FILE")]
    pub reviewer_trust: Option<PathBuf>,
}

/// Options of `access-log`.
#[derive(Args, Debug)]
pub struct AccessLogArgs {
    /// Only events at or after this time: RFC 3339 or a UTC date.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only events at or before this time: RFC 3339 or a UTC date (the whole day).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only events that showed this session (id or prefix).
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// Only events of this user (exact).
    #[arg(long)]
    pub user: Option<String>,
    /// Only events of this action (play, export, search, commands, report, review, hold,
    /// hold-release, purge).
    #[arg(long)]
    pub action: Option<String>,
    /// One JSON object per event and line (JSON Lines) instead of text.
    #[arg(long)]
    pub json: bool,
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
