//! The file's values laid under a clap command as its defaults, and the parse.

use std::ffi::OsString;
use std::path::Path;

use clap::{ArgMatches, Command, FromArgMatches};

use crate::file::{self, Located, Problem, Read, Setting};
use crate::{CONFIG_COMMAND, DEFAULT_PATH, ENV_VAR};

/// A program's command with its configuration file laid under it.
#[derive(Clone, Debug)]
pub struct Layered {
    /// The command as defined, without the file's values (its keys are the file's).
    pub(crate) base: Command,
    /// The command with the file's values as defaults.
    pub(crate) command: Command,
    /// The program's table in the file (`agent`).
    pub(crate) section: String,
    pub(crate) args: Vec<OsString>,
    pub(crate) file: Option<Located>,
    pub(crate) read: Read,
}

/// Why the command line and configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The command line is wrong (or asks for help or the version, which clap prints).
    #[error(transparent)]
    Usage(#[from] clap::Error),
    /// The configuration file cannot be read or has mistakes.
    #[error("{}", render_problems(.program, .problems))]
    File {
        /// The program's name, for the hint.
        program: String,
        /// Every mistake found.
        problems: Vec<Problem>,
    },
}

impl LoadError {
    /// Prints the error and exits as `clap::Parser::parse` does: 0 for help and version,
    /// 2 for a wrong command line or configuration file.
    pub fn exit(self) -> ! {
        match self {
            LoadError::Usage(e) => e.exit(),
            LoadError::File { ref program, .. } => {
                eprintln!("{program}: {self}");
                std::process::exit(2)
            }
        }
    }
}

fn render_problems(program: &str, problems: &[Problem]) -> String {
    let mut s = String::from("cannot use the configuration file:");
    for p in problems {
        s.push_str("\n  ");
        s.push_str(&p.to_string());
    }
    s.push_str(&format!(
        "\n  try: `{program} config check` to see every key and where its value comes from; \
         `--config /dev/null` runs without a file"
    ));
    s
}

impl Layered {
    /// Finds and reads the configuration file for `cmd` (a clap `Command` as
    /// `CommandFactory::command()` returns it), whose table in the file is `section`,
    /// and lays its values under it. `args` is the whole command line, program name
    /// first. Mistakes in the file are kept for [`Layered::parse`] and `config check`.
    pub fn load(section: &str, cmd: Command, args: impl IntoIterator<Item = OsString>) -> Layered {
        let args: Vec<OsString> = args.into_iter().collect();
        let env = std::env::var_os(ENV_VAR);
        let file = file::locate(&args, env.as_deref());
        Self::with_file(section, cmd, args, file)
    }

    /// [`Layered::load`] with the file already chosen (`None`: no file).
    pub fn with_file(
        section: &str,
        cmd: Command,
        args: Vec<OsString>,
        file: Option<Located>,
    ) -> Layered {
        let read = match &file {
            None => Read::default(),
            Some(located) => match std::fs::read_to_string(&located.path) {
                Ok(text) => file::read(&located.path, &text, section, &cmd),
                Err(e) => Read {
                    settings: Vec::new(),
                    problems: vec![Problem {
                        path: located.path.clone(),
                        at: None,
                        message: format!(
                            "cannot read it ({e}); it was named by {}{}",
                            located.origin,
                            if located.path == Path::new(DEFAULT_PATH) {
                                ""
                            } else {
                                " (without --config and $AUDITTY_CONFIG only /etc/auditty/auditty.toml is read, if it exists)"
                            }
                        ),
                    }],
                },
            },
        };
        let command = read
            .settings
            .iter()
            .fold(cmd.clone(), |c, s| apply(c, &s.commands, s));
        Layered {
            base: cmd,
            command,
            section: section.to_string(),
            args,
            file,
            read,
        }
    }

    /// The configuration file read, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_ref().map(|f| f.path.as_path())
    }

    /// The values the file gave.
    pub fn settings(&self) -> &[Setting] {
        &self.read.settings
    }

    /// The file's mistakes.
    pub fn problems(&self) -> &[Problem] {
        &self.read.problems
    }

    /// Parses the command line over the file's values. A mistake in the file is an
    /// error unless the subcommand is `config` (whose `check` reports it); a wrong
    /// command line is clap's error, unless the file has mistakes too, which then come
    /// first: a value missing from the command line may be one the file failed to give.
    pub fn parse<T: FromArgMatches>(&self) -> Result<(T, ArgMatches), LoadError> {
        let file_error = || LoadError::File {
            program: self.base.get_name().to_string(),
            problems: self.read.problems.clone(),
        };
        let matches = match self.command.clone().try_get_matches_from(&self.args) {
            Ok(m) => m,
            Err(e) if e.use_stderr() && !self.read.problems.is_empty() => return Err(file_error()),
            Err(e) => return Err(e.into()),
        };
        if matches.subcommand_name() != Some(CONFIG_COMMAND) && !self.read.problems.is_empty() {
            return Err(file_error());
        }
        let parsed =
            T::from_arg_matches(&matches).map_err(|e| e.format(&mut self.command.clone()))?;
        Ok((parsed, matches))
    }
}

/// Lays one setting under `cmd` (reached through `commands`) as the flag's default. A
/// required flag the file gives is required no more: clap counts only flags and
/// variables as given.
fn apply(cmd: Command, commands: &[String], s: &Setting) -> Command {
    match commands.split_first() {
        None => cmd.mut_arg(&s.id, |a| {
            a.default_values(s.values.iter().map(|v| file::leak(v.clone())))
                .required(false)
        }),
        Some((first, rest)) => cmd.mut_subcommand(first, |sub| apply(sub, rest, s)),
    }
}
