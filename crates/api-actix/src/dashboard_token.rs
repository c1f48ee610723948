//! Dashboard JWTs: HS256 only, `sub` (the user id) and `exp` required, nothing else checked.

use std::future::{Ready, ready};
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use keys_domain::key_secret::PREFIX;
use keys_domain::{Timestamp, UserId};
use serde::{Deserialize, Serialize};

use super::bearer::{Credential, credential};
use crate::error::ApiError;
use crate::state::AppState;

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
    /// `InvalidToken` for anything but a valid, unexpired HS256 token with a `sub`.
    pub fn verify(&self, token: &str) -> Result<UserId, ApiError> {
        use jsonwebtoken::errors::ErrorKind;
        let data = jsonwebtoken::decode::<VerifiedClaims>(token, &self.decoding, &self.validation)
            .map_err(|e| {
                ApiError::InvalidToken(match e.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired",
                    ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                        "the token must be signed with HS256"
                    }
                    ErrorKind::InvalidSignature => "the token's signature is not valid",
                    ErrorKind::MissingRequiredClaim(_) => "the token must carry `sub` and `exp`",
                    _ => "the token is not a valid dashboard token",
                })
            })?;
        let sub = data.claims.sub.trim();
        if sub.is_empty() {
            return Err(ApiError::InvalidToken("the token's `sub` is empty"));
        }
        Ok(UserId::new(sub))
    }
}

/// The dashboard user a request's JWT authenticates.
#[derive(Debug, Clone)]
pub struct DashboardUser {
    pub user_id: UserId,
}

impl DashboardUser {
    /// # Errors
    /// `missing_token`, `invalid_token`, `api_key_not_accepted`.
    pub fn authenticate(req: &HttpRequest) -> Result<Self, ApiError> {
        let state = req
            .app_data::<web::Data<AppState>>()
            .ok_or(ApiError::Internal)?;
        let token = match credential(req) {
            Credential::Missing => return Err(ApiError::MissingToken),
            Credential::Other | Credential::MalformedBearer => {
                return Err(ApiError::InvalidToken(
                    "send `Authorization: Bearer <token>` with exactly one token",
                ));
            }
            Credential::Bearer(token) => token,
        };
        if token.starts_with(PREFIX) {
            return Err(ApiError::ApiKeyNotAccepted);
        }
        let user_id = state.jwt.verify(token)?;
        tracing::Span::current().record("user_id", user_id.as_str());
        Ok(Self { user_id })
    }
}

impl FromRequest for DashboardUser {
    type Error = ApiError;
    // Verification is CPU only, so this resolves on first poll: before any body extractor that
    // follows it in a handler's arguments can fail, keeping 401 ahead of 400.
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::authenticate(req))
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
        assert!(matches!(
            keys.verify(&expired),
            Err(ApiError::InvalidToken("the token has expired"))
        ));

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
