//! `api-actix`: serves the API (default, or `serve`) or runs an operator command.

use std::process::ExitCode;

use api_actix::cli::{Cli, Command};
use api_actix::startup::Application;
use api_actix::telemetry;
use clap::Parser;

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = match Cli::parse().with_default_command() {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let config = match cli.config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let Some(command) = cli.command else {
        return ExitCode::FAILURE;
    };
    // Operator commands print their result on stdout; only warnings go to stderr.
    let default_filter = if matches!(command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    match telemetry::filter(default_filter) {
        Ok(filter) => telemetry::init(config.log_format, filter),
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    }
    match command {
        Command::Serve(_) => {
            tracing::info!(
                version = env!("CARGO_PKG_VERSION"),
                config = config.summary(),
                "starting api-actix"
            );
            let served = match Application::build(&config).await {
                Ok(app) => app.run_until_stopped().await,
                Err(e) => Err(e),
            };
            match served {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    // Once, in the log's format (JSON when asked), as the last line.
                    tracing::error!(error = format!("{e:#}"), "the service failed");
                    ExitCode::FAILURE
                }
            }
        }
        command => match api_actix::cli::run_operator_command(&config, command).await {
            Ok(line) => {
                #[allow(clippy::print_stdout)]
                {
                    println!("{line}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                #[allow(clippy::print_stdout)]
                if let Some(printed) = e.downcast_ref::<api_actix::wiring::PrintedFailure>() {
                    println!("{}", printed.line);
                }
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
