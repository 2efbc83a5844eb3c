//! Environment variables sit between the file and the flags. A test binary of its own:
//! it sets process-wide variables, which no other test may read meanwhile.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};
use config::check::report;
use config::file::{Located, Origin};
use config::{CheckArgs, ConfigArgs, ConfigFileArg, Layered};

#[derive(Parser, Debug)]
#[command(name = "auditty-demo")]
struct Cli {
    #[command(flatten)]
    config: ConfigFileArg,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Ship(ShipArgs),
    Config(ConfigArgs),
}

#[derive(Args, Debug)]
struct ShipArgs {
    #[arg(long, env = "AUDITTY_DEMO_BROKERS")]
    brokers: String,
}

fn brokers(l: &Layered) -> String {
    match l.parse::<Cli>().expect("parses").0.command {
        Command::Ship(s) => s.brokers,
        Command::Config(_) => panic!("not ship"),
    }
}

#[test]
fn the_environment_beats_the_file_and_a_flag_beats_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("auditty.toml");
    std::fs::write(&path, "[agent.ship]\nbrokers = \"file:9092\"\n").expect("write");
    let load = |args: &[&str]| {
        let mut argv = vec![OsString::from("auditty-demo")];
        argv.extend(args.iter().map(OsString::from));
        Layered::with_file(
            "agent",
            Cli::command(),
            argv,
            Some(Located {
                path: PathBuf::from(&path),
                origin: Origin::Env,
            }),
        )
    };
    assert_eq!(brokers(&load(&["ship"])), "file:9092");

    // SAFETY: this binary's only test; no other thread reads the environment meanwhile.
    unsafe { std::env::set_var("AUDITTY_DEMO_BROKERS", "env:9092") };
    assert_eq!(brokers(&load(&["ship"])), "env:9092");
    assert_eq!(
        brokers(&load(&["ship", "--brokers", "flag:9092"])),
        "flag:9092"
    );
    let l = load(&["config", "check"]);
    let (_, matches) = l.parse::<Cli>().expect("parses");
    let r = report(&l, &matches, &CheckArgs { commands: vec![] });
    assert!(
        r.text
            .lines()
            .any(|l| l.starts_with("brokers = \"env:9092\"")
                && l.ends_with("# environment $AUDITTY_DEMO_BROKERS")),
        "{}",
        r.text
    );
    assert!(
        r.text.contains(&format!(
            "# File: {} (from $AUDITTY_CONFIG)",
            path.display()
        )),
        "{}",
        r.text
    );
}
