//! The `warden` binary: `warden serve` runs the server; every other command is an admin client
//! of the REST API (it never touches the database, except `warden audit verify`, which checks the
//! ledger without trusting the server). Exit codes: 0 success, 1 failure (including a ledger that
//! fails verification), 2 usage error.

mod access;
mod accountability;
mod alerts;
mod audit;
mod cli;
mod client;
mod commands;
mod demo;
mod output;
mod reports;
mod reviews;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // The verdict is already printed.
        Err(e) if e.is::<audit::VerificationFailed>() => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
