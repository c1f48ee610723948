//! Revocation pub/sub: an instance that changes a key publishes its hash, and one that signs a
//! user out publishes the user's id; every instance's listener evicts them from its caches.
//!
//! Pub/sub is fire-and-forget, so messages sent while a listener is disconnected are lost. The
//! listener therefore tells the caches that announcements may have been missed after every
//! (re)subscription, and they forget everything.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt as _;
use keys_domain::ports::{CacheInvalidation, RevocationNotifier};
use keys_domain::{KeyHash, UserId};
use tokio::task::JoinHandle;

use crate::redis_shared::{OP_TIMEOUT, RedisShared};

/// The channel that carries the hex SHA-256 of each changed key and the id of each user who
/// signed out.
pub const REVOCATION_CHANNEL: &str = "jt:revocations";

/// What another instance announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announcement {
    /// The key with this hash was revoked or rotated.
    KeyChanged(KeyHash),
    /// The user signed out: their earlier dashboard tokens are refused.
    SignedOut(UserId),
}

/// Marks a sign-out message; a key's hex hash never starts with it.
const SIGNED_OUT_TAG: &str = "u:";

/// Connecting and subscribing must answer within this.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a quiet subscription is pinged, to notice a connection that died silently.
const PING_EVERY: Duration = Duration::from_secs(1);
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Publishes key changes and listens for other instances' ones.
#[derive(Clone, Debug)]
pub struct RedisRevocationBus {
    shared: RedisShared,
    channel: String,
}

impl RedisRevocationBus {
    #[must_use]
    pub fn new(shared: RedisShared) -> Self {
        Self {
            shared,
            channel: REVOCATION_CHANNEL.to_owned(),
        }
    }

    /// The same bus on another channel (tests keep their messages apart with it).
    #[must_use]
    pub fn with_channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = channel.into();
        self
    }

    /// Spawns a task that subscribes (and re-subscribes after any disconnect, with back-off) and
    /// passes each announcement to `caches`, and tells them that announcements may have been
    /// missed after every (re)subscription. The task runs until aborted.
    pub fn spawn_listener(&self, caches: Arc<dyn CacheInvalidation>) -> JoinHandle<()> {
        let client = self.shared.client().clone();
        let channel = self.channel.clone();
        tokio::spawn(async move {
            let mut backoff = MIN_BACKOFF;
            let mut announced_loss = false;
            loop {
                match listen(&client, &channel, caches.as_ref()).await {
                    Ok(()) => {
                        // Subscribed for a while: the next failure starts the back-off afresh.
                        backoff = MIN_BACKOFF;
                        announced_loss = false;
                        tracing::warn!("redis: revocation subscription lost; re-subscribing");
                    }
                    Err(error) => {
                        if !announced_loss {
                            tracing::warn!(
                                "redis: cannot subscribe to revocations ({error}); retrying with back-off"
                            );
                            announced_loss = true;
                        }
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        })
    }
}

/// One subscription's life: `Ok` when it was established and later ended, `Err` when it could
/// not be established.
async fn listen(
    client: &redis::Client,
    channel: &str,
    caches: &dyn CacheInvalidation,
) -> Result<(), String> {
    let pubsub = tokio::time::timeout(SUBSCRIBE_TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let (mut sink, mut stream) = pubsub.split();
    tokio::time::timeout(SUBSCRIBE_TIMEOUT, sink.subscribe(channel))
        .await
        .map_err(|_| "subscribe timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    tracing::info!("redis: subscribed to revocations");
    caches.announcements_may_have_been_missed();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(message) = message else { return Ok(()) };
                match message.get_payload::<String>().ok().as_deref().and_then(parse_message) {
                    Some((announcement, sent_at)) => {
                        match announcement {
                            Announcement::KeyChanged(hash) => caches.key_changed(&hash),
                            Announcement::SignedOut(user) => caches.signed_out(&user),
                        }
                        if let Some(sent_at) = sent_at {
                            record_propagation(sent_at);
                        }
                    }
                    None => tracing::warn!("redis: ignored a malformed revocation message"),
                }
            }
            _ = ping.tick() => {
                let pong = tokio::time::timeout(OP_TIMEOUT * 4, sink.ping::<redis::Value>()).await;
                if !matches!(pong, Ok(Ok(_))) {
                    return Ok(());
                }
            }
        }
    }
}

/// `jt_revocation_propagation_seconds`: from the publishing instance's clock to this one's (a
/// no-op unless the binary installed a metrics recorder; clock skew between hosts adds to it).
const PROPAGATION: &str = "jt_revocation_propagation_seconds";

fn epoch_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// `HASH_HEX:SENT_AT_MILLIS` (or the bare hash that instances before the timestamp sent), or
/// `u:SENT_AT_MILLIS:USER_ID` (the id last: ids are opaque and may hold a colon).
fn parse_message(payload: &str) -> Option<(Announcement, Option<u128>)> {
    if let Some(rest) = payload.strip_prefix(SIGNED_OUT_TAG) {
        let (millis, user) = rest.split_once(':')?;
        if user.is_empty() {
            return None;
        }
        let announcement = Announcement::SignedOut(UserId::new(user));
        return Some((announcement, Some(millis.parse().ok()?)));
    }
    let (hex, sent_at) = match payload.split_once(':') {
        Some((hex, millis)) => (hex, Some(millis.parse().ok()?)),
        None => (payload, None),
    };
    Some((Announcement::KeyChanged(KeyHash::from_hex(hex)?), sent_at))
}

fn record_propagation(sent_at_millis: u128) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    metrics::histogram!(PROPAGATION).record(propagation_seconds(sent_at_millis, now));
}

/// From `sent_at_millis` (whole milliseconds: the message's format) to `now` (since the epoch).
/// `now` is kept to the microsecond: in whole milliseconds on both ends, a propagation within one
/// host was mostly 0, and the histogram read `_sum 0` for real observations. The sent time's
/// lost fraction makes this an upper bound, at most 1 ms over; clock skew that puts the sender
/// ahead reads 0.
#[allow(clippy::cast_precision_loss)]
fn propagation_seconds(sent_at_millis: u128, now: Duration) -> f64 {
    let elapsed_micros = now
        .as_micros()
        .saturating_sub(sent_at_millis.saturating_mul(1000));
    elapsed_micros as f64 / 1e6
}

impl RedisRevocationBus {
    /// Publishes `message` to every instance (this one's listener included). Tried even while
    /// Redis is marked down (within a short timeout); `false` when it could not be sent.
    async fn publish(&self, message: String) -> bool {
        let channel = self.channel.as_str();
        self.shared
            .attempt("revocation publish", |mut conn| async move {
                redis::cmd("PUBLISH")
                    .arg(channel)
                    .arg(message)
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await
            .is_some()
    }
}

/// When a message cannot be sent, the listeners' resync on reconnection and the caches' TTL
/// cover the loss.
#[async_trait]
impl RevocationNotifier for RedisRevocationBus {
    async fn key_changed(&self, hash: &KeyHash) {
        if !self
            .publish(format!("{}:{}", hash.to_hex(), epoch_millis()))
            .await
        {
            tracing::warn!(
                "redis: revocation of {hash:?} not published (redis down); other instances resync on reconnection"
            );
        }
    }

    async fn signed_out(&self, user: &UserId) {
        if !self
            .publish(format!("{SIGNED_OUT_TAG}{}:{user}", epoch_millis()))
            .await
        {
            tracing::warn!(
                user_id = user.as_str(),
                "redis: sign-out not published (redis down); other instances resync on reconnection"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_messages_with_and_without_the_sending_time() {
        let hash = KeyHash::of("jt_sk_example");
        let hex = hash.to_hex();
        let key = Announcement::KeyChanged(hash);
        assert_eq!(parse_message(&hex), Some((key.clone(), None)));
        assert_eq!(
            parse_message(&format!("{hex}:1700000000123")),
            Some((key, Some(1_700_000_000_123)))
        );
        assert_eq!(parse_message(&format!("{hex}:soon")), None);
        assert_eq!(parse_message("nothex:1"), None);
    }

    /// Issue 34: an announcement heard within the millisecond it was sent is a small positive
    /// time, not 0 (the histogram's `_sum` read 0 with `_count` 1).
    #[test]
    fn propagation_is_measured_below_the_millisecond() {
        let sent = 1_700_000_000_123;
        let heard = Duration::from_micros(1_700_000_000_123_400);
        let seconds = propagation_seconds(sent, heard);
        assert!((seconds - 0.000_4).abs() < 1e-9, "{seconds}");
        let later = Duration::from_micros(1_700_000_000_373_000);
        assert!((propagation_seconds(sent, later) - 0.25).abs() < 1e-9);
        // The sender's clock ahead of this one's.
        assert!(propagation_seconds(sent, Duration::from_millis(1_700_000_000_000)).abs() < 1e-12);
    }

    #[test]
    fn reads_sign_outs_whatever_the_user_id_holds() {
        let signed_out = |id: &str| Some((Announcement::SignedOut(UserId::new(id)), Some(17)));
        assert_eq!(parse_message("u:17:usr_ada"), signed_out("usr_ada"));
        assert_eq!(parse_message("u:17:odd:id"), signed_out("odd:id"));
        assert_eq!(parse_message("u:17:"), None);
        assert_eq!(parse_message("u:soon:usr_ada"), None);
        assert_eq!(parse_message("u:usr_ada"), None);
    }
}
