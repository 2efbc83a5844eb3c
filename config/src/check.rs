//! `config check`: the effective configuration of every subcommand, each value with where
//! it came from, and the file's mistakes.

use std::fmt::Write as _;

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command};

use crate::file::{self, Setting};
use crate::{CheckArgs, Layered};

/// What `config check` found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The effective configuration, as TOML with a comment on each line saying where
    /// the value came from; a valid configuration file itself.
    pub text: String,
    /// The mistakes: the file's, commands named in the check that are unknown, and
    /// values those commands require but nothing gives.
    pub errors: Vec<String>,
}

/// Runs `config check` for the command line whose matches are `top`; returns the exit
/// code (0 fine, 1 mistakes), having printed the report on stdout and the mistakes on
/// stderr.
pub fn run(layered: &Layered, top: &ArgMatches, args: &CheckArgs) -> u8 {
    let report = report(layered, top, args);
    print!("{}", report.text);
    if report.errors.is_empty() {
        return 0;
    }
    let program = layered.base.get_name();
    eprintln!("{program}: the configuration has mistakes:");
    for e in &report.errors {
        eprintln!("  {e}");
    }
    1
}

/// Builds the report of `config check`.
pub fn report(layered: &Layered, top: &ArgMatches, args: &CheckArgs) -> Report {
    let program = layered.base.get_name().to_string();
    let section = &layered.section;
    let mut text = String::new();
    let mut errors: Vec<String> = layered.problems().iter().map(ToString::to_string).collect();
    let _ = writeln!(text, "# The effective configuration of {program}.");
    match &layered.file {
        Some(f) => {
            let _ = writeln!(text, "# File: {} (from {})", f.path.display(), f.origin);
        }
        None => {
            let _ = writeln!(
                text,
                "# File: none ({} does not exist; --config or ${} names another)",
                crate::DEFAULT_PATH,
                crate::ENV_VAR
            );
        }
    }
    let _ = writeln!(
        text,
        "# Each value comes from the default, the file, the environment or a flag, each beating the one before."
    );

    let mut view = View {
        layered,
        program: &program,
        text: &mut text,
    };
    view.section(&format!("[{section}]"), &[], &layered.base, top, None);

    let known: Vec<String> = file::subcommands(&layered.base)
        .map(|s| s.get_name().to_string())
        .collect();
    for wanted in &args.commands {
        if !known.contains(wanted) {
            errors.push(format!(
                "`{wanted}` is not a subcommand of {program} with settings (those are: {})",
                known.join(", ")
            ));
        }
    }
    for sub in file::subcommands(&layered.base) {
        let path = vec![sub.get_name().to_string()];
        view.subcommand(&path, sub, &args.commands, &mut errors);
    }
    Report { text, errors }
}

struct View<'a> {
    layered: &'a Layered,
    program: &'a str,
    text: &'a mut String,
}

impl View<'_> {
    /// The section of the subcommand at `path` and those below it. Its values are those
    /// a run of it would get: the command line is `program path…`, over the file and the
    /// environment of this run, with required flags made optional so that one missing
    /// value does not hide the others.
    fn subcommand(
        &mut self,
        path: &[String],
        cmd: &Command,
        required_by: &[String],
        errors: &mut Vec<String>,
    ) {
        let relaxed = relax_along(self.layered.command.clone(), path);
        let mut argv = vec![self.layered.base.get_name().to_string()];
        argv.extend(path.iter().cloned());
        let name = format!("[{}.{}]", self.layered.section, path.join("."));
        match relaxed.try_get_matches_from(&argv) {
            Ok(m) => {
                let mut sub = &m;
                for p in path {
                    match sub.subcommand_matches(p) {
                        Some(s) => sub = s,
                        None => return,
                    }
                }
                let wanted = required_by.iter().any(|w| path.first() == Some(w));
                let missing = self.section(&name, path, cmd, sub, Some(path));
                if wanted {
                    for key in missing {
                        errors.push(format!(
                            "`{} {}` needs `{key}` (in {name}, or its flag or variable), and nothing gives it",
                            self.program,
                            path.join(" ")
                        ));
                    }
                }
            }
            Err(e) => {
                // Not the file's fault: what clap needs to start the command that a file
                // cannot give (a positional argument, say). A mistake only if the command
                // was named for the check.
                let why = format!(
                    "cannot work out the settings of `{} {}` without a command line: {}",
                    self.program,
                    path.join(" "),
                    e.render().to_string().trim().replace('\n', " ")
                );
                let _ = writeln!(self.text, "\n{name}\n# {why}");
                if required_by.iter().any(|w| path.first() == Some(w)) {
                    errors.push(why);
                }
            }
        }
        for child in file::subcommands(cmd) {
            let mut p = path.to_vec();
            p.push(child.get_name().to_string());
            self.subcommand(&p, child, required_by, errors);
        }
    }

    /// Writes the section `name` with the flags of `cmd` as `matches` has them; returns
    /// the keys of required flags that have no value.
    fn section(
        &mut self,
        name: &str,
        path: &[String],
        cmd: &Command,
        matches: &ArgMatches,
        sub: Option<&[String]>,
    ) -> Vec<String> {
        let mut missing = Vec::new();
        let flags: Vec<&Arg> = file::flags(cmd).filter(|a| !a.is_hide_set()).collect();
        if flags.is_empty() {
            return missing;
        }
        let _ = writeln!(self.text, "\n{name}");
        for arg in flags {
            let key = file::key_of(arg);
            let id = arg.get_id().as_str();
            let source = matches
                .try_get_raw(id)
                .ok()
                .flatten()
                .and_then(|_| matches.value_source(id));
            let Some(source) = source else {
                if arg.is_required_set() {
                    missing.push(key.clone());
                    let _ = writeln!(
                        self.text,
                        "# {key} = ?  # not set, and `{} {}` requires it",
                        self.program,
                        sub.map(|s| s.join(" ")).unwrap_or_default()
                    );
                } else {
                    let _ = writeln!(self.text, "# {key} is not set");
                }
                continue;
            };
            let raw: Vec<String> = matches
                .get_raw(id)
                .map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            let value = toml_value(arg, &raw);
            let origin = match source {
                ValueSource::CommandLine => "flag".to_string(),
                ValueSource::EnvVariable => format!(
                    "environment ${}",
                    arg.get_env()
                        .map(|e| e.to_string_lossy().into_owned())
                        .unwrap_or_default()
                ),
                _ => match self.setting(path, id) {
                    Some(s) => format!(
                        "file {}:{}",
                        self.layered
                            .file()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default(),
                        s.line
                    ),
                    None => "default".to_string(),
                },
            };
            let line = format!("{key} = {value}");
            let _ = writeln!(self.text, "{line:<48} # {origin}");
        }
        missing
    }

    /// The file's setting of flag `id` under `path`: the last one, as the last wins.
    fn setting(&self, path: &[String], id: &str) -> Option<&Setting> {
        self.layered
            .settings()
            .iter()
            .rev()
            .find(|s| s.commands == path && s.id == id)
    }
}

/// `cmd` with every flag and group optional along `path`, and no subcommand required
/// there. (A flag required only with a certain value of another, `required_if_eq`, stays
/// so: clap cannot unset that; such a section is then noted, not shown.)
fn relax_along(cmd: Command, path: &[String]) -> Command {
    let groups: Vec<String> = cmd.get_groups().map(|g| g.get_id().to_string()).collect();
    let cmd = groups
        .iter()
        .fold(cmd, |c, g| c.mut_group(g, |g| g.required(false)))
        .mut_args(|a| {
            a.required(false)
                .required_unless_present(clap::builder::Resettable::Reset)
        })
        .subcommand_required(false)
        .arg_required_else_help(false);
    match path.split_first() {
        None => cmd,
        Some((first, rest)) => cmd.mut_subcommand(first, |s| relax_along(s, rest)),
    }
}

/// A value as TOML: a switch or number bare, anything else a string; several as an array.
fn toml_value(arg: &Arg, raw: &[String]) -> String {
    let one = |s: &String| {
        if !arg.get_action().takes_values() || s.parse::<i64>().is_ok() {
            s.clone()
        } else {
            quote(s)
        }
    };
    let many = matches!(arg.get_action(), clap::ArgAction::Append)
        || arg.get_num_args().is_some_and(|r| r.max_values() > 1);
    if many {
        format!("[{}]", raw.iter().map(one).collect::<Vec<_>>().join(", "))
    } else {
        raw.first().map(one).unwrap_or_default()
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
