use std::process::ExitCode;

use clap::CommandFactory;

use agent::cli::{Cli, Command};

fn main() -> ExitCode {
    // Flags over environment over /etc/auditty/auditty.toml ([agent], [agent.ship], …)
    // over the defaults of cli.rs.
    let layered = config::Layered::load("agent", Cli::command(), std::env::args_os());
    let (cli, matches) = layered.parse::<Cli>().unwrap_or_else(|e| e.exit());
    logging::init("warn", logging::Style::Full);
    let result = match cli.command {
        Command::Record(args) => agent::record::run(cli.data_dir.path(), args),
        Command::Ship(args) => agent::ship::run(cli.data_dir.path(), args).map(|()| 0),
        Command::Mark(args) => agent::mark::run(args).map(|()| 0),
        Command::NodeKey(args) => {
            let host = agent::metadata::host_name();
            agent::record::load_node_key(cli.data_dir.path(), args.node_key.as_deref(), &host).map(
                |(key, _)| {
                    println!("{} {host}", key.public());
                    0
                },
            )
        }
        Command::Config(args) => return config::run(&layered, &matches, &args),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("auditty-agent: {e:#}");
            ExitCode::from(2)
        }
    }
}
