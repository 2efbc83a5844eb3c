use std::process::ExitCode;

use clap::CommandFactory;

use ingest::cli::{Cli, Command};

fn main() -> ExitCode {
    // Flags over environment over /etc/auditty/auditty.toml ([ingest], [ingest.run], …)
    // over the defaults of cli.rs.
    let layered = config::Layered::load("ingest", Cli::command(), std::env::args_os());
    let (cli, matches) = layered.parse::<Cli>().unwrap_or_else(|e| e.exit());
    logging::init("info", logging::Style::Compact);
    let result = match cli.command {
        Command::Run(args) => ingest::run::run(cli.data_dir.path(), args),
        Command::Compact(args) => ingest::compact::run(cli.data_dir.path(), args),
        Command::Lag(args) => ingest::run::lag(&args),
        Command::Config(args) => return config::run(&layered, &matches, &args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("auditty-ingest: {e:#}");
            ExitCode::from(2)
        }
    }
}
