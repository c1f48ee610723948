//! The dashboard in a real browser: Debian's chromium, headless, driven through chromedriver
//! (started here on a free port) with fantoccini. The real server, the embedded SQLite store and
//! a real SMTP server (aiosmtpd) for the sign-in email.
//!
//! Needs `chromium`, `chromium-driver` and `python3-aiosmtpd` (Debian), which
//! `scripts/ensure-services.sh` installs. With `JT_UPDATE_SCREENSHOTS=1` the screenshots in
//! `docs/dashboard/` are rewritten; otherwise they go to a temporary directory.

// Tests fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod e2e_support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use adapters_postgres::testing::fresh_sqlite_url;
use adapters_smtp::testing::{TestSmtpServer, free_port};
use e2e_support::{
    Instance, Owner, client, config, create_key, create_owner, eventually, key_object,
};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use keys_domain::ports::{Clock as _, KeyStore as _, SystemClock};
use keys_domain::usage::UsageDelta;
use keys_domain::{KeyId, UserId};
use serde_json::{Value, json};

const PUBLIC_URL: &str = "https://dashboard.jobtactics.test";
const STEP: Duration = Duration::from_secs(10);

/// chromedriver on a free port, killed on drop, after it has ended every browser session it
/// started: a test that panics before `Client::close` leaves no chromium behind (fantoccini
/// closes a dropped session from a task of the runtime, which a panicking test tears down first).
struct Chromedriver {
    child: Child,
    port: u16,
    sessions: Mutex<Vec<String>>,
}

impl Chromedriver {
    fn start() -> Self {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start chromedriver ({e}); install Debian's chromium and \
                     chromium-driver: `bash scripts/ensure-services.sh`"
                )
            });
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < STEP,
                "chromedriver did not listen on 127.0.0.1:{port} within {STEP:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            port,
            sessions: Mutex::new(Vec::new()),
        }
    }

    /// A headless chromium session; `mobile_width` emulates a phone screen that wide.
    async fn browser(&self, mobile_width: Option<u32>) -> Client {
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("chromium is not installed: `bash scripts/ensure-services.sh`");
        let mut options = json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000", "--hide-scrollbars", "--force-device-scale-factor=1",
                "--lang=en-GB",
            ],
        });
        if let Some(width) = mobile_width {
            options["mobileEmulation"] =
                json!({ "deviceMetrics": { "width": width, "height": 800, "pixelRatio": 2 } });
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(caps);
        let client = builder
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| panic!("chromedriver would not start chromium: {e}"));
        if let Ok(Some(id)) = client.session_id().await {
            self.sessions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(id);
        }
        client
    }

    /// `DELETE /session/{id}`, blocking: chromedriver quits that chromium. A session already
    /// closed answers 404, which is fine.
    fn end_session(&self, id: &str) {
        let Ok(mut conn) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return;
        };
        let _ = conn.set_read_timeout(Some(STEP));
        let _ = conn.set_write_timeout(Some(STEP));
        let request = format!(
            "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n",
            self.port
        );
        if conn.write_all(request.as_bytes()).is_ok() {
            let mut answer = Vec::new();
            let _ = conn.read_to_end(&mut answer);
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let sessions = std::mem::take(
            self.sessions
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for id in sessions {
            self.end_session(&id);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Evaluates `expr` in the page.
async fn js(b: &Client, expr: &str) -> Value {
    b.execute(&format!("return ({expr});"), vec![])
        .await
        .unwrap()
}

/// Polls `expr` until it is `true`.
async fn until(b: &Client, what: &str, expr: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if js(b, expr).await == Value::Bool(true) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?} waiting for: {what} ({expr}); banner: {}",
            js(b, "document.getElementById('banner').textContent").await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn text(b: &Client, css: &str) -> String {
    b.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn press(b: &Client, key: Key) {
    let k: char = key.into();
    let actions = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: k })
        .then(KeyAction::Up { value: k });
    b.perform_actions(actions).await.unwrap();
}

fn screenshot_dir() -> PathBuf {
    if std::env::var_os("JT_UPDATE_SCREENSHOTS").is_some() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/dashboard")
    } else {
        std::env::temp_dir().join(format!("jt-dashboard-shots-{}", std::process::id()))
    }
}

async fn save_screenshot(b: &Client, name: &str) {
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let png = b.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(dir.join(name), png).unwrap();
}

/// Signs the tab in with a dashboard token (as the landing page would store it).
async fn sign_in_with_token(b: &Client, base: &str, jwt: &str) {
    b.goto(&format!("{base}/app/sign-in")).await.unwrap();
    b.execute(
        "sessionStorage.setItem('jt.dashboard.token', arguments[0]); \
         sessionStorage.setItem('jt.dashboard.expires_at', new Date(Date.now() + 3600e3).toISOString());",
        vec![json!(jwt)],
    )
    .await
    .unwrap();
    b.goto(&format!("{base}/app/keys")).await.unwrap();
    until(
        b,
        "the keys page",
        "!document.getElementById('view-keys').hidden",
        STEP,
    )
    .await;
}

async fn balance_status(http: &reqwest::Client, app: &Instance, key: &str) -> (u16, Value) {
    let res = http
        .get(app.url("/api/v1/public/credits/balance"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

/// Sign in by the emailed link, create a key and read it from the dialog, use it, watch its
/// usage appear, revoke it (401 within 1 s), credits, a used link refused, 402 as a sentence,
/// sign-out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_from_sign_in_to_sign_out() {
    let (_dir, url) = fresh_sqlite_url();
    let smtp = TestSmtpServer::start();
    let mut cfg = config(&url);
    cfg.smtp_url = Some(smtp.url());
    cfg.public_url = PUBLIC_URL.to_owned();
    cfg.tuning.alert_poll_interval = Duration::from_millis(100);
    let app = Instance::start(&cfg).await;
    let http = client();
    let owner = create_owner(&url, 120).await;
    // Two older keys with a day of history, so the list and its charts have something to show,
    // and a purchase and 21 renders, so the credit history has more than one page (20 a page).
    let store = api_actix::wiring::open_store(&url).unwrap();
    let now = SystemClock.now();
    for (name, shape) in [
        ("nightly-export", [0u64, 0, 3, 41, 118, 36, 4, 0]),
        ("staging", [2, 5, 0, 0, 1, 7, 3, 0]),
    ] {
        let k = create_key(&http, &app, &owner, name).await;
        let history: Vec<UsageDelta> = (1..=24u64)
            .map(|hours_ago| UsageDelta {
                key_id: KeyId::new(k.id.clone()),
                user_id: UserId::new(owner.id.clone()),
                count: shape[usize::try_from(hours_ago).unwrap() % shape.len()],
                last_used_at: now.minus(Duration::from_secs(hours_ago * 3600)),
                clients: Vec::new(),
            })
            .filter(|d| d.count > 0)
            .collect();
        store.record_usage(&history).await.unwrap();
        if name == "nightly-export" {
            let res = http
                .post(app.url("/api/v1/public/templates/executive/purchase"))
                .bearer_auth(&k.secret)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            for _ in 0..21 {
                let res = http
                    .post(app.url("/api/v1/public/documents"))
                    .bearer_auth(&k.secret)
                    .json(&json!({ "template_id": "classic", "fields": { "name": "Ada" } }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 201);
            }
        }
    }

    let driver = Chromedriver::start();
    let b = driver.browser(None).await;

    // Sign-in form → "check your mail".
    b.goto(&app.url("/app")).await.unwrap();
    until(
        &b,
        "the sign-in form",
        "!document.getElementById('view-sign-in').hidden",
        STEP,
    )
    .await;
    assert_eq!(js(&b, "location.pathname").await, "/app/sign-in");
    b.find(Locator::Id("sign-in-email"))
        .await
        .unwrap()
        .send_keys(&owner.email)
        .await
        .unwrap();
    b.find(Locator::Id("sign-in-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &b,
        "check your mail",
        "!document.getElementById('sign-in-sent').hidden",
        STEP,
    )
    .await;
    assert!(text(&b, "#sign-in-sent").await.contains("Check your mail"));

    // The link from the email: `{JT_PUBLIC_URL}/app/sign-in#token=…`.
    let mail = eventually("the sign-in email", STEP, || async {
        smtp.messages()
            .into_iter()
            .find(|m| m.to.contains(&owner.email))
    })
    .await;
    let prefix = format!("{PUBLIC_URL}/app/sign-in#token=");
    let at = mail.body.find(&prefix).expect("the link in the email") + prefix.len();
    let token: String = mail.body[at..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    assert!(token.len() >= 22);
    let link = app.url(&format!("/app/sign-in#token={token}"));

    // The landing exchanges the token, clears the fragment and opens "API keys".
    b.goto(&link).await.unwrap();
    until(
        &b,
        "the keys page",
        "!document.getElementById('view-keys').hidden",
        STEP,
    )
    .await;
    assert_eq!(
        js(&b, "location.pathname + location.hash").await,
        "/app/keys"
    );
    // The stylesheet applied under the policy, everything came from this origin, and from
    // here on any policy violation (an inline style or script the page tried) is recorded.
    assert_eq!(
        js(
            &b,
            "getComputedStyle(document.querySelector('.top')).display"
        )
        .await,
        "flex"
    );
    assert_eq!(
        js(&b, "performance.getEntriesByType('resource').every(e => e.name.startsWith(location.origin))").await,
        true
    );
    b.execute(
        "window.cspViolations = []; document.addEventListener('securitypolicyviolation', \
         e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));",
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(
        js(&b, "document.querySelectorAll('#key-list > li').length").await,
        2
    );

    // Create a key; the dialog shows it once.
    b.find(Locator::Id("new-key-name"))
        .await
        .unwrap()
        .send_keys("browser-bot")
        .await
        .unwrap();
    b.find(Locator::Id("create-key"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &b,
        "the new-key dialog",
        "document.getElementById('created-dialog').open",
        STEP,
    )
    .await;
    let key = text(&b, "#created-key").await;
    assert!(key.starts_with("jt_sk_"), "{key}");
    assert!(
        text(&b, "#created-dialog")
            .await
            .contains("cannot be shown again")
    );
    assert_eq!(js(&b, "document.activeElement.id").await, "copy-key");
    until(
        &b,
        "the list behind the dialog",
        "document.querySelectorAll('#key-list > li').length === 3",
        STEP,
    )
    .await;
    save_screenshot(&b, "create-dialog.png").await;
    b.find(Locator::Id("close-created"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &b,
        "the dialog closed",
        "!document.getElementById('created-dialog').open",
        STEP,
    )
    .await;
    let html = js(&b, "document.documentElement.outerHTML").await;
    assert!(
        !html.as_str().unwrap().contains(&key),
        "the key stays in the page after closing"
    );

    // The key works, and its use shows up in the page without a reload.
    let (status, body) = balance_status(&http, &app, &key).await;
    assert_eq!((status, &body), (200, &json!({ "balance": 49 })));
    let used = Instant::now();
    let row = "[...document.querySelectorAll('#key-list > li')].find(li => li.querySelector('.key-name').textContent === 'browser-bot')";
    let shown = until(
        &b,
        "usage of the new key",
        &format!(
            "{row}.querySelector('.usage-count').textContent === '1' && \
             {row}.querySelector('.last-used').textContent !== 'Never' && \
             [...{row}.querySelectorAll('rect.bar')].some(r => r.dataset.count === '1')"
        ),
        Duration::from_secs(10),
    )
    .await;
    eprintln!(
        "usage shown in the page {:?} after the request",
        used.elapsed()
    );
    let _ = shown;
    save_screenshot(&b, "keys.png").await;

    // Events: the page says so politely while the endpoint is missing, never raw JSON.
    b.execute(
        &format!("{row}.querySelector('button.events').click()"),
        vec![],
    )
    .await
    .unwrap();
    until(
        &b,
        "the activity panel",
        &format!("{row}.querySelector('.events-panel').textContent.length > 0 && !{row}.querySelector('.events-panel').textContent.includes('Loading')"),
        STEP,
    )
    .await;
    let events = js(
        &b,
        &format!("{row}.querySelector('.events-panel').textContent"),
    )
    .await;
    assert!(!events.as_str().unwrap().contains('{'), "{events}");

    // Rotate "staging" keeping the old key for an hour: a new key, shown once; the old one
    // is expiring.
    let staging = "[...document.querySelectorAll('#key-list > li')].find(li => li.querySelector('.key-name').textContent === 'staging')";
    b.execute(
        &format!("{staging}.querySelector('button.rotate').click()"),
        vec![],
    )
    .await
    .unwrap();
    until(
        &b,
        "the rotate dialog",
        "document.getElementById('rotate-dialog').open",
        STEP,
    )
    .await;
    assert_eq!(
        js(&b, "document.getElementById('rotate-name').value").await,
        "staging-2"
    );
    b.execute(
        "document.getElementById('rotate-grace').value = '3600'",
        vec![],
    )
    .await
    .unwrap();
    b.find(Locator::Id("rotate-yes"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &b,
        "the rotated key's dialog",
        "document.getElementById('created-dialog').open",
        STEP,
    )
    .await;
    assert!(text(&b, "#created-key").await.starts_with("jt_sk_"));
    b.find(Locator::Id("close-created"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &b,
        "the old key expiring, the new one listed",
        &format!("{staging}.querySelector('.status').textContent.startsWith('expiring') && document.querySelectorAll('#key-list > li').length === 4"),
        STEP,
    )
    .await;

    // Revoke after the confirmation: the API refuses the key within 1 s.
    b.execute(
        &format!("{row}.querySelector('button.revoke').click()"),
        vec![],
    )
    .await
    .unwrap();
    until(
        &b,
        "the confirmation",
        "document.getElementById('confirm-dialog').open",
        STEP,
    )
    .await;
    assert!(text(&b, "#confirm-text").await.contains("browser-bot"));
    b.find(Locator::Id("confirm-yes"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let confirmed = Instant::now();
    let refused = eventually(
        "401 for the revoked key",
        Duration::from_secs(5),
        || async {
            (balance_status(&http, &app, &key).await.0 == 401).then(|| confirmed.elapsed())
        },
    )
    .await;
    eprintln!("revoked key refused {refused:?} after the confirmation click");
    assert!(refused < Duration::from_secs(1), "{refused:?}");
    until(
        &b,
        "revoked in the list",
        &format!("{row}.querySelector('.status').textContent === 'revoked'"),
        STEP,
    )
    .await;

    assert_eq!(
        js(&b, "window.cspViolations.length").await,
        0,
        "{}",
        js(&b, "window.cspViolations").await
    );
    // The control: an inline style is refused and reported, so the count above means something.
    b.execute(
        "document.body.setAttribute('style', 'outline: 5px solid red')",
        vec![],
    )
    .await
    .unwrap();
    until(
        &b,
        "the inline style refused",
        "window.cspViolations.length === 1",
        STEP,
    )
    .await;
    assert_eq!(
        js(&b, "getComputedStyle(document.body).outlineStyle").await,
        "none"
    );
    b.execute("document.body.removeAttribute('style')", vec![])
        .await
        .unwrap();

    // Credits: balance, history, the top-up link.
    b.find(Locator::Id("nav-credits"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &b,
        "the balance",
        "document.getElementById('balance').textContent === '49'",
        STEP,
    )
    .await;
    until(
        &b,
        "the first ledger page",
        "document.querySelectorAll('#ledger-rows tr').length === 20",
        STEP,
    )
    .await;
    assert_eq!(
        js(&b, "document.getElementById('top-up').href").await,
        "https://app.jobtactics.io/credits"
    );
    save_screenshot(&b, "credits.png").await;
    b.find(Locator::Id("ledger-more"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &b,
        "the older entries",
        "document.querySelectorAll('#ledger-rows tr').length === 23",
        STEP,
    )
    .await;
    assert_eq!(
        js(&b, "document.getElementById('ledger-more').hidden").await,
        true
    );
    assert_eq!(
        js(&b, "document.querySelector('#ledger-rows tr:last-child').textContent.includes('Credits added')").await,
        true,
        "oldest last"
    );

    // No dashboard action can cost credits, so a 402 is shown through the page's error path.
    let banner = js(
        &b,
        "(window.jtShowApiError(402, {error: {type: 'insufficient_credits', message: 'x'}}), \
          document.getElementById('banner').textContent)",
    )
    .await;
    let banner = banner.as_str().unwrap();
    assert!(
        banner.contains("enough credits") && banner.contains("https://app.jobtactics.io/credits"),
        "{banner}"
    );
    assert!(!banner.contains('{'), "{banner}");
    for (status, want) in [
        (409, "Nothing was changed"),
        (429, "Wait 7 seconds"),
        (503, "briefly unavailable"),
    ] {
        let shown = b
            .execute(
                "window.jtShowApiError(arguments[0], {error: {type: 't', message: 'a live key with this name already exists'}}, '7'); \
                 return document.getElementById('banner').textContent;",
                vec![json!(status)],
            )
            .await
            .unwrap();
        assert!(shown.as_str().unwrap().contains(want), "{status}: {shown}");
    }

    // A used link is refused, in words, and leaves no token in the address bar.
    let jwt = js(&b, "sessionStorage.getItem('jt.dashboard.token')").await;
    b.goto(&link).await.unwrap();
    until(
        &b,
        "the refusal",
        "document.getElementById('banner').textContent.includes('expired or was already used')",
        STEP,
    )
    .await;
    assert_eq!(js(&b, "location.hash").await, "");
    assert_eq!(
        js(&b, "document.getElementById('view-sign-in').hidden").await,
        false
    );

    // Sign-out ends the token.
    b.goto(&app.url("/app/keys")).await.unwrap();
    until(
        &b,
        "the keys page",
        "!document.getElementById('view-keys').hidden",
        STEP,
    )
    .await;
    b.find(Locator::Id("sign-out"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &b,
        "signed out",
        "!document.getElementById('view-sign-in').hidden && sessionStorage.length === 0",
        STEP,
    )
    .await;
    let res = http
        .get(app.url("/api/v1/keys"))
        .bearer_auth(jwt.as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // A session ended elsewhere (here: signed out through the API) sends the page back to the
    // sign-in form at its next request, with a sentence.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fresh = adapters_jwt::JwtKeys::new(e2e_support::JWT_SECRET.as_bytes())
        .issue(
            &UserId::new(owner.id.clone()),
            SystemClock.now(),
            Duration::from_secs(600),
        )
        .unwrap();
    sign_in_with_token(&b, &app.base, &fresh).await;
    let res = http
        .post(app.url("/api/v1/auth/sign-out"))
        .bearer_auth(&fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    until(
        &b,
        "back to sign-in after the 401",
        "!document.getElementById('view-sign-in').hidden && \
         document.getElementById('banner').textContent.includes('Your session has ended')",
        STEP,
    )
    .await;

    b.close().await.unwrap();
    app.stop().await;
}

/// Tab and Enter alone create a key and close its dialog; on a 375-pixel screen nothing
/// scrolls sideways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyboard_only_and_a_375_pixel_screen() {
    let (_dir, url) = fresh_sqlite_url();
    let app = Instance::start(&config(&url)).await;
    let http = client();
    let owner = create_owner(&url, 5).await;
    create_key(
        &http,
        &app,
        &owner,
        "a-rather-long-key-name-for-a-narrow-phone-screen-0123456789",
    )
    .await;

    let driver = Chromedriver::start();
    let b = driver.browser(Some(375)).await;
    sign_in_with_token(&b, &app.base, &owner.jwt).await;
    assert_eq!(js(&b, "window.innerWidth").await, 375);
    let fits = "document.documentElement.scrollWidth <= document.documentElement.clientWidth";
    until(
        &b,
        "the key list",
        "document.querySelectorAll('#key-list > li').length === 1",
        STEP,
    )
    .await;
    assert_eq!(
        js(&b, fits).await,
        true,
        "keys page scrolls sideways at 375 px"
    );
    save_screenshot(&b, "keys-375px.png").await;

    // Keyboard only: Tab to the name field, type, Enter.
    let mut tabs = 0;
    while js(&b, "document.activeElement.id").await != "new-key-name" {
        press(&b, Key::Tab).await;
        tabs += 1;
        assert!(tabs < 20, "the name field is not reachable with Tab");
    }
    let outline = js(&b, "getComputedStyle(document.activeElement).outlineStyle").await;
    assert_ne!(outline, "none", "focus is visible");
    b.active_element()
        .await
        .unwrap()
        .send_keys("keyboard-made")
        .await
        .unwrap();
    press(&b, Key::Enter).await;
    until(
        &b,
        "the new-key dialog",
        "document.getElementById('created-dialog').open",
        STEP,
    )
    .await;
    assert_eq!(
        js(&b, "document.activeElement.id").await,
        "copy-key",
        "focus moves into the dialog"
    );
    assert!(text(&b, "#created-key").await.starts_with("jt_sk_"));
    assert_eq!(
        js(&b, fits).await,
        true,
        "the dialog scrolls sideways at 375 px"
    );
    press(&b, Key::Tab).await;
    assert_eq!(js(&b, "document.activeElement.id").await, "close-created");
    press(&b, Key::Enter).await;
    until(
        &b,
        "the dialog closed",
        "!document.getElementById('created-dialog').open",
        STEP,
    )
    .await;
    assert_eq!(
        js(&b, "document.activeElement.id").await,
        "create-key",
        "focus returns to the button"
    );
    until(
        &b,
        "the new key listed",
        "document.querySelectorAll('#key-list > li').length === 2",
        STEP,
    )
    .await;

    b.goto(&app.url("/app/credits")).await.unwrap();
    until(
        &b,
        "the balance",
        "document.getElementById('balance').textContent === '5'",
        STEP,
    )
    .await;
    assert_eq!(
        js(&b, fits).await,
        true,
        "credits page scrolls sideways at 375 px"
    );

    b.close().await.unwrap();
    app.stop().await;
}

/// A one-time link for `user`, stored as the sign-in use case would store it.
async fn link_for(store: &adapters_postgres::DbStore, user: &str) -> String {
    use keys_domain::ports::{LinkEmail, NewSignInLink, SignInLinkStore as _};
    use keys_domain::random::OsRandom;
    use keys_domain::sign_in_link::SignInToken;
    use keys_domain::{AlertId, Email, SignInLinkId};
    let token = SignInToken::generate(&OsRandom);
    let now = SystemClock.now();
    let stored = store
        .issue(
            NewSignInLink {
                id: SignInLinkId::generate(&OsRandom),
                user_id: UserId::new(user.to_owned()),
                token_hash: token.hash(),
                created_at: now,
                expires_at: now.plus(Duration::from_secs(15 * 60)),
            },
            LinkEmail {
                id: AlertId::generate(&OsRandom),
                email: keys_domain::alert_email::OutgoingEmail {
                    to: Email::parse("link@example.com").unwrap(),
                    subject: "test".into(),
                    body: "test".into(),
                },
            },
            now.minus(Duration::from_secs(3600)),
            100,
        )
        .await
        .unwrap();
    assert!(stored);
    token.expose().to_owned()
}

/// Opens a fresh link for `user` in the tab, then waits until the view `view` shows.
async fn open_link(
    b: &Client,
    app: &Instance,
    store: &adapters_postgres::DbStore,
    user: &str,
    view: &str,
) {
    let link = link_for(store, user).await;
    b.goto(&app.url(&format!("/app/sign-in#token={link}")))
        .await
        .unwrap();
    let shown = format!("!document.getElementById('view-{view}').hidden");
    until(b, view, &shown, STEP).await;
}

async fn click_then_wait_for_keys(b: &Client, button: &str) {
    b.find(Locator::Id(button))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        b,
        "the keys page",
        "!document.getElementById('view-keys').hidden",
        STEP,
    )
    .await;
}

/// Signed in as A, a tab that opens B's link asks "Sign in as B?" and keeps A's session until
/// the person says yes (login CSRF: a planted link must not switch accounts silently).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_for_another_account_asks_before_switching() {
    let (_dir, url) = fresh_sqlite_url();
    let app = Instance::start(&config(&url)).await;
    let a = create_owner(&url, 5).await;
    let b_owner = create_owner(&url, 5).await;
    let store = api_actix::wiring::open_store(&url).unwrap();
    let driver = Chromedriver::start();
    let b = driver.browser(None).await;
    let session_email = "sessionStorage.getItem('jt.dashboard.email')";
    let session_token = "sessionStorage.getItem('jt.dashboard.token')";

    // Signed in as A by A's own link: no question.
    open_link(&b, &app, &store, &a.id, "keys").await;
    assert_eq!(js(&b, session_email).await, json!(a.email));
    let a_token = js(&b, session_token).await;

    // B's link in the same tab: asked, and A's session stays until the answer.
    open_link(&b, &app, &store, &b_owner.id, "switch").await;
    assert_eq!(text(&b, "#switch-to").await, b_owner.email);
    assert_eq!(text(&b, "#switch-from").await, a.email);
    assert_eq!(
        js(&b, session_token).await,
        a_token,
        "switched before the answer"
    );
    click_then_wait_for_keys(&b, "switch-no").await;
    assert_eq!(js(&b, session_email).await, json!(a.email), "stayed as A");
    assert_eq!(js(&b, session_token).await, a_token);

    // Another link of B's, and a yes: now B.
    open_link(&b, &app, &store, &b_owner.id, "switch").await;
    click_then_wait_for_keys(&b, "switch-yes").await;
    assert_eq!(js(&b, session_email).await, json!(b_owner.email));
    assert_ne!(js(&b, session_token).await, a_token);

    b.close().await.unwrap();
    app.stop().await;
}

// ------------------------------------------------------------------ key controls (section 11)

/// The card of the key named `name` in the list (a page expression; `undefined` while absent).
fn card(name: &str) -> String {
    format!(
        "[...document.querySelectorAll('#key-list > li')].find(li => li.querySelector('.key-name').textContent === {})",
        json!(name)
    )
}

/// The text of `css` inside the card of `name` (`undefined` while the card is absent).
async fn card_text(b: &Client, name: &str, css: &str) -> Value {
    js(
        b,
        &format!("{}?.querySelector({}).textContent", card(name), json!(css)),
    )
    .await
}

/// From here on, every policy violation the page causes is recorded in `window.cspViolations`.
async fn watch_csp(b: &Client) {
    b.execute(
        "window.cspViolations = []; document.addEventListener('securitypolicyviolation', \
         e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));",
        vec![],
    )
    .await
    .unwrap();
}

async fn click(b: &Client, css: &str) {
    b.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// `GET /api/v1/keys` of `owner`: the key objects.
async fn listed_keys(http: &reqwest::Client, app: &Instance, owner: &Owner) -> Vec<Value> {
    let res = http
        .get(app.url("/api/v1/keys?limit=100"))
        .bearer_auth(&owner.jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["data"].as_array().unwrap().clone()
}

/// `GET /api/v1/keys/{id}/events` of `owner`, newest first.
async fn key_events(http: &reqwest::Client, app: &Instance, owner: &Owner, id: &str) -> Vec<Value> {
    let res = http
        .get(app.url(&format!("/api/v1/keys/{id}/events")))
        .bearer_auth(&owner.jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["data"].as_array().unwrap().clone()
}

/// The create form with an expiry in 30 days, one network, a limit of 5 and `documents:write`
/// alone: the API has exactly those controls, the card shows them, and the month's spend
/// against the limit follows a charge made with the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_created_with_controls_has_them_and_its_card_shows_them() {
    let (_dir, url) = fresh_sqlite_url();
    let app = Instance::start(&config(&url)).await;
    let http = client();
    let owner = create_owner(&url, 5).await;
    let driver = Chromedriver::start();
    let b = driver.browser(None).await;
    sign_in_with_token(&b, &app.base, &owner.jwt).await;
    watch_csp(&b).await;

    b.find(Locator::Id("new-key-name"))
        .await
        .unwrap()
        .send_keys("controlled")
        .await
        .unwrap();
    click(&b, "#new-key-controls > summary").await;
    until(
        &b,
        "the controls",
        "document.getElementById('new-key-controls').open",
        STEP,
    )
    .await;
    // A date input takes typed digits in the locale's order; its value is set as a script would.
    let day = (time::OffsetDateTime::now_utc() + time::Duration::days(30)).date();
    b.execute(
        "document.getElementById('new-key-expiry').value = arguments[0]",
        vec![json!(day.to_string())],
    )
    .await
    .unwrap();
    assert_eq!(
        js(&b, "document.getElementById('new-key-expiry').value").await,
        json!(day.to_string()),
        "the date input took the day"
    );
    // The test's requests come from 127.0.0.1: inside the one allowed network.
    b.find(Locator::Id("new-key-networks"))
        .await
        .unwrap()
        .send_keys("127.0.0.0/8")
        .await
        .unwrap();
    b.find(Locator::Id("new-key-limit"))
        .await
        .unwrap()
        .send_keys("5")
        .await
        .unwrap();
    for scope in ["credits:read", "documents:read", "templates:purchase"] {
        click(&b, &format!("#new-key-scopes input[value='{scope}']")).await;
    }
    assert_eq!(
        js(
            &b,
            "[...document.querySelectorAll('#new-key-scopes input:checked')].map(c => c.value)"
        )
        .await,
        json!(["documents:write"])
    );
    b.find(Locator::Id("create-key"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &b,
        "the new-key dialog",
        "document.getElementById('created-dialog').open",
        STEP,
    )
    .await;
    let secret = text(&b, "#created-key").await;
    assert!(secret.starts_with("jt_sk_"));
    b.find(Locator::Id("close-created"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The form is back to its defaults for the next key.
    assert_eq!(
        js(
            &b,
            "document.getElementById('new-key-expiry').value + document.getElementById('new-key-networks').value + \
             document.getElementById('new-key-limit').value + document.querySelectorAll('#new-key-scopes input:checked').length"
        )
        .await,
        json!("4")
    );

    // Over HTTP: exactly those controls.
    let listed = listed_keys(&http, &app, &owner).await;
    assert_eq!(listed.len(), 1);
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    let key = key_object(&http, &app, &owner, &id).await;
    assert_eq!(key["name"], "controlled");
    assert_eq!(key["expires_at"], json!(format!("{day}T23:59:59.000Z")));
    assert_eq!(key["allowed_networks"], json!(["127.0.0.0/8"]));
    assert_eq!(key["monthly_credit_limit"], json!(5));
    assert_eq!(key["scopes"], json!(["documents:write"]));
    assert_eq!(key["spent_this_month"], json!(0));
    assert_eq!(key["status"], "active");

    // The card shows them.
    until(
        &b,
        "the limit on the card",
        &format!(
            "{}?.querySelector('.credit-limit').textContent === '0 of 5 credits this month'",
            card("controlled")
        ),
        STEP,
    )
    .await;
    let expires = card_text(&b, "controlled", ".expires-at").await;
    let expires = expires.as_str().unwrap();
    assert!(
        expires.contains(&day.year().to_string())
            && expires.contains(&day.day().to_string())
            && (expires.contains("23:59") || expires.contains("11:59"))
            && expires.ends_with(" UTC"),
        "{expires}"
    );
    assert_eq!(
        card_text(&b, "controlled", ".networks").await,
        "127.0.0.0/8"
    );
    assert_eq!(
        card_text(&b, "controlled", ".scopes").await,
        "documents:write"
    );
    assert_eq!(
        js(
            &b,
            &format!(
                "{}.querySelector('button.edit-controls').hidden",
                card("controlled")
            )
        )
        .await,
        false
    );

    // A charge with the key shows as the month's spend.
    let res = http
        .post(app.url("/api/v1/public/documents"))
        .bearer_auth(&secret)
        .json(&json!({ "template_id": "classic", "fields": { "name": "Ada" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let (status, body) = balance_status(&http, &app, &secret).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (403, Some("insufficient_scope")),
        "no credits:read"
    );
    until(
        &b,
        "the spend on the card",
        &format!(
            "{}.querySelector('.credit-limit').textContent === '1 of 5 credits this month'",
            card("controlled")
        ),
        STEP,
    )
    .await;
    save_screenshot(&b, "key-controls.png").await;
    assert_eq!(
        js(&b, "window.cspViolations.length").await,
        0,
        "{}",
        js(&b, "window.cspViolations").await
    );

    b.close().await.unwrap();
    app.stop().await;
}

/// "Edit controls" on a card: the form holds the key's controls; removing the limit and adding
/// `credits:read` sends only those two fields, the API has them, focus returns to the card, and
/// the activity says "Controls changed" in words. A revoked key offers no edit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_cards_controls_changes_only_what_was_changed() {
    let (_dir, url) = fresh_sqlite_url();
    let app = Instance::start(&config(&url)).await;
    let http = client();
    let owner = create_owner(&url, 5).await;
    let res = http
        .post(app.url("/api/v1/keys"))
        .bearer_auth(&owner.jwt)
        .json(&json!({
            "name": "editable",
            "allowed_networks": ["198.51.100.0/24"],
            "monthly_credit_limit": 5,
            "scopes": ["documents:write"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let gone = create_key(&http, &app, &owner, "gone").await;
    let res = http
        .post(app.url(&format!("/api/v1/keys/{}/revoke", gone.id)))
        .bearer_auth(&owner.jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let driver = Chromedriver::start();
    let b = driver.browser(None).await;
    sign_in_with_token(&b, &app.base, &owner.jwt).await;
    watch_csp(&b).await;
    let editable = card("editable");
    until(
        &b,
        "the card with its spend",
        &format!(
            "{editable}?.querySelector('.credit-limit').textContent === '0 of 5 credits this month'"
        ),
        STEP,
    )
    .await;
    assert_eq!(
        js(
            &b,
            &format!(
                "{}.querySelector('button.edit-controls').hidden",
                card("gone")
            )
        )
        .await,
        true,
        "a revoked key offers no edit"
    );

    // The form holds the current controls.
    b.execute(
        &format!("{editable}.querySelector('button.edit-controls').click()"),
        vec![],
    )
    .await
    .unwrap();
    until(
        &b,
        "the controls dialog",
        "document.getElementById('controls-dialog').open",
        STEP,
    )
    .await;
    assert_eq!(js(&b, "document.activeElement.id").await, "edit-expiry");
    assert!(text(&b, "#controls-title").await.contains("editable"));
    assert_eq!(
        js(
            &b,
            "['edit-expiry', 'edit-networks', 'edit-limit'].map(id => document.getElementById(id).value)"
        )
        .await,
        json!(["", "198.51.100.0/24", "5"])
    );
    assert_eq!(
        js(
            &b,
            "[...document.querySelectorAll('#edit-scopes input:checked')].map(c => c.value)"
        )
        .await,
        json!(["documents:write"])
    );

    save_screenshot(&b, "key-controls-dialog.png").await;

    // Remove the limit, add credits:read, save.
    b.find(Locator::Id("edit-limit"))
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    click(&b, "#edit-scopes input[value='credits:read']").await;
    click(&b, "#controls-save").await;
    until(
        &b,
        "the dialog closed, saved",
        "!document.getElementById('controls-dialog').open && \
         document.getElementById('banner').textContent.includes('are saved')",
        STEP,
    )
    .await;

    let key = key_object(&http, &app, &owner, &id).await;
    assert_eq!(key["monthly_credit_limit"], Value::Null);
    assert_eq!(key["scopes"], json!(["credits:read", "documents:write"]));
    assert_eq!(key["allowed_networks"], json!(["198.51.100.0/24"]));
    assert_eq!(key["expires_at"], Value::Null);
    let events = key_events(&http, &app, &owner, &id).await;
    assert_eq!(events[0]["type"], "updated");
    assert_eq!(
        events[0]["detail"]["changed"],
        json!(["monthly_credit_limit", "scopes"]),
        "only what changed was sent"
    );
    let updates = events.iter().filter(|e| e["type"] == "updated").count();
    assert_eq!(updates, 1);

    // Focus is back on the card's button; the card shows the new controls.
    until(
        &b,
        "focus back on the card",
        &format!("document.activeElement === {editable}.querySelector('button.edit-controls')"),
        STEP,
    )
    .await;
    until(
        &b,
        "the new controls on the card",
        &format!(
            "{editable}.querySelector('.credit-limit').textContent === 'None' && \
             {editable}.querySelector('.scopes').textContent === 'credits:read, documents:write'"
        ),
        STEP,
    )
    .await;

    // Saving an untouched form sends nothing.
    b.execute(
        &format!("{editable}.querySelector('button.edit-controls').click()"),
        vec![],
    )
    .await
    .unwrap();
    until(
        &b,
        "the controls dialog again",
        "document.getElementById('controls-dialog').open && document.getElementById('edit-limit').value === ''",
        STEP,
    )
    .await;
    click(&b, "#controls-save").await;
    until(
        &b,
        "nothing changed",
        "!document.getElementById('controls-dialog').open && \
         document.getElementById('banner').textContent.includes('Nothing was changed')",
        STEP,
    )
    .await;
    assert_eq!(
        key_events(&http, &app, &owner, &id)
            .await
            .iter()
            .filter(|e| e["type"] == "updated")
            .count(),
        1
    );

    // The activity, in words.
    b.execute(
        &format!("{editable}.querySelector('button.events').click()"),
        vec![],
    )
    .await
    .unwrap();
    until(
        &b,
        "the activity",
        &format!("{editable}.querySelector('.events-panel ol.events') !== null"),
        STEP,
    )
    .await;
    let first = js(
        &b,
        &format!("{editable}.querySelector('.events-panel ol.events > li').textContent"),
    )
    .await;
    let first = first.as_str().unwrap();
    assert!(
        first.contains("Controls changed by you: monthly credit limit, scopes"),
        "{first}"
    );
    assert!(
        first.contains("monthly credit limit removed")
            && first.contains("scopes: credits:read, documents:write"),
        "{first}"
    );
    assert!(
        !first.contains('{') && !first.contains("updated"),
        "{first}"
    );
    save_screenshot(&b, "key-controls-edited.png").await;
    assert_eq!(
        js(&b, "window.cspViolations.length").await,
        0,
        "{}",
        js(&b, "window.cspViolations").await
    );

    b.close().await.unwrap();
    app.stop().await;
}

/// A malformed network in the create form, on a 375-pixel screen: the server's sentence next
/// to the networks field (not a banner), no key created, nothing scrolls sideways; corrected,
/// the same form creates the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_network_in_the_create_form_is_explained_beside_the_field() {
    let (_dir, url) = fresh_sqlite_url();
    let app = Instance::start(&config(&url)).await;
    let http = client();
    let owner = create_owner(&url, 5).await;
    let driver = Chromedriver::start();
    let b = driver.browser(Some(375)).await;
    sign_in_with_token(&b, &app.base, &owner.jwt).await;

    b.find(Locator::Id("new-key-name"))
        .await
        .unwrap()
        .send_keys("bad-net")
        .await
        .unwrap();
    click(&b, "#new-key-controls > summary").await;
    b.find(Locator::Id("new-key-networks"))
        .await
        .unwrap()
        .send_keys("10.0.0.300/8")
        .await
        .unwrap();
    click(&b, "#create-key").await;
    until(
        &b,
        "the message beside the networks",
        "!document.getElementById('new-key-networks-error').hidden",
        STEP,
    )
    .await;
    let shown = text(&b, "#new-key-networks-error").await;

    // The server's own sentence for that list (a 400 creates nothing either).
    let res = http
        .post(app.url("/api/v1/keys"))
        .bearer_auth(&owner.jwt)
        .json(&json!({ "name": "bad-net", "allowed_networks": ["10.0.0.300/8"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["field"], "allowed_networks");
    let message = body["error"]["message"].as_str().unwrap();
    let said = message
        .strip_prefix("allowed_networks")
        .unwrap_or(message)
        .trim_end_matches('.');
    assert!(said.contains("10.0.0.300/8"), "{message}");
    assert!(
        shown.starts_with("Allowed networks") && shown.contains(said),
        "shown {shown:?}, server said {message:?}"
    );

    assert_eq!(
        js(
            &b,
            "document.getElementById('new-key-networks').getAttribute('aria-invalid')"
        )
        .await,
        "true"
    );
    assert_eq!(
        js(&b, "document.activeElement.id").await,
        "new-key-networks"
    );
    assert_eq!(
        js(&b, "document.getElementById('banner').hidden").await,
        true,
        "not a banner: {}",
        js(&b, "document.getElementById('banner').textContent").await
    );
    assert_eq!(
        js(&b, "document.getElementById('created-dialog').open").await,
        false
    );
    assert!(
        listed_keys(&http, &app, &owner).await.is_empty(),
        "nothing created"
    );
    assert_eq!(
        js(
            &b,
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
        .await,
        true,
        "the open form scrolls sideways at 375 px"
    );
    save_screenshot(&b, "key-controls-error-375px.png").await;

    // Corrected: the message goes and the key is created with the network.
    let networks = b.find(Locator::Id("new-key-networks")).await.unwrap();
    networks.clear().await.unwrap();
    networks.send_keys("10.0.0.0/8").await.unwrap();
    click(&b, "#create-key").await;
    until(
        &b,
        "the new-key dialog",
        "document.getElementById('created-dialog').open",
        STEP,
    )
    .await;
    assert_eq!(
        js(
            &b,
            "document.getElementById('new-key-networks-error').hidden"
        )
        .await,
        true
    );
    let listed = listed_keys(&http, &app, &owner).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["allowed_networks"], json!(["10.0.0.0/8"]));
    assert_eq!(
        listed[0]["scopes"],
        json!([
            "credits:read",
            "documents:read",
            "documents:write",
            "templates:purchase"
        ])
    );

    b.close().await.unwrap();
    app.stop().await;
}

// ------------------------------------------------------------------ where keys are used (section 10)

/// A configuration whose requests may say where they come from (`X-Forwarded-For` from the test,
/// on 127.0.0.1, is trusted), and whose keys are established at once (a second network signals).
fn behind_a_proxy(url: &str) -> api_actix::config::Config {
    let mut cfg = config(url);
    cfg.trusted_proxies = "127.0.0.1/32".parse().unwrap();
    cfg.key_signals.established_after = Duration::ZERO;
    cfg
}

/// `GET /api/v1/public/me` with `secret` from the address `from`, as `user_agent`, with an
/// `Origin` header (as a browser sends it) when `origin`.
async fn use_key_from(
    http: &reqwest::Client,
    app: &Instance,
    secret: &str,
    from: &str,
    user_agent: &str,
    origin: bool,
) {
    let mut req = http
        .get(app.url("/api/v1/public/me"))
        .bearer_auth(secret)
        .header("X-Forwarded-For", from)
        .header("User-Agent", user_agent);
    if origin {
        req = req.header("Origin", "https://shop.example");
    }
    assert_eq!(req.send().await.unwrap().status(), 200);
}

/// The clients a card lists inside `css`, each as `[network, user agent, "browser" badge shown,
/// "Last seen …" line]`.
async fn listed_clients(b: &Client, name: &str, css: &str) -> Vec<Value> {
    js(
        b,
        &format!(
            "[...{}.querySelectorAll({})].map(li => [li.querySelector('.network').textContent, \
             li.querySelector('.agent').textContent, li.querySelector('.badge')?.textContent === 'browser', \
             li.querySelector('.client-seen').textContent])",
            card(name),
            json!(format!("{css} .client"))
        ),
    )
    .await
    .as_array()
    .unwrap()
    .clone()
}

/// A key used from two networks, the later one by a browser (an `Origin` header): "Used from"
/// lists both, most recent first, the browser one marked and explained; a key never used says
/// "Not used yet"; nothing is read until a card's "Used from" is opened; the activity names the
/// signals in words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn used_from_lists_each_client_most_recent_first_and_marks_the_browser() {
    let (_dir, url) = fresh_sqlite_url();
    let app = Instance::start(&behind_a_proxy(&url)).await;
    let http = client();
    let owner = create_owner(&url, 5).await;
    let used = create_key(&http, &app, &owner, "two-networks").await;
    create_key(&http, &app, &owner, "unused").await;
    for _ in 0..3 {
        use_key_from(
            &http,
            &app,
            &used.secret,
            "192.0.2.10",
            "python-requests/2.31.0",
            false,
        )
        .await;
    }
    // The first network is recorded before the second one arrives (so that one is new).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    use_key_from(
        &http,
        &app,
        &used.secret,
        "203.0.113.9",
        "Mozilla/5.0 (X11; Linux x86_64)",
        true,
    )
    .await;

    let driver = Chromedriver::start();
    let b = driver.browser(None).await;
    sign_in_with_token(&b, &app.base, &owner.jwt).await;
    watch_csp(&b).await;
    let two = card("two-networks");
    let unused = card("unused");
    until(
        &b,
        "both cards with their charts",
        &format!("{two}?.querySelector('rect.bar') != null && {unused}?.querySelector('rect.bar') != null"),
        STEP,
    )
    .await;
    let clients_read =
        "performance.getEntriesByType('resource').filter(e => e.name.includes('/clients')).length";
    assert_eq!(
        js(&b, clients_read).await,
        0,
        "clients read for a closed card"
    );
    assert_eq!(
        js(
            &b,
            &format!("{two}.querySelector('.after-rotation').hidden && {unused}.querySelector('.after-rotation').hidden")
        )
        .await,
        true
    );

    // Opened: both clients, most recently seen first, the browser one marked.
    b.execute(
        &format!("{two}.querySelector('details.clients > summary').click()"),
        vec![],
    )
    .await
    .unwrap();
    until(
        &b,
        "two clients in Used from",
        &format!("{two}.querySelectorAll('.clients-body .client').length === 2"),
        STEP,
    )
    .await;
    let listed = listed_clients(&b, "two-networks", ".clients-body").await;
    assert_eq!(listed[0][0], "203.0.113.0/24");
    assert_eq!(listed[0][1], "Mozilla/5.0");
    assert_eq!(listed[0][2], true, "the browser one is marked");
    assert_eq!(listed[1][0], "192.0.2.0/24");
    assert_eq!(listed[1][1], "python-requests/2.31.0");
    assert_eq!(listed[1][2], false);
    for (item, requests) in listed.iter().zip(["1 request", "3 requests"]) {
        let seen = item[3].as_str().unwrap();
        assert!(
            seen.starts_with("Last seen ") && seen.ends_with(&format!(", {requests}")),
            "{seen}"
        );
    }
    assert_eq!(
        listed[0][3].as_str().unwrap(),
        "Last seen just now, 1 request"
    );
    let warning = js(
        &b,
        &format!("{two}.querySelector('.clients-body .browser-warning')?.textContent"),
    )
    .await;
    assert!(
        warning
            .as_str()
            .is_some_and(|w| w.contains("server-side use only")),
        "{warning}"
    );
    assert_eq!(
        js(&b, clients_read).await,
        1,
        "one read, for the opened card"
    );

    // A key never used.
    b.execute(
        &format!("{unused}.querySelector('details.clients > summary').click()"),
        vec![],
    )
    .await
    .unwrap();
    until(
        &b,
        "the empty state",
        &format!("{unused}.querySelector('.clients-body').textContent === 'Not used yet.'"),
        STEP,
    )
    .await;
    b.execute(&format!("{two}.scrollIntoView()"), vec![])
        .await
        .unwrap();
    save_screenshot(&b, "used-from.png").await;

    // The signals in the activity, in words.
    eventually("the two signal events", STEP, || async {
        let events = key_events(&http, &app, &owner, &used.id).await;
        let has = |t: &str| events.iter().any(|e| e["type"] == t);
        (has("new_network") && has("browser_use")).then_some(())
    })
    .await;
    b.execute(
        &format!("{two}.querySelector('button.events').click()"),
        vec![],
    )
    .await
    .unwrap();
    until(
        &b,
        "the activity",
        &format!("{two}.querySelector('.events-panel ol.events') !== null"),
        STEP,
    )
    .await;
    let activity = js(
        &b,
        &format!("[...{two}.querySelectorAll('.events-panel ol.events > li .what')].map(w => w.parentNode.textContent)"),
    )
    .await;
    let lines: Vec<&str> = activity
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        lines.iter().any(|l| l.ends_with(
            "Used from a web browser — 203.0.113.0/24, Mozilla/5.0, 1 request. Keys are for server-side use only."
        )),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.ends_with(
            "Used from a new network — 203.0.113.0/24, Mozilla/5.0; 1 other network in the 30 days before"
        )),
        "{lines:#?}"
    );
    assert!(
        lines.iter().all(|l| !l.contains('{') && !l.contains('_')),
        "{lines:#?}"
    );
    assert_eq!(
        js(&b, "window.cspViolations.length").await,
        0,
        "{}",
        js(&b, "window.cspViolations").await
    );

    b.close().await.unwrap();
    app.stop().await;
}

/// A key rotated with an hour's grace, used before the rotation from one network and after it
/// from another: its card lists only the second "since the rotation", says it was just used
/// (not "quiet"), "Used from" has both, nothing scrolls sideways on a 375-pixel screen, and
/// "Revoke now" revokes it after the usual confirmation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_key_shows_who_used_it_since_the_rotation_and_revokes_now() {
    let (_dir, url) = fresh_sqlite_url();
    let app = Instance::start(&behind_a_proxy(&url)).await;
    let http = client();
    let owner = create_owner(&url, 5).await;
    let old = create_key(&http, &app, &owner, "payments").await;
    use_key_from(&http, &app, &old.secret, "192.0.2.10", "cron/1.0", false).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let res = http
        .post(app.url(&format!("/api/v1/keys/{}/rotate", old.id)))
        .bearer_auth(&owner.jwt)
        .json(&json!({ "name": "payments-2", "grace_period_seconds": 3600 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    tokio::time::sleep(Duration::from_millis(50)).await;
    use_key_from(
        &http,
        &app,
        &old.secret,
        "198.51.100.7",
        "python-requests/2.31.0",
        false,
    )
    .await;

    let driver = Chromedriver::start();
    let b = driver.browser(Some(375)).await;
    sign_in_with_token(&b, &app.base, &owner.jwt).await;
    watch_csp(&b).await;
    let payments = card("payments");
    until(
        &b,
        // The clients list and the key list (its `last_used_at`) are read at different
        // moments: wait for both to show the use since the rotation.
        "the consumer since the rotation",
        &format!(
            "{payments} != null && !{payments}.querySelector('.after-rotation').hidden && \
             {payments}.querySelectorAll('.rotation-clients .client').length === 1 && \
             {payments}.querySelector('.rotation-last-used').textContent === 'Last used just now.'"
        ),
        STEP,
    )
    .await;
    let since = listed_clients(&b, "payments", ".rotation-clients").await;
    assert_eq!(since[0][0], "198.51.100.0/24");
    assert_eq!(since[0][1], "python-requests/2.31.0");
    assert_eq!(since[0][2], false);
    let section = card_text(&b, "payments", ".after-rotation").await;
    let section = section.as_str().unwrap();
    assert!(
        section.contains("Since the rotation") && section.contains("Used since the rotation by:"),
        "{section}"
    );
    assert!(
        !section.contains("192.0.2.0/24"),
        "a client of before the rotation: {section}"
    );
    assert_eq!(
        card_text(&b, "payments", ".rotation-last-used").await,
        "Last used just now."
    );
    assert_eq!(
        js(
            &b,
            &format!("{payments}.querySelector('.quiet-for').hidden")
        )
        .await,
        true,
        "just used: not quiet"
    );
    assert_eq!(
        js(
            &b,
            &format!(
                "{}.querySelector('.after-rotation').hidden",
                card("payments-2")
            )
        )
        .await,
        true,
        "the new key is not expiring"
    );
    // "Used from" has both clients; on a 375-pixel screen nothing scrolls sideways.
    b.execute(
        &format!("{payments}.querySelector('details.clients > summary').click()"),
        vec![],
    )
    .await
    .unwrap();
    until(
        &b,
        "both clients in Used from",
        &format!("{payments}.querySelectorAll('.clients-body .client').length === 2"),
        STEP,
    )
    .await;
    let all = listed_clients(&b, "payments", ".clients-body").await;
    assert_eq!(
        (&all[0][0], &all[1][0]),
        (&json!("198.51.100.0/24"), &json!("192.0.2.0/24"))
    );
    assert_eq!(
        js(
            &b,
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
        .await,
        true,
        "the expiring card scrolls sideways at 375 px"
    );
    b.execute(&format!("{payments}.scrollIntoView()"), vec![])
        .await
        .unwrap();
    save_screenshot(&b, "expiring-key.png").await;

    // "Revoke now", confirmed: revoked.
    b.execute(
        &format!("{payments}.querySelector('button.revoke-now').click()"),
        vec![],
    )
    .await
    .unwrap();
    until(
        &b,
        "the confirmation",
        "document.getElementById('confirm-dialog').open",
        STEP,
    )
    .await;
    assert_eq!(js(&b, "document.activeElement.id").await, "confirm-no");
    let asked = text(&b, "#confirm-text").await;
    assert!(
        asked.contains("\"payments\"") && asked.contains("at once instead of"),
        "{asked}"
    );
    click(&b, "#confirm-yes").await;
    let revoked = eventually("the key revoked", STEP, || async {
        let key = key_object(&http, &app, &owner, &old.id).await;
        (key["status"] == "revoked").then_some(key)
    })
    .await;
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    until(
        &b,
        "the card revoked, focus on it",
        &format!(
            "{payments}.querySelector('.status').textContent.startsWith('revoked') && \
             {payments}.querySelector('.after-rotation').hidden && \
             document.activeElement === {payments}.querySelector('button.events')"
        ),
        STEP,
    )
    .await;
    let (status, _) = balance_status(&http, &app, &old.secret).await;
    assert_eq!(status, 401);
    assert_eq!(
        js(&b, "window.cspViolations.length").await,
        0,
        "{}",
        js(&b, "window.cspViolations").await
    );

    b.close().await.unwrap();
    app.stop().await;
}

/// A key of `owner` created `created_ago` and rotated `rotated_ago` with an hour's grace, written
/// to the store as the rotation would have written it then (minutes cannot pass in a test; the
/// page takes the rotation's time from the `rotated` event).
async fn rotated_earlier(
    store: &adapters_postgres::DbStore,
    owner: &Owner,
    name: &str,
    created_ago: Duration,
    rotated_ago: Duration,
) -> KeyId {
    use keys_domain::api_key::KeyLimits;
    use keys_domain::key_controls::KeyControls;
    use keys_domain::ports::Rotation;
    use keys_domain::random::OsRandom;
    use keys_domain::{ApiKeySecret, KeyName, KeyState, NewApiKey};
    let now = SystemClock.now();
    let user = UserId::new(owner.id.clone());
    let new_key = |name: &str, at| {
        let secret = ApiKeySecret::generate(&OsRandom);
        NewApiKey {
            id: KeyId::generate(&OsRandom),
            user_id: user.clone(),
            name: KeyName::parse(name).unwrap(),
            preview: secret.preview(),
            hash: secret.hash(),
            created_at: at,
            controls: KeyControls::default(),
        }
    };
    let created_at = now.minus(created_ago);
    let old = new_key(name, created_at);
    let (old_id, old_hash) = (old.id.clone(), old.hash);
    store
        .insert(old, KeyLimits::default(), created_at)
        .await
        .unwrap();
    let rotated_at = now.minus(rotated_ago);
    store
        .rotate(
            &user,
            Rotation {
                old_id: old_id.clone(),
                old_hash,
                expected: KeyState::Active,
                old_to: KeyState::Expiring {
                    revokes_at: rotated_at.plus(Duration::from_secs(3600)),
                },
                new_key: new_key(&format!("{name}-2"), rotated_at),
                limits: KeyLimits::default(),
                now: rotated_at,
            },
        )
        .await
        .unwrap();
    old_id
}

/// One request with key `id` of `owner`, `ago` in the past, from `network`, recorded as the
/// usage flush records it.
async fn used_earlier(
    store: &adapters_postgres::DbStore,
    owner: &Owner,
    id: &KeyId,
    ago: Duration,
    network: &str,
) {
    use keys_domain::key_client::{ClientNetwork, ClientUse};
    let at = SystemClock.now().minus(ago);
    store
        .record_usage(&[UsageDelta {
            key_id: id.clone(),
            user_id: UserId::new(owner.id.clone()),
            count: 1,
            last_used_at: at,
            clients: vec![ClientUse {
                network: ClientNetwork::parse(network).unwrap(),
                user_agent: "cron/1.0".into(),
                requests: 1,
                first_seen: at,
                last_seen: at,
                browser: false,
            }],
        }])
        .await
        .unwrap();
}

/// Expiring keys whose rotation was minutes ago: one not used since the rotation 25 minutes ago
/// says "no consumer has used this key for 25 minutes"; one last used 12 minutes ago (after its
/// rotation) says 12; one used 9 minutes ago and one rotated 5 minutes ago and never used say
/// nothing of the kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_key_nothing_used_for_10_minutes_says_so() {
    let (_dir, url) = fresh_sqlite_url();
    let app = Instance::start(&config(&url)).await;
    let owner = create_owner(&url, 5).await;
    let store = api_actix::wiring::open_store(&url).unwrap();
    let minutes = |n: u64| Duration::from_secs(n * 60);
    let quiet_rotation = rotated_earlier(
        &store,
        &owner,
        "quiet-since-rotation",
        minutes(120),
        minutes(25),
    )
    .await;
    used_earlier(&store, &owner, &quiet_rotation, minutes(40), "192.0.2.0/24").await;
    let quiet_use =
        rotated_earlier(&store, &owner, "quiet-since-use", minutes(120), minutes(30)).await;
    used_earlier(&store, &owner, &quiet_use, minutes(12), "198.51.100.0/24").await;
    let busy = rotated_earlier(&store, &owner, "still-used", minutes(120), minutes(30)).await;
    used_earlier(&store, &owner, &busy, minutes(9), "203.0.113.0/24").await;
    rotated_earlier(&store, &owner, "just-rotated", minutes(120), minutes(5)).await;

    let driver = Chromedriver::start();
    let b = driver.browser(None).await;
    sign_in_with_token(&b, &app.base, &owner.jwt).await;
    watch_csp(&b).await;
    until(
        &b,
        "four expiring keys with their rotation",
        "[...document.querySelectorAll('#key-list .after-rotation')].filter(s => !s.hidden).length === 4",
        STEP,
    )
    .await;
    let quiet = |name: &str| {
        format!(
            "(q => q.hidden ? null : q.textContent)({}.querySelector('.quiet-for'))",
            card(name)
        )
    };
    let says = js(&b, &quiet("quiet-since-rotation")).await;
    assert!(
        says.as_str()
            .is_some_and(|s| s.starts_with("No consumer has used this key for 25 minutes.")),
        "{says}"
    );
    assert_eq!(
        card_text(&b, "quiet-since-rotation", ".rotation-clients").await,
        "Nothing has used it since the rotation."
    );
    let last = card_text(&b, "quiet-since-rotation", ".rotation-last-used").await;
    assert_eq!(last, "Last used 40 minutes ago, before the rotation.");

    let says = js(&b, &quiet("quiet-since-use")).await;
    assert!(
        says.as_str()
            .is_some_and(|s| s.starts_with("No consumer has used this key for 12 minutes.")),
        "{says}"
    );
    let since = listed_clients(&b, "quiet-since-use", ".rotation-clients").await;
    assert_eq!(since.len(), 1);
    assert_eq!(since[0][0], "198.51.100.0/24");
    assert_eq!(since[0][3], "Last seen 12 minutes ago, 1 request");

    assert_eq!(
        js(&b, &quiet("still-used")).await,
        Value::Null,
        "used 9 minutes ago"
    );
    assert_eq!(
        js(&b, &quiet("just-rotated")).await,
        Value::Null,
        "rotated 5 minutes ago"
    );
    assert_eq!(
        card_text(&b, "just-rotated", ".rotation-last-used").await,
        "Never used."
    );
    b.execute(
        &format!("{}.scrollIntoView()", card("quiet-since-rotation")),
        vec![],
    )
    .await
    .unwrap();
    save_screenshot(&b, "expiring-quiet.png").await;
    assert_eq!(
        js(&b, "window.cspViolations.length").await,
        0,
        "{}",
        js(&b, "window.cspViolations").await
    );

    b.close().await.unwrap();
    app.stop().await;
}

/// The usage chart shows its scale beside the bars and the hours under them; the top-up link
/// and the 402 sentence follow `JT_TOP_UP_URL` (issue 35, item 5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_has_hours_and_a_scale_and_top_up_follows_the_setting() {
    const SHOP: &str = "https://shop.example.com/credits";
    let (_dir, url) = fresh_sqlite_url();
    let mut cfg = config(&url);
    cfg.top_up_url = SHOP.to_owned();
    let app = Instance::start(&cfg).await;
    let http = client();
    let owner = create_owner(&url, 5).await;
    let charted = create_key(&http, &app, &owner, "charted").await;
    // 118 requests three hours ago: the scale's top is 200, with 100 halfway.
    let store = api_actix::wiring::open_store(&url).unwrap();
    store
        .record_usage(&[UsageDelta {
            key_id: KeyId::new(charted.id.clone()),
            user_id: UserId::new(owner.id.clone()),
            count: 118,
            last_used_at: SystemClock.now().minus(Duration::from_secs(3 * 3600)),
            clients: Vec::new(),
        }])
        .await
        .unwrap();

    let driver = Chromedriver::start();
    let b = driver.browser(None).await;
    sign_in_with_token(&b, &app.base, &owner.jwt).await;
    watch_csp(&b).await;
    let row = card("charted");
    until(
        &b,
        "the chart with its busy hour",
        &format!(
            "[...({row}?.querySelectorAll('rect.bar') ?? [])].some(r => r.dataset.count === '118')"
        ),
        STEP,
    )
    .await;

    // The scale: its values top to bottom, and the busy hour's bar 118/200 of the height.
    assert_eq!(
        js(
            &b,
            &format!("[...{row}.querySelectorAll('.y-scale .y-tick')].map(t => t.dataset.value)")
        )
        .await,
        json!(["200", "100", "0"])
    );
    assert_eq!(
        js(
            &b,
            &format!("{row}.querySelector('.y-scale .y-max').textContent")
        )
        .await,
        "200"
    );
    let share = js(
        &b,
        &format!(
            "(() => {{ const svg = {row}.querySelector('svg.bars'); \
             const bar = [...svg.querySelectorAll('rect.bar')].find(r => r.dataset.count === '118'); \
             return Number(bar.getAttribute('height')) / svg.viewBox.baseVal.height; }})()"
        ),
    )
    .await;
    assert!(
        (share.as_f64().unwrap() - 118.0 / 200.0).abs() < 0.01,
        "{share}"
    );

    // The hours: a label every 6 hours, each the local time its bar starts at and standing under
    // that bar, visible; "now" at the right end.
    let labels = js(
        &b,
        &format!(
            "(() => {{ const li = {row}; const bars = [...li.querySelectorAll('rect.bar')]; \
             const cells = [...li.querySelectorAll('.x-hours > span')]; \
             return cells.map((c, i) => [c.className, c.textContent, \
               c.dataset.start ? new Date(c.dataset.start).toLocaleTimeString([], {{hour: '2-digit', minute: '2-digit'}}) : null, \
               Math.round(c.getBoundingClientRect().left - bars[i].getBoundingClientRect().left), \
               c.checkVisibility(), c.getBoundingClientRect().width]) \
               .filter(([cls]) => cls !== 'x-cell'); }})()"
        ),
    )
    .await;
    let labels = labels.as_array().unwrap();
    assert_eq!(labels.len(), 5, "{labels:?}");
    for label in &labels[..4] {
        assert_eq!(label[0], "x-cell x-tick", "{label}");
        let text = label[1].as_str().unwrap();
        assert_eq!(label[1], label[2], "the label is its bar's hour: {label}");
        assert!(text.contains(":00"), "{label}");
        // A cell is the bar's slot; the bar stands in it with a small gap on each side.
        let (offset, slot) = (label[3].as_f64().unwrap(), label[5].as_f64().unwrap());
        assert!(
            offset <= 0.0 && -offset < slot / 2.0,
            "not under its bar: {label}"
        );
        assert_eq!(label[4], true, "hidden: {label}");
    }
    assert_eq!(labels[4][0], "x-now");
    assert_eq!(labels[4][1], "now");
    assert_eq!(
        js(&b, "window.cspViolations").await,
        json!([]),
        "the chart needs no exception to the policy"
    );

    // The top-up link, and the sentence of a 402 that does not name the address itself.
    b.find(Locator::Id("nav-credits"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &b,
        "the balance",
        "document.getElementById('balance').textContent === '5'",
        STEP,
    )
    .await;
    assert_eq!(js(&b, "document.getElementById('top-up').href").await, SHOP);
    let banner = js(
        &b,
        "(window.jtShowApiError(402, {error: {type: 'insufficient_credits', message: 'x'}}), \
          document.getElementById('banner').textContent)",
    )
    .await;
    assert!(banner.as_str().unwrap().contains(SHOP), "{banner}");
    // A 402 that names one is believed.
    let banner = js(
        &b,
        "(window.jtShowApiError(402, {error: {type: 'insufficient_credits', message: 'x', \
          top_up_url: 'https://other.example.com/top-up'}}), \
          document.getElementById('banner').textContent)",
    )
    .await;
    assert!(
        banner
            .as_str()
            .unwrap()
            .contains("https://other.example.com/top-up"),
        "{banner}"
    );

    b.close().await.unwrap();
    app.stop().await;
}
