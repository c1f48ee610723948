//! Dashboard tokens (JWTs): HS256 only, `sub` (the user id) and `exp` required, nothing else
//! checked. Signed by the CLI's `tokens issue`, verified by the dashboard extractor; neither
//! HTTP nor the CLI is known here, so each maps [`TokenError`] its own way.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use keys_domain::{Timestamp, UserId};
use serde::{Deserialize, Serialize};

/// Why a token was refused. Each message is safe to show the client: it never echoes the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token must be signed with HS256")]
    WrongAlgorithm,
    #[error("the token's signature is not valid")]
    BadSignature,
    #[error("the token must carry `sub` and `exp`")]
    MissingClaim,
    #[error("the token's `sub` is empty")]
    EmptySubject,
    #[error("the token is not a valid dashboard token")]
    Invalid,
}

/// Signs and verifies dashboard tokens with one secret.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

#[derive(Serialize)]
struct IssuedClaims<'a> {
    sub: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct VerifiedClaims {
    sub: String,
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
        }
    }

    /// A token for `user`, valid for `ttl` from `now`.
    ///
    /// # Errors
    /// When signing fails (not expected with HMAC).
    pub fn issue(
        &self,
        user: &UserId,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let iat = now.as_millis().div_euclid(1000);
        let claims = IssuedClaims {
            sub: user.as_str(),
            iat,
            exp: iat.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The user a token names.
    ///
    /// # Errors
    /// Anything but a valid, unexpired HS256 token with a non-empty `sub`.
    pub fn verify(&self, token: &str) -> Result<UserId, TokenError> {
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
        let sub = data.claims.sub.trim();
        if sub.is_empty() {
            return Err(TokenError::EmptySubject);
        }
        Ok(UserId::new(sub))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_expired_foreign_and_unsigned_tokens() {
        let keys = JwtKeys::new(b"secret-one");
        let now = Timestamp::from_millis(
            i64::try_from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis(),
            )
            .unwrap(),
        );
        let user = UserId::new("usr_1");
        let t = keys.issue(&user, now, Duration::from_secs(60)).unwrap();
        assert_eq!(keys.verify(&t).unwrap(), user);

        let expired = keys
            .issue(
                &user,
                now.minus(Duration::from_secs(120)),
                Duration::from_secs(60),
            )
            .unwrap();
        assert_eq!(keys.verify(&expired), Err(TokenError::Expired));

        let foreign = JwtKeys::new(b"secret-two")
            .issue(&user, now, Duration::from_secs(60))
            .unwrap();
        assert!(keys.verify(&foreign).is_err());

        // alg: none, same claims, empty signature.
        let mut parts = t.split('.');
        let _header = parts.next().unwrap();
        let claims = parts.next().unwrap();
        let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"; // {"alg":"none","typ":"JWT"}
        assert!(keys.verify(&format!("{none_header}.{claims}.")).is_err());
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
        assert!(keys.verify(&hs512).is_err());
    }
}
