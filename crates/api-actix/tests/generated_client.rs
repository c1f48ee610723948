//! A client generated from `/openapi.json` by a standard generator (PyPI's
//! `openapi-python-client`) runs the product page's journey against the real binary: a
//! dashboard token creates a key, the key reads `/me` and the balance, renders documents, lists
//! them a page at a time, the key is revoked, then 401 `revoked_api_key`. The journey is
//! `examples/generated-client/journey.py`, the snippet users read; this test asserts what it
//! printed. Every operation of the document must have its generated function (the generator
//! writes one module per operation, `api/<tag>/<snake_case operationId>.py`): the test counts
//! them and names any missing.
//!
//! Needs the private tools venv (`bash scripts/ensure-services.sh` installs the generator and
//! what its clients import); nothing is fetched at run time.

// Tests fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

const INSTALL_HINT: &str = "run `bash scripts/ensure-services.sh` (it installs openapi-python-client, httpx, attrs and python-dateutil from PyPI into the tools venv)";
const JWT_SECRET: &str = "generated-client-test-secret-at-least-32-bytes";
const EMAIL: &str = "journey@example.com";
/// `users create --credits` then `credits grant --amount`: the balance the key first reads.
const CREDITS: u64 = 20 + 100;
const RENDERS: usize = 3;
const PAGE_LIMIT: usize = 2;
/// The generated package's name (the directory it is generated into).
const PACKAGE: &str = "jobtactics_client";
const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `scripts/ensure-services.sh`'s private venv of Python tools.
fn tools_venv() -> PathBuf {
    let cache = std::env::var("XDG_CACHE_HOME")
        .unwrap_or_else(|_| format!("{}/.cache", std::env::var("HOME").unwrap()));
    Path::new(&cache).join("jobtactics/tools-venv")
}

/// The built binary with nothing of the environment but what the test gives it: the store, the
/// JWT secret, no Redis, no SMTP, no metrics listener.
fn api_actix(database_url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_api-actix"));
    command
        .env("DATABASE_URL", database_url)
        .env("JWT_SECRET", JWT_SECRET)
        .env_remove("JWT_SECRET_FILE")
        .env_remove("REDIS_URL")
        .env_remove("SMTP_URL")
        .env_remove("RUST_LOG")
        .env_remove("JT_LOG_FORMAT")
        .env("JT_METRICS_BIND", "off");
    command
}

/// The stdout of a command that must succeed.
fn run(command: &mut Command, what: &str) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {command:?}: {e}"));
    assert_success(&out, what);
    String::from_utf8(out.stdout).unwrap()
}

fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The server as a process of its own on a free port; killed and reaped when dropped.
struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(database_url: &str) -> Self {
        let mut child = api_actix(database_url)
            .arg("serve")
            .env("JT_BIND", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        let lines = Arc::clone(&log);
        // Reads the log to its end, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if line.contains("listening")
                    && let Some(addr) = line.split("addr=").nth(1)
                {
                    let addr = addr.split_whitespace().next().unwrap_or_default();
                    let _ = addr_tx.send(addr.to_owned());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let mut server = Self {
            child,
            base: String::new(),
            log,
        };
        match addr_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => server.base = format!("http://{addr}"),
            Err(_) => panic!("the server did not start:\n{}", server.log()),
        }
        server
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every operation of the document: operationId → (first tag, `METHOD /path`).
fn operations(doc: &Value) -> BTreeMap<String, (String, String)> {
    let mut ops = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("the document has paths") {
        for (method, op) in item.as_object().unwrap() {
            if !HTTP_METHODS.contains(&method.as_str()) {
                continue;
            }
            let route = format!("{} {path}", method.to_uppercase());
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{route} has no operationId"));
            let tag = op["tags"][0].as_str().unwrap_or("default").to_owned();
            assert!(
                ops.insert(id.to_owned(), (tag, route)).is_none(),
                "{id} names two operations"
            );
        }
    }
    ops
}

/// snake_case as openapi-python-client spells module names: `getOpenApiDocument` →
/// `get_open_api_document`, `secret scanning` → `secret_scanning`, `getHTTPStatus` →
/// `get_http_status`.
fn snake_case(name: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    for part in name.split(|c: char| !c.is_ascii_alphanumeric()) {
        let chars: Vec<char> = part.chars().collect();
        let mut word = String::new();
        for (i, &c) in chars.iter().enumerate() {
            let boundary = i > 0
                && c.is_ascii_uppercase()
                && (!chars[i - 1].is_ascii_uppercase()
                    || chars.get(i + 1).is_some_and(char::is_ascii_lowercase));
            if boundary && !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            word.push(c.to_ascii_lowercase());
        }
        if !word.is_empty() {
            words.push(word);
        }
    }
    words.join("_")
}

/// The generated operation modules, `<tag dir>/<module>`, each checked to define
/// `sync_detailed` (the function the journey calls).
fn generated_operations(package: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for tag in std::fs::read_dir(package.join("api")).unwrap() {
        let tag = tag.unwrap();
        if !tag.file_type().unwrap().is_dir() {
            continue;
        }
        for module in std::fs::read_dir(tag.path()).unwrap() {
            let path = module.unwrap().path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if path.extension().is_none_or(|e| e != "py") || stem == "__init__" {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            assert!(
                source.contains("def sync_detailed("),
                "{} defines no sync_detailed",
                path.display()
            );
            found.insert(format!(
                "{}/{stem}",
                tag.file_name().to_str().expect("a UTF-8 tag directory")
            ));
        }
    }
    found
}

/// The journey's JSON lines by step (a step may repeat: `render`, `list_page`).
fn steps(stdout: &str) -> BTreeMap<String, Vec<Value>> {
    let mut steps: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let value: Value = serde_json::from_str(line).unwrap_or_else(|e| {
            panic!("the journey printed a line that is not JSON ({e}): {line}")
        });
        let step = value["step"].as_str().unwrap().to_owned();
        steps.entry(step).or_default().push(value);
    }
    steps
}

fn one<'a>(steps: &'a BTreeMap<String, Vec<Value>>, step: &str) -> &'a Value {
    match steps.get(step).map(Vec::as_slice) {
        Some([only]) => only,
        other => panic!("expected one `{step}` line, got {other:?}"),
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn a_generated_python_client_runs_the_product_journey() {
    let started = Instant::now();
    let venv = tools_venv();
    let generator = venv.join("bin/openapi-python-client");
    let python = venv.join("bin/python");
    for tool in [&generator, &python] {
        assert!(
            tool.is_file(),
            "{} is missing: {INSTALL_HINT}",
            tool.display()
        );
    }
    let imports = Command::new(&python)
        .args(["-c", "import httpx, attrs, dateutil"])
        .output()
        .unwrap();
    assert!(
        imports.status.success(),
        "the tools venv lacks what generated clients import ({}): {INSTALL_HINT}",
        String::from_utf8_lossy(&imports.stderr).trim()
    );

    // Dropped in reverse order: the server is killed before its directory goes.
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("jobtactics.db").display());
    let server = Server::start(&database_url);

    // A user with credits, and a dashboard token for them, from the operator CLI.
    run(
        api_actix(&database_url).args(["users", "create", "--email", EMAIL, "--credits", "20"]),
        "users create",
    );
    run(
        api_actix(&database_url).args(["credits", "grant", "--user", EMAIL, "--amount", "100"]),
        "credits grant",
    );
    let token = run(
        api_actix(&database_url).args(["tokens", "issue", "--user", EMAIL]),
        "tokens issue",
    )
    .trim()
    .to_owned();

    // The document, as a client's developer fetches it.
    let res = reqwest::get(format!("{}/openapi.json", server.base))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200, "GET /openapi.json");
    let text = res.text().await.unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let spec = dir.path().join("openapi.json");
    std::fs::write(&spec, &text).unwrap();

    // Generate. `--fail-on-warning`: a schema or an operation the generator skips fails here
    // with its message. The venv's bin on PATH gives it the ruff it formats the code with.
    let package = dir.path().join(PACKAGE);
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let generation = Command::new(&generator)
        .args(["generate", "--meta", "none", "--fail-on-warning", "--path"])
        .arg(&spec)
        .arg("--output-path")
        .arg(&package)
        .current_dir(dir.path())
        .env("PATH", &path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}: {INSTALL_HINT}", generator.display()));
    assert_success(&generation, "openapi-python-client generate");
    let said = String::from_utf8_lossy(&generation.stdout);
    assert!(
        !said.contains("Warning"),
        "the generator warned:\n{said}{}",
        String::from_utf8_lossy(&generation.stderr)
    );

    // Every operation of the document has its generated module, and nothing else is generated.
    let ops = operations(&doc);
    let generated = generated_operations(&package);
    let expected: BTreeMap<String, &str> = ops
        .iter()
        .map(|(id, (tag, _))| {
            (
                format!("{}/{}", snake_case(tag), snake_case(id)),
                id.as_str(),
            )
        })
        .collect();
    let missing: Vec<String> = expected
        .iter()
        .filter(|(module, _)| !generated.contains(*module))
        .map(|(module, id)| format!("{id} ({}): api/{module}.py", ops[*id].1))
        .collect();
    let extra: Vec<&String> = generated
        .iter()
        .filter(|m| !expected.contains_key(*m))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "the document has {} operations, the client {} modules; missing: {missing:#?}; \
         not in the document: {extra:#?}",
        ops.len(),
        generated.len()
    );
    assert_eq!(generated.len(), ops.len());
    eprintln!(
        "{} operations in /openapi.json, {} generated operation modules",
        ops.len(),
        generated.len()
    );

    // The journey, with the generated package importable.
    let journey = Command::new(&python)
        .arg(repo().join("examples/generated-client/journey.py"))
        .env("PYTHONPATH", dir.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("BASE_URL", &server.base)
        .env("TOKEN", &token)
        .env("RENDERS", RENDERS.to_string())
        .env("PAGE_LIMIT", PAGE_LIMIT.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&journey.stdout).into_owned();
    assert!(
        journey.status.success(),
        "the journey failed ({}):\n{stdout}\n{}\nserver log:\n{}",
        journey.status,
        String::from_utf8_lossy(&journey.stderr),
        server.log()
    );
    let steps = steps(&stdout);

    let created = one(&steps, "create_key");
    assert_eq!(created["status"], 201, "{created}");
    assert_eq!(created["key_status"], "active", "{created}");
    assert_eq!(created["key_matches_preview"], true, "{created}");
    let key_id = created["id"].as_str().unwrap();
    assert!(key_id.starts_with("key_"), "{created}");

    let me = one(&steps, "me");
    assert_eq!(me["status"], 200, "{me}");
    assert_eq!(me["key_id"], key_id, "{me}");
    assert!(me["user_id"].as_str().unwrap().starts_with("usr_"), "{me}");

    let balance = one(&steps, "balance");
    assert_eq!(balance["status"], 200, "{balance}");
    assert_eq!(balance["balance"], CREDITS, "{balance}");

    let renders = &steps["render"];
    assert_eq!(renders.len(), RENDERS, "{renders:?}");
    let mut rendered = Vec::new();
    for (n, render) in renders.iter().enumerate() {
        assert_eq!(render["status"], 201, "{render}");
        assert_eq!(render["charged"], 1, "{render}");
        assert_eq!(render["balance"], CREDITS - n as u64 - 1, "{render}");
        rendered.push(render["id"].as_str().unwrap().to_owned());
    }
    let after = one(&steps, "balance_after");
    assert_eq!(after["balance"], CREDITS - RENDERS as u64, "{after}");
    let document = one(&steps, "get_document");
    assert_eq!(document["status"], 200, "{document}");
    assert_eq!(document["id"], rendered[0].as_str(), "{document}");

    // Pages of at most PAGE_LIMIT, newest first, `has_more` on all but the last, every
    // document once.
    let pages = &steps["list_page"];
    assert_eq!(pages.len(), RENDERS.div_ceil(PAGE_LIMIT), "{pages:?}");
    let mut listed = Vec::new();
    for (n, page) in pages.iter().enumerate() {
        let ids = strings(&page["ids"]);
        assert!(!ids.is_empty() && ids.len() <= PAGE_LIMIT, "{page}");
        assert_eq!(page["has_more"], n + 1 < pages.len(), "{page}");
        listed.extend(ids);
    }
    let newest_first: Vec<String> = rendered.iter().rev().cloned().collect();
    assert_eq!(listed, newest_first, "the pages, in order");

    let revoke = one(&steps, "revoke");
    assert_eq!(revoke["status"], 200, "{revoke}");
    assert_eq!(revoke["key_status"], "revoked", "{revoke}");
    let refused = one(&steps, "after_revoke");
    assert_eq!(refused["status"], 401, "{refused}");
    assert_eq!(refused["error_type"], "revoked_api_key", "{refused}");
    assert_eq!(
        refused["www_authenticate"], "Bearer realm=\"jobtactics\", error=\"invalid_token\"",
        "{refused}"
    );

    drop(server);
    eprintln!("generated client journey: {:.1?}", started.elapsed());
}

#[test]
fn module_names_follow_the_generator() {
    for (name, module) in [
        ("getOpenApiDocument", "get_open_api_document"),
        (
            "receiveSecretScanningReport",
            "receive_secret_scanning_report",
        ),
        ("secret scanning", "secret_scanning"),
        ("dashboard page", "dashboard_page"),
        ("getHTTPStatus", "get_http_status"),
        ("getV2Thing", "get_v2_thing"),
        ("public", "public"),
    ] {
        assert_eq!(snake_case(name), module, "{name}");
    }
}
