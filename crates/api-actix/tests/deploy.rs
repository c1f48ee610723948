//! The deployment files of `deploy/` and the scripts that run them (docs/operating.md), tested
//! with the binary cargo built for the tests:
//!
//! - the systemd unit passes `systemd-analyze verify` and its offline security review, and the
//!   binary serves with exactly what the unit gives it: the environment file, the JWT secret as
//!   a credential file, the state directory as working directory, an unprivileged user;
//! - the environment file and docs/operating.md name every variable the binary reads;
//! - the nginx site (`scripts/nginx-tls.sh`, TLS with a self-signed certificate) hands the
//!   instances the real client's address: the per-address limits, `allowed_networks` and the
//!   clients list count the client, and a client-sent `X-Forwarded-For` changes nothing;
//! - three instances behind nginx (`scripts/cluster.sh`) under renders and `/me`: one is killed
//!   with `kill -9`, every 201 is in the ledger, no charge is applied twice, requests succeed on
//!   the two survivors within 2 s, and a key revoked on one instance is refused through nginx
//!   within 1 s;
//! - `deploy/nginx/readyz-watch.sh` takes a hung instance out of nginx's upstream and puts it
//!   back;
//! - a rolling upgrade's middle: after a newer release's migration, a running instance serves
//!   on, and a new instance of the running release refuses to start;
//! - the Dockerfile's runtime stage, run on the host: its packages provide every library the
//!   binary links, and the stripped binary serves as its non-root user with its environment.
//!
//! Needs Debian's nginx (`bash scripts/ensure-services.sh` installs it), PostgreSQL on
//! 127.0.0.1:5432, Redis on 127.0.0.1:6379, `systemd-analyze`, `psql`, `openssl`, `curl`,
//! `python3`, `setpriv` and `strip`. The tests run one at a time (about 40 s in all).

// Tests fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod e2e_support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::net::{IpAddr, TcpListener};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use adapters_postgres::testing::{drop_postgres_database, fresh_postgres_url, fresh_sqlite_url};
use e2e_support::{JWT_SECRET, Owner, create_owner, error_type, key_from, require_shared_redis};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_api-actix");
const INSTALL_HINT: &str = "run `bash scripts/ensure-services.sh` (installs Debian's nginx)";

/// One test at a time: the cluster's timings are measured on a 2-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn read(path: &str) -> String {
    fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(command: &mut Command) -> Output {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn is_root() -> bool {
    let out = run(Command::new("id").arg("-u"));
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

fn require_tool(tool: &str, hint: &str) {
    let found = Command::new("sh")
        .args([
            "-c",
            &format!("command -v {tool} || test -x /usr/sbin/{tool}"),
        ])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(found, "`{tool}` is not installed: {hint}");
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// A process of the test: killed when dropped, if it still runs.
struct Proc(Child);

impl Proc {
    /// SIGTERM, then its exit status (failing after `limit`).
    fn terminate(&mut self, limit: Duration) -> std::process::ExitStatus {
        signal(self.0.id(), "-TERM");
        let start = Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "the server did not stop within {limit:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Polls `url` until it answers 200 (failing after 30 s, or when `server` exits).
async fn until_ready(url: &str, server: &mut Proc, log: &Path) {
    let http = reqwest::Client::new();
    let start = Instant::now();
    loop {
        if let Ok(res) = http.get(url).send().await
            && res.status() == 200
        {
            return;
        }
        if let Some(status) = server.0.try_wait().unwrap() {
            panic!(
                "the server exited ({status}):\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{url} not ready after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `KEY=value` lines (not comments) of an environment file, in order.
fn env_file_settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not KEY=value: {l}"));
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect()
}

/// Every variable the binary reads: the `[env: …]` of its flags, and those it reads itself.
fn variables_the_binary_reads() -> BTreeSet<String> {
    let mut vars: BTreeSet<String> = ["JWT_SECRET", "JWT_SECRET_FILE", "RUST_LOG"]
        .map(String::from)
        .into();
    for args in [&["--help"][..], &["serve", "--help"][..]] {
        let help = String::from_utf8(run(Command::new(BIN).args(args)).stdout).unwrap();
        for (at, _) in help.match_indices("[env: ") {
            let name: String = help[at + 6..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            vars.insert(name);
        }
    }
    assert!(
        vars.len() > 20,
        "too few variables found in --help: {vars:?}"
    );
    vars
}

#[test]
fn the_environment_file_and_operating_md_name_every_variable_the_binary_reads() {
    let vars = variables_the_binary_reads();
    let env_file = read("deploy/jobtactics.env");
    let named: BTreeSet<String> = env_file
        .lines()
        .map(|l| l.trim().trim_start_matches('#'))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_owned()))
        .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect();
    let missing: Vec<&String> = vars.difference(&named).collect();
    assert!(
        missing.is_empty(),
        "deploy/jobtactics.env does not name {missing:?}"
    );
    let unknown: Vec<&String> = named.difference(&vars).collect();
    assert!(
        unknown.is_empty(),
        "deploy/jobtactics.env names variables the binary does not read: {unknown:?}"
    );
    let operating = read("docs/operating.md");
    let undocumented: Vec<&String> = vars
        .iter()
        .filter(|v| !operating.contains(&format!("`{v}`")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "docs/operating.md, \"Configure\", does not name {undocumented:?}"
    );
}

/// `deploy/jobtactics.service`: `systemd-analyze verify` is clean and `systemd-analyze security
/// --offline=yes` scores at most 2.0; the binary then serves with exactly what the unit
/// provides (the environment file's settings, the secret as a credential file, the state
/// directory as working directory, umask 077, an unprivileged user id from the dynamic range):
/// a token the CLI signs with the credential is accepted, the store is created 0600 and owned by
/// that user, every log line is JSON, and SIGTERM exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_systemd_unit_verifies_and_the_binary_serves_with_what_it_provides() {
    let _serial = SERIAL.lock().await;
    require_tool("systemd-analyze", "apt-get install systemd");
    let unit = read("deploy/jobtactics.service");
    for directive in [
        "ExecStart=/usr/local/bin/api-actix serve",
        "EnvironmentFile=/etc/jobtactics/jobtactics.env",
        "LoadCredential=jwt-secret:/etc/jobtactics/jwt-secret",
        "Environment=JWT_SECRET_FILE=%d/jwt-secret",
        "DynamicUser=yes",
        "StateDirectory=jobtactics",
        "WorkingDirectory=%S/jobtactics",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "UMask=0077",
    ] {
        assert!(
            unit.lines().any(|l| l.trim() == directive),
            "the unit lacks `{directive}`"
        );
    }

    // Verified as installed, with ExecStart at the binary under test (verify checks that the
    // program exists).
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("jobtactics.service");
    fs::write(&copy, unit.replace("/usr/local/bin/api-actix", BIN)).unwrap();
    let verify = run(Command::new("systemd-analyze").arg("verify").arg(&copy));
    let complaints = String::from_utf8_lossy(&verify.stderr);
    assert!(
        complaints.trim().is_empty(),
        "systemd-analyze verify complains:\n{complaints}"
    );
    // systemd's own review of the sandbox: exposure 0 (locked down) to 10 (exposed); fails
    // above 2 (`--threshold` counts tenths).
    let security = run(Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20", "--no-pager"])
        .arg(&copy));
    let report = String::from_utf8_lossy(&security.stdout);
    let overall = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or("no overall line");
    eprintln!("systemd-analyze security: {overall}");

    // What the unit gives the process: the environment file's settings (the addresses moved to
    // free ports, the state directory moved to a temp dir), JWT_SECRET_FILE in the credentials
    // directory, the state directory as working directory, umask 077, and a user of its own.
    let state = dir.path().join("state");
    let credentials = dir.path().join("credentials");
    fs::create_dir_all(&state).unwrap();
    fs::create_dir_all(&credentials).unwrap();
    let secret = credentials.join("jwt-secret");
    fs::write(&secret, format!("{JWT_SECRET}\n")).unwrap();
    let uid = 61_184; // the first id systemd gives dynamic users
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    if is_root() {
        run(Command::new("chown")
            .arg(format!("{uid}:{uid}"))
            .arg(&state));
        run(Command::new("chown")
            .arg(format!("{uid}:{uid}"))
            .arg(&credentials));
        run(Command::new("chown")
            .arg(format!("{uid}:{uid}"))
            .arg(&secret));
    }
    fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o400)).unwrap();

    let (api, metrics) = (free_port(), free_port());
    let mut env: Vec<(String, String)> = env_file_settings(&read("deploy/jobtactics.env"))
        .into_iter()
        .map(|(k, v)| {
            let v = match k.as_str() {
                "JT_BIND" => format!("127.0.0.1:{api}"),
                "JT_METRICS_BIND" => format!("127.0.0.1:{metrics}"),
                _ => v.replace("/var/lib/jobtactics", state.to_str().unwrap()),
            };
            (k, v)
        })
        .collect();
    assert!(
        env.iter()
            .any(|(k, v)| k == "DATABASE_URL" && v.contains(state.to_str().unwrap())),
        "the environment file's DATABASE_URL is not in the state directory: {env:?}"
    );
    env.push(("JWT_SECRET_FILE".into(), secret.to_str().unwrap().into()));
    let as_unit = |args: &str| {
        let mut c = Command::new("sh");
        let drop_privileges = if is_root() {
            format!("setpriv --reuid={uid} --regid={uid} --clear-groups ")
        } else {
            String::new()
        };
        c.arg("-c")
            .arg(format!("umask 077 && exec {drop_privileges}{BIN} {args}"))
            .current_dir(&state)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)));
        c
    };
    let log = dir.path().join("server.log");
    let mut server = Proc(
        as_unit("serve")
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    until_ready(&format!("http://127.0.0.1:{api}/readyz"), &mut server, &log).await;

    // The credential is the secret in force: a token the CLI signs with it is accepted.
    run(&mut as_unit("users create --email unit@example.com"));
    let issued = run(&mut as_unit("tokens issue --user unit@example.com"));
    let token = String::from_utf8(issued.stdout).unwrap().trim().to_owned();
    let http = reqwest::Client::new();
    let keys = http
        .get(format!("http://127.0.0.1:{api}/api/v1/keys"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(keys.status(), 200, "a token signed with the credential");
    let metrics_text = http
        .get(format!("http://127.0.0.1:{metrics}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics_text.contains("jt_http_requests_total"));

    // The store is in the state directory, the unit's user's alone.
    let db = state.join("jobtactics.db");
    let meta = fs::metadata(&db).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600, "the store's mode");
    if is_root() {
        assert_eq!(meta.uid(), uid, "the store's owner");
    }
    // SIGTERM (KillSignal) drains and exits 0; JT_LOG_FORMAT=json: every line is JSON.
    let status = server.terminate(Duration::from_secs(20));
    assert!(status.success(), "exit after SIGTERM: {status}");
    let logged = fs::read_to_string(&log).unwrap();
    assert!(!logged.is_empty());
    for line in logged.lines() {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "not a JSON log line: {line}"
        );
    }
}

// --- nginx and the cluster script --------------------------------------------------------------

/// `scripts/cluster.sh up` in a temp dir; `down` (and the database dropped) when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
    /// A PostgreSQL database of the test's own, dropped with the cluster.
    postgres: Option<String>,
}

impl Cluster {
    fn up(database_url: &str, instances: usize, settings: &[(&str, &str)]) -> Self {
        require_tool("nginx", INSTALL_HINT);
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("jwt-secret");
        fs::write(&secret, JWT_SECRET).unwrap();
        let out = Command::new(repo().join("scripts/cluster.sh"))
            .arg("up")
            .arg(dir.path().join("cluster"))
            .env("API_ACTIX", BIN)
            .env("DATABASE_URL", database_url)
            .env("INSTANCES", instances.to_string())
            .env("JWT_SECRET_FILE", &secret)
            .envs(settings.iter().copied())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/cluster.sh up failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let env = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self {
            dir,
            env,
            postgres: database_url
                .starts_with("postgres")
                .then(|| database_url.to_owned()),
        }
    }

    fn get(&self, name: &str) -> &str {
        self.env
            .get(name)
            .unwrap_or_else(|| panic!("cluster.env has no {name}"))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.get("CLUSTER_URL"))
    }

    fn instance_url(&self, i: usize, path: &str) -> String {
        format!("http://{}{path}", self.get(&format!("INSTANCE_{i}_ADDR")))
    }

    /// An HTTPS client that trusts the script's certificate, connecting from `from`.
    fn client(&self, from: Option<IpAddr>) -> reqwest::Client {
        let pem = fs::read(self.get("CLUSTER_CA")).unwrap();
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .local_address(from)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    fn access_log(&self) -> String {
        fs::read_to_string(self.get("NGINX_ACCESS_LOG")).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/cluster.sh"))
            .arg("down")
            .arg(self.dir.path().join("cluster"))
            .status();
        if let Some(url) = &self.postgres {
            drop_postgres_database(url);
        }
    }
}

/// `POST /api/v1/keys` through `url` (nginx or an instance).
async fn create_key_at(
    http: &reqwest::Client,
    url: &str,
    owner: &Owner,
    body: Value,
) -> e2e_support::CreatedKey {
    let res = http
        .post(url)
        .bearer_auth(&owner.jwt)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 201, "creating a key: {body}");
    key_from(&body)
}

async fn get_me(
    http: &reqwest::Client,
    cluster: &Cluster,
    key: &str,
    forwarded_for: Option<&str>,
) -> (u16, Value) {
    let mut req = http.get(cluster.url("/api/v1/public/me")).bearer_auth(key);
    if let Some(xff) = forwarded_for {
        req = req.header("X-Forwarded-For", xff);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// `deploy/nginx/jobtactics.conf` through `scripts/nginx-tls.sh`, two clients each from an
/// address of its own (127.0.1.2 and 127.0.2.3; nginx is 127.0.0.1): plain HTTP redirects; a key
/// limited to the first client's address works for it, also with a forged `X-Forwarded-For`,
/// and is `network_not_allowed` for the second whatever address it claims; the key's clients
/// list shows the first client's network, never nginx's or a forged one; with
/// `JT_AUTH_FAILURES_PER_MINUTE=5` the first client, forging a different address each time, gets
/// 429 after five failures while the second is still answered 401; request ids pass through and
/// are in nginx's log; no key is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_terminates_tls_and_the_service_sees_the_real_client_whatever_it_forwards() {
    let _serial = SERIAL.lock().await;
    let (_db_dir, db) = fresh_sqlite_url();
    let cluster = Cluster::up(
        &db,
        1,
        &[("REDIS_URL", ""), ("JT_AUTH_FAILURES_PER_MINUTE", "5")],
    );
    let owner = create_owner(&db, 0).await;
    // Two clients on addresses of their own (all of 127/8 is this host's loopback), in other
    // /24 networks than nginx's 127.0.0.1, so the clients list tells them apart too.
    let a_ip: IpAddr = "127.0.1.2".parse().unwrap();
    let b_ip: IpAddr = "127.0.2.3".parse().unwrap();
    let (a, b) = (cluster.client(Some(a_ip)), cluster.client(Some(b_ip)));

    // Plain HTTP only redirects.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = plain
        .get(format!(
            "{}/api/v1/public/me",
            cluster.get("CLUSTER_HTTP_URL")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 301);
    let location = res.headers()["location"].to_str().unwrap();
    assert!(location.starts_with("https://"), "redirected to {location}");

    // A key usable from A's address alone.
    let key = create_key_at(
        &a,
        &cluster.url("/api/v1/keys"),
        &owner,
        json!({"name": "pinned", "allowed_networks": [format!("{a_ip}/32")]}),
    )
    .await;
    assert_eq!(get_me(&a, &cluster, &key.secret, None).await.0, 200);
    // A claiming another address is still A.
    assert_eq!(
        get_me(&a, &cluster, &key.secret, Some("203.0.113.9"))
            .await
            .0,
        200,
        "A's forged X-Forwarded-For moved it out of its own network"
    );
    // B claiming A's address is still B.
    for forged in [None, Some("127.0.1.2"), Some("127.0.1.2, 127.0.1.2")] {
        let (status, body) = get_me(&b, &cluster, &key.secret, forged).await;
        assert_eq!(
            (status, error_type(&body)),
            (401, "network_not_allowed"),
            "B with X-Forwarded-For {forged:?}"
        );
    }

    // The key's clients are A's network, never nginx's or a forged one.
    let clients_url = cluster.url(&format!("/api/v1/keys/{}/clients", key.id));
    let networks = e2e_support::eventually(
        "A's request in the key's clients",
        Duration::from_secs(5),
        || async {
            let body: Value = a
                .get(&clients_url)
                .bearer_auth(&owner.jwt)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let networks: BTreeSet<String> = body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["network"].as_str().unwrap().to_owned())
                .collect();
            networks.contains("127.0.1.0/24").then_some(networks)
        },
    )
    .await;
    assert!(
        !networks.contains("127.0.0.0/24") && !networks.contains("203.0.113.0/24"),
        "clients list shows a proxy or a forged network: {networks:?}"
    );

    // The failed-authentication limit (5 a minute here) counts A, whatever A claims to be.
    let bad = format!("jt_sk_{}", "A".repeat(38));
    for i in 0..5 {
        let (status, _) = get_me(&a, &cluster, &bad, Some(&format!("198.51.100.{i}"))).await;
        assert_eq!(status, 401, "A's bad key #{i}");
    }
    let (status, body) = get_me(&a, &cluster, &bad, Some("198.51.100.77")).await;
    assert_eq!(
        (status, error_type(&body)),
        (429, "rate_limited"),
        "A over its limit"
    );
    assert_eq!(
        get_me(&a, &cluster, &key.secret, Some("198.51.100.78"))
            .await
            .0,
        429,
        "A's valid key while A is over its limit"
    );
    // B (3 refusals so far) is not: it is another client.
    let (status, body) = get_me(&b, &cluster, &bad, None).await;
    assert_eq!((status, error_type(&body)), (401, "malformed_api_key"));

    // Request ids: nginx passes the client's, or gives its own, and logs the one the service
    // answered with.
    let res = a.get(cluster.url("/healthz")).send().await.unwrap();
    let generated = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 32, "nginx's request id: {generated}");
    let res = a
        .get(cluster.url("/healthz"))
        .header("X-Request-Id", "deploy-test-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "deploy-test-42");
    // nginx writes the line once the response is sent: allow it a moment.
    for id in [generated.as_str(), "deploy-test-42"] {
        let line_from_a =
            |l: &str| l.starts_with("127.0.1.2 ") && l.ends_with(&format!("rid={id}"));
        e2e_support::eventually_sync(
            &format!("a line from A with rid={id} in nginx's access log"),
            Duration::from_secs(2),
            || cluster.access_log().lines().any(line_from_a).then_some(()),
        )
        .await;
    }
    let log = cluster.access_log();
    assert!(!log.contains(&key.secret), "nginx's access log holds a key");
}

/// What one render got, after its retries.
#[derive(Debug, Clone)]
struct Render {
    started: Instant,
    idempotency_key: String,
    /// The final status; 0 when no answer came at all.
    status: u16,
    document: Option<String>,
    attempts: u32,
}

#[derive(Debug, Clone)]
struct MeCall {
    started: Instant,
    status: u16,
}

/// Renders one document with an `Idempotency-Key`, retrying what a dead instance leaves
/// unanswered (no answer, 502, 504) and a 409 (the first attempt still running) with the same
/// key, as a client should.
async fn render(http: &reqwest::Client, cluster_url: &str, key: &str, n: u64) -> Render {
    let idempotency_key = format!("render-{n}-{}", e2e_support::unique("k"));
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let res = http
            .post(format!("{cluster_url}/api/v1/public/documents"))
            .bearer_auth(key)
            .header("Idempotency-Key", &idempotency_key)
            .json(&json!({"template_id": "classic", "fields": {"name": idempotency_key}}))
            .send()
            .await;
        let (status, body) = match res {
            Ok(res) => {
                let status = res.status().as_u16();
                (status, res.json::<Value>().await.unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        };
        let retry = matches!(status, 0 | 502 | 504 | 409) && attempts < 20;
        if !retry {
            return Render {
                started,
                idempotency_key,
                status,
                document: (status == 201).then(|| body["id"].as_str().unwrap().to_owned()),
                attempts,
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates a key, uses it through nginx, revokes it directly on instance `on`, and polls
/// through nginx: how long until the first refusal and until six refusals in a row (nginx
/// spreads them over every live instance). Fails on any 200 later than 1 s after the revoke.
async fn revocation_through_nginx(
    http: &reqwest::Client,
    cluster: &Cluster,
    owner: &Owner,
    on: usize,
    name: &str,
) -> (Duration, Duration) {
    let key = create_key_at(
        http,
        &cluster.url("/api/v1/keys"),
        owner,
        json!({"name": name}),
    )
    .await;
    for _ in 0..9 {
        e2e_support::eventually("the new key accepted", Duration::from_secs(5), || async {
            (get_me(http, cluster, &key.secret, None).await.0 == 200).then_some(())
        })
        .await;
    }
    let revoked_at = Instant::now();
    let res = http
        .post(cluster.instance_url(on, &format!("/api/v1/keys/{}/revoke", key.id)))
        .bearer_auth(&owner.jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "revoking on instance {on}");
    let mut first_refusal = None;
    let mut streak = 0;
    loop {
        let (status, body) = get_me(http, cluster, &key.secret, None).await;
        let elapsed = revoked_at.elapsed();
        match (status, error_type(&body)) {
            (401, "revoked_api_key") => {
                first_refusal.get_or_insert(elapsed);
                streak += 1;
                if streak == 6 {
                    return (first_refusal.unwrap(), elapsed);
                }
            }
            (200, _) => {
                streak = 0;
                assert!(
                    elapsed < Duration::from_secs(1),
                    "the key revoked on instance {on} was accepted through nginx {elapsed:?} later"
                );
            }
            _ => panic!("unexpected {status} {body} after the revocation"),
        }
    }
}

/// Three instances through `scripts/cluster.sh` under load through nginx (three clients
/// rendering with an `Idempotency-Key` each, retrying a 502 or 409 with the same key; two reading
/// `/me`), one killed with `kill -9`: every 201 a client received is in the ledger; no document
/// and no `Idempotency-Key` is charged twice (a charge without a 201 is one of the in-doubt
/// renders, once); the balance is the ledger's sum; every request started 2 s after the kill or
/// later succeeds at its first attempt and was served by the two survivors (nginx's log); nginx
/// was not reloaded for it; a key revoked on one instance (before the kill and after it) is
/// refused through nginx within 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_behind_nginx_survive_kill_9_of_one_without_losing_or_doubling_a_charge() {
    let _serial = SERIAL.lock().await;
    require_shared_redis();
    let test_start = Instant::now();
    let db = fresh_postgres_url();
    let cluster = Cluster::up(
        &db,
        3,
        &[
            // The load measures failover, not the keys' own limits.
            ("JT_RATE_LIMIT_PER_SECOND", "1000000"),
            ("JT_RATE_LIMIT_BURST", "1000000"),
            ("JT_HIGH_USAGE_THRESHOLD", "1000000000"),
        ],
    );
    eprintln!("cluster up in {:?}", test_start.elapsed());
    const CREDITS: u64 = 1_000_000;
    let owner = create_owner(&db, CREDITS).await;
    let http = cluster.client(None);
    let base = cluster.get("CLUSTER_URL").to_owned();
    let key = create_key_at(
        &http,
        &cluster.url("/api/v1/keys"),
        &owner,
        json!({"name": "load"}),
    )
    .await
    .secret;

    // The load: 3 clients rendering, 2 reading /me, through nginx, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut renderers = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let (http, base, key, stop, counter) = (
            http.clone(),
            base.clone(),
            key.clone(),
            stop.clone(),
            counter.clone(),
        );
        renderers.spawn(async move {
            let mut done = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                done.push(render(&http, &base, &key, n).await);
            }
            done
        });
    }
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..2 {
        let (http, base, key, stop) = (http.clone(), base.clone(), key.clone(), stop.clone());
        readers.spawn(async move {
            let mut done = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let status = match http
                    .get(format!("{base}/api/v1/public/me"))
                    .bearer_auth(&key)
                    .send()
                    .await
                {
                    Ok(res) => res.status().as_u16(),
                    Err(_) => 0,
                };
                done.push(MeCall { started, status });
            }
            done
        });
    }

    // Under load, with three instances: a revocation on instance 3.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (first, all) = revocation_through_nginx(&http, &cluster, &owner, 3, "revoked-3").await;
    eprintln!(
        "three instances: revoked on #3, refused through nginx after {first:?} (6 in a row: {all:?})"
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    // kill -9 instance 1.
    let victim = cluster.get("INSTANCE_1_ADDR").to_owned();
    let killed_at = Instant::now();
    let killed_at_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    run(Command::new("kill").args(["-9", cluster.get("INSTANCE_1_PID")]));
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let (first, all) = revocation_through_nginx(&http, &cluster, &owner, 2, "revoked-2").await;
    eprintln!(
        "two survivors: revoked on #2, refused through nginx after {first:?} (6 in a row: {all:?})"
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut renders: Vec<Render> = Vec::new();
    while let Some(r) = renderers.join_next().await {
        renders.extend(r.unwrap());
    }
    let mut reads: Vec<MeCall> = Vec::new();
    while let Some(r) = readers.join_next().await {
        reads.extend(r.unwrap());
    }

    // What the client saw.
    let after = |t: Instant, from: Duration| t >= killed_at + from;
    let window = |t: Instant| t >= killed_at && t < killed_at + Duration::from_secs(2);
    let retried = renders.iter().filter(|r| r.attempts > 1).count();
    let in_doubt: Vec<&Render> = renders.iter().filter(|r| r.status != 201).collect();
    let created: BTreeMap<String, String> = renders
        .iter()
        .filter_map(|r| r.document.clone().map(|d| (d, r.idempotency_key.clone())))
        .collect();
    let last_trouble = renders
        .iter()
        .filter(|r| r.attempts > 1 || r.status != 201)
        .map(|r| r.started.saturating_duration_since(killed_at))
        .max();
    eprintln!("the last render that needed a retry started {last_trouble:?} after the kill");
    let failed_reads: Vec<(u16, Duration)> = reads
        .iter()
        .filter(|m| m.status != 200)
        .map(|m| (m.status, m.started.saturating_duration_since(killed_at)))
        .collect();
    eprintln!("/me not 200 (status, started after the kill; 0: no answer): {failed_reads:?}");
    eprintln!(
        "renders: {} sent, {} answered 201, {} retried, {} without a 201 ({:?}); /me: {} calls, \
         {} not 200 (in the 2 s after the kill: {})",
        renders.len(),
        created.len(),
        retried,
        in_doubt.len(),
        in_doubt.iter().map(|r| r.status).collect::<Vec<_>>(),
        reads.len(),
        reads.iter().filter(|m| m.status != 200).count(),
        reads
            .iter()
            .filter(|m| m.status != 200 && window(m.started))
            .count(),
    );
    assert!(
        renders
            .iter()
            .filter(|r| !after(r.started, Duration::ZERO))
            .count()
            > 20
            && renders
                .iter()
                .filter(|r| after(r.started, Duration::from_secs(2)))
                .count()
                > 20,
        "too little load around the kill to tell anything"
    );
    for r in &in_doubt {
        // Only a render the killed instance took can end without a 201: its outcome is unknown
        // to the client (409 for 24 h: docs/api.md, "Retries").
        assert!(
            window(r.started)
                || (r.started < killed_at && r.started + Duration::from_secs(1) > killed_at),
            "a render unrelated to the kill failed with {}: {r:?}",
            r.status
        );
        assert_eq!(r.status, 409, "a render ended with {}", r.status);
    }
    // Within 2 s of the kill every request succeeds at once on the survivors.
    for r in renders
        .iter()
        .filter(|r| after(r.started, Duration::from_secs(2)))
    {
        assert!(
            r.status == 201 && r.attempts == 1,
            "a render started {:?} after the kill: {r:?}",
            r.started - killed_at
        );
    }
    for m in reads
        .iter()
        .filter(|m| after(m.started, Duration::from_secs(2)))
    {
        assert_eq!(
            m.status,
            200,
            "a /me started {:?} after the kill",
            m.started - killed_at
        );
    }
    // ... and the survivors answered them: nginx's log names the instances it tried for each
    // request, the one that answered last. (The dead one may be tried again once its
    // fail_timeout is over: the refused connection moves the request on at once.)
    let survivors: BTreeSet<String> = [2, 3]
        .iter()
        .map(|i| cluster.get(&format!("INSTANCE_{i}_ADDR")).to_owned())
        .collect();
    let since = killed_at_epoch.as_secs_f64() + 2.0;
    let mut answered_by = BTreeSet::new();
    for line in cluster.access_log().lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let ended: f64 = fields[2].parse().unwrap();
        if ended < since || !line.contains("/api/v1/public/") {
            continue;
        }
        let status: u16 = fields[5].parse().unwrap();
        assert!(
            status < 500,
            "nginx answered {status} 2 s after the kill: {line}"
        );
        let upstreams = line
            .split(" up=")
            .nth(1)
            .unwrap()
            .split(" ut=")
            .next()
            .unwrap();
        answered_by.insert(upstreams.rsplit(", ").next().unwrap().to_owned());
    }
    assert_eq!(
        answered_by, survivors,
        "the instances that answered requests ending 2 s or more after the kill"
    );
    // A killed instance refuses connections, which nginx handles by itself: the watcher left
    // nginx alone (a reload would have closed the clients' idle connections).
    let watch_log = fs::read_to_string(cluster.get("WATCH_LOG")).unwrap();
    assert!(
        !watch_log.contains("reloading"),
        "readyz-watch.sh reloaded nginx for a killed instance:\n{watch_log}"
    );
    assert!(
        !fs::read_to_string(cluster.get("NGINX_UPSTREAM_FILE"))
            .unwrap()
            .contains(&format!("{victim} max_fails=1 fail_timeout=5s down")),
    );

    // The ledger: every 201 is in it, once; nothing else but the in-doubt renders.
    let mut ledger: Vec<(String, i64)> = Vec::new();
    let mut after_cursor = String::new();
    loop {
        let page: Value = http
            .get(cluster.url(&format!(
                "/api/v1/credits/ledger?limit=100&starting_after={after_cursor}"
            )))
            .bearer_auth(&owner.jwt)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = page["data"].as_array().unwrap();
        for item in items {
            if let Some(doc) = item["reason"]
                .as_str()
                .unwrap()
                .strip_prefix("document_render:")
            {
                ledger.push((doc.to_owned(), item["delta"].as_i64().unwrap()));
            }
        }
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
        after_cursor = items.last().unwrap()["cursor"].as_str().unwrap().to_owned();
    }
    let charged: BTreeSet<&String> = ledger.iter().map(|(d, _)| d).collect();
    assert_eq!(charged.len(), ledger.len(), "a document charged twice");
    assert!(ledger.iter().all(|(_, delta)| *delta == -1));
    let missing: Vec<&String> = created.keys().filter(|d| !charged.contains(d)).collect();
    assert!(missing.is_empty(), "201s not in the ledger: {missing:?}");
    // Charges no client saw a 201 for: each must be an in-doubt render's, one at most per
    // Idempotency-Key (its document carries the key as `name`).
    let extra: Vec<&String> = charged
        .iter()
        .copied()
        .filter(|d| !created.contains_key(*d))
        .collect();
    let doubtful: BTreeSet<&str> = in_doubt
        .iter()
        .map(|r| r.idempotency_key.as_str())
        .collect();
    let mut extra_keys = BTreeSet::new();
    for doc in &extra {
        let body: Value = http
            .get(cluster.url(&format!("/api/v1/public/documents/{doc}")))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let content = body["content"].as_str().unwrap();
        let idempotency_key = content.lines().next().unwrap().to_owned();
        assert!(
            doubtful.contains(idempotency_key.as_str()),
            "document {doc} charged for {idempotency_key}, which got a 201 for another document"
        );
        assert!(
            extra_keys.insert(idempotency_key.clone()),
            "{idempotency_key} charged twice"
        );
    }
    // Each instance caches balances; another instance's debits show within 1 s (docs/storage.md,
    // "Balance reads").
    let expected = CREDITS - ledger.len() as u64;
    let read_balance = || async {
        let body: Value = http
            .get(cluster.url("/api/v1/credits/balance"))
            .bearer_auth(&owner.jwt)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["balance"].as_u64().unwrap()
    };
    let start = Instant::now();
    let mut last = read_balance().await;
    while last != expected && start.elapsed() < Duration::from_millis(1_500) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        last = read_balance().await;
    }
    assert_eq!(last, expected, "the balance is not the sum of the ledger");
    eprintln!(
        "ledger: {} renders charged ({} with a 201, {} in doubt and charged once); test took {:?}",
        ledger.len(),
        created.len(),
        extra.len(),
        test_start.elapsed()
    );
}

/// The instances whose answers nginx logged for requests to `path` ending after `since` (the
/// last instance named in each line's `up=`).
fn answered_by(cluster: &Cluster, path: &str, since: Duration) -> BTreeSet<String> {
    cluster
        .access_log()
        .lines()
        .filter(|l| l.contains(&format!("\"GET {path}\"")))
        .filter(|l| {
            let ended: f64 = l.split_whitespace().nth(2).unwrap().parse().unwrap();
            ended >= since.as_secs_f64()
        })
        .map(|l| {
            let upstreams = l
                .split(" up=")
                .nth(1)
                .unwrap()
                .split(" ut=")
                .next()
                .unwrap();
            upstreams.rsplit(", ").next().unwrap().to_owned()
        })
        .collect()
}

/// `deploy/nginx/readyz-watch.sh`: an instance that accepts connections but does not answer
/// its `/readyz` (hung: SIGSTOP) leaves nginx's rotation, so requests are not sent to it to
/// wait, and comes back once it answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_watch_takes_a_hung_instance_out_of_nginx_and_puts_it_back() {
    let _serial = SERIAL.lock().await;
    let db = fresh_postgres_url();
    let cluster = Cluster::up(&db, 2, &[("REDIS_URL", "")]);
    let http = cluster.client(None);
    let (good, hung) = (
        cluster.get("INSTANCE_1_ADDR").to_owned(),
        cluster.get("INSTANCE_2_ADDR").to_owned(),
    );
    let pid: u32 = cluster.get("INSTANCE_2_PID").parse().unwrap();
    let marked = format!("server {hung} max_fails=1 fail_timeout=5s down;");
    let upstream = || fs::read_to_string(cluster.get("NGINX_UPSTREAM_FILE")).unwrap();
    let now = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let through_nginx = || async {
        for _ in 0..20 {
            let sent = Instant::now();
            let res = http.get(cluster.url("/readyz")).send().await.unwrap();
            assert_eq!(res.status(), 200);
            assert!(sent.elapsed() < Duration::from_secs(1), "a request waited");
        }
    };

    signal(pid, "-STOP");
    let stopped = Instant::now();
    let out = e2e_support::eventually_sync(
        "readyz-watch.sh to mark the hung instance down",
        Duration::from_secs(5),
        || upstream().contains(&marked).then(|| stopped.elapsed()),
    )
    .await;
    // The reload: nginx's new workers take over within moments.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let since = now();
    through_nginx().await;
    assert_eq!(
        answered_by(&cluster, "/readyz", since),
        BTreeSet::from([good.clone()]),
        "while instance 2 hangs"
    );

    signal(pid, "-CONT");
    let resumed = Instant::now();
    let back = e2e_support::eventually_sync(
        "readyz-watch.sh to put the instance back",
        Duration::from_secs(5),
        || (!upstream().contains(&marked)).then(|| resumed.elapsed()),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let since = now();
    through_nginx().await;
    assert_eq!(
        answered_by(&cluster, "/readyz", since),
        BTreeSet::from([good, hung]),
        "once instance 2 answers again"
    );
    eprintln!(
        "hung instance out of nginx's upstream after {out:?}, back {back:?} after it resumed"
    );
}

/// `psql` on `url`, one script in one transaction.
fn psql(url: &str, sql: &str) {
    require_tool("psql", "apt-get install postgresql-client");
    run(Command::new("psql").args(["-v", "ON_ERROR_STOP=1", "-q", "-1", "-d", url, "-c", sql]));
}

/// A rolling upgrade's middle: the next release has run `migrate` (simulated: an additive
/// change and its row in diesel's migration table), and this release's instances are still
/// serving. They keep serving every path; this release's `migrate --status` reports the unknown
/// migration, and a new instance of this release refuses to start on that database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_newer_release_migrates_running_instances_serve_and_old_ones_refuse_to_start() {
    let _serial = SERIAL.lock().await;
    let db = fresh_postgres_url();
    let cluster = Cluster::up(&db, 1, &[("REDIS_URL", "")]);
    let owner = create_owner(&db, 10).await;
    let http = cluster.client(None);
    let key = create_key_at(
        &http,
        &cluster.url("/api/v1/keys"),
        &owner,
        json!({"name": "before"}),
    )
    .await;

    psql(
        &db,
        "ALTER TABLE api_keys ADD COLUMN next_release_note TEXT; \
         CREATE TABLE next_release_feature (id BIGINT PRIMARY KEY); \
         INSERT INTO __diesel_schema_migrations (version) VALUES ('20991231000001');",
    );

    // The running instance: reads, a render (a debit), key changes.
    assert_eq!(get_me(&http, &cluster, &key.secret, None).await.0, 200);
    let res = http
        .post(cluster.url("/api/v1/public/documents"))
        .bearer_auth(&key.secret)
        .json(&json!({"template_id": "classic", "fields": {"name": "Ada"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "a render after the newer migration");
    let second = create_key_at(
        &http,
        &cluster.url("/api/v1/keys"),
        &owner,
        json!({"name": "after"}),
    )
    .await;
    let res = http
        .post(cluster.url(&format!("/api/v1/keys/{}/revoke", second.id)))
        .bearer_auth(&owner.jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // This release's tools see the newer migration, and refuse to start an instance on it.
    let status = Command::new(BIN)
        .args(["migrate", "--status"])
        .env("DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(
        !status.status.success(),
        "migrate --status with an unknown migration"
    );
    let report: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(report["unknown"], json!(["20991231000001"]));
    let started = Instant::now();
    let refused = Command::new(BIN)
        .arg("serve")
        .env("DATABASE_URL", &db)
        .env("JT_BIND", format!("127.0.0.1:{}", free_port()))
        .env("JT_METRICS_BIND", "off")
        .env("JWT_SECRET", JWT_SECRET)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("20991231000001"),
        "an instance of the previous release started on the migrated database ({}):\n{stderr}",
        refused.status
    );
    eprintln!(
        "refused in {:?}: {}",
        started.elapsed(),
        stderr.lines().last().unwrap_or("")
    );
}

// --- The Dockerfile --------------------------------------------------------------------------------

/// The Dockerfile's instructions, continuation lines joined, comments dropped.
fn dockerfile_instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (current.is_empty() && trimmed.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let words: Vec<&str> = current.split_whitespace().collect();
        out.push((words[0].to_ascii_uppercase(), words[1..].join(" ")));
        current.clear();
    }
    out
}

/// The package owning `path`, as dpkg knows it (with or without the merged /usr prefix).
fn owning_package(path: &str) -> String {
    let real = fs::canonicalize(path).unwrap();
    for candidate in [
        path.to_owned(),
        format!("/usr{path}"),
        real.to_string_lossy().into_owned(),
    ] {
        let out = Command::new("dpkg")
            .args(["-S", &candidate])
            .output()
            .unwrap();
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            return text.split(':').next().unwrap().trim().to_owned();
        }
    }
    panic!("no Debian package owns {path}")
}

/// The Dockerfile's steps, on the host (no Docker engine here): the stages, and only the binary
/// copied; the binary stripped as the build stage does; the runtime stage's packages (with their
/// dependencies) provide every library `ldd` lists; `migrate`, then `serve` as uid 10001 with
/// the image's environment, working directory and command: `/readyz` answers 200, the store is
/// created 0600 and owned by 10001, and SIGTERM exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dockerfile_runtime_stage_serves_as_its_non_root_user() {
    let _serial = SERIAL.lock().await;
    let instructions = dockerfile_instructions(&read("deploy/Dockerfile"));
    let stages: Vec<usize> = instructions
        .iter()
        .enumerate()
        .filter(|(_, (i, _))| i == "FROM")
        .map(|(at, _)| at)
        .collect();
    assert_eq!(stages.len(), 2, "a build stage and a runtime stage");
    let (build, runtime) = (
        &instructions[stages[0]..stages[1]],
        &instructions[stages[1]..],
    );
    assert!(build[0].1.ends_with(" AS build"), "{:?}", build[0]);
    let build_runs: Vec<&str> = build
        .iter()
        .filter(|(i, _)| i == "RUN")
        .map(|(_, r)| r.as_str())
        .collect();
    assert!(
        build_runs.iter().any(|r| r.contains(
            "cargo build --release --locked -p api-actix --bin api-actix && strip --strip-debug -o /api-actix target/release/api-actix"
        )),
        "the build stage's commands changed: {build_runs:?}"
    );
    let value = |name: &str| -> Vec<&str> {
        runtime
            .iter()
            .filter(|(i, _)| i == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    // The binary, and nothing else, comes from the build.
    assert_eq!(
        value("COPY"),
        ["--from=build /api-actix /usr/local/bin/api-actix"]
    );
    assert_eq!(value("ENTRYPOINT"), [r#"["/usr/local/bin/api-actix"]"#]);
    assert_eq!(value("CMD"), [r#"["serve"]"#]);
    let user = value("USER");
    assert_eq!(user.len(), 1);
    let uid: u32 = user[0].split(':').next().unwrap().parse().unwrap();
    assert!(
        uid >= 1000,
        "USER {} is not an unprivileged numeric id",
        user[0]
    );
    let workdir = value("WORKDIR")[0].to_owned();

    // The runtime packages (with what they depend on, and the base image's libc) provide every
    // library the stripped binary links.
    let packages: Vec<&str> = value("RUN")
        .iter()
        .find_map(|r| r.split("--no-install-recommends ").nth(1))
        .unwrap()
        .split("&&")
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let depends = run(Command::new("apt-cache")
        .args([
            "depends",
            "--recurse",
            "--no-recommends",
            "--no-suggests",
            "--no-conflicts",
            "--no-breaks",
            "--no-replaces",
            "--no-enhances",
        ])
        .args(&packages));
    let mut provided: BTreeSet<String> = String::from_utf8_lossy(&depends.stdout)
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.starts_with('<'))
        .map(|l| l.trim().to_owned())
        .collect();
    provided.extend(["libc6".to_owned(), "libgcc-s1".to_owned()]);
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("usr/local/bin/api-actix");
    fs::create_dir_all(bin.parent().unwrap()).unwrap();
    // The build stage's strip, on the binary under test.
    run(Command::new("strip")
        .args(["--strip-debug", "-o"])
        .arg(&bin)
        .arg(BIN));
    let ldd = String::from_utf8(run(Command::new("ldd").arg(&bin)).stdout).unwrap();
    assert!(
        ldd.contains("libpq.so"),
        "the binary links no libpq?\n{ldd}"
    );
    for line in ldd.lines().filter(|l| l.contains("=> /")) {
        let lib = line.split("=> ").nth(1).unwrap().split(' ').next().unwrap();
        let package = owning_package(lib);
        assert!(
            provided.contains(&package),
            "{lib} (package {package}) is not installed by the runtime stage ({packages:?})"
        );
    }

    // Run as the image does: its user, environment, working directory and command, the
    // working directory (the volume) moved into a temp dir and the port to a free one.
    let state = dir.path().join(workdir.trim_start_matches('/'));
    fs::create_dir_all(&state).unwrap();
    let root = is_root();
    if root {
        run(Command::new("chown")
            .arg(format!("{uid}:{uid}"))
            .arg(&state));
    }
    fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
    let api = free_port();
    let mut env: Vec<(String, String)> = Vec::new();
    for spec in value("ENV") {
        for pair in spec.split_whitespace() {
            let (k, v) = pair.split_once('=').unwrap();
            let v = match k {
                "JT_BIND" => format!("{}:{api}", v.rsplit_once(':').unwrap().0),
                "JT_METRICS_BIND" => format!("127.0.0.1:{}", free_port()),
                _ => v.replace(&workdir, state.to_str().unwrap()),
            };
            env.push((k.to_owned(), v));
        }
    }
    let image = |args: &[&str]| {
        let mut c = if root {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={uid}"))
                .arg("--clear-groups")
                .arg(&bin);
            c
        } else {
            Command::new(&bin)
        };
        c.args(args)
            .current_dir(&state)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)));
        c
    };
    // `docker run IMAGE migrate`, then the default command.
    let migrated = run(&mut image(&["migrate"]));
    assert!(String::from_utf8_lossy(&migrated.stdout).contains("\"applied\""));
    let log = dir.path().join("server.log");
    let mut server = Proc(
        image(&["serve"])
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    until_ready(&format!("http://127.0.0.1:{api}/readyz"), &mut server, &log).await;
    let meta = fs::metadata(state.join("jobtactics.db")).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    if root {
        assert_eq!(meta.uid(), uid, "the store belongs to the image's user");
    }
    let status = server.terminate(Duration::from_secs(20));
    assert!(status.success(), "STOPSIGNAL SIGTERM: exit {status}");
}
