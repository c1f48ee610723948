//! Whether an optional dependency (Redis) answers now: what `/readyz` and the `jt_redis_up`
//! gauge ask.

use async_trait::async_trait;

#[async_trait]
pub trait Probe: Send + Sync {
    async fn is_up(&self) -> bool;
}
