//! `api-actix`: serves the API (default, or `serve`) or runs an operator command.
//!
//! Exit status: 0 done; 2 refused at start (an argument or setting that cannot work, reported
//! as one line in the log's format before anything is touched); 1 anything else.

use std::process::ExitCode;

use api_actix::cli::{Command, Loaded, Refusal};
use api_actix::config::ConfigError;
use api_actix::startup::{Application, Listeners};
use api_actix::telemetry::{self, LogFormat};
use tracing_subscriber::EnvFilter;

#[actix_web::main]
async fn main() -> ExitCode {
    let Loaded {
        cli,
        config,
        filter,
    } = match api_actix::cli::load() {
        Ok(loaded) => loaded,
        Err(Refusal::Clap(e)) => e.exit(),
        Err(Refusal::Invalid { format, message }) => return refuse(format, &message),
    };
    let Some(command) = cli.command else {
        return ExitCode::FAILURE;
    };
    telemetry::init(config.log_format, filter);
    for warning in api_actix::cli::start_up_warnings() {
        tracing::warn!("{warning}");
    }
    match command {
        Command::Serve(_) => {
            // Before the first line and before any migration: an address that cannot be
            // listened on is a setting that cannot work.
            let listeners = match Listeners::bind(&config) {
                Ok(listeners) => listeners,
                Err(e) => return refuse(config.log_format, &e.0),
            };
            tracing::info!(
                version = env!("CARGO_PKG_VERSION"),
                config = config.summary(),
                "starting api-actix"
            );
            let served = match Application::build_on(&config, listeners).await {
                Ok(app) => app.run_until_stopped().await,
                Err(e) => Err(e),
            };
            match served {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if ConfigError::is(&e) => refuse(config.log_format, &format!("{e:#}")),
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

/// A start refused: one line on stderr in the log's format (a JSON object in JSON mode), exit
/// status 2. The log may not be set up yet (the refusal may be about its own settings), so it
/// is set up here if need be, showing errors only.
fn refuse(format: LogFormat, message: &str) -> ExitCode {
    telemetry::init(format, EnvFilter::new("error"));
    tracing::error!(error = message, "cannot start");
    ExitCode::from(2)
}
