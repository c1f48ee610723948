//! Key controls across two instances sharing one PostgreSQL database (docs/api.md, "Key controls"): a
//! narrowed network list, a removed scope and an expiry are honoured by the other instance
//! within 1 s, through Redis's announcements and, without Redis, through the key change feed;
//! a monthly limit admits exactly its credits when both instances charge at once.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 and, for the Redis case, Redis on 127.0.0.1:6379.

// Tests fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod e2e_support;

use std::time::{Duration, Instant};

use adapters_postgres::testing::{drop_postgres_database, execute_sql, fresh_postgres_url};
use api_actix::wiring;
use e2e_support::{
    CreatedKey, Instance, Owner, SHARED_REDIS_URL, client, config, create_key, create_owner,
    error_type, eventually, key_from, me, require_shared_redis,
};
use keys_domain::ports::{Clock, SystemClock};
use keys_domain::rate_limit::RateLimitPolicy;
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// The contract's bound for a change of controls on every instance.
const BOUND: Duration = Duration::from_secs(1);

/// One at a time: each starts two servers, and the bound is measured on a busy machine.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// How the instances hear of each other's changes.
#[derive(Clone, Copy)]
enum Channel {
    Redis,
    ChangeFeed,
}

struct Pair {
    db: String,
    a: Instance,
    b: Instance,
}

impl Pair {
    async fn start(channel: Channel) -> Self {
        let db = fresh_postgres_url();
        let mut cfg = config(&db);
        cfg.rate_limit = RateLimitPolicy {
            per_second: 10_000,
            burst: 10_000,
        };
        // A cache TTL far above the bound: only the channel can make B refuse in time.
        cfg.tuning.key_cache_ttl = Duration::from_secs(30);
        match channel {
            Channel::Redis => {
                require_shared_redis();
                cfg.redis_url = Some(SHARED_REDIS_URL.to_owned());
                cfg.tuning.key_feed_interval = None;
            }
            Channel::ChangeFeed => cfg.redis_url = None,
        }
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

async fn patch(
    http: &reqwest::Client,
    on: &Instance,
    owner: &Owner,
    key: &CreatedKey,
    body: Value,
) {
    let res = http
        .patch(on.url(&format!("/api/v1/keys/{}", key.id)))
        .bearer_auth(&owner.jwt)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
}

/// `GET /api/v1/public/documents` (scope `documents:read`) on `instance`: status and type.
async fn documents(http: &reqwest::Client, instance: &Instance, key: &CreatedKey) -> (u16, String) {
    let res = http
        .get(instance.url("/api/v1/public/documents"))
        .bearer_auth(&key.secret)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    (status, error_type(&body).to_owned())
}

/// Polls until `refused` answers `want`; how long from `since`. Only 200 is allowed meanwhile.
async fn until<F, Fut>(since: Instant, want: (u16, &str), mut probe: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (u16, String)>,
{
    loop {
        let (status, kind) = probe().await;
        if (status, kind.as_str()) == want {
            return since.elapsed();
        }
        assert_eq!(status, 200, "{status} {kind} while waiting for {want:?}");
        assert!(
            since.elapsed() < Duration::from_secs(15),
            "never refused: {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn changes_apply_on_the_other_instance(channel: Channel) {
    let _serial = SERIAL.lock().await;
    let pair = Pair::start(channel).await;
    let http = client();
    let owner = create_owner(&pair.db, 0).await;
    let store = wiring::open_store(&pair.db).unwrap();

    for round in 0..5 {
        // A removed scope.
        let key = create_key(&http, &pair.a, &owner, &format!("scope-{round}")).await;
        assert_eq!(documents(&http, &pair.b, &key).await.0, 200);
        let sent = Instant::now();
        patch(
            &http,
            &pair.a,
            &owner,
            &key,
            json!({ "scopes": ["credits:read"] }),
        )
        .await;
        let took = until(sent, (403, "insufficient_scope"), || {
            documents(&http, &pair.b, &key)
        })
        .await;
        assert!(
            took < BOUND,
            "round {round}: a removed scope applied on B after {took:?}"
        );

        // A narrowed network list (the tests come from 127.0.0.1).
        let key = create_key(&http, &pair.a, &owner, &format!("network-{round}")).await;
        assert_eq!(me(&http, &pair.b, &key).await.0, 200);
        let sent = Instant::now();
        patch(
            &http,
            &pair.a,
            &owner,
            &key,
            json!({ "allowed_networks": ["192.0.2.0/24"] }),
        )
        .await;
        let took = until(sent, (401, "network_not_allowed"), || async {
            let (status, body) = me(&http, &pair.b, &key).await;
            (status, error_type(&body).to_owned())
        })
        .await;
        assert!(
            took < BOUND,
            "round {round}: a narrowed network list applied on B after {took:?}"
        );

        // An expiry passing: B refuses the key within 1 s of its `expires_at`. No test waits
        // the minute an expiry is at least ahead, so the row's expiry is moved 1.5 s ahead
        // and a change on A (a new name, which keeps the expiry) carries it to B.
        let key = create_key(&http, &pair.a, &owner, &format!("expiry-{round}")).await;
        assert_eq!(me(&http, &pair.b, &key).await.0, 200);
        let expires = SystemClock.now().as_millis() + 1_500;
        execute_sql(
            &store,
            &format!(
                "UPDATE api_keys SET expires_at = {expires} WHERE id = '{}'",
                key.id
            ),
        )
        .await;
        patch(
            &http,
            &pair.a,
            &owner,
            &key,
            json!({ "name": format!("expiring-{round}") }),
        )
        .await;
        let wait = expires - SystemClock.now().as_millis();
        let wait = Duration::from_millis(u64::try_from(wait).unwrap_or(0));
        let expired = Instant::now() + wait;
        let took = until(Instant::now(), (401, "expired_api_key"), || async {
            let (status, body) = me(&http, &pair.b, &key).await;
            (status, error_type(&body).to_owned())
        })
        .await;
        let late = Instant::now().saturating_duration_since(expired);
        assert!(
            late < BOUND,
            "round {round}: B accepted the key {late:?} after it expired ({took:?} in all)"
        );
    }
    pair.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_of_controls_applies_on_the_other_instance_within_one_second_through_redis() {
    changes_apply_on_the_other_instance(Channel::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_of_controls_applies_on_the_other_instance_within_one_second_through_the_feed() {
    changes_apply_on_the_other_instance(Channel::ChangeFeed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monthly_limit_is_exact_when_two_instances_charge_at_once() {
    let _serial = SERIAL.lock().await;
    let pair = Pair::start(Channel::Redis).await;
    let http = client();
    let owner = create_owner(&pair.db, 1_000).await;
    let res = http
        .post(pair.a.url("/api/v1/keys"))
        .bearer_auth(&owner.jwt)
        .json(&json!({ "name": "capped", "monthly_credit_limit": 50 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let key = key_from(&res.json::<Value>().await.unwrap());
    let mut tasks = Vec::new();
    for i in 0..200 {
        let instance_url = if i % 2 == 0 {
            pair.a.url("/api/v1/public/documents")
        } else {
            pair.b.url("/api/v1/public/documents")
        };
        let (http, secret) = (http.clone(), key.secret.clone());
        tasks.push(tokio::spawn(async move {
            let res = http
                .post(instance_url)
                .bearer_auth(secret)
                .json(&json!({ "template_id": "classic", "fields": {} }))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap();
            (status, error_type(&body).to_owned())
        }));
    }
    let (mut ok, mut limited) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            (201, _) => ok += 1,
            (402, kind) if kind == "key_credit_limit_reached" => limited += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((ok, limited), (50, 150));
    let spent = eventually("the key's spend", Duration::from_secs(2), || async {
        let res = http
            .get(pair.b.url(&format!("/api/v1/keys/{}", key.id)))
            .bearer_auth(&owner.jwt)
            .send()
            .await
            .ok()?;
        res.json::<Value>().await.ok()?["spent_this_month"].as_u64()
    })
    .await;
    assert_eq!(spent, 50);
    pair.stop().await;
}
