//! The rate-limit state of a key, in both header forms the contract names:
//! `RateLimit-Policy: "default";q=<burst>;w=<window seconds>`,
//! `RateLimit: "default";r=<remaining>;t=<seconds to reset>`, and the
//! `RateLimit-Limit/Remaining/Reset` trio. The domain's [`RateDecision`] gives the numbers; only
//! this file knows the formats.
//!
//! This runs on every authenticated response, so the values that rarely change (the policy,
//! the limit, the seconds to reset) are formatted once per worker thread and reused as
//! reference-counted clones; of the two that change per request, `RateLimit` is written with
//! `itoa` into one buffer and the remaining count goes through `HeaderValue::from`.

use std::cell::RefCell;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::web::BytesMut;
use keys_domain::rate_limit::{RateDecision, ceil_seconds};

static POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
static STATE: HeaderName = HeaderName::from_static("ratelimit");
static LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
static REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
static RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// The last value of each slowly changing header, per worker thread.
#[derive(Default)]
struct Reused {
    policy: Option<((u32, u64), HeaderValue)>,
    limit: Option<(u32, HeaderValue)>,
    reset: Option<(u64, HeaderValue)>,
}

thread_local! {
    static REUSED: RefCell<Reused> = RefCell::new(Reused::default());
}

/// `cached` if it was made for `key`, else a fresh value from `make`, remembered.
fn reuse<K: PartialEq + Copy>(
    cached: &mut Option<(K, HeaderValue)>,
    key: K,
    make: impl FnOnce() -> Option<HeaderValue>,
) -> Option<HeaderValue> {
    if let Some((k, v)) = cached
        && *k == key
    {
        return Some(v.clone());
    }
    let v = make()?;
    *cached = Some((key, v.clone()));
    Some(v)
}

/// `"default";r=<remaining>;t=<reset>` without going through `format!`.
fn state(remaining: u32, reset: u64) -> Option<HeaderValue> {
    let mut r = itoa::Buffer::new();
    let mut t = itoa::Buffer::new();
    let (r, t) = (r.format(remaining), t.format(reset));
    let mut out = BytesMut::with_capacity(16 + r.len() + t.len());
    out.extend_from_slice(b"\"default\";r=");
    out.extend_from_slice(r.as_bytes());
    out.extend_from_slice(b";t=");
    out.extend_from_slice(t.as_bytes());
    HeaderValue::from_maybe_shared(out.freeze()).ok()
}

/// Adds `RateLimit-Policy`, `RateLimit` and the `RateLimit-Limit/Remaining/Reset` trio.
pub fn insert_rate_limit_headers(headers: &mut HeaderMap, d: &RateDecision) {
    let reset = ceil_seconds(d.reset_after, 0);
    let window = ceil_seconds(d.window, 1);
    let (policy, limit, reset_value) = REUSED.with_borrow_mut(|r| {
        (
            reuse(&mut r.policy, (d.limit, window), || {
                HeaderValue::from_str(&format!("\"default\";q={};w={window}", d.limit)).ok()
            }),
            reuse(&mut r.limit, d.limit, || Some(HeaderValue::from(d.limit))),
            reuse(&mut r.reset, reset, || Some(HeaderValue::from(reset))),
        )
    });
    // Every value is digits, quotes, `;` and `=`: the `None` arms cannot happen.
    if let Some(v) = policy {
        headers.insert(POLICY.clone(), v);
    }
    if let Some(v) = state(d.remaining, reset) {
        headers.insert(STATE.clone(), v);
    }
    if let Some(v) = limit {
        headers.insert(LIMIT.clone(), v);
    }
    headers.insert(REMAINING.clone(), HeaderValue::from(d.remaining));
    if let Some(v) = reset_value {
        headers.insert(RESET.clone(), v);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn decision(limit: u32, remaining: u32, reset_ms: u64, window_s: u64) -> RateDecision {
        RateDecision {
            allowed: true,
            limit,
            remaining,
            reset_after: Duration::from_millis(reset_ms),
            retry_after: None,
            window: Duration::from_secs(window_s),
        }
    }

    #[test]
    fn writes_both_forms() {
        let mut h = HeaderMap::new();
        insert_rate_limit_headers(&mut h, &decision(40, 39, 50, 2));
        assert_eq!(h.get(&POLICY).unwrap(), "\"default\";q=40;w=2");
        assert_eq!(h.get(&STATE).unwrap(), "\"default\";r=39;t=1");
        assert_eq!(h.get(&LIMIT).unwrap(), "40");
        assert_eq!(h.get(&REMAINING).unwrap(), "39");
        assert_eq!(h.get(&RESET).unwrap(), "1");
    }

    #[test]
    fn follows_the_numbers_as_they_change_between_responses() {
        // The per-thread reuse must never serve a value made for other numbers.
        for (limit, remaining, reset_ms, window_s) in [
            (40, 39, 50, 2),
            (40, 0, 2_000, 2),
            (7, 7, 0, 1),
            (u32::MAX, u32::MAX - 1, 1, 3_600),
            (40, 38, 50, 2),
        ] {
            let d = decision(limit, remaining, reset_ms, window_s);
            let mut h = HeaderMap::new();
            insert_rate_limit_headers(&mut h, &d);
            let reset = ceil_seconds(d.reset_after, 0).to_string();
            let window = ceil_seconds(d.window, 1);
            assert_eq!(
                h.get(&POLICY).unwrap(),
                format!("\"default\";q={limit};w={window}").as_str()
            );
            assert_eq!(
                h.get(&STATE).unwrap(),
                format!("\"default\";r={remaining};t={reset}").as_str()
            );
            assert_eq!(h.get(&LIMIT).unwrap(), limit.to_string().as_str());
            assert_eq!(h.get(&REMAINING).unwrap(), remaining.to_string().as_str());
            assert_eq!(h.get(&RESET).unwrap(), reset.as_str());
        }
    }
}
