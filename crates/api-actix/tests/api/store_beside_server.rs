//! The embedded store shared by processes: the server under render load, with the operator CLI
//! and a `sqlite3` reader opening the same file beside it. Nothing but SQLite closes a
//! descriptor of the database's files (docs/storage.md), so SQLite's locks hold: the server
//! holds a lock on the database file for as long as it serves, nobody deletes the WAL under it,
//! every 201 is on disk after a clean stop and after `kill -9`, and the file passes
//! `pragma integrity_check`.
//!
//! Only the server and the commands it runs beside open the file while it serves: a connection
//! of this test process would hold a lock of its own and hide a server that lost its locks.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Client;
use serde_json::{Value, json};

use adapters_postgres::testing::posix_locks_held;

use crate::helpers::{Backend, Database, binary, spawn_server_process, stdout_of, unique};

const RENDER: &str = "/api/v1/public/documents";
/// Users rendering at once: each charge of another user dirties pages of its own, so the WAL
/// grows fast, as under the load that first showed the server losing its locks.
const USERS: usize = 8;
const RENDERS_IN_FLIGHT: usize = 16;

/// One run of the binary against the test's database, with the server's JWT secret.
fn api_actix(url: &str, secret: &str, args: &[&str]) -> Output {
    binary(url, secret)
        .args(args)
        .output()
        .expect("run api-actix")
}

/// `sqlite3 FILE SQL`, as an operator would run it; fails loudly when `sqlite3` is missing.
fn sqlite3(file: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(file)
        .arg(sql)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run sqlite3 ({e}): install it with `apt-get install sqlite3`")
        });
    stdout_of(&out, &format!("sqlite3 {sql}"))
}

/// What a watcher of the serving process saw.
#[derive(Debug, Default)]
struct Watched {
    samples: u64,
    /// Samples in which the server held no lock on the database file.
    unlocked: u64,
    /// How the WAL went missing or was replaced while the server ran.
    wal_lost: Vec<String>,
    /// The server's descriptors of deleted database files.
    deleted: HashSet<String>,
}

/// Samples, until stopped, the server's POSIX locks on the database file (`/proc/locks`), the
/// WAL's inode, and the server's descriptors (`/proc/PID/fd`). Reads only by path: it never
/// opens the database's files.
struct Watcher {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Watched>,
}

impl Watcher {
    fn start(pid: u32, db: &Path) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let inode = std::fs::metadata(db).expect("the database file").ino();
        let wal = PathBuf::from(format!("{}-wal", db.display()));
        let name = db.file_name().unwrap().to_string_lossy().into_owned();
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut seen = Watched::default();
                let mut wal_inode = None;
                while !stop.load(Ordering::Relaxed) {
                    seen.samples += 1;
                    if posix_locks_held(pid, inode) == 0 {
                        seen.unlocked += 1;
                    }
                    match (std::fs::metadata(&wal).map(|m| m.ino()), wal_inode) {
                        (Ok(now), None) => wal_inode = Some(now),
                        (Ok(now), Some(first)) if now != first => {
                            seen.wal_lost
                                .push(format!("replaced: inode {first} → {now}"));
                            wal_inode = Some(now);
                        }
                        (Err(_), Some(first)) => {
                            seen.wal_lost.push(format!("deleted (inode {first})"));
                            wal_inode = None;
                        }
                        _ => {}
                    }
                    seen.deleted.extend(deleted_descriptors(pid, &name));
                    std::thread::sleep(Duration::from_millis(2));
                }
                seen
            })
        };
        Self { stop, thread }
    }

    fn stop(self) -> Watched {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// The server's descriptors that point at a deleted file named after the database.
fn deleted_descriptors(pid: u32, name: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .map(|target| target.display().to_string())
        .filter(|target| target.contains(name) && target.ends_with("(deleted)"))
        .collect()
}

/// Renders, `RENDERS_IN_FLIGHT` at a time across the users' keys, until `stop`; the ids of the
/// documents whose 201 arrived whole, and the other answers' statuses.
async fn render_until(
    client: Client,
    base: String,
    keys: Arc<Vec<String>>,
    stop: Arc<AtomicBool>,
) -> (Vec<String>, Vec<u16>) {
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..RENDERS_IN_FLIGHT)
        .map(|worker| {
            let (client, base, keys, stop) =
                (client.clone(), base.clone(), keys.clone(), stop.clone());
            let (acknowledged, refused) = (acknowledged.clone(), refused.clone());
            tokio::spawn(async move {
                let mut n = worker;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let sent = client
                        .post(format!("{base}{RENDER}"))
                        .bearer_auth(&keys[n % keys.len()])
                        .json(&json!({ "template_id": "classic", "fields": { "name": "Ada" } }))
                        .send()
                        .await;
                    // A connection cut by kill -9 acknowledged nothing.
                    let Ok(res) = sent else { continue };
                    let status = res.status().as_u16();
                    match res.json::<Value>().await {
                        Ok(body) if status == 201 => acknowledged
                            .lock()
                            .unwrap()
                            .push(body["id"].as_str().unwrap().to_owned()),
                        Ok(_) => refused.lock().unwrap().push(status),
                        Err(_) => {}
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let refused = refused.lock().unwrap().clone();
    (acknowledged, refused)
}

/// The users the renders charge: created by the CLI, each with a key made over HTTP.
async fn users_with_keys(url: &str, secret: &str, base: &str, client: &Client) -> Vec<String> {
    let mut keys = Vec::new();
    for n in 0..USERS {
        let email = format!("{}@example.com", unique(&format!("beside{n}-")));
        let (url2, secret2, email2) = (url.to_owned(), secret.to_owned(), email.clone());
        let token = tokio::task::spawn_blocking(move || {
            let created = api_actix(
                &url2,
                &secret2,
                &[
                    "users",
                    "create",
                    "--email",
                    &email2,
                    "--credits",
                    "1000000",
                ],
            );
            stdout_of(&created, "users create");
            let token = api_actix(&url2, &secret2, &["tokens", "issue", "--user", &email2]);
            stdout_of(&token, "tokens issue").trim().to_owned()
        })
        .await
        .unwrap();
        let res = client
            .post(format!("{base}/api/v1/keys"))
            .bearer_auth(&token)
            .json(&json!({ "name": "beside" }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 201);
        let created: Value = res.json().await.unwrap();
        keys.push(created["key"].as_str().unwrap().to_owned());
    }
    keys
}

/// What the operator commands beside the server wrote: a user created, and one granted credits.
struct OperatorWrites {
    created: String,
    granted: String,
}

/// Every documented operator command that opens the store, and a `sqlite3` reader, run against
/// the file while the server serves.
fn operator_commands_beside(url: &str, secret: &str, file: &Path) -> OperatorWrites {
    let created = format!("{}@example.com", unique("cli-created-"));
    let out = api_actix(url, secret, &["users", "create", "--email", &created]);
    stdout_of(&out, "users create");
    let granted = format!("{}@example.com", unique("cli-granted-"));
    stdout_of(
        &api_actix(url, secret, &["users", "create", "--email", &granted]),
        "users create",
    );
    let out = api_actix(
        url,
        secret,
        &["credits", "grant", "--user", &granted, "--amount", "5"],
    );
    assert_eq!(
        serde_json::from_str::<Value>(stdout_of(&out, "credits grant").trim()).unwrap(),
        json!({ "balance": 5 })
    );
    stdout_of(
        &api_actix(url, secret, &["keys", "list", "--user", &granted]),
        "keys list",
    );
    stdout_of(
        &api_actix(url, secret, &["migrate", "--status"]),
        "migrate --status",
    );
    sqlite3(file, "SELECT count(*) FROM documents");
    OperatorWrites { created, granted }
}

/// One round: renders, the operator commands beside them, more renders, then the server stops
/// (`signal`); what the watcher saw while it served, and the acknowledged documents.
async fn serve_a_round(
    url: &str,
    secret: &str,
    file: &Path,
    keys: Option<Vec<String>>,
    signal: &str,
) -> (Watched, Vec<String>, OperatorWrites, Vec<String>) {
    let (base, mut child) = spawn_server_process(url, secret).await;
    let client = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let keys = match keys {
        Some(keys) => keys,
        None => users_with_keys(url, secret, &base, &client).await,
    };
    let watcher = Watcher::start(child.id(), file);
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(render_until(
        client,
        base,
        Arc::new(keys.clone()),
        stop.clone(),
    ));

    tokio::time::sleep(Duration::from_secs(4)).await;
    let (url2, secret2, file2) = (url.to_owned(), secret.to_owned(), file.to_owned());
    let writes =
        tokio::task::spawn_blocking(move || operator_commands_beside(&url2, &secret2, &file2))
            .await
            .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let (watched, (acknowledged, refused)) = if signal == "KILL" {
        // Killed while renders are in flight; the watcher stops first, as the server dies.
        let watched = watcher.stop();
        child.kill().unwrap();
        child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        (watched, load.await.unwrap())
    } else {
        // Watched a little longer after the load: the checkpoints that follow it included.
        stop.store(true, Ordering::Relaxed);
        let rendered = load.await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let watched = watcher.stop();
        terminate(&mut child);
        (watched, rendered)
    };
    assert!(
        refused.iter().all(|&status| status < 500),
        "renders answered {refused:?}"
    );
    (watched, acknowledged, writes, keys)
}

fn terminate(child: &mut Child) {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "the server exited with {status}");
}

/// The ids of the documents on disk, and those of the renders the ledger debited.
fn documents_and_debits(file: &Path) -> (HashSet<String>, HashSet<String>) {
    let ids = |sql| -> HashSet<String> { sqlite3(file, sql).lines().map(str::to_owned).collect() };
    (
        ids("SELECT id FROM documents"),
        ids("SELECT substr(reason, 17) FROM credit_ledger WHERE reason LIKE 'document_render:%'"),
    )
}

/// How many users' balances are not the sum of their ledger entries.
fn unbalanced_users(file: &Path) -> String {
    sqlite3(
        file,
        "SELECT count(*) FROM users u WHERE u.balance != \
         (SELECT coalesce(sum(delta), 0) FROM credit_ledger l WHERE l.user_id = u.id)",
    )
    .trim()
    .to_owned()
}

/// After the server stopped: the watcher saw it locked and its WAL whole, every acknowledged
/// render is on disk as a document and a debit, every balance is the sum of its ledger, what
/// the CLI wrote is there, and the file is intact.
fn assert_nothing_lost(
    round: &str,
    file: &Path,
    watched: &Watched,
    acknowledged: &[String],
    writes: &OperatorWrites,
) {
    assert!(watched.samples > 100, "{round}: {watched:?}");
    assert_eq!(
        watched.unlocked, 0,
        "{round}: the server held no lock on the database file in {} of {} samples",
        watched.unlocked, watched.samples
    );
    assert!(
        watched.wal_lost.is_empty(),
        "{round}: the WAL went under the running server: {:?}",
        watched.wal_lost
    );
    assert!(
        watched.deleted.is_empty(),
        "{round}: the server wrote into deleted files: {:?}",
        watched.deleted
    );
    assert!(
        acknowledged.len() > 100,
        "{round}: only {} renders were acknowledged",
        acknowledged.len()
    );

    assert_eq!(
        sqlite3(file, "PRAGMA integrity_check").trim(),
        "ok",
        "{round}"
    );
    let (documents, debits) = documents_and_debits(file);
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !documents.contains(*id) || !debits.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{round}: {} of {} acknowledged renders are not on disk, e.g. {:?}",
        lost.len(),
        acknowledged.len(),
        lost.first()
    );
    assert_eq!(documents, debits, "{round}: one debit per document");
    assert_eq!(
        unbalanced_users(file),
        "0",
        "{round}: balance != sum(ledger)"
    );
    let created = sqlite3(
        file,
        &format!(
            "SELECT count(*) FROM users WHERE email = '{}'",
            writes.created
        ),
    );
    assert_eq!(created.trim(), "1", "{round}: the CLI's user is gone");
    let granted = sqlite3(
        file,
        &format!(
            "SELECT balance FROM users WHERE email = '{}'",
            writes.granted
        ),
    );
    assert_eq!(granted.trim(), "5", "{round}: the CLI's grant is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_and_sqlite3_beside_a_serving_server_lose_nothing() {
    let db = Database::fresh(Backend::Sqlite).await;
    let file = PathBuf::from(db.url.strip_prefix("sqlite://").unwrap());
    let secret = unique("beside-secret-padding-to-32-bytes-");

    let (watched, acknowledged, writes, keys) =
        serve_a_round(&db.url, &secret, &file, None, "TERM").await;
    assert_nothing_lost("clean stop", &file, &watched, &acknowledged, &writes);

    let (watched, acknowledged, writes, _) =
        serve_a_round(&db.url, &secret, &file, Some(keys), "KILL").await;
    assert_nothing_lost("kill -9", &file, &watched, &acknowledged, &writes);
}

/// `backup --to` beside a server under render load: the copy is consistent (intact, every
/// balance the sum of its ledger, one document per debit), and a server started on it after a
/// restore (the copy put in place with the server stopped) serves its balances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_render_load_is_consistent_and_restores() {
    let db = Database::fresh(Backend::Sqlite).await;
    let file = PathBuf::from(db.url.strip_prefix("sqlite://").unwrap());
    let backup = file.with_file_name("backup.db");
    let secret = unique("backup-secret-padding-to-32-bytes-");
    let (base, mut child) = spawn_server_process(&db.url, &secret).await;
    let client = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let keys = users_with_keys(&db.url, &secret, &base, &client).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(render_until(
        client.clone(),
        base.clone(),
        Arc::new(keys.clone()),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (url, s, to) = (db.url.clone(), secret.clone(), backup.clone());
    let out = tokio::task::spawn_blocking(move || {
        api_actix(&url, &s, &["backup", "--to", to.to_str().unwrap()])
    })
    .await
    .unwrap();
    let printed: Value = serde_json::from_str(stdout_of(&out, "backup").trim()).unwrap();
    assert!(printed["bytes"].as_u64().unwrap() > 0, "{printed}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let (acknowledged, _) = load.await.unwrap();
    terminate(&mut child);

    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the copy is the owner's only");
    assert_eq!(sqlite3(&backup, "PRAGMA integrity_check").trim(), "ok");
    assert_eq!(
        unbalanced_users(&backup),
        "0",
        "balance != sum(ledger) in the copy"
    );
    let (documents, debits) = documents_and_debits(&backup);
    assert_eq!(documents, debits, "one document per debit in the copy");
    assert!(
        !documents.is_empty() && documents.len() < acknowledged.len(),
        "taken mid-load: {} documents of {} renders",
        documents.len(),
        acknowledged.len()
    );

    // Restore: the server stopped, the copy in place of the database.
    for stale in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{stale}", file.display()));
    }
    std::fs::copy(&backup, &file).unwrap();
    let (base, mut child) = spawn_server_process(&db.url, &secret).await;
    let get = async |path: &str| -> Value {
        let res = client
            .get(format!("{base}{path}"))
            .bearer_auth(&keys[0])
            .send()
            .await
            .unwrap();
        res.json().await.unwrap()
    };
    let me = get("/api/v1/public/me").await;
    let user = me["user_id"].as_str().unwrap();
    let balance = get("/api/v1/public/credits/balance").await;
    let in_copy = sqlite3(
        &backup,
        &format!("SELECT balance FROM users WHERE id = '{user}'"),
    );
    assert_eq!(balance["balance"].to_string(), in_copy.trim());
    terminate(&mut child);
}
