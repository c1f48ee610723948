//! [`DashboardTokens`] as JWTs: HS256 only, `sub` (the user id) and `exp` required, at most 24
//! hours of lifetime (`keys_domain::use_cases::check_token_lifetime`); `iat` read for the
//! sign-out cut-off, which the dashboard gate checks. Neither HTTP nor the CLI is known here:
//! each maps [`TokenError`] its own way.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use keys_domain::ports::{DashboardTokens, SigningFailed, TokenError, VerifiedToken};
use keys_domain::use_cases::{TokenLifetimeError, check_token_lifetime};
use keys_domain::{Timestamp, UserId};
use serde::{Deserialize, Serialize};

/// Signs and verifies dashboard tokens with one secret.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Tokens verified recently, by their exact text, with their `exp`: decoding and checking
    /// the signature was a large share of a dashboard read's CPU, and a page polls with one token. Only
    /// valid tokens enter; a hit is still refused once its `exp` has passed. The sign-out
    /// cut-off is not decided here: the gate checks it on every request.
    verified: moka::sync::Cache<String, (VerifiedToken, u64), foldhash::fast::RandomState>,
}

/// Most verified tokens remembered, and for how long at most.
const VERIFIED_CAPACITY: u64 = 10_000;
const VERIFIED_TTL: Duration = Duration::from_secs(60);

#[derive(Serialize)]
struct IssuedClaims<'a> {
    sub: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct VerifiedClaims {
    sub: String,
    /// Seconds since the epoch; u64 so that `u64::MAX` parses and is refused as too long.
    exp: u64,
    iat: Option<u64>,
}

/// As the library checks `exp` (no leeway): a token is still valid during its last second.
fn expired(exp: u64, now: Timestamp) -> bool {
    i64::try_from(exp).unwrap_or(i64::MAX) < now.as_millis().div_euclid(1000)
}

fn from_seconds(s: u64) -> Timestamp {
    Timestamp::from_millis(i64::try_from(s).unwrap_or(i64::MAX).saturating_mul(1000))
}

impl JwtKeys {
    #[must_use]
    pub fn new(secret: &[u8]) -> Self {
        // `Validation::new` pins the accepted algorithms to exactly this one, which also rules
        // out `alg: none` (not even a parseable algorithm for the library).
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.validate_exp = true;
        validation.validate_aud = false;
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_CAPACITY)
                .time_to_live(VERIFIED_TTL)
                .build_with_hasher(foldhash::fast::RandomState::default()),
        }
    }

    /// A token for `user`, valid for `ttl` from `now`.
    ///
    /// # Errors
    /// [`SigningFailed`] (not expected with HMAC).
    pub fn issue(
        &self,
        user: &UserId,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<String, SigningFailed> {
        let iat = now.as_millis().div_euclid(1000);
        let claims = IssuedClaims {
            sub: user.as_str(),
            iat,
            exp: iat.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| SigningFailed)
    }

    /// The user a token names, and when it was issued.
    ///
    /// # Errors
    /// Anything but a valid, unexpired HS256 token with a non-empty `sub` that lives at most
    /// 24 hours.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<VerifiedToken, TokenError> {
        if let Some((verified, exp)) = self.verified.get(token) {
            if expired(exp, now) {
                self.verified.invalidate(token);
                return Err(TokenError::Expired);
            }
            // The lifetime rules only get easier to meet as time passes: no need to recheck.
            return Ok(verified);
        }
        let (verified, exp) = self.decode(token, now)?;
        self.verified
            .insert(token.to_owned(), (verified.clone(), exp));
        Ok(verified)
    }

    /// [`JwtKeys::verify`] without the cache; the token's `exp` as well.
    fn decode(&self, token: &str, now: Timestamp) -> Result<(VerifiedToken, u64), TokenError> {
        use jsonwebtoken::errors::ErrorKind;
        let data = jsonwebtoken::decode::<VerifiedClaims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    TokenError::WrongAlgorithm
                }
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::MissingRequiredClaim(_) => TokenError::MissingClaim,
                _ => TokenError::Invalid,
            })?;
        let claims = data.claims;
        // The library checked `exp` against the system clock; `now` is the one that counts.
        if expired(claims.exp, now) {
            return Err(TokenError::Expired);
        }
        let sub = claims.sub.trim();
        if sub.is_empty() {
            return Err(TokenError::EmptySubject);
        }
        let issued_at = claims.iat.map(from_seconds);
        check_token_lifetime(issued_at, from_seconds(claims.exp), now).map_err(|e| match e {
            TokenLifetimeError::TooLong => TokenError::TooLong,
            TokenLifetimeError::IssuedInFuture => TokenError::IssuedInFuture,
        })?;
        let verified = VerifiedToken {
            user_id: UserId::new(sub),
            issued_at,
        };
        Ok((verified, claims.exp))
    }
}

impl DashboardTokens for JwtKeys {
    fn issue(&self, user: &UserId, now: Timestamp, ttl: Duration) -> Result<String, SigningFailed> {
        JwtKeys::issue(self, user, now, ttl)
    }

    fn verify(&self, token: &str, now: Timestamp) -> Result<VerifiedToken, TokenError> {
        JwtKeys::verify(self, token, now)
    }
}

#[cfg(test)]
mod tests {
    use keys_domain::ports::{Clock as _, SystemClock};

    use super::*;

    #[test]
    fn round_trips_and_refuses_expired_foreign_and_unsigned_tokens() {
        let keys = JwtKeys::new(b"secret-one");
        let now = SystemClock.now();
        let user = UserId::new("usr_1");
        let t = keys.issue(&user, now, Duration::from_secs(60)).unwrap();
        assert_eq!(keys.verify(&t, now).unwrap().user_id, user);

        let expired = keys
            .issue(
                &user,
                now.minus(Duration::from_secs(120)),
                Duration::from_secs(60),
            )
            .unwrap();
        assert_eq!(keys.verify(&expired, now), Err(TokenError::Expired));

        let foreign = JwtKeys::new(b"secret-two")
            .issue(&user, now, Duration::from_secs(60))
            .unwrap();
        assert!(keys.verify(&foreign, now).is_err());

        // alg: none, same claims, empty signature.
        let mut parts = t.split('.');
        let _header = parts.next().unwrap();
        let claims = parts.next().unwrap();
        let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"; // {"alg":"none","typ":"JWT"}
        assert!(
            keys.verify(&format!("{none_header}.{claims}."), now)
                .is_err()
        );
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &IssuedClaims {
                sub: "usr_1",
                iat: 0,
                exp: i64::MAX / 2,
            },
            &EncodingKey::from_secret(b"secret-one"),
        )
        .unwrap();
        assert!(keys.verify(&hs512, now).is_err());
    }

    #[test]
    fn a_remembered_token_is_still_refused_once_it_expires() {
        let keys = JwtKeys::new(b"secret-one");
        let now = SystemClock.now();
        let user = UserId::new("usr_1");
        let t = keys.issue(&user, now, Duration::from_secs(30)).unwrap();
        for _ in 0..3 {
            assert_eq!(keys.verify(&t, now).unwrap().user_id, user);
        }
        let last_second = now.plus(Duration::from_secs(30));
        assert_eq!(keys.verify(&t, last_second).unwrap().user_id, user);
        let after = now.plus(Duration::from_secs(31));
        assert_eq!(keys.verify(&t, after), Err(TokenError::Expired));
        assert_eq!(
            keys.verify(&t, after),
            Err(TokenError::Expired),
            "and stays refused"
        );
        // A token differing in one character is not taken for the remembered one.
        let mut forged = t.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        assert!(keys.verify(&forged, now).is_err());
    }

    #[test]
    fn lifetimes_over_24_hours_are_refused() {
        let secret = b"secret-one-secret-one-secret-one";
        let keys = JwtKeys::new(secret);
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let now = from_seconds(now_s);
        let sign = |claims: serde_json::Value| {
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(secret),
            )
            .unwrap()
        };
        let day = 24 * 3600;
        let ok = sign(serde_json::json!({"sub": "usr_1", "iat": now_s, "exp": now_s + day}));
        assert_eq!(keys.verify(&ok, now).unwrap().issued_at, Some(now));
        let no_iat = sign(serde_json::json!({"sub": "usr_1", "exp": now_s + 600}));
        assert_eq!(keys.verify(&no_iat, now).unwrap().issued_at, None);
        for (claims, want) in [
            (
                serde_json::json!({"sub": "u", "iat": now_s, "exp": u64::MAX}),
                TokenError::TooLong,
            ),
            (
                serde_json::json!({"sub": "u", "exp": u64::MAX}),
                TokenError::TooLong,
            ),
            (
                serde_json::json!({"sub": "u", "iat": now_s, "exp": now_s + day + 1}),
                TokenError::TooLong,
            ),
            (
                serde_json::json!({"sub": "u", "exp": now_s + 2 * day}),
                TokenError::TooLong,
            ),
            (
                serde_json::json!({"sub": "u", "iat": now_s + 10 * day, "exp": now_s + 10 * day + 60}),
                TokenError::IssuedInFuture,
            ),
        ] {
            assert_eq!(
                keys.verify(&sign(claims.clone()), now),
                Err(want),
                "{claims}"
            );
        }
    }
}
