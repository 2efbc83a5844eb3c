use std::process::ExitCode;

use clap::Parser;

use agent::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AUDITTY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Record(args) => agent::record::run(cli.data_dir.as_deref(), args),
        Command::Ship(args) => agent::ship::run(cli.data_dir.as_deref(), args).map(|()| 0),
        Command::Mark(args) => agent::mark::run(args).map(|()| 0),
        Command::NodeKey(args) => {
            let host = agent::metadata::host_name();
            agent::record::load_node_key(cli.data_dir.as_deref(), args.node_key.as_deref(), &host)
                .map(|key| {
                    println!("{} {host}", key.public());
                    0
                })
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
