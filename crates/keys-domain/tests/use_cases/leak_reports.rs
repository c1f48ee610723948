//! `LeakReports`: the signature is checked before anything is read; each of our working keys is
//! revoked with its reason, events and email in one change; every token is labelled.

use std::sync::Arc;

use keys_domain::credits::Credits;
use keys_domain::ports::{
    MockAccountStore, MockKeyStore, MockReportVerifier, MockRevocationNotifier, StoreError, User,
    VerifyError,
};
use keys_domain::report_digest::ReportDigest;
use keys_domain::use_cases::{
    LabelledToken, LeakReportError, LeakReports, ReportedToken, SignedReport, TokenLabel,
};
use keys_domain::{
    Actor, ApiKey, ApiKeySecret, EventDetail, KeyEventKind, KeyHash, KeyState, RevocationReason,
};

use crate::support::{SeqRandom, T0, clock_at, email, secs, stored_key, user};

struct Mocks {
    verifier: MockReportVerifier,
    keys: MockKeyStore,
    accounts: MockAccountStore,
    notifier: MockRevocationNotifier,
}

impl Mocks {
    fn new() -> Self {
        Self {
            verifier: MockReportVerifier::new(),
            keys: MockKeyStore::new(),
            accounts: MockAccountStore::new(),
            notifier: MockRevocationNotifier::new(),
        }
    }

    fn verified(mut self) -> Self {
        self.verifier
            .expect_verify()
            .withf(|id, sig, digest| {
                id == "kid" && sig == "sig" && *digest == ReportDigest::of(b"body")
            })
            .times(1)
            .returning(|_, _, _| Ok(()));
        self
    }

    fn service(self) -> LeakReports {
        LeakReports {
            verifier: Arc::new(self.verifier),
            keys: Arc::new(self.keys),
            accounts: Arc::new(self.accounts),
            notifier: Arc::new(self.notifier),
            clock: Arc::new(clock_at(T0)),
            random: Arc::new(SeqRandom::new(7)),
        }
    }
}

fn signed() -> SignedReport<'static> {
    SignedReport {
        key_identifier: Some("kid"),
        signature: Some("sig"),
        body: b"body",
        body_digest: Box::leak(Box::new(ReportDigest::of(b"body"))),
    }
}

fn reported(token: &str) -> ReportedToken {
    ReportedToken {
        token: token.to_owned(),
        token_type: "jobtactics_api_key".into(),
        url: "https://github.com/o/r/blob/x/.env".into(),
        source: "content".into(),
    }
}

fn owner() -> User {
    User {
        id: user(),
        email: email(),
        balance: Credits::ZERO,
        created_at: T0,
    }
}

fn receive(
    svc: &LeakReports,
    tokens: Vec<ReportedToken>,
) -> Result<keys_domain::use_cases::ReportOutcome, LeakReportError> {
    futures_executor::block_on(svc.receive(signed(), move |_| Ok(tokens)))
}

#[test]
fn a_missing_or_bad_signature_reads_and_revokes_nothing() {
    for (id, sig) in [(None, Some("sig")), (Some("kid"), None), (None, None)] {
        let mut m = Mocks::new();
        m.verifier.expect_verify().never();
        m.keys.expect_find_by_hash().never();
        let svc = m.service();
        let out = futures_executor::block_on(svc.receive(
            SignedReport {
                key_identifier: id,
                signature: sig,
                body: b"[]",
                body_digest: &ReportDigest::of(b"[]"),
            },
            |_| panic!("parsed before verification"),
        ));
        assert!(matches!(out, Err(LeakReportError::InvalidSignature(_))));
    }
    let mut m = Mocks::new();
    m.verifier.expect_verify().returning(|_, _, _| {
        Err(VerifyError::Invalid(
            "the signature does not match the body",
        ))
    });
    m.keys.expect_find_by_hash().never();
    m.keys.expect_transition().never();
    let out = futures_executor::block_on(
        m.service()
            .receive(signed(), |_| panic!("parsed before verification")),
    );
    assert_eq!(
        out.unwrap_err(),
        LeakReportError::InvalidSignature("the signature does not match the body")
    );

    // Keys that cannot be read: retry later (503), not "invalid".
    let mut m = Mocks::new();
    m.verifier
        .expect_verify()
        .returning(|_, _, _| Err(VerifyError::Unavailable("github down".into())));
    let out = futures_executor::block_on(m.service().receive(signed(), |_| Ok(vec![])));
    assert!(matches!(out, Err(LeakReportError::Unavailable(_))));
}

/// The headers alone: missing ones never reach the verifier; its verdict maps to 401 or 503.
#[test]
fn headers_are_checked_before_any_body() {
    for (id, sig) in [(None, Some("sig")), (Some("kid"), None), (None, None)] {
        let mut m = Mocks::new();
        m.verifier.expect_check_headers().never();
        let out = futures_executor::block_on(m.service().check_headers(id, sig));
        assert!(matches!(out, Err(LeakReportError::InvalidSignature(_))));
    }
    let mut m = Mocks::new();
    m.verifier
        .expect_check_headers()
        .withf(|id, sig| id == "kid" && sig == "sig")
        .times(1)
        .returning(|_, _| Ok(()));
    let out = futures_executor::block_on(m.service().check_headers(Some("kid"), Some("sig")));
    assert_eq!(out, Ok(()));
    let mut m = Mocks::new();
    m.verifier
        .expect_check_headers()
        .returning(|_, _| Err(VerifyError::Invalid("unknown Github-Public-Key-Identifier")));
    let out = futures_executor::block_on(m.service().check_headers(Some("kid"), Some("sig")));
    assert_eq!(
        out,
        Err(LeakReportError::InvalidSignature(
            "unknown Github-Public-Key-Identifier"
        ))
    );
    let mut m = Mocks::new();
    m.verifier
        .expect_check_headers()
        .returning(|_, _| Err(VerifyError::Unavailable("github down".into())));
    let out = futures_executor::block_on(m.service().check_headers(Some("kid"), Some("sig")));
    assert!(matches!(out, Err(LeakReportError::Unavailable(_))));
}

#[test]
fn a_body_that_is_not_a_report_is_malformed() {
    let m = Mocks::new().verified();
    let out = futures_executor::block_on(
        m.service()
            .receive(signed(), |_| Err("not an array".to_owned())),
    );
    assert_eq!(
        out.unwrap_err(),
        LeakReportError::Malformed("not an array".into())
    );
}

#[test]
fn a_working_key_is_revoked_with_reason_events_and_email_in_one_change() {
    let (key, secret) = stored_key(&user(), "ci-bot", KeyState::Active, 1);
    let hash = key.hash;
    let mut m = Mocks::new().verified();
    let found = key.clone();
    m.keys
        .expect_find_by_hash()
        .withf(move |h| *h == hash)
        .times(1)
        .returning(move |_| Ok(Some(found.clone())));
    m.accounts
        .expect_find_user()
        .times(1)
        .returning(|_| Ok(Some(owner())));
    let revoked = KeyState::Revoked { revoked_at: T0 };
    let after = ApiKey {
        state: revoked,
        revocation_reason: Some(RevocationReason::Leaked),
        ..key.clone()
    };
    let (preview, key_id) = (key.preview.clone(), key.id.clone());
    let exposed = secret.expose().to_owned();
    m.keys
        .expect_transition()
        .withf(move |u, id, c| {
            let queued = c.email.as_ref().unwrap();
            *u == user()
                && *id == key_id
                && c.expected == KeyState::Active
                && c.to == revoked
                && c.reason == Some(RevocationReason::Leaked)
                && c.events
                    .iter()
                    .map(keys_domain::KeyEvent::kind)
                    .collect::<Vec<_>>()
                    == [KeyEventKind::LeakReported, KeyEventKind::Revoked]
                && c.events
                    .iter()
                    .all(|e| e.actor == Actor::GithubSecretScanning && e.at == T0)
                && c.events[0].detail
                    == EventDetail::LeakReported {
                        url: "https://github.com/o/r/blob/x/.env".into(),
                        source: "content".into(),
                    }
                && queued.email.to == email()
                && queued.email.subject.contains("exposed")
                && queued.email.subject.contains(preview.as_str())
                && queued
                    .email
                    .body
                    .contains("https://github.com/o/r/blob/x/.env")
                && !queued.email.body.contains(&exposed)
                && !queued.email.subject.contains(&exposed)
        })
        .times(1)
        .returning(move |_, _, _| Ok(Some(after.clone())));
    m.notifier
        .expect_key_changed()
        .withf(move |h| *h == hash)
        .times(1)
        .return_const(());
    let out = receive(&m.service(), vec![reported(secret.expose())]).unwrap();
    assert_eq!(out.revoked, 1);
    assert_eq!(
        out.labels,
        [LabelledToken {
            token_hash: KeyHash::of(secret.expose()).to_hex(),
            token_type: "jobtactics_api_key".into(),
            label: TokenLabel::TruePositive,
        }]
    );
}

#[test]
fn tokens_not_ours_are_false_positives_and_malformed_ones_touch_no_store() {
    let stranger = ApiKeySecret::generate(&SeqRandom::new(99));
    let mut m = Mocks::new().verified();
    // Only the well-formed token is looked up.
    m.keys
        .expect_find_by_hash()
        .times(1)
        .returning(|_| Ok(None));
    m.keys.expect_transition().never();
    let out = receive(
        &m.service(),
        vec![
            reported(stranger.expose()),
            reported("jt_sk_nope"),
            reported(""),
        ],
    )
    .unwrap();
    assert_eq!(out.revoked, 0);
    assert!(
        out.labels
            .iter()
            .all(|l| l.label == TokenLabel::FalsePositive)
    );
    assert_eq!(out.labels[2].token_hash, KeyHash::of("").to_hex());
}

#[test]
fn an_already_revoked_or_expired_key_is_a_true_positive_and_changes_nothing() {
    let revoked = KeyState::Revoked {
        revoked_at: T0.minus(secs(60)),
    };
    let ended = KeyState::Expiring {
        revokes_at: T0.minus(secs(1)),
    };
    for state in [revoked, ended] {
        let (key, secret) = stored_key(&user(), "ci-bot", state, 2);
        let mut m = Mocks::new().verified();
        m.keys
            .expect_find_by_hash()
            .returning(move |_| Ok(Some(key.clone())));
        m.keys.expect_transition().never();
        m.notifier.expect_key_changed().never();
        m.accounts.expect_find_user().never();
        let out = receive(&m.service(), vec![reported(secret.expose())]).unwrap();
        assert_eq!(out.revoked, 0);
        assert_eq!(out.labels[0].label, TokenLabel::TruePositive);
    }
}

#[test]
fn a_report_that_loses_the_race_revokes_and_emails_nothing_more() {
    let (key, secret) = stored_key(&user(), "ci-bot", KeyState::Active, 3);
    let mut m = Mocks::new().verified();
    let found = key.clone();
    m.keys
        .expect_find_by_hash()
        .returning(move |_| Ok(Some(found.clone())));
    m.accounts
        .expect_find_user()
        .returning(|_| Ok(Some(owner())));
    // Another report revoked it between our read and our write: the store says so.
    let theirs = ApiKey {
        state: KeyState::Revoked {
            revoked_at: T0.minus(secs(1)),
        },
        revocation_reason: Some(RevocationReason::Leaked),
        ..key
    };
    m.keys
        .expect_transition()
        .times(1)
        .returning(move |_, _, _| Ok(Some(theirs.clone())));
    m.notifier.expect_key_changed().never();
    let out = receive(&m.service(), vec![reported(secret.expose())]).unwrap();
    assert_eq!(out.revoked, 0);
    assert_eq!(out.labels[0].label, TokenLabel::TruePositive);
}

#[test]
fn a_store_outage_is_unavailable_never_a_false_positive() {
    let stranger = ApiKeySecret::generate(&SeqRandom::new(5));
    let mut m = Mocks::new().verified();
    m.keys
        .expect_find_by_hash()
        .returning(|_| Err(StoreError::Unavailable("down".into())));
    let out = receive(&m.service(), vec![reported(stranger.expose())]);
    assert!(matches!(out, Err(LeakReportError::Unavailable(_))));
}
