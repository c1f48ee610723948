//! CORS (`JT_CORS_ORIGINS`): which browser origins may call the API. Unset: no CORS headers at
//! all, so browsers allow only same-origin calls. Preflights are answered by the CORS middleware
//! itself, before any credential is asked for.

use std::fmt;
use std::str::FromStr;

use actix_cors::Cors;
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderName};

/// How long a browser may cache a preflight's answer.
const PREFLIGHT_MAX_AGE_SECONDS: usize = 3600;

/// The allowed origins, each `scheme://host[:port]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsOrigins(Vec<String>);

impl FromStr for CorsOrigins {
    type Err = String;

    /// Comma-separated origins; empty is none. An origin is what a browser sends in `Origin`:
    /// scheme, host and optional port, no path.
    fn from_str(s: &str) -> Result<Self, String> {
        s.split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|o| {
                let o = o.trim_end_matches('/');
                let rest = o
                    .strip_prefix("https://")
                    .or_else(|| o.strip_prefix("http://"))
                    .ok_or_else(|| {
                        format!("`{o}` is not an origin: it must start with https:// or http://")
                    })?;
                if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ', '*']) {
                    return Err(format!(
                        "`{o}` is not an origin: use scheme://host[:port], no path"
                    ));
                }
                Ok(o.to_ascii_lowercase())
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

impl fmt::Display for CorsOrigins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&self.0.join(","))
        }
    }
}

impl CorsOrigins {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The middleware: the listed origins, the API's methods and request headers, and the
    /// response headers a client reads. No cookies are involved (credentials are bearer
    /// headers), so credentialed CORS is not enabled.
    pub fn middleware(&self) -> Cors {
        let mut cors = Cors::default()
            .allowed_methods([Method::GET, Method::HEAD, Method::POST])
            .allowed_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("traceparent"),
            ])
            .expose_headers([
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("ratelimit"),
                HeaderName::from_static("ratelimit-policy"),
                HeaderName::from_static("ratelimit-limit"),
                HeaderName::from_static("ratelimit-remaining"),
                HeaderName::from_static("ratelimit-reset"),
                HeaderName::from_static("idempotent-replayed"),
                header::RETRY_AFTER,
                header::WWW_AUTHENTICATE,
            ])
            .max_age(PREFLIGHT_MAX_AGE_SECONDS);
        for origin in &self.0 {
            cors = cors.allowed_origin(origin);
        }
        cors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_origins_and_refuses_what_is_not_one() {
        let o: CorsOrigins = " https://app.example.com, http://localhost:3000/ "
            .parse()
            .unwrap();
        assert_eq!(
            o.to_string(),
            "https://app.example.com,http://localhost:3000"
        );
        assert!("".parse::<CorsOrigins>().unwrap().is_empty());
        for bad in [
            "app.example.com",
            "https://a.com/path",
            "ftp://a.com",
            "https://*.a.com",
        ] {
            assert!(bad.parse::<CorsOrigins>().is_err(), "{bad}");
        }
    }
}
