//! Reading `Authorization: Bearer <token>`: scheme matched case-insensitively, exactly one token.

use actix_web::HttpRequest;
use actix_web::http::header::AUTHORIZATION;

/// What the `Authorization` header holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// No `Authorization` header.
    Missing,
    /// `Bearer <token>` with exactly one token.
    Bearer(&'a str),
    /// `Bearer` with no token, several tokens, or several headers.
    MalformedBearer,
    /// Another scheme (`Basic`, …) or an unreadable header.
    Other,
}

/// Classifies the request's `Authorization` header.
#[must_use]
pub fn credential(req: &HttpRequest) -> Credential<'_> {
    let mut values = req.headers().get_all(AUTHORIZATION);
    let Some(value) = values.next() else {
        return Credential::Missing;
    };
    if values.next().is_some() {
        return Credential::MalformedBearer;
    }
    let Ok(value) = value.to_str() else {
        return Credential::Other;
    };
    parse(value)
}

fn parse(value: &str) -> Credential<'_> {
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Credential::Other;
    }
    if token.is_empty() || token.bytes().any(|b| b.is_ascii_whitespace()) {
        return Credential::MalformedBearer;
    }
    Credential::Bearer(token)
}

/// Whether `token` has the shape of a JWT (three base64url segments), to name it in the error.
#[must_use]
pub fn looks_like_jwt(token: &str) -> bool {
    // Our own keys (well formed or not) are answered as keys, without a scan.
    if token.starts_with(keys_domain::key_secret::PREFIX) {
        return false;
    }
    let mut parts = 0;
    for part in token.split('.') {
        parts += 1;
        let b64url = part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=');
        if !b64url {
            return false;
        }
    }
    parts == 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_is_case_insensitive_and_exactly_one_token_is_allowed() {
        assert_eq!(parse("Bearer abc"), Credential::Bearer("abc"));
        assert_eq!(parse("bearer abc"), Credential::Bearer("abc"));
        assert_eq!(parse("BEARER abc"), Credential::Bearer("abc"));
        assert_eq!(parse("Bearer"), Credential::MalformedBearer);
        assert_eq!(parse("Bearer "), Credential::MalformedBearer);
        assert_eq!(parse("Bearer a b"), Credential::MalformedBearer);
        assert_eq!(parse("Bearer  abc"), Credential::MalformedBearer);
        assert_eq!(parse("Basic dXNlcjpwdw=="), Credential::Other);
        assert_eq!(parse("Bearerabc"), Credential::Other);
    }

    #[test]
    fn recognises_jwts() {
        assert!(looks_like_jwt("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.sig-_"));
        assert!(looks_like_jwt("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0."));
        assert!(!looks_like_jwt("jt_sk_abc"));
        assert!(!looks_like_jwt("a.b"));
    }
}
