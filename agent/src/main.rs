use std::process::ExitCode;

use clap::Parser;

use agent::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("auditty-agent: {e:#}");
            ExitCode::from(2)
        }
    }
}
