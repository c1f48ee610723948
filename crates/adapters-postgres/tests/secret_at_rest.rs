//! Only the SHA-256 and the preview of a key are stored: after a key's whole life (create, use,
//! rotate, alert), no stored byte of any table contains the full key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use adapters_postgres::DbStore;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use keys_domain::alert_email::high_usage_alert;
use keys_domain::api_key::{KeyLimits, NewApiKey};
use keys_domain::idempotency_key::IdempotencyKey;
use keys_domain::ports::{
    AccountStore, AlertOutbox, IdempotencyClaim, IdempotencyStore, KeyStore, Rotation,
    SettingsStore,
};
use keys_domain::random::OsRandom;
use keys_domain::sealed_response::{RecordedResponse, seal};
use keys_domain::usage::UsageDelta;
use keys_domain::{
    AlertId, ApiKeySecret, Credits, Email, KeyId, KeyName, KeyState, Timestamp, UserId,
};
use support::TestDb;

const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);

fn new_key(user: &UserId, name: &str) -> (NewApiKey, ApiKeySecret) {
    let secret = ApiKeySecret::generate(&OsRandom);
    let key = NewApiKey {
        id: KeyId::generate(&OsRandom),
        user_id: user.clone(),
        name: KeyName::parse(name).unwrap(),
        preview: secret.preview(),
        hash: secret.hash(),
        created_at: T0,
        controls: Default::default(),
    };
    (key, secret)
}

/// Runs a key through everything that stores something about it; returns its secrets.
async fn live_a_keys_life(store: &DbStore) -> Vec<ApiKeySecret> {
    let user = UserId::generate(&OsRandom);
    let email = Email::parse("ada@example.com").unwrap();
    store
        .create_user(user.clone(), email.clone(), Credits::new(10), T0)
        .await
        .unwrap();
    let (first, first_secret) = new_key(&user, "ci-bot");
    let key = store.insert(first, KeyLimits::default(), T0).await.unwrap();
    store
        .record_usage(&[UsageDelta {
            key_id: key.id.clone(),
            user_id: user.clone(),
            count: 10_001,
            last_used_at: T0,
            clients: Vec::new(),
        }])
        .await
        .unwrap();
    let alert = high_usage_alert(email, &key.name, &key.preview, 10_001, 10_000);
    assert!(
        store
            .enqueue(
                AlertId::generate(&OsRandom),
                &key.id,
                alert,
                keys_domain::KeyEvent {
                    key_id: key.id.clone(),
                    actor: keys_domain::Actor::System,
                    at: T0,
                    detail: keys_domain::EventDetail::HighUsageAlert {
                        count: 2,
                        threshold: 1
                    },
                },
                T0
            )
            .await
            .unwrap()
    );
    let (second, second_secret) = new_key(&user, "ci-bot-2");
    store
        .rotate(
            &user,
            Rotation {
                old_id: key.id.clone(),
                old_hash: key.hash,
                expected: KeyState::Active,
                old_to: KeyState::Revoked { revoked_at: T0 },
                new_key: second,
                limits: KeyLimits::default(),
                now: T0,
            },
        )
        .await
        .unwrap();
    store
        .get_or_insert("jwt_secret", "not-a-key")
        .await
        .unwrap();
    // The rotation's response kept for an `Idempotency-Key` retry: it holds the new key, sealed.
    let idem = IdempotencyKey::parse(b"9b1c7f3e-retry")
        .unwrap()
        .derive(&user);
    let claim = IdempotencyClaim {
        lookup: idem.lookup,
        request: idem.fingerprint("POST", "/api/v1/keys/x/rotate", b"{}"),
        created_at: T0,
        expires_at: T0,
    };
    store.claim(claim).await.unwrap();
    let response = RecordedResponse {
        status: 201,
        body: format!(r#"{{"key":"{}"}}"#, second_secret.expose()).into_bytes(),
    };
    store
        .complete(&idem.lookup, seal(&idem, &response, &OsRandom))
        .await
        .unwrap();
    vec![first_secret, second_secret]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn assert_no_secret(haystack: &[u8], secrets: &[ApiKeySecret], what: &str) {
    let text = String::from_utf8_lossy(haystack);
    for secret in secrets {
        // The scan sees the data: the preview is stored...
        assert!(
            text.contains(secret.preview().as_str()),
            "{what}: the scan did not find the preview, so it proves nothing"
        );
        // ...and the key is not, neither as text nor hex-encoded.
        assert!(
            !text.contains(secret.expose()),
            "{what} contains a full key"
        );
        let as_hex = hex(secret.expose().as_bytes());
        assert!(
            !text.contains(&as_hex),
            "{what} contains a hex-encoded full key"
        );
    }
}

#[derive(QueryableByName)]
struct TextRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    text: String,
}

/// Every row of every table of the PostgreSQL database, as text.
fn all_postgres_rows(url: &str) -> String {
    let mut conn = PgConnection::establish(url).unwrap();
    let tables: Vec<TextRow> = diesel::sql_query(
        "SELECT table_name::text AS text FROM information_schema.tables \
         WHERE table_schema = 'public'",
    )
    .load(&mut conn)
    .unwrap();
    assert!(tables.len() >= 9, "tables: {}", tables.len());
    let mut everything = String::new();
    for TextRow { text: table } in tables {
        // Each whole row as text: every column of every table.
        let rows: Vec<TextRow> =
            diesel::sql_query(format!("SELECT t::text AS text FROM \"{table}\" t"))
                .load(&mut conn)
                .unwrap();
        for row in rows {
            everything.push_str(&row.text);
            everything.push('\n');
        }
    }
    everything
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stores_no_full_key() {
    let db = TestDb::postgres();
    let secrets = live_a_keys_life(db.store()).await;
    let everything = all_postgres_rows(db.url());
    assert_no_secret(everything.as_bytes(), &secrets, "a PostgreSQL row");
}

/// A sign-in link is stored as its SHA-256; its email carries it until the mail server has
/// it, and not after: no row holds the token once the email is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_no_sign_in_token_once_its_email_is_sent() {
    use keys_domain::alert_email::OutgoingEmail;
    use keys_domain::ports::{LinkEmail, NewSignInLink, SignInLinkStore};
    use keys_domain::sign_in_link::{SignInToken, sign_in_email, sign_in_url};

    let db = TestDb::postgres();
    let store = db.store();
    let user = UserId::generate(&OsRandom);
    let email = Email::parse("ada@example.com").unwrap();
    store
        .create_user(user.clone(), email.clone(), Credits::new(0), T0)
        .await
        .unwrap();
    let token = SignInToken::generate(&OsRandom);
    let mail: OutgoingEmail = sign_in_email(email, &sign_in_url("https://x.example", &token));
    let link = NewSignInLink {
        id: keys_domain::SignInLinkId::generate(&OsRandom),
        user_id: user,
        token_hash: token.hash(),
        created_at: T0,
        expires_at: Timestamp::from_millis(T0.as_millis() + 900_000),
    };
    let mail = LinkEmail {
        id: AlertId::generate(&OsRandom),
        email: mail,
    };
    assert!(
        store
            .issue(link, mail, Timestamp::from_millis(0), 5)
            .await
            .unwrap()
    );
    let queued = all_postgres_rows(db.url());
    assert!(
        queued.contains(token.expose()),
        "the scan sees the queued email"
    );
    let claimed = store
        .claim_due(T0, Timestamp::from_millis(T0.as_millis() + 60_000), 10)
        .await
        .unwrap();
    store.mark_sent(&claimed[0].id, T0).await.unwrap();
    let after = all_postgres_rows(db.url());
    assert!(
        after.contains(&hex(token.hash().as_bytes())),
        "the hash is stored"
    );
    assert!(
        !after.contains(token.expose()),
        "a row still holds the sign-in token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_stores_no_full_key() {
    let db = TestDb::sqlite();
    let secrets = live_a_keys_life(db.store()).await;
    // Every byte of the database file and its write-ahead log, free pages included.
    let path = db.url().strip_prefix("sqlite://").unwrap().to_owned();
    let mut bytes = std::fs::read(&path).unwrap();
    if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
        bytes.extend_from_slice(&wal);
    }
    assert_no_secret(&bytes, &secrets, "the SQLite file");
}
