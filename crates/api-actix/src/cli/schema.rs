//! The command line's schema for clap: the commands, their flags and the environment variables
//! behind them, and the value parsers that refuse a bad value with its rule.

use clap::builder::NonEmptyStringValueParser;
use clap::{Args, Parser, Subcommand};
use keys_domain::credits::{InvalidGrant, parse_initial_credits};
use keys_domain::key_signal::SignalPolicy;
use keys_domain::rate_limit::RateLimitPolicy;
use keys_domain::use_cases::MAX_TOKEN_LIFETIME;
use keys_domain::{GrantAmount, RevocationReason};

use crate::client_ip::TrustedProxies;
use crate::config::{
    Config, DEFAULT_AUTH_FAILURES_PER_MINUTE, DEFAULT_BIND, DEFAULT_DASHBOARD_WRITES_PER_MINUTE,
    DEFAULT_DATABASE_URL, DEFAULT_GITHUB_SCANNING_KEYS, DEFAULT_MAIL_FROM, DEFAULT_METRICS_BIND,
    DEFAULT_PUBLIC_URL, DEFAULT_SIGN_IN_LINKS_PER_MINUTE, DEFAULT_TOP_UP_URL, metrics_bind,
};
use crate::cors::CorsOrigins;
use crate::jwt_secret::JwtSecret;
use crate::telemetry::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "api-actix",
    version,
    about = "The JobTactics API key service and its operator commands",
    after_help = "With no command, serves (as `serve`, configured from the environment)."
)]
pub struct Cli {
    /// `postgres://…`, `postgresql://…` or `sqlite://PATH`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true, global = true, value_parser = NonEmptyStringValueParser::new())]
    pub database_url: String,
    /// `text`, or `json` for one JSON object per log line.
    #[arg(long, env = "JT_LOG_FORMAT", default_value = "text", value_parser = parse_log_format, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What only the server uses: each also an environment variable (`docs/api.md`, "Running it").
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen address.
    #[arg(long, env = "JT_BIND", default_value = DEFAULT_BIND, value_parser = NonEmptyStringValueParser::new())]
    pub bind: String,
    /// Shares rate limits, revocations and usage windows between instances.
    #[arg(long, env = "REDIS_URL", hide_env_values = true, value_parser = NonEmptyStringValueParser::new())]
    pub redis_url: Option<String>,
    /// Where alert emails go; unset: they are written to the log.
    #[arg(long, env = "SMTP_URL", hide_env_values = true, value_parser = NonEmptyStringValueParser::new())]
    pub smtp_url: Option<String>,
    /// Sender of alert emails.
    #[arg(long, env = "MAIL_FROM", default_value = DEFAULT_MAIL_FROM, value_parser = NonEmptyStringValueParser::new())]
    pub mail_from: String,
    /// The address users reach the service at, for links in emails (sign-in links).
    #[arg(long, env = "JT_PUBLIC_URL", default_value = DEFAULT_PUBLIC_URL, value_parser = parse_public_url)]
    pub public_url: String,
    /// Where customers buy credits: a 402's `top_up_url` and the dashboard's "Buy more credits".
    #[arg(long, env = "JT_TOP_UP_URL", default_value = DEFAULT_TOP_UP_URL, value_parser = parse_top_up_url)]
    pub top_up_url: String,
    /// Sustained requests per second per key.
    #[arg(long, env = "JT_RATE_LIMIT_PER_SECOND", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_per_second: u32,
    /// Burst per key.
    #[arg(long, env = "JT_RATE_LIMIT_BURST", default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_burst: u32,
    /// Requests per key per trailing 24 h that trigger the high-usage email.
    #[arg(long, env = "JT_HIGH_USAGE_THRESHOLD", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub high_usage_threshold: u64,
    /// Failed authentications per client IP per minute before 429.
    #[arg(long, env = "JT_AUTH_FAILURES_PER_MINUTE", default_value_t = DEFAULT_AUTH_FAILURES_PER_MINUTE, value_parser = clap::value_parser!(u32).range(1..))]
    pub auth_failures_per_minute: u32,
    /// Dashboard writes (create, rotate, revoke, sign-out) per user per minute before 429.
    #[arg(long, env = "JT_DASHBOARD_WRITES_PER_MINUTE", default_value_t = DEFAULT_DASHBOARD_WRITES_PER_MINUTE, value_parser = clap::value_parser!(u32).range(1..))]
    pub dashboard_writes_per_minute: u32,
    /// Sign-in link requests per client address (IPv6: /64) per minute before 429.
    #[arg(long, env = "JT_SIGN_IN_LINKS_PER_MINUTE", default_value_t = DEFAULT_SIGN_IN_LINKS_PER_MINUTE, value_parser = clap::value_parser!(u32).range(1..))]
    pub sign_in_links_per_minute: u32,
    /// Comma-separated IPs/CIDRs whose `X-Forwarded-For` is believed.
    #[arg(long, env = "JT_TRUSTED_PROXIES", value_parser = parse_trusted_proxies)]
    pub trusted_proxies: Option<TrustedProxies>,
    /// GitHub's secret-scanning public keys: their URL, or `file:///path.json`.
    #[arg(long, env = "JT_GITHUB_SCANNING_KEYS", default_value = DEFAULT_GITHUB_SCANNING_KEYS, value_parser = parse_github_scanning_keys)]
    pub github_scanning_keys: String,
    /// Where `GET /metrics` (Prometheus) is served; `off` disables it.
    #[arg(long, env = "JT_METRICS_BIND", default_value = DEFAULT_METRICS_BIND, value_parser = NonEmptyStringValueParser::new())]
    pub metrics_bind: String,
    /// Comma-separated origins allowed to call the API from a browser.
    #[arg(long, env = "JT_CORS_ORIGINS", value_parser = parse_cors_origins)]
    pub cors_origins: Option<CorsOrigins>,
    /// `on` or `off`: the leak signals (`new_network`, `browser_use`, `usage_spike`); the
    /// clients of each key are kept either way.
    #[arg(long, env = "JT_KEY_SIGNALS", default_value = "on", value_parser = parse_on_off)]
    pub key_signals: bool,
    /// A key older than this (seconds) is established: only then does a new network signal.
    #[arg(
        long,
        env = "JT_KEY_ESTABLISHED_AFTER_SECONDS",
        default_value_t = 86_400
    )]
    pub key_established_after_seconds: u64,
    /// `usage_spike`: this many times the key's busiest hour of the previous 7 days.
    #[arg(long, env = "JT_SPIKE_FACTOR", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub spike_factor: u64,
    /// `usage_spike`: and at least this many requests in the hour.
    #[arg(long, env = "JT_SPIKE_MIN_REQUESTS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    pub spike_min_requests: u64,
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s.trim() {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        other => Err(format!("expected on or off, not {other:?}")),
    }
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    if s.trim().is_empty() {
        return Err("expected text or json".to_owned());
    }
    s.parse()
}

fn parse_cors_origins(s: &str) -> Result<CorsOrigins, String> {
    s.parse()
}

fn parse_trusted_proxies(s: &str) -> Result<TrustedProxies, String> {
    s.parse()
}

/// `JT_PUBLIC_URL`: an `http://` or `https://` URL with a host, since every emailed link starts
/// with it.
fn parse_public_url(s: &str) -> Result<String, String> {
    http_url(s).ok_or_else(|| {
        format!(
            "`{s}` is not an http:// or https:// URL with a host (the address users reach the service at, e.g. https://api.example.com)"
        )
    })
}

/// `JT_TOP_UP_URL`: an `http://` or `https://` URL with a host, since customers are sent there.
fn parse_top_up_url(s: &str) -> Result<String, String> {
    http_url(s).ok_or_else(|| {
        format!(
            "`{s}` is not an http:// or https:// URL with a host (where customers buy credits, e.g. https://app.example.com/credits)"
        )
    })
}

/// `s` trimmed, when it is an `http://` or `https://` URL with a host.
fn http_url(s: &str) -> Option<String> {
    let url = s.trim();
    url.strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .and_then(|rest| rest.split(['/', '?', '#']).next())
        .filter(|host| !host.is_empty() && !url.contains(char::is_whitespace))
        .map(|_| url.to_owned())
}

/// `JT_GITHUB_SCANNING_KEYS`: a URL, or a `file://` location that can be read now rather than at
/// the first report.
fn parse_github_scanning_keys(s: &str) -> Result<String, String> {
    let source = adapters_github::KeyListSource::parse(s).map_err(|e| e.to_string())?;
    if let adapters_github::KeyListSource::File(path) = &source {
        std::fs::File::open(path)
            .map_err(|e| format!("cannot read the key list {}: {e}", path.display()))?;
    }
    Ok(s.to_owned())
}

/// `--ttl-seconds`: 1 to 86400, with a message that says why.
fn parse_token_ttl(s: &str) -> Result<u64, String> {
    let max = MAX_TOKEN_LIFETIME.as_secs();
    match s.trim().parse::<u64>() {
        Ok(ttl) if (1..=max).contains(&ttl) => Ok(ttl),
        Ok(0) => Err("the lifetime must be at least 1 second".to_owned()),
        Ok(_) => Err(format!(
            "dashboard tokens live at most {max} seconds (24 hours); the service refuses longer ones"
        )),
        Err(_) => Err(format!("`{s}` is not a number of seconds")),
    }
}

impl Cli {
    /// The configuration: the server's from `serve`'s flags, an operator command's from the
    /// documented defaults. The JWT secret is read from the environment only (a flag's value
    /// is visible to every local user).
    ///
    /// # Errors
    /// `JWT_SECRET` and `JWT_SECRET_FILE` both set, or the file cannot be read.
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut config = Config::for_database(self.database_url.clone());
        config.jwt_secret = JwtSecret::from_env()?;
        config.log_format = self.log_format;
        if let Some(Command::Serve(serve)) = &self.command {
            serve.apply(&mut config);
        }
        Ok(config)
    }

    /// The command to run: `serve` configured from the environment when none was given.
    ///
    /// # Errors
    /// An environment variable of `serve` holds an invalid value.
    pub fn with_default_command(mut self) -> Result<Self, clap::Error> {
        if self.command.is_none() {
            let serve = Self::try_parse_from(["api-actix", "serve"])?;
            self.command = serve.command;
        }
        Ok(self)
    }
}

impl ServeArgs {
    fn apply(&self, config: &mut Config) {
        config.bind.clone_from(&self.bind);
        config.redis_url.clone_from(&self.redis_url);
        config.smtp_url.clone_from(&self.smtp_url);
        config.mail_from.clone_from(&self.mail_from);
        config.public_url.clone_from(&self.public_url);
        config.top_up_url.clone_from(&self.top_up_url);
        config.rate_limit = RateLimitPolicy {
            per_second: self.rate_limit_per_second,
            burst: self.rate_limit_burst,
        };
        config.high_usage_threshold = self.high_usage_threshold;
        config.auth_failures_per_minute = self.auth_failures_per_minute;
        config.dashboard_writes_per_minute = self.dashboard_writes_per_minute;
        config.sign_in_links_per_minute = self.sign_in_links_per_minute;
        config.trusted_proxies = self.trusted_proxies.clone().unwrap_or_default();
        config
            .github_scanning_keys
            .clone_from(&self.github_scanning_keys);
        config.metrics_bind = metrics_bind(&self.metrics_bind);
        config.cors_origins = self.cors_origins.clone().unwrap_or_default();
        config.key_signals = SignalPolicy {
            enabled: self.key_signals,
            established_after: std::time::Duration::from_secs(self.key_established_after_seconds),
            spike_factor: self.spike_factor,
            spike_min_requests: self.spike_min_requests,
        };
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations, then serve on JT_BIND (the default command).
    Serve(Box<ServeArgs>),
    /// Apply pending migrations and exit.
    Migrate {
        /// List applied and pending migrations instead; apply nothing.
        #[arg(long)]
        status: bool,
    },
    /// Manage users.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Issue dashboard tokens.
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Manage credits.
    Credits {
        #[command(subcommand)]
        command: CreditsCommand,
    },
    /// Inspect and revoke API keys, without the owner's dashboard token.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Embedded store only: write a consistent copy of the SQLite database to a new file, while
    /// the server runs. Restore by copying it back with the server stopped.
    Backup {
        /// The file to write; it must not exist.
        #[arg(long)]
        to: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print the user's keys, newest first, one key object (JSON) a line.
    List {
        /// The user's id or email.
        #[arg(long)]
        user: String,
    },
    /// Revoke the key read from standard input (never from the command line, where every
    /// local user could read it); prints its key object.
    Revoke {
        /// Recorded as the key's revocation_reason.
        #[arg(long, value_enum, default_value_t = RevokeReason::Operator)]
        reason: RevokeReason,
        /// Announces the revocation to running instances (they also notice within 1 s without it).
        #[arg(long, env = "REDIS_URL", hide_env_values = true, value_parser = NonEmptyStringValueParser::new())]
        redis_url: Option<String>,
    },
}

/// `keys revoke --reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RevokeReason {
    /// The key was found in public.
    Leaked,
    /// Any other operator decision.
    Operator,
}

impl RevokeReason {
    pub(super) const fn domain(self) -> RevocationReason {
        match self {
            Self::Leaked => RevocationReason::Leaked,
            Self::Operator => RevocationReason::Operator,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user; prints {"id", "email", "balance"}.
    Create {
        /// The user's email address (unique, case-insensitive); alerts are sent there.
        #[arg(long)]
        email: String,
        /// Initial credits, 0 or 1 to 10^12 (a grant in the ledger).
        #[arg(long, default_value = "0", allow_negative_numbers = true, value_parser = InitialCredits::parse)]
        credits: InitialCredits,
    },
}

/// `users create --credits`: 0 (no grant) or a grant amount, refused with the rule otherwise.
#[derive(Debug, Clone, Copy)]
pub struct InitialCredits(pub Option<GrantAmount>);

impl InitialCredits {
    fn parse(text: &str) -> Result<Self, InvalidGrant> {
        parse_initial_credits(text).map(Self)
    }
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Print a dashboard JWT for a user (one line).
    Issue {
        /// The user's id or email.
        #[arg(long)]
        user: String,
        /// Lifetime of the token, at most 86400 (24 hours).
        #[arg(long, default_value_t = 3600, value_parser = parse_token_ttl)]
        ttl_seconds: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum CreditsCommand {
    /// Add credits (a ledger entry); prints {"balance"}.
    Grant {
        /// The user's id or email.
        #[arg(long)]
        user: String,
        /// Credits to add, 1 to 10^12; the balance may not exceed 2^53 - 1.
        #[arg(long, allow_negative_numbers = true, value_parser = GrantAmount::parse)]
        amount: GrantAmount,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn refusal(args: &[&str]) -> String {
        let mut argv = vec!["api-actix"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap_err().to_string()
    }

    #[test]
    fn amounts_out_of_bounds_are_refused_with_the_rule() {
        let grant = |n| refusal(&["credits", "grant", "--user", "a@b.io", "--amount", n]);
        let create = |n| refusal(&["users", "create", "--email", "a@b.io", "--credits", n]);
        for err in [grant("-5"), grant("0"), create("-5")] {
            assert!(err.contains("the amount must be positive"), "{err}");
        }
        for err in [grant("1000000000001"), create("18446744073709551615")] {
            assert!(err.contains("at most 1000000000000"), "{err}");
        }
        assert!(grant("ten").contains("whole number"));
    }

    #[test]
    fn the_secret_is_not_a_flag_and_token_lifetimes_are_bounded() {
        assert!(Cli::try_parse_from(["api-actix", "--jwt-secret", "x", "serve"]).is_err());
        let issue = |ttl: &str| {
            Cli::try_parse_from([
                "api-actix",
                "tokens",
                "issue",
                "--user",
                "u",
                "--ttl-seconds",
                ttl,
            ])
        };
        assert!(issue("86400").is_ok());
        let e = issue("86401").unwrap_err().to_string();
        assert!(e.contains("at most 86400 seconds (24 hours)"), "{e}");
        assert!(issue("0").is_err());
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["api-actix"]).unwrap();
        assert!(cli.command.is_none());
        let cli = Cli::try_parse_from([
            "api-actix",
            "credits",
            "grant",
            "--user",
            "a@b.io",
            "--amount",
            "5",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Credits {
                command: CreditsCommand::Grant { .. }
            })
        ));
    }
}
