//! The rate-limit state of a key, in both header forms the contract names.

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use keys_domain::rate_limit::{RateDecision, ceil_seconds};

static POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
static STATE: HeaderName = HeaderName::from_static("ratelimit");
static LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
static REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
static RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Adds `RateLimit-Policy`, `RateLimit` and the `RateLimit-Limit/Remaining/Reset` trio.
pub fn insert_rate_limit_headers(headers: &mut HeaderMap, d: &RateDecision) {
    // The numeric ones go through `HeaderValue::from` (no intermediate String): this runs on
    // every authenticated response.
    let structured = [(&POLICY, d.policy_header()), (&STATE, d.state_header())];
    for (name, value) in structured {
        // Digits, quotes, `;` and `=` only: always a valid header value.
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name.clone(), v);
        }
    }
    headers.insert(LIMIT.clone(), HeaderValue::from(d.limit));
    headers.insert(REMAINING.clone(), HeaderValue::from(d.remaining));
    headers.insert(
        RESET.clone(),
        HeaderValue::from(ceil_seconds(d.reset_after, 0)),
    );
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn writes_both_forms() {
        let d = RateDecision {
            allowed: true,
            limit: 40,
            remaining: 39,
            reset_after: Duration::from_millis(50),
            retry_after: None,
            window: Duration::from_secs(2),
        };
        let mut h = HeaderMap::new();
        insert_rate_limit_headers(&mut h, &d);
        assert_eq!(h.get(&POLICY).unwrap(), "\"default\";q=40;w=2");
        assert_eq!(h.get(&STATE).unwrap(), "\"default\";r=39;t=1");
        assert_eq!(h.get(&LIMIT).unwrap(), "40");
        assert_eq!(h.get(&REMAINING).unwrap(), "39");
        assert_eq!(h.get(&RESET).unwrap(), "1");
    }
}
