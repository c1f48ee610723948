//! Two instances of the service over HTTP, sharing one PostgreSQL database and one Redis
//! (issue 6): the rate limit and the per-minute limits (failed authentications, dashboard
//! writes) are shared, a revocation, rotation or sign-out on one instance is honoured by the
//! other within 1 s, the high-usage threshold is crossed once across instances, and a Redis
//! restart degrades both instances (still serving) and then recovers them.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 (and `redis-server` installed
//! for the private instance the restart test kills), and `python3-aiosmtpd` for the mail server.

// Tests fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod e2e_support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use adapters_postgres::testing::{drop_postgres_database, fresh_postgres_url};
use adapters_smtp::testing::TestSmtpServer;
use api_actix::config::Config;
use e2e_support::{
    CreatedKey, Instance, Owner, PrivateRedis, SHARED_REDIS_URL, client, config, create_key,
    create_owner, error_type, eventually, eventually_sync, key_from, key_object, me, quantile,
    readyz, require_shared_redis, unique,
};
use keys_domain::ApiKeySecret;
use keys_domain::random::OsRandom;
use keys_domain::rate_limit::RateLimitPolicy;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// The contract's bound for revocation on every instance.
const REVOCATION_BOUND: Duration = Duration::from_secs(1);
/// The contract's bound for usage on the dashboard.
const USAGE_BOUND: Duration = Duration::from_secs(2);
/// The contract's bound for alert delivery.
const ALERT_BOUND: Duration = Duration::from_secs(10);

/// These tests run one at a time: each starts two servers, and the 1 s bounds are measured on a
/// machine that is busy enough already.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// A policy so generous that polling never meets it.
const UNLIMITED: RateLimitPolicy = RateLimitPolicy {
    per_second: 10_000,
    burst: 10_000,
};

/// A key cache TTL far above the 1 s bound, for tests that must see Redis do the work.
const LONG_CACHE_TTL: Duration = Duration::from_secs(30);

/// Two instances, A and B, over one fresh PostgreSQL database.
struct Pair {
    db: String,
    a: Instance,
    b: Instance,
}

impl Pair {
    async fn start(redis_url: &str, adjust: impl Fn(&mut Config)) -> Self {
        let db = fresh_postgres_url();
        let mut cfg = config(&db);
        cfg.redis_url = Some(redis_url.to_owned());
        adjust(&mut cfg);
        // A migrates the fresh database first, so B starts on a migrated one.
        let a = Instance::start(&cfg).await;
        let b = Instance::start(&cfg).await;
        Self { db, a, b }
    }

    async fn stop(self) {
        self.a.stop().await;
        self.b.stop().await;
        drop_postgres_database(&self.db);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_is_shared_by_both_instances() {
    require_shared_redis();
    let _serial = SERIAL.lock().await;
    let policy = RateLimitPolicy {
        per_second: 10,
        burst: 20,
    };
    let pair = Pair::start(SHARED_REDIS_URL, |c| c.rate_limit = policy).await;
    let http = client();
    let owner = create_owner(&pair.db, 0).await;
    let key = create_key(&http, &pair.a, &owner, "hammer").await;

    let hammer_for = Duration::from_secs(2);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for base in [&pair.a.base, &pair.b.base] {
        for _ in 0..4 {
            let (http, url, secret) = (
                http.clone(),
                format!("{base}/api/v1/public/credits/balance"),
                key.secret.clone(),
            );
            tasks.spawn(async move {
                let (mut ok, mut limited) = (0u32, 0u32);
                while start.elapsed() < hammer_for {
                    let res = http.get(&url).bearer_auth(&secret).send().await.unwrap();
                    let status = res.status();
                    assert_rate_limit_headers(&res, policy);
                    let retry_after = res
                        .headers()
                        .get("retry-after")
                        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
                    let body: Value = res.json().await.unwrap();
                    match status {
                        StatusCode::OK => ok += 1,
                        StatusCode::TOO_MANY_REQUESTS => {
                            limited += 1;
                            assert_eq!(error_type(&body), "rate_limited");
                            let header = retry_after.expect("429 without Retry-After");
                            assert!(header >= 1, "Retry-After {header} < 1");
                            let field = body["error"]["retry_after"].as_u64().unwrap_or(0);
                            assert!(field >= 1, "retry_after field {field} < 1");
                        }
                        other => panic!("unexpected {other} while hammering: {body}"),
                    }
                }
                (ok, limited)
            });
        }
    }
    let (mut ok, mut limited) = (0u32, 0u32);
    while let Some(r) = tasks.join_next().await {
        let (o, l) = r.unwrap();
        ok += o;
        limited += l;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let bound = f64::from(policy.burst) + f64::from(policy.per_second) * elapsed;
    eprintln!(
        "shared limit: {ok} allowed, {limited} refused over {elapsed:.2} s on two instances \
         (bound {bound:.1})"
    );
    assert!(
        f64::from(ok) <= bound,
        "{ok} requests allowed across both instances in {elapsed:.2} s, over the bound {bound:.1}"
    );
    assert!(ok >= 1, "nothing was allowed");
    assert!(limited >= 1, "the limit never refused anything");
    pair.stop().await;
}

/// Sleeps into the next minute of the Unix clock unless `needed` is left in this one: the
/// shared per-minute limits start over with each minute, which a test must not straddle.
async fn with_time_left_in_this_minute(needed: Duration) {
    let into = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let left = Duration::from_secs(60)
        - Duration::from_millis(u64::try_from(into.as_millis() % 60_000).unwrap());
    if left < needed {
        tokio::time::sleep(left + Duration::from_millis(100)).await;
    }
}

/// An IPv6 client address whose /64 no other test run uses (its failures are counted in the
/// shared Redis for a minute).
fn fresh_client_address() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "2001:db8:{:x}:{:x}::1",
        std::process::id() & 0xffff,
        nanos & 0xffff
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentications_are_limited_once_for_both_instances() {
    require_shared_redis();
    let _serial = SERIAL.lock().await;
    let pair = Pair::start(SHARED_REDIS_URL, |c| {
        c.rate_limit = UNLIMITED;
        c.auth_failures_per_minute = 10;
        c.trusted_proxies = "127.0.0.1".parse().unwrap();
    })
    .await;
    let http = client();
    let owner = create_owner(&pair.db, 0).await;
    let key = create_key(&http, &pair.a, &owner, "good").await;
    let attacker = fresh_client_address();
    let get_me = |instance: &Instance, secret: &str, from: &str| {
        http.get(instance.url("/api/v1/public/me"))
            .bearer_auth(secret)
            .header("x-forwarded-for", from)
            .send()
    };

    with_time_left_in_this_minute(Duration::from_secs(20)).await;
    // Made-up keys, well formed, sent to A and B in turn from one address.
    let (mut failed, mut refused) = (0, 0);
    for i in 0..40 {
        let instance = if i % 2 == 0 { &pair.a } else { &pair.b };
        let made_up = ApiKeySecret::generate(&OsRandom).expose().to_owned();
        let res = get_me(instance, &made_up, &attacker).await.unwrap();
        match res.status() {
            StatusCode::UNAUTHORIZED => failed += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                refused += 1;
                let retry: u64 = res.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=60).contains(&retry), "Retry-After {retry}");
                let body: Value = res.json().await.unwrap();
                assert_eq!(error_type(&body), "rate_limited");
            }
            other => panic!("unexpected {other} for a made-up key"),
        }
    }
    eprintln!("failed authentications across two instances: {failed} answered 401, {refused} 429");
    // The limit, plus at most one failure counted by the instance that had not heard yet.
    assert!(
        (10..=11).contains(&failed),
        "{failed} failures were looked at with a limit of 10 shared by two instances"
    );
    // Both instances now refuse that address, a valid key included; other clients are served.
    for instance in [&pair.a, &pair.b] {
        let res = get_me(instance, &key.secret, &attacker).await.unwrap();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        let res = get_me(instance, &key.secret, &fresh_client_address())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    pair.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_writes_are_limited_once_for_both_instances() {
    require_shared_redis();
    let _serial = SERIAL.lock().await;
    let pair = Pair::start(SHARED_REDIS_URL, |c| c.dashboard_writes_per_minute = 3).await;
    let http = client();
    let owner = create_owner(&pair.db, 0).await;
    let create = |instance: &Instance, name: &str| {
        http.post(instance.url("/api/v1/keys"))
            .bearer_auth(&owner.jwt)
            .json(&json!({ "name": name }))
            .send()
    };

    with_time_left_in_this_minute(Duration::from_secs(20)).await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let instance = if i % 2 == 0 { &pair.a } else { &pair.b };
        statuses.push(
            create(instance, &format!("k{i}"))
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(
        statuses,
        [201, 201, 201, 429, 429, 429, 429, 429],
        "three writes a minute for the user, on whichever instance"
    );
    // Reads are not writes, on either instance.
    for instance in [&pair.a, &pair.b] {
        assert_eq!(keys_list_status(&http, instance, &owner.jwt).await, 200);
    }
    pair.stop().await;
}

/// Both header forms, for the policy in force.
fn assert_rate_limit_headers(res: &reqwest::Response, policy: RateLimitPolicy) {
    let h = res.headers();
    let get = |name: &str| {
        h.get(name)
            .unwrap_or_else(|| panic!("{} response without {name}", res.status()))
            .to_str()
            .unwrap()
            .to_owned()
    };
    let window = policy.burst / policy.per_second;
    assert_eq!(
        get("ratelimit-policy"),
        format!("\"default\";q={};w={window}", policy.burst)
    );
    assert!(get("ratelimit").starts_with("\"default\";r="));
    assert_eq!(get("ratelimit-limit"), policy.burst.to_string());
    let remaining: u32 = get("ratelimit-remaining").parse().unwrap();
    assert!(remaining <= policy.burst);
    let _: u64 = get("ratelimit-reset").parse().unwrap();
}

/// Waits until `instance` accepts `key` (a key made on the other instance is usable here at
/// once, but allow for a loaded machine), then asks once more so it is surely cached.
async fn warm(http: &reqwest::Client, instance: &Instance, key: &CreatedKey) {
    eventually(
        "the new key to work on the other instance",
        Duration::from_secs(5),
        || async { (me(http, instance, key).await.0 == 200).then_some(()) },
    )
    .await;
    assert_eq!(me(http, instance, key).await.0, 200);
}

/// Polls `instance` with `key` until it answers 401 `revoked_api_key`; how long that took from
/// `since`. Anything but 200 or that 401 fails the test.
async fn until_refused(
    http: &reqwest::Client,
    instance: &Instance,
    key: &CreatedKey,
    since: Instant,
) -> Duration {
    loop {
        let (status, body) = me(http, instance, key).await;
        match (status, error_type(&body)) {
            (401, "revoked_api_key") => return since.elapsed(),
            (200, _) => {}
            _ => panic!("unexpected {status} {body} while waiting for the revocation"),
        }
        assert!(
            since.elapsed() < Duration::from_secs(15),
            "the other instance still accepts the key 15 s after its revocation"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Revokes `key` on `on` (200, `revoked`); returns the moment the request was sent, from which
/// the 1 s is counted (conservatively: it includes A's own handling).
async fn revoke(http: &reqwest::Client, on: &Instance, owner: &Owner, key: &CreatedKey) -> Instant {
    let sent = Instant::now();
    let res = http
        .post(on.url(&format!("/api/v1/keys/{}/revoke", key.id)))
        .bearer_auth(&owner.jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "revoked");
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_on_one_instance_is_refused_by_the_other_within_one_second() {
    require_shared_redis();
    let _serial = SERIAL.lock().await;
    // With a long cache TTL and no change feed only Redis's announcement can make B refuse in
    // time, so this shows the pub/sub path works (the feed alone would also meet the 1 s bound).
    let pair = Pair::start(SHARED_REDIS_URL, |c| {
        c.rate_limit = UNLIMITED;
        c.tuning.key_cache_ttl = LONG_CACHE_TTL;
        c.tuning.key_feed_interval = None;
    })
    .await;
    let http = client();
    let owner = create_owner(&pair.db, 0).await;

    let mut latencies = Vec::new();
    for i in 0..30 {
        let key = create_key(&http, &pair.a, &owner, &format!("revoke-{i}")).await;
        warm(&http, &pair.b, &key).await;
        let revoked_at = revoke(&http, &pair.a, &owner, &key).await;
        let took = until_refused(&http, &pair.b, &key, revoked_at).await;
        assert!(
            took < REVOCATION_BOUND,
            "round {i}: B accepted the key for {took:?} after A revoked it"
        );
        latencies.push(took);
        // A refuses it too, at once (its own cache was evicted before the answer).
        assert_eq!(
            error_type(&me(&http, &pair.a, &key).await.1),
            "revoked_api_key"
        );
    }
    latencies.sort();
    eprintln!(
        "revoke sent to A -> first 401 on B over {} rounds: p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        quantile(&latencies, 0.50),
        quantile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    );
    pair.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_without_grace_on_one_instance_is_refused_by_the_other_within_one_second() {
    require_shared_redis();
    let _serial = SERIAL.lock().await;
    let pair = Pair::start(SHARED_REDIS_URL, |c| c.rate_limit = UNLIMITED).await;
    let http = client();
    let owner = create_owner(&pair.db, 0).await;

    for i in 0..5 {
        let old = create_key(&http, &pair.a, &owner, &format!("rotate-{i}")).await;
        warm(&http, &pair.b, &old).await;
        let rotated_at = Instant::now();
        let res = http
            .post(pair.a.url(&format!("/api/v1/keys/{}/rotate", old.id)))
            .bearer_auth(&owner.jwt)
            .json(&json!({ "name": format!("rotated-{i}"), "grace_period_seconds": 0 }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let new = key_from(&res.json::<Value>().await.unwrap());
        let took = until_refused(&http, &pair.b, &old, rotated_at).await;
        assert!(
            took < REVOCATION_BOUND,
            "round {i}: B accepted the rotated-out key for {took:?}"
        );
        warm(&http, &pair.b, &new).await;
        let old_object = key_object(&http, &pair.b, &owner, &old.id).await;
        assert_eq!(old_object["status"], "revoked");
    }
    pair.stop().await;
}

/// `GET /api/v1/keys` on `instance` with a dashboard token: its status.
async fn keys_list_status(http: &reqwest::Client, instance: &Instance, jwt: &str) -> u16 {
    let res = http
        .get(instance.url("/api/v1/keys"))
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap();
    res.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_out_on_one_instance_ends_the_users_tokens_on_the_other_within_one_second() {
    require_shared_redis();
    let _serial = SERIAL.lock().await;
    // B caches each user's cut-off for 30 s: only Redis's announcement can end the session in
    // time there.
    let pair = Pair::start(SHARED_REDIS_URL, |c| {
        c.rate_limit = UNLIMITED;
        c.tuning.token_cutoff_ttl = LONG_CACHE_TTL;
    })
    .await;
    let http = client();
    let mut latencies = Vec::new();
    for i in 0..10 {
        let owner = create_owner(&pair.db, 0).await;
        assert_eq!(keys_list_status(&http, &pair.b, &owner.jwt).await, 200);
        let sent = Instant::now();
        let res = http
            .post(pair.a.url("/api/v1/auth/sign-out"))
            .bearer_auth(&owner.jwt)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_eq!(keys_list_status(&http, &pair.a, &owner.jwt).await, 401);
        let took = eventually(
            "B to refuse the signed-out token",
            Duration::from_secs(15),
            || async {
                (keys_list_status(&http, &pair.b, &owner.jwt).await == 401).then(|| sent.elapsed())
            },
        )
        .await;
        assert!(
            took < REVOCATION_BOUND,
            "round {i}: B accepted a signed-out token for {took:?}"
        );
        latencies.push(took);
    }
    latencies.sort();
    eprintln!(
        "sign-out sent to A -> first 401 on B: p50 {:?}, max {:?}",
        quantile(&latencies, 0.50),
        latencies[latencies.len() - 1]
    );
    pair.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_high_usage_threshold_is_crossed_once_across_instances() {
    require_shared_redis();
    let _serial = SERIAL.lock().await;
    let smtp = TestSmtpServer::start();
    let smtp_url = smtp.url();
    let pair = Pair::start(SHARED_REDIS_URL, |c| {
        c.rate_limit = UNLIMITED;
        c.high_usage_threshold = 30;
        c.smtp_url = Some(smtp_url.clone());
    })
    .await;
    let http = client();
    let owner = create_owner(&pair.db, 0).await;
    let key = create_key(&http, &pair.a, &owner, &unique("busy")).await;

    // 20 requests on each instance at the same time, one key.
    let mut tasks = tokio::task::JoinSet::new();
    for base in [&pair.a.base, &pair.b.base] {
        let (http, url, secret) = (
            http.clone(),
            format!("{base}/api/v1/public/me"),
            key.secret.clone(),
        );
        tasks.spawn(async move {
            for _ in 0..20 {
                let res = http.get(&url).bearer_auth(&secret).send().await.unwrap();
                assert_eq!(res.status(), StatusCode::OK);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let last_request = Instant::now();

    // Both instances' counts reach the dashboard (read on either) within 2 s.
    for instance in [&pair.a, &pair.b] {
        eventually_usage(&http, instance, &owner, &key.id, 40, last_request).await;
    }

    let mine = |m: &adapters_smtp::testing::ReceivedMessage| m.subject.contains(&key.name);
    let first = eventually_sync("the high-usage email", ALERT_BOUND, || {
        let got: Vec<_> = smtp.messages().into_iter().filter(mine).collect();
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert!(last_request.elapsed() < ALERT_BOUND + Duration::from_secs(1));
    assert_eq!(first.len(), 1, "more than one alert for one crossing");
    assert_eq!(first[0].to, vec![owner.email.clone()]);
    // Two delivery workers and two usage flushers had their chance: still one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all: Vec<_> = smtp.messages().into_iter().filter(mine).collect();
    assert_eq!(
        all.len(),
        1,
        "the threshold was crossed once, yet {} emails",
        all.len()
    );
    pair.stop().await;
}

/// Polls `GET /api/v1/keys/{id}` on `instance` until `usage_count` is `want`, within the
/// contract's 2 s of `since`.
async fn eventually_usage(
    http: &reqwest::Client,
    instance: &Instance,
    owner: &Owner,
    id: &str,
    want: u64,
    since: Instant,
) {
    loop {
        let body = key_object(http, instance, owner, id).await;
        let count = body["usage_count"].as_u64().unwrap();
        if count == want {
            assert!(!body["last_used_at"].is_null());
            return;
        }
        assert!(
            count < want,
            "usage_count {count} over the {want} requests made"
        );
        assert!(
            since.elapsed() < USAGE_BOUND,
            "usage_count is {count}, not {want}, {:?} after the last request",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_instances_keep_serving_through_a_redis_restart_and_then_share_again() {
    let _serial = SERIAL.lock().await;
    let mut redis = PrivateRedis::started();
    // A long cache TTL and no change feed, so that B refusing revoked keys after the restart
    // shows the revocation listener re-subscribed (and resynced), not that a cache entry expired.
    let pair = Pair::start(&redis.url(), |c| {
        c.rate_limit = UNLIMITED;
        c.tuning.key_cache_ttl = LONG_CACHE_TTL;
        c.tuning.key_feed_interval = None;
    })
    .await;
    let http = client();
    let owner = create_owner(&pair.db, 0).await;
    let key = create_key(&http, &pair.a, &owner, "through-restart").await;
    warm(&http, &pair.b, &key).await;
    for instance in [&pair.a, &pair.b] {
        wait_ready(&http, instance, "ok", "up").await;
    }

    redis.kill();
    // Both keep answering, 200 every time, while they notice and after.
    let started = Instant::now();
    let mut served = 0;
    let mut degraded = [false, false];
    while !(degraded[0] && degraded[1]) || started.elapsed() < Duration::from_secs(2) {
        for (i, instance) in [&pair.a, &pair.b].into_iter().enumerate() {
            let (status, body) = me(&http, instance, &key).await;
            assert_eq!(status, 200, "with Redis down: {body}");
            served += 1;
            let (ready, body) = readyz(&http, instance).await;
            assert_eq!(ready, 200, "/readyz with Redis down: {body}");
            if body["redis"] == "down" {
                assert_eq!(body["status"], "degraded", "{body}");
                degraded[i] = true;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "/readyz did not report Redis down within 10 s: {degraded:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("with Redis down: {served} requests, all 200");
    // A key made while Redis is down works on the other instance too (the database is shared).
    let during = create_key(&http, &pair.a, &owner, "made-while-down").await;
    warm(&http, &pair.b, &during).await;
    // Revoked while down: the announcement is lost, B still has the key cached.
    revoke(&http, &pair.a, &owner, &during).await;

    redis.start();
    let restarted = Instant::now();
    for instance in [&pair.a, &pair.b] {
        wait_ready(&http, instance, "ok", "up").await;
    }
    // B's listener re-subscribes and resyncs (clears its cache): the lost revocation is honoured.
    let took = until_refused(&http, &pair.b, &during, restarted).await;
    eprintln!("revocation lost during the outage honoured on B {took:?} after the restart");
    // Revocations cross instances again: revoke on A, B refuses within 1 s.
    warm(&http, &pair.b, &key).await;
    let revoked_at = revoke(&http, &pair.a, &owner, &key).await;
    let took = until_refused(&http, &pair.b, &key, revoked_at).await;
    assert!(
        took < REVOCATION_BOUND,
        "after the Redis restart B accepted a revoked key for {took:?}"
    );
    pair.stop().await;
}

/// Waits (up to 10 s) until `/readyz` on `instance` is 200 with this `status` and `redis`.
async fn wait_ready(http: &reqwest::Client, instance: &Instance, status: &str, redis: &str) {
    eventually(
        &format!("/readyz to say status {status}, redis {redis}"),
        Duration::from_secs(10),
        || async {
            let (code, body) = readyz(http, instance).await;
            (code == 200 && body["status"] == status && body["redis"] == redis).then_some(())
        },
    )
    .await;
}
