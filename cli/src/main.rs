//! `ecs-dns-canary`: parse the command line, run the command, map the result
//! to the documented exit code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use ecs_dns_canary::args::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match ecs_dns_canary::run(cli).await {
        Ok(code) => ExitCode::from(code),
        // The reader went away (`| head`): nothing left to tell it.
        Err(ecs_dns_canary::CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            if let Some(help) = err.help() {
                eprintln!("help: {help}");
            }
            ExitCode::from(err.exit_code())
        }
    }
}
