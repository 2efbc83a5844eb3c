use std::process::ExitCode;

use clap::Parser;

use replay::cli::{Cli, Command};
use replay::cmd::Failure;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init("warn", logging::Style::Compact);
    replay::access::set_enabled(!cli.no_access_log);
    let store = replay::open::StoreArgs {
        data_dir: cli.data_dir.dir.clone(),
        store: cli.store.clone(),
        s3: cli.s3.clone(),
        trust: cli.trust.clone(),
        keys: cli.keys.clone(),
        operator_trust: cli.operator_trust.clone(),
    };
    let result = match cli.command {
        Command::Ls(args) => replay::cmd::ls::run(&store, args),
        Command::Play(args) => replay::cmd::play::run(&store, args),
        Command::Export(args) => replay::cmd::export::run(&store, args),
        Command::Verify(args) => replay::cmd::verify::run(&store, args),
        Command::Commands(args) => replay::cmd::commands::run(&store, args),
        Command::Index(args) => replay::cmd::index::run(&store, args),
        Command::Search(args) => replay::cmd::search::run(&store, args),
        Command::Report(args) => replay::cmd::report::run(&store, args),
        Command::Review(args) => replay::cmd::review::run(&store, args),
        Command::ReviewKey(args) => replay::cmd::review::key(args),
        Command::Reviews(args) => replay::cmd::reviews::run(&store, args),
        Command::AccessLog(args) => replay::cmd::access_log::run(&store, args),
        Command::Import(args) => replay::cmd::import::run(&store, args),
        Command::Serve(args) => replay::cmd::serve::run(&store, args, !cli.no_access_log),
        Command::Hold(args) => replay::cmd::hold::run(&store, args),
        Command::Holds(args) => replay::cmd::hold::list(&store, args),
        Command::Purge(args) => replay::cmd::purge::run(&store, args),
        Command::OperatorKey(args) => replay::cmd::purge::key(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed pipe (`replay ls | head`) is the reader's choice, not an error.
            let broken_pipe = e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .map(|io| io.kind())
                    .or_else(|| {
                        c.downcast_ref::<serde_json::Error>()
                            .and_then(|j| j.io_error_kind())
                    })
                    == Some(std::io::ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            eprintln!("replay: {e:#}");
            match e.downcast_ref::<Failure>() {
                Some(Failure::NotFound(_) | Failure::NotVerified(_)) => ExitCode::from(1),
                None => ExitCode::from(2),
            }
        }
    }
}
