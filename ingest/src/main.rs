use std::process::ExitCode;

use clap::Parser;

use ingest::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init("info", logging::Style::Compact);
    let result = match cli.command {
        Command::Run(args) => ingest::run::run(cli.data_dir.path(), args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("auditty-ingest: {e:#}");
            ExitCode::from(2)
        }
    }
}
