//! A key's client on the wire (`GET /api/v1/keys/{id}/clients`).

use keys_domain::Timestamp;
use keys_domain::ports::ListedClient;
use serde::Serialize;

/// One client: a network and a user agent, never a full address.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyClientObject<'a> {
    /// The client address's IPv4 /24 or IPv6 /48, e.g. `203.0.113.0/24`.
    pub network: String,
    /// The first product token of `User-Agent` (at most 64 characters), `-` when absent.
    pub user_agent: &'a str,
    #[serde(serialize_with = "super::wire::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub first_seen: Timestamp,
    #[serde(serialize_with = "super::wire::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub last_seen: Timestamp,
    pub requests: u64,
    /// Whether any of its requests carried an `Origin` header (a browser sent it).
    pub browser: bool,
    /// Pass as `starting_after` for the next page.
    pub cursor: String,
}

impl<'a> KeyClientObject<'a> {
    #[must_use]
    pub fn of(listed: &'a ListedClient, cursor: String) -> Self {
        let c = &listed.client;
        Self {
            network: c.network.to_string(),
            user_agent: c.user_agent.as_str(),
            first_seen: c.first_seen,
            last_seen: c.last_seen,
            requests: c.requests,
            browser: c.browser,
            cursor,
        }
    }
}
