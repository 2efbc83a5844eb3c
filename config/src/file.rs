//! Finding the configuration file and reading it against a clap command: each key to the
//! flag it names, each value through that flag's value parser, every mistake a
//! [`Problem`] with its line and column.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, Command};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::{CONFIG_ARG_ID, CONFIG_COMMAND, DEFAULT_PATH, ENV_VAR, PROGRAM_SECTIONS};

/// Why this file is the configuration file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `--config FILE`.
    Flag,
    /// The environment variable [`ENV_VAR`].
    Env,
    /// [`DEFAULT_PATH`], which exists.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag => f.write_str("--config"),
            Origin::Env => write!(f, "${ENV_VAR}"),
            Origin::Default => f.write_str("the default location"),
        }
    }
}

/// The configuration file to read, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// Its path.
    pub path: PathBuf,
    /// How it was chosen.
    pub origin: Origin,
}

/// Finds the configuration file: `--config FILE` (or `--config=FILE`) among `args`
/// (before a `--`), else `env` (the value of [`ENV_VAR`], ignored when empty), else
/// [`DEFAULT_PATH`] if it exists. A named file is returned even if missing, so that
/// reading it fails loudly; a missing default file means there is none.
///
/// The command line is scanned here, before clap parses it, because the file's values
/// have to be laid under the command before that parse; clap checks the flag again.
pub fn locate(args: &[OsString], env: Option<&OsStr>) -> Option<Located> {
    let flag = "--config";
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a == flag {
            if let Some(v) = it.next() {
                return Some(Located {
                    path: PathBuf::from(v),
                    origin: Origin::Flag,
                });
            }
        } else if let Some(v) = a.to_str().and_then(|s| s.strip_prefix("--config=")) {
            return Some(Located {
                path: PathBuf::from(v),
                origin: Origin::Flag,
            });
        }
    }
    if let Some(v) = env.filter(|v| !v.is_empty()) {
        return Some(Located {
            path: PathBuf::from(v),
            origin: Origin::Env,
        });
    }
    let default = Path::new(DEFAULT_PATH);
    default.exists().then(|| Located {
        path: default.to_path_buf(),
        origin: Origin::Default,
    })
}

/// A mistake in the configuration file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Problem {
    /// The file.
    pub path: PathBuf,
    /// Line and column (from 1) of the key or value at fault, when there is one.
    pub at: Option<(usize, usize)>,
    /// What is wrong, and what to write instead where that can be said.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some((line, col)) => {
                write!(f, "{}:{line}:{col}: {}", self.path.display(), self.message)
            }
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

/// One value the file gives a flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The subcommands leading to the flag (`["ship"]`); empty for the program's own
    /// (global) flags.
    pub commands: Vec<String>,
    /// The flag's clap id.
    pub id: String,
    /// The key as written in the file.
    pub key: String,
    /// The values, as they would be written on the command line.
    pub values: Vec<String>,
    /// Line and column (from 1) of the key.
    pub line: usize,
    /// See `line`.
    pub col: usize,
}

/// What a file says to one program.
#[derive(Clone, Debug, Default)]
pub struct Read {
    /// Values for flags, the top level's before the program's table (which wins).
    pub settings: Vec<Setting>,
    /// Everything that could not be used. A key with a problem sets nothing.
    pub problems: Vec<Problem>,
}

/// Reads `text` (the contents of `path`) for the program `cmd`, whose table in the file
/// is `section` (`agent`). Every key is checked: the top level's and the program's
/// table's; the other programs' tables ([`PROGRAM_SECTIONS`]) are theirs to check.
pub fn read(path: &Path, text: &str, section: &str, cmd: &Command) -> Read {
    let mut out = Read::default();
    let mut reader = Reader {
        path,
        section,
        text,
        program: cmd.get_name(),
        out: &mut out,
    };
    let root = match DeTable::parse(text) {
        Ok(t) => t.into_inner(),
        Err(e) => {
            let at = e.span().map(|s| reader.position(s.start));
            reader.out.problems.push(Problem {
                path: path.to_path_buf(),
                at,
                message: format!("not valid TOML: {}", e.message().trim_end()),
            });
            return out;
        }
    };
    let mut own = None;
    for (key, value) in &root {
        let name = key.get_ref().as_ref();
        if name == section {
            own = Some((key, value));
        } else if PROGRAM_SECTIONS.contains(&name) {
            // Another program's table.
        } else {
            reader.entry(cmd, &[], key, value, TOP);
        }
    }
    if let Some((key, value)) = own {
        match value.get_ref() {
            DeValue::Table(t) => reader.table(cmd, &[], t, &format!("[{section}]")),
            other => reader.problem(
                key.span().start,
                format!(
                    "`{section}` must be a table ([{section}]) of {} settings, not {}",
                    cmd.get_name(),
                    describe(other)
                ),
            ),
        }
    }
    out.problems.sort_by_key(|p| p.at);
    out
}

/// How messages name the top level of the file.
const TOP: &str = "the top level";

struct Reader<'a> {
    path: &'a Path,
    section: &'a str,
    text: &'a str,
    program: &'a str,
    out: &'a mut Read,
}

impl Reader<'_> {
    /// Line and column (from 1, in characters) of a byte offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    fn problem(&mut self, offset: usize, message: String) {
        let at = Some(self.position(offset));
        self.out.problems.push(Problem {
            path: self.path.to_path_buf(),
            at,
            message,
        });
    }

    /// The table of the command `cmd`, reached through the subcommands `commands`.
    fn table(&mut self, cmd: &Command, commands: &[String], table: &DeTable<'_>, name: &str) {
        let mut seen: Vec<(String, usize)> = Vec::new();
        // In the file's order (the table is sorted by key), so that the second of two
        // spellings of one key is the one reported.
        let mut entries: Vec<_> = table.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        for (key, value) in entries {
            let normal = normalize(key.get_ref());
            if let Some((_, first)) = seen.iter().find(|(k, _)| *k == normal) {
                let (line, _) = self.position(*first);
                self.problem(
                    key.span().start,
                    format!(
                        "`{}` in {name} is already set on line {line} (`-` and `_` are the same in keys)",
                        key.get_ref()
                    ),
                );
                continue;
            }
            seen.push((normal, key.span().start));
            self.entry(cmd, commands, key, value, name);
        }
    }

    /// One key of the table of `cmd`: a subcommand's table or a flag's value.
    fn entry(
        &mut self,
        cmd: &Command,
        commands: &[String],
        key: &Spanned<std::borrow::Cow<'_, str>>,
        value: &Spanned<DeValue<'_>>,
        name: &str,
    ) {
        let k = key.get_ref().as_ref();
        let at = key.span().start;
        if let Some(sub) = subcommand(cmd, k) {
            let mut path = commands.to_vec();
            path.push(sub.get_name().to_string());
            if name == TOP {
                // A subcommand's table belongs in the program's table.
                let message = format!(
                    "`{k}` at the top level: the settings of `{} {k}` go in [{}.{k}]",
                    self.program, self.section
                );
                self.problem(at, message);
                return;
            }
            let section = format!("{}.{}]", name.trim_end_matches(']'), sub.get_name());
            match value.get_ref() {
                DeValue::Table(t) => self.table(sub, &path, t, &section),
                other => self.problem(
                    at,
                    format!(
                        "`{k}` in {name} must be a table ({section}) of `{} {}` settings, not {}",
                        self.program,
                        path.join(" "),
                        describe(other)
                    ),
                ),
            }
            return;
        }
        let Some(arg) = flag(cmd, k) else {
            let message = if name == TOP && value.get_ref().is_table() {
                format!(
                    "unknown table [{k}]: the tables at the top level are the programs' ([{}])",
                    PROGRAM_SECTIONS.join("], [")
                )
            } else {
                unknown_key(cmd, commands, k, name, self.program)
            };
            self.problem(at, message);
            return;
        };
        match values(arg, value).and_then(|v| validate(cmd, arg, &v).map(|()| v)) {
            Ok(values) => {
                let (line, col) = self.position(at);
                self.out.settings.push(Setting {
                    commands: commands.to_vec(),
                    id: arg.get_id().to_string(),
                    key: k.to_string(),
                    values,
                    line,
                    col,
                });
            }
            Err((offset, why)) => {
                let offset = offset.unwrap_or(value.span().start);
                self.problem(offset, format!("`{k}` in {name}: {why}"));
            }
        }
    }
}

/// `-` and `_` are the same in keys: `chunk_bytes` is `--chunk-bytes`.
fn normalize(key: &str) -> String {
    key.replace('_', "-")
}

/// The key a flag has in the file (snake_case, as in the examples).
pub fn key_of(arg: &Arg) -> String {
    arg.get_long()
        .unwrap_or_else(|| arg.get_id().as_str())
        .replace('-', "_")
}

/// The flags of `cmd` that the file can set: every named flag but `--config`, help and
/// version (positional arguments are what a command runs, not configuration).
pub fn flags(cmd: &Command) -> impl Iterator<Item = &Arg> {
    cmd.get_arguments().filter(|a| {
        !a.is_positional()
            && a.get_id() != CONFIG_ARG_ID
            && !matches!(
                a.get_action(),
                ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
            )
    })
}

/// The subcommands of `cmd` that have a table in the file.
pub fn subcommands(cmd: &Command) -> impl Iterator<Item = &Command> {
    cmd.get_subcommands()
        .filter(|s| s.get_name() != CONFIG_COMMAND && s.get_name() != "help")
}

fn flag<'c>(cmd: &'c Command, key: &str) -> Option<&'c Arg> {
    let key = normalize(key);
    flags(cmd).find(|a| normalize(&key_of(a)) == key)
}

fn subcommand<'c>(cmd: &'c Command, key: &str) -> Option<&'c Command> {
    subcommands(cmd).find(|s| s.get_name() == key)
}

/// "unknown key" with the nearest known key, if one is near.
fn unknown_key(cmd: &Command, commands: &[String], key: &str, name: &str, program: &str) -> String {
    let known: Vec<String> = flags(cmd)
        .map(key_of)
        .chain(subcommands(cmd).map(|s| s.get_name().to_string()))
        .collect();
    let normal = normalize(key);
    let near = known
        .iter()
        .map(|k| (distance(&normalize(k), &normal), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d);
    let command = if commands.is_empty() {
        program.to_string()
    } else {
        format!("{program} {}", commands.join(" "))
    };
    let hint = match near {
        Some((_, k)) => format!(" (did you mean `{k}`?)"),
        None if known.is_empty() => format!("; `{command}` has no settings"),
        None => format!("; the keys here are the long flags of `{command} --help`"),
    };
    format!("unknown key `{key}` in {name}{hint}")
}

/// Levenshtein distance, for suggestions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn describe(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// An error at a byte offset of the file (`None`: the value's own).
type ValueError = (Option<usize>, String);

/// The command-line values the TOML `value` stands for, for `arg`.
fn values(arg: &Arg, value: &Spanned<DeValue<'_>>) -> Result<Vec<String>, ValueError> {
    let action = arg.get_action();
    if !action.takes_values() {
        // A switch: `quiet = true` is `--quiet`; `false` leaves it off.
        return match (action, value.get_ref()) {
            (ArgAction::SetTrue, DeValue::Boolean(b)) => Ok(vec![b.to_string()]),
            (ArgAction::SetFalse, DeValue::Boolean(b)) => Ok(vec![(!b).to_string()]),
            (ArgAction::Count, DeValue::Integer(_)) => Ok(vec![scalar(value)?]),
            (ArgAction::Count, other) => Err((
                None,
                format!("expected a count (an integer), found {}", describe(other)),
            )),
            (_, other) => Err((
                None,
                format!(
                    "expected true or false (it is the switch --{}), found {}",
                    arg.get_long().unwrap_or(arg.get_id().as_str()),
                    describe(other)
                ),
            )),
        };
    }
    let many = matches!(action, ArgAction::Append)
        || arg.get_num_args().is_some_and(|r| r.max_values() > 1);
    match value.get_ref() {
        DeValue::Array(items) if many => items.iter().map(scalar).collect(),
        DeValue::Array(_) => Err((
            None,
            "expected one value, found an array (this flag is given once)".to_string(),
        )),
        _ => Ok(vec![scalar(value)?]),
    }
}

/// A string, number or boolean as it would be typed after the flag.
fn scalar(value: &Spanned<DeValue<'_>>) -> Result<String, ValueError> {
    let at = Some(value.span().start);
    match value.get_ref() {
        DeValue::String(s) => Ok(s.to_string()),
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            i128::from_str_radix(&digits, i.radix())
                .map(|n| n.to_string())
                .map_err(|e| (at, format!("cannot read the integer {i}: {e}")))
        }
        DeValue::Float(f) => Ok(f.as_str().replace('_', "")),
        DeValue::Boolean(b) => Ok(b.to_string()),
        other => Err((
            at,
            format!(
                "expected a string, number or boolean, found {}",
                describe(other)
            ),
        )),
    }
}

/// Runs `values` through `arg`'s own value parser, so that the file obeys the flag's
/// type, range and possible values. The parser runs on a command of that one flag: the
/// real command's required flags and conflicts have nothing to say about one value.
fn validate(cmd: &Command, arg: &Arg, values: &[String]) -> Result<(), ValueError> {
    if !arg.get_action().takes_values() {
        return Ok(());
    }
    let long = arg.get_long().unwrap_or(arg.get_id().as_str()).to_string();
    let mut one = Arg::new("value")
        .long(leak(long.clone()))
        .action(ArgAction::Append)
        .num_args(1)
        .allow_hyphen_values(true)
        .value_parser(arg.get_value_parser().clone());
    if let Some(names) = arg.get_value_names() {
        one = one.value_names(names.iter().cloned());
    }
    let probe = Command::new(leak(cmd.get_name().to_string()))
        .no_binary_name(true)
        .disable_help_flag(true)
        .arg(one);
    let argv = values.iter().map(|v| format!("--{long}={v}"));
    match probe.try_get_matches_from(argv) {
        Ok(_) => Ok(()),
        Err(e) => Err((None, clap_message(&e))),
    }
}

/// A string that lives as long as the process, as clap (without its `string` feature,
/// which would rebuild clap for the whole workspace) takes only `&'static str` names and
/// defaults. Called once per key of the file, so what leaks is the size of the file.
pub(crate) fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// clap's error, on one line, without "error:" and the usage it appends.
fn clap_message(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let lines: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information")
        })
        .collect();
    lines.join("; ").trim_start_matches("error: ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_found_by_flag_then_environment() {
        let args: Vec<OsString> = ["prog", "--data-dir", "x", "--config", "/a.toml", "ship"]
            .iter()
            .map(OsString::from)
            .collect();
        let found = locate(&args, Some(OsStr::new("/b.toml"))).expect("flag");
        assert_eq!(found.path, PathBuf::from("/a.toml"));
        assert_eq!(found.origin, Origin::Flag);

        let args: Vec<OsString> = ["prog", "--config=/c.toml"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(
            locate(&args, None).expect("flag").path,
            PathBuf::from("/c.toml")
        );

        // After `--` it is the recorded program's argument.
        let args: Vec<OsString> = ["prog", "record", "--", "x", "--config", "/d.toml"]
            .iter()
            .map(OsString::from)
            .collect();
        let found = locate(&args, Some(OsStr::new("/b.toml"))).expect("env");
        assert_eq!(found.path, PathBuf::from("/b.toml"));
        assert_eq!(found.origin, Origin::Env);
        // An empty variable is no variable.
        let found = locate(&args, Some(OsStr::new("")));
        assert!(found.is_none_or(|f| f.origin == Origin::Default));
    }

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("brokers", "brokers"), 0);
        assert_eq!(distance("brokerz", "brokers"), 1);
        assert_eq!(distance("topic", "tpoic"), 2);
    }
}
