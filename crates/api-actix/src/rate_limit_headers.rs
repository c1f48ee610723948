//! The rate-limit state of a key, in both header forms the contract names.

use std::cell::RefCell;
use std::time::Duration;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::web::Bytes;
use keys_domain::rate_limit::{RateDecision, ceil_seconds};

thread_local! {
    static LAST_POLICY: RefCell<Option<((u32, Duration), HeaderValue)>> = const { RefCell::new(None) };
}

static POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
static STATE: HeaderName = HeaderName::from_static("ratelimit");
static LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
static REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
static RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Adds `RateLimit-Policy`, `RateLimit` and the `RateLimit-Limit/Remaining/Reset` trio.
pub fn insert_rate_limit_headers(headers: &mut HeaderMap, d: &RateDecision) {
    // The numeric ones go through `HeaderValue::from` (no intermediate String): this runs on
    // every authenticated response.
    // The policy is the same on every response of a configuration: formatted once per worker
    // thread, then a reference-counted clone.
    let policy_key = (d.limit, d.window);
    let policy = LAST_POLICY.with_borrow_mut(|last| match last {
        Some((k, v)) if *k == policy_key => Some(v.clone()),
        _ => {
            let v = HeaderValue::from_str(&d.policy_header()).ok()?;
            *last = Some((policy_key, v.clone()));
            Some(v)
        }
    });
    if let Some(v) = policy {
        headers.insert(POLICY.clone(), v);
    }
    // Digits, quotes, `;` and `=` only: always a valid header value.
    if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(d.state_header())) {
        headers.insert(STATE.clone(), v);
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
