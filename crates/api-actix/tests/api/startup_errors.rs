//! Start-up refusals (issue 34, items 9 and 10): a variable set but empty, a value that cannot
//! work, an address that cannot be listened on, a file that cannot be read, a bad argument.
//! Each is one line on stderr in the log's format (a JSON object with `JT_LOG_FORMAT=json`),
//! exit status 2, and comes before any migration (the SQLite file is never created).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::unique;

/// Variables to set (`None`: to remove).
type Env<'a> = Vec<(&'a str, Option<&'a str>)>;

/// How a run ended: its exit code (`None`: still running after 20 s, so killed) and stderr.
struct Ended {
    code: Option<i32>,
    stderr: String,
}

/// The binary with the test's defaults (a SQLite file in `dir`, a good secret, nothing else of
/// the environment), then `env` (`None` removes a variable).
fn run(dir: &Path, args: &[&str], env: &[(&str, Option<&str>)]) -> Ended {
    let mut command = Command::new(env!("CARGO_BIN_EXE_api-actix"));
    command
        .args(args)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", db_file(dir).display()),
        )
        .env("JWT_SECRET", unique("start-up-secret-long-enough-to-sign-"))
        .env("JT_BIND", "127.0.0.1:0")
        .env("JT_METRICS_BIND", "off")
        .env_remove("JWT_SECRET_FILE")
        .env_remove("REDIS_URL")
        .env_remove("SMTP_URL")
        .env_remove("RUST_LOG")
        .env_remove("JT_LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        match value {
            Some(v) => command.env(name, v),
            None => command.env_remove(name),
        };
    }
    let mut child = command.spawn().unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    Ended {
        code: status.and_then(|s| s.code()),
        stderr,
    }
}

fn db_file(dir: &Path) -> PathBuf {
    dir.join("never.db")
}

/// The refusal's one line, after checking exit status 2 and that nothing was created.
fn refusal<'a>(ended: &'a Ended, dir: &Path, case: &str) -> &'a str {
    assert_eq!(ended.code, Some(2), "{case}: {}", ended.stderr);
    let lines: Vec<&str> = ended.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{case}: not one line: {}", ended.stderr);
    assert!(
        !db_file(dir).exists(),
        "{case}: the database was created before the refusal"
    );
    lines[0]
}

#[test]
fn a_variable_set_but_empty_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for variable in [
        // Used to mean `off`.
        "JT_METRICS_BIND",
        "JT_BIND",
        "DATABASE_URL",
        "REDIS_URL",
        "SMTP_URL",
        "MAIL_FROM",
        "JT_PUBLIC_URL",
        "JT_TOP_UP_URL",
        "JT_TRUSTED_PROXIES",
        "JT_CORS_ORIGINS",
        "JT_LOG_FORMAT",
        "JT_RATE_LIMIT_PER_SECOND",
        "JT_GITHUB_SCANNING_KEYS",
        "JT_KEY_SIGNALS",
        "JWT_SECRET_FILE",
        "RUST_LOG",
    ] {
        for value in ["", "  "] {
            let ended = run(dir.path(), &["serve"], &[(variable, Some(value))]);
            let line = refusal(&ended, dir.path(), &format!("{variable}={value:?}"));
            assert!(
                line.contains(variable) && line.contains("empty"),
                "{variable}={value:?}: {line}"
            );
        }
    }
    // Whatever the command.
    let ended = run(
        dir.path(),
        &["users", "create", "--email", "ada@example.com"],
        &[("JT_METRICS_BIND", Some(""))],
    );
    assert!(refusal(&ended, dir.path(), "users create").contains("JT_METRICS_BIND"));
}

#[test]
fn every_start_up_error_is_one_json_line_with_exit_status_2_before_any_migration() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let missing_dir = format!("sqlite://{}/no/such/dir/x.db", dir.path().display());
    let missing_file = dir.path().join("no-such-secret");
    let missing_file = missing_file.to_str().unwrap();
    let serve = &["serve"][..];
    let create = &["users", "create", "--email", "ada@example.com"][..];
    // (arguments, environment, what the line must name)
    let cases: Vec<(&[&str], Env, &str)> = vec![
        (
            serve,
            vec![("JT_PUBLIC_URL", Some("garbage"))],
            "JT_PUBLIC_URL",
        ),
        (
            serve,
            vec![("JT_TOP_UP_URL", Some("ftp://shop/"))],
            "JT_TOP_UP_URL",
        ),
        (
            serve,
            vec![("JT_RATE_LIMIT_PER_SECOND", Some("0"))],
            "JT_RATE_LIMIT_PER_SECOND",
        ),
        (serve, vec![("JT_BIND", Some("not-an-address"))], "JT_BIND"),
        (serve, vec![("JT_BIND", Some(taken.as_str()))], "JT_BIND"),
        (
            serve,
            vec![("JT_METRICS_BIND", Some(taken.as_str()))],
            "JT_METRICS_BIND",
        ),
        (serve, vec![("JWT_SECRET", Some("short"))], "JWT_SECRET"),
        (create, vec![("JWT_SECRET", Some("short"))], "JWT_SECRET"),
        (
            serve,
            vec![
                ("JWT_SECRET", None),
                ("JWT_SECRET_FILE", Some(missing_file)),
            ],
            "JWT_SECRET_FILE",
        ),
        (
            serve,
            vec![("JWT_SECRET_FILE", Some(missing_file))],
            "JWT_SECRET_FILE",
        ),
        (serve, vec![("SMTP_URL", Some("ftp://mail"))], "SMTP_URL"),
        (
            serve,
            vec![
                ("SMTP_URL", Some("smtp://127.0.0.1:2525")),
                ("MAIL_FROM", Some("not an address")),
            ],
            "MAIL_FROM",
        ),
        (
            serve,
            vec![("REDIS_URL", Some("http://cache:6379"))],
            "REDIS_URL",
        ),
        (
            serve,
            vec![("DATABASE_URL", Some("mysql://db/jt"))],
            "DATABASE_URL",
        ),
        (
            serve,
            vec![("DATABASE_URL", Some(&missing_dir))],
            "does not exist",
        ),
        (
            create,
            vec![("DATABASE_URL", Some("mysql://db/jt"))],
            "DATABASE_URL",
        ),
        (&["serve", "--no-such-flag"][..], vec![], "--no-such-flag"),
        (
            serve,
            vec![("RUST_LOG", Some("api_actix=loud"))],
            "RUST_LOG",
        ),
    ];
    for (args, env, names) in cases {
        let case = format!("{args:?} {env:?}");
        let mut json = env.clone();
        json.push(("JT_LOG_FORMAT", Some("json")));
        let ended = run(dir.path(), args, &json);
        let line = refusal(&ended, dir.path(), &case);
        let record: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{case}: not a JSON object ({e}): {line}"));
        assert_eq!(record["level"], "ERROR", "{case}: {line}");
        assert!(
            record["error"].as_str().is_some_and(|e| e.contains(names)),
            "{case}: {line}"
        );
        // The same refusal in text: one line too.
        let ended = run(dir.path(), args, &env);
        let line = refusal(&ended, dir.path(), &case);
        assert!(
            line.contains("ERROR") && line.contains(names),
            "{case}: {line}"
        );
    }
    // `--log-format json` on the command line counts as much as the variable.
    let ended = run(
        dir.path(),
        &["--log-format", "json", "serve"],
        &[("JT_BIND", Some("not-an-address"))],
    );
    let line = refusal(&ended, dir.path(), "--log-format json");
    assert!(serde_json::from_str::<Value>(line).is_ok(), "{line}");
}

#[test]
fn a_secret_file_that_others_can_read_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwt");
    std::fs::write(&file, format!("{}\n", "s".repeat(48))).unwrap();
    let file_env = file.to_str().unwrap();
    let migrate = |mode: u32| {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        run(
            dir.path(),
            &["migrate"],
            &[("JWT_SECRET", None), ("JWT_SECRET_FILE", Some(file_env))],
        )
    };
    for (mode, who) in [(0o644, "other users"), (0o640, "its group")] {
        let ended = migrate(mode);
        assert_eq!(ended.code, Some(0), "{}", ended.stderr);
        let warning = ended
            .stderr
            .lines()
            .find(|l| l.contains("WARN") && l.contains("JWT_SECRET_FILE"))
            .unwrap_or_else(|| panic!("no warning at mode {mode:o}: {}", ended.stderr));
        assert!(
            warning.contains(who) && warning.contains("chmod 600"),
            "{warning}"
        );
    }
    let ended = migrate(0o600);
    assert_eq!(ended.code, Some(0), "{}", ended.stderr);
    assert!(
        !ended.stderr.contains("JWT_SECRET_FILE"),
        "{}",
        ended.stderr
    );
}
