//! The configuration file under a clap command like the agent's: which value wins, and
//! what a mistake in the file says (file, line, column, what to write instead).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use config::check::report;
use config::file::{Located, Origin};
use config::{CheckArgs, ConfigArgs, ConfigCommand, ConfigFileArg, Layered, LoadError};

#[derive(Parser, Debug)]
#[command(name = "auditty-demo")]
struct Cli {
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    config: ConfigFileArg,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Ship(ShipArgs),
    Record(RecordArgs),
    Config(ConfigArgs),
}

#[derive(Args, Debug)]
struct ShipArgs {
    #[arg(long)]
    brokers: String,
    #[arg(long, default_value = "auditty.events")]
    topic: String,
    #[arg(short = 'X')]
    librdkafka: Vec<String>,
    #[arg(long)]
    once: bool,
    #[arg(long, default_value_t = 30)]
    broker_wait: u64,
}

#[derive(Args, Debug)]
struct RecordArgs {
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    checkpoint_every: u32,
    #[arg(long, value_enum, default_value_t = Policy::Record)]
    ssh_command: Policy,
    #[arg(last = true)]
    command: Vec<OsString>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Policy {
    Record,
    Pass,
    Deny,
}

/// `text` as the configuration file, and `args` as the command line.
fn layered(dir: &Path, text: &str, args: &[&str]) -> Layered {
    let path = dir.join("auditty.toml");
    std::fs::write(&path, text).expect("write config");
    let mut argv = vec![OsString::from("auditty-demo")];
    argv.extend(args.iter().map(OsString::from));
    Layered::with_file(
        "agent",
        Cli::command(),
        argv,
        Some(Located {
            path,
            origin: Origin::Flag,
        }),
    )
}

fn parse(l: &Layered) -> Cli {
    match l.parse::<Cli>() {
        Ok((cli, _)) => cli,
        Err(e) => panic!("parse failed: {e}"),
    }
}

fn problems(l: &Layered) -> Vec<String> {
    l.problems().iter().map(ToString::to_string).collect()
}

#[test]
fn a_flag_beats_the_file_which_beats_the_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "data_dir = \"/top\"\n\n[agent.ship]\nbrokers = \"k1:9092\"\nbroker_wait = 5\nonce = true\nlibrdkafka = [\"a=1\", \"b=2\"]\n";

    let l = layered(dir.path(), text, &["ship"]);
    assert!(problems(&l).is_empty(), "{:?}", problems(&l));
    let cli = parse(&l);
    assert_eq!(cli.data_dir, Some(PathBuf::from("/top")));
    let Command::Ship(ship) = cli.command else {
        panic!("not ship")
    };
    // The file gave a required flag, a number, a switch and a list; the rest are the
    // defaults.
    assert_eq!(ship.brokers, "k1:9092");
    assert_eq!(ship.broker_wait, 5);
    assert!(ship.once);
    assert_eq!(ship.librdkafka, vec!["a=1", "b=2"]);
    assert_eq!(ship.topic, "auditty.events");

    // Flags win, a list included (it replaces the file's, it does not add to it).
    let l = layered(
        dir.path(),
        text,
        &[
            "--data-dir",
            "/flag",
            "ship",
            "--brokers",
            "k2:9092",
            "-X",
            "c=3",
        ],
    );
    let cli = parse(&l);
    assert_eq!(cli.data_dir, Some(PathBuf::from("/flag")));
    let Command::Ship(ship) = cli.command else {
        panic!("not ship")
    };
    assert_eq!(ship.brokers, "k2:9092");
    assert_eq!(ship.librdkafka, vec!["c=3"]);
    assert_eq!(ship.broker_wait, 5);
}

#[test]
fn the_programs_table_beats_the_top_level_and_other_programs_tables_are_theirs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text =
        "data_dir = \"/top\"\n[agent]\ndata_dir = \"/agent\"\n[ingest.run]\nstore = \"s3://b\"\n";
    let l = layered(dir.path(), text, &["record"]);
    assert!(problems(&l).is_empty(), "{:?}", problems(&l));
    assert_eq!(parse(&l).data_dir, Some(PathBuf::from("/agent")));
}

#[test]
fn mistakes_name_file_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "\
[agent.ship]
brokerz = \"k1:9092\"
broker_wait = \"soon\"
once = \"yes\"
topic = [\"a\", \"b\"]

[agent.record]
checkpoint_every = 0
ssh_command = \"maybe\"
checkpoint-every = 3
[agent.nothere]
[elsewhere]
";
    let l = layered(dir.path(), text, &["record"]);
    let path = dir.path().join("auditty.toml").display().to_string();
    let got = problems(&l);
    let want = [
        format!("{path}:2:1: unknown key `brokerz` in [agent.ship] (did you mean `brokers`?)"),
        format!(
            "{path}:3:15: `broker_wait` in [agent.ship]: invalid value 'soon' for '--broker-wait <BROKER_WAIT>': invalid digit found in string"
        ),
        format!(
            "{path}:4:8: `once` in [agent.ship]: expected true or false (it is the switch --once), found a string"
        ),
        format!(
            "{path}:5:9: `topic` in [agent.ship]: expected one value, found an array (this flag is given once)"
        ),
        format!(
            "{path}:8:20: `checkpoint_every` in [agent.record]: invalid value '0' for '--checkpoint-every <CHECKPOINT_EVERY>': 0 is not in 1..=4294967295"
        ),
        format!(
            "{path}:9:15: `ssh_command` in [agent.record]: invalid value 'maybe' for '--ssh-command <SSH_COMMAND>'; [possible values: record, pass, deny]"
        ),
        format!(
            "{path}:10:1: `checkpoint-every` in [agent.record] is already set on line 8 (`-` and `_` are the same in keys)"
        ),
        format!(
            "{path}:11:8: unknown key `nothere` in [agent]; the keys here are the long flags of `auditty-demo --help`"
        ),
        format!(
            "{path}:12:2: unknown table [elsewhere]: the tables at the top level are the programs' ([agent], [ingest], [replay])"
        ),
    ];
    assert_eq!(got, want);

    // Any mistake stops a run, listing them all with a hint …
    match l.parse::<Cli>() {
        Err(e @ LoadError::File { .. }) => {
            let text = e.to_string();
            assert!(
                text.starts_with("cannot use the configuration file:\n  "),
                "{text}"
            );
            assert!(text.contains(&want[0]), "{text}");
            assert!(text.contains("auditty-demo config check"), "{text}");
        }
        other => panic!("expected a file error, got {other:?}"),
    }
    // … but not `config check`, which reports them.
    let l = layered(dir.path(), text, &["config", "check"]);
    let (cli, matches) = l.parse::<Cli>().expect("config check parses");
    let Command::Config(ConfigArgs {
        command: ConfigCommand::Check(args),
    }) = cli.command
    else {
        panic!("not config check")
    };
    assert_eq!(report(&l, &matches, &args).errors, want);
}

#[test]
fn syntax_errors_and_unreadable_files_are_problems() {
    let dir = tempfile::tempdir().expect("tempdir");
    let l = layered(dir.path(), "[agent.ship]\nbrokers = \"k1\n", &["record"]);
    let got = problems(&l);
    assert_eq!(got.len(), 1, "{got:?}");
    let path = dir.path().join("auditty.toml").display().to_string();
    assert!(got[0].starts_with(&format!("{path}:2:")), "{got:?}");
    assert!(got[0].contains("not valid TOML"), "{got:?}");

    let missing = dir.path().join("missing.toml");
    let l = Layered::with_file(
        "agent",
        Cli::command(),
        vec!["auditty-demo".into(), "record".into()],
        Some(Located {
            path: missing.clone(),
            origin: Origin::Flag,
        }),
    );
    let got = problems(&l);
    assert_eq!(got.len(), 1);
    assert!(
        got[0].starts_with(&format!(
            "{}: cannot read it (No such file",
            missing.display()
        )),
        "{got:?}"
    );
    assert!(matches!(l.parse::<Cli>(), Err(LoadError::File { .. })));
}

#[test]
fn a_required_flag_missing_everywhere_is_still_clap_s_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let l = layered(dir.path(), "", &["ship"]);
    match l.parse::<Cli>() {
        Err(LoadError::Usage(e)) => assert!(e.to_string().contains("--brokers"), "{e}"),
        other => panic!("expected clap's error, got {other:?}"),
    }
}

#[test]
fn check_says_where_each_value_came_from_and_what_a_command_lacks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "[agent]\ndata_dir = \"/var/lib/auditty\"\n\n[agent.ship]\nbroker_wait = 7\n";
    let l = layered(
        dir.path(),
        text,
        &["--data-dir", "/flag", "config", "check", "ship"],
    );
    let (_, matches) = l.parse::<Cli>().expect("parses");
    let r = report(
        &l,
        &matches,
        &CheckArgs {
            commands: vec!["ship".into()],
        },
    );
    let path = dir.path().join("auditty.toml").display().to_string();
    let lines: Vec<&str> = r.text.lines().collect();
    let line = |key: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(key))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| panic!("no {key} in\n{}", r.text))
    };
    assert_eq!(line("data_dir ="), "data_dir = \"/flag\" # flag");
    assert_eq!(
        line("broker_wait ="),
        format!("broker_wait = 7 # file {path}:5")
    );
    assert_eq!(line("topic ="), "topic = \"auditty.events\" # default");
    assert_eq!(line("ssh_command ="), "ssh_command = \"record\" # default");
    assert!(r.text.contains("# brokers = ?  # not set"), "{}", r.text);
    assert_eq!(
        r.errors,
        vec![
            "`auditty-demo ship` needs `brokers` (in [agent.ship], or its flag or variable), and nothing gives it"
        ]
    );
    // Without naming `ship`, a missing broker is shown, not an error (a node may not
    // ship).
    let r = report(&l, &matches, &CheckArgs { commands: vec![] });
    assert!(r.errors.is_empty(), "{:?}", r.errors);

    // The report is a configuration file that gives the same values.
    let again = layered(dir.path(), &r.text, &["ship", "--brokers", "k"]);
    assert!(
        problems(&again).is_empty(),
        "{:?}\n{}",
        problems(&again),
        r.text
    );
    let Command::Ship(ship) = parse(&again).command else {
        panic!("not ship")
    };
    assert_eq!(ship.broker_wait, 7);
}
