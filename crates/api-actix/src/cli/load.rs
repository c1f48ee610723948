//! Reading the command line and the environment once at start: a refusal is one line (JSON in
//! JSON log mode) and exit 2, before anything else runs.

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory as _, Parser};
use tracing_subscriber::EnvFilter;

use crate::config::Config;
use crate::telemetry::LogFormat;

use super::schema::{Cli, Command};

/// Why the process stops before it does anything.
#[derive(Debug)]
pub enum Refusal {
    /// `--help`, `--version`, or a command without its subcommand: clap prints it and exits.
    Clap(clap::Error),
    /// An argument or setting the service cannot start with: one line in `format`, exit 2.
    Invalid { format: LogFormat, message: String },
}

/// What [`load`] read: the command line, the settings, and the log filter (`RUST_LOG`, or the
/// command's default: `info` for `serve`, `warn` for the operator commands, which print their
/// result on stdout).
pub struct Loaded {
    pub cli: Cli,
    pub config: Config,
    pub filter: EnvFilter,
}

/// The command line and the environment, read and checked before anything is touched:
/// variables set but empty, the arguments, the log filter, then the settings
/// ([`Config::check`]).
///
/// # Errors
/// What to report, and how (see [`Refusal`]).
pub fn load() -> Result<Loaded, Refusal> {
    // Until the command line is parsed, refusals use the format it names, if it can be read.
    let format = requested_log_format();
    let empty = empty_variables();
    if !empty.is_empty() {
        let (names, verb) = if empty.len() == 1 {
            (empty.join(""), "is")
        } else {
            (empty.join(", "), "are")
        };
        return Err(Refusal::Invalid {
            format,
            message: format!(
                "{names} {verb} set but empty: unset it for the default, or give it a value"
            ),
        });
    }
    let cli = Cli::try_parse()
        .and_then(Cli::with_default_command)
        .map_err(|e| {
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                Refusal::Clap(e)
            } else {
                Refusal::Invalid {
                    format,
                    message: one_line(&e),
                }
            }
        })?;
    let format = cli.log_format;
    let config = cli.config().map_err(|e| Refusal::Invalid {
        format,
        message: format!("{e:#}"),
    })?;
    let serving = matches!(cli.command, Some(Command::Serve(_)));
    let filter = crate::telemetry::filter(if serving { "info" } else { "warn" }).map_err(|e| {
        Refusal::Invalid {
            format,
            message: format!("{e:#}"),
        }
    })?;
    config.check(serving).map_err(|e| Refusal::Invalid {
        format,
        message: e.0,
    })?;
    Ok(Loaded {
        cli,
        config,
        filter,
    })
}

/// `--log-format` from the command line, else `JT_LOG_FORMAT`; text when neither is readable.
fn requested_log_format() -> LogFormat {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let from_args = args.iter().enumerate().find_map(|(i, arg)| {
        arg.strip_prefix("--log-format=")
            .map(str::to_owned)
            .or_else(|| {
                (arg == "--log-format").then(|| args.get(i + 1).cloned().unwrap_or_default())
            })
    });
    from_args
        .or_else(|| std::env::var("JT_LOG_FORMAT").ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_default()
}

/// Read outside the command line's definition.
const OTHER_VARIABLES: [&str; 2] = ["JWT_SECRET_FILE", "RUST_LOG"];

/// Every variable the service reads that is set to nothing (or only spaces). An empty value
/// is a mistake (a template that filled in nothing), never a choice: `JT_METRICS_BIND=`
/// used to mean `off`. `JWT_SECRET` is refused by its own length check, naming it.
fn empty_variables() -> Vec<String> {
    fn collect(command: &clap::Command, names: &mut Vec<String>) {
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env().and_then(|e| e.to_str())
                && !names.iter().any(|n| n == env)
            {
                names.push(env.to_owned());
            }
        }
        for sub in command.get_subcommands() {
            collect(sub, names);
        }
    }
    let mut names = Vec::new();
    collect(&Cli::command(), &mut names);
    names.extend(OTHER_VARIABLES.iter().map(|&n| n.to_owned()));
    names
        .into_iter()
        .filter(|name| {
            std::env::var_os(name).is_some_and(|v| v.to_string_lossy().trim().is_empty())
        })
        .collect()
}

/// clap's error as one line (clap writes a paragraph with usage), naming the environment
/// variable a refused value came from.
fn one_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or_default().trim();
    let mut line = first.strip_prefix("error: ").unwrap_or(first).to_owned();
    if let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg)
        && let Some(variable) = variable_of(arg)
    {
        line.push_str(&format!(" (from {variable})"));
    }
    if !matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        line.push_str("; see `api-actix --help`");
    }
    line
}

/// The environment variable behind `arg` (`--bind <BIND>`), when the value came from it: the
/// variable is set and the flag was not given.
fn variable_of(arg: &str) -> Option<String> {
    let long = arg.strip_prefix("--")?.split([' ', '=']).next()?;
    fn find(command: &clap::Command, long: &str) -> Option<String> {
        command
            .get_arguments()
            .find(|a| a.get_long() == Some(long))
            .and_then(|a| a.get_env())
            .and_then(|e| e.to_str())
            .map(str::to_owned)
            .or_else(|| command.get_subcommands().find_map(|sub| find(sub, long)))
    }
    let variable = find(&Cli::command(), long)?;
    let flag = format!("--{long}");
    let given = std::env::args().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    (!given && std::env::var_os(&variable).is_some()).then_some(variable)
}

/// Warnings about the settings, for the log once it is set up: a `JWT_SECRET_FILE` that other
/// local users can read (the secret signs every dashboard token).
#[must_use]
pub fn start_up_warnings() -> Vec<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut warnings = Vec::new();
    if std::env::var_os("JWT_SECRET").is_none()
        && let Some(path) = std::env::var_os("JWT_SECRET_FILE")
        && let Ok(meta) = std::fs::metadata(&path)
    {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o044 != 0 {
            warnings.push(format!(
                "JWT_SECRET_FILE {} is readable by {} (mode {mode:04o}): anyone who reads it can sign dashboard tokens for every user; `chmod 600` it",
                std::path::Path::new(&path).display(),
                match (mode & 0o040 != 0, mode & 0o004 != 0) {
                    (true, true) => "its group and other users",
                    (true, false) => "its group",
                    _ => "other users",
                }
            ));
        }
    }
    warnings
}
