//! Request ids (`X-Request-Id`) and the W3C trace context (`traceparent`) of a request.
//!
//! An inbound `X-Request-Id` of 1 to 128 printable ASCII characters is kept; any other (or none)
//! is replaced by a generated one. The id of the request being served is readable from anywhere
//! inside it ([`current`]), so every error body can quote it without threading it through.

use std::hash::{BuildHasher, RandomState};
use std::rc::Rc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::http::header::{HeaderMap, HeaderName};

/// `X-Request-Id`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Longest inbound id kept.
const MAX_LEN: usize = 128;

tokio::task_local! {
    static CURRENT: RequestId;
}

/// A request's id, cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(Rc<str>);

impl RequestId {
    /// The inbound id if it is acceptable, else a new one.
    #[must_use]
    pub fn of(headers: &HeaderMap) -> Self {
        Self::and_trace(headers).0
    }

    /// The request id and the trace, generating one value for both when neither came in.
    #[must_use]
    pub fn and_trace(headers: &HeaderMap) -> (Self, TraceContext) {
        let inbound = headers
            .get(&X_REQUEST_ID)
            .map(actix_web::http::header::HeaderValue::as_bytes)
            .filter(|v| is_acceptable(v))
            .and_then(|v| std::str::from_utf8(v).ok());
        let trace = headers
            .get(&TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_traceparent);
        match (inbound, trace) {
            (Some(id), Some(trace)) => (Self(id.into()), trace),
            (Some(id), None) => (Self(id.into()), TraceContext::new()),
            (None, Some(trace)) => (Self(generate_hex128().into()), trace),
            (None, None) => {
                let trace = TraceContext::new();
                (Self(trace.trace_id.as_str().into()), trace)
            }
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Runs `f` with this as the [`current`] id.
    pub async fn scope<F: Future>(self, f: F) -> F::Output {
        CURRENT.scope(self, f).await
    }

    /// Runs `f` with this as the [`current`] id.
    pub fn sync_scope<R>(self, f: impl FnOnce() -> R) -> R {
        CURRENT.sync_scope(self, f)
    }
}

impl serde::Serialize for RequestId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of the request being served, if any.
#[must_use]
pub fn current() -> Option<RequestId> {
    CURRENT.try_with(Clone::clone).ok()
}

/// 1 to 128 characters, each printable ASCII (space to `~`).
fn is_acceptable(v: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&v.len()) && v.iter().all(|b| (0x20..=0x7e).contains(b))
}

/// 32 lowercase hex digits, unique in this process and unpredictable across processes: a
/// per-process keyed hash of a counter. Cheaper than asking the OS for randomness per request,
/// and the same shape as a W3C trace id, so it serves as one when none comes in.
fn generate_hex128() -> String {
    static KEYS: LazyLock<RandomState> = LazyLock::new(RandomState::new);
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let (a, b) = (KEYS.hash_one(n), KEYS.hash_one((n, 1u8)));
    // By hand: `format!("{a:016x}{b:016x}")` was a visible share of a request.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    for (i, word) in [a, b].into_iter().enumerate() {
        for j in 0..16 {
            out[i * 16 + j] = HEX[usize::try_from((word >> (60 - 4 * j)) & 0xf).unwrap_or(0)];
        }
    }
    out.iter().map(|&c| char::from(c)).collect()
}

/// The trace a request belongs to: the inbound `traceparent`'s trace id and parent span id, or
/// a new trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// The caller's span id (16 hex digits), when the trace was continued.
    pub parent_id: Option<String>,
}

impl TraceContext {
    /// From a valid `traceparent` (version `00` or a later one read as `00`), else a new trace.
    #[must_use]
    pub fn of(headers: &HeaderMap) -> Self {
        RequestId::and_trace(headers).1
    }

    fn new() -> Self {
        Self {
            trace_id: generate_hex128(),
            parent_id: None,
        }
    }
}

/// `version-traceid-parentid-flags`, lowercase hex; all-zero ids and version `ff` are invalid.
fn parse_traceparent(v: &str) -> Option<TraceContext> {
    let mut parts = v.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    // Version 00 has exactly four parts; later versions may append more.
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    (hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && nonzero(trace)
        && hex(parent, 16)
        && nonzero(parent)
        && hex(flags, 2))
    .then(|| TraceContext {
        trace_id: trace.to_owned(),
        parent_id: Some(parent.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    #[test]
    fn keeps_an_acceptable_inbound_id_and_replaces_others() {
        assert_eq!(
            RequestId::of(&headers("x-request-id", "abc-123")).as_str(),
            "abc-123"
        );
        assert_eq!(
            RequestId::of(&headers("x-request-id", "with space ok")).as_str(),
            "with space ok"
        );
        let long = "x".repeat(129);
        let generated = RequestId::of(&headers("x-request-id", &long));
        assert_eq!(generated.as_str().len(), 32);
        let a = RequestId::of(&HeaderMap::new());
        let b = RequestId::of(&HeaderMap::new());
        assert_ne!(a, b);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn continues_a_valid_traceparent_only() {
        let t = TraceContext::of(&headers(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ));
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.parent_id.as_deref(), Some("00f067aa0ba902b7"));
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "garbage",
        ] {
            let t = TraceContext::of(&headers("traceparent", bad));
            assert!(t.parent_id.is_none(), "{bad}");
            assert_eq!(t.trace_id.len(), 32);
        }
    }

    #[test]
    fn current_is_the_scoped_id() {
        assert!(current().is_none());
        let id = RequestId::of(&headers("x-request-id", "r-1"));
        id.sync_scope(|| assert_eq!(current().unwrap().as_str(), "r-1"));
    }
}
