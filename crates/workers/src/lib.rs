//! The background loops of a server instance, each started by the composition root and stopped
//! by one cancellation token:
//!
//! - [`spawn_usage_flusher`]: writes the usage counted in memory in batches.
//! - [`spawn_delivery_worker`]: drains the alert outbox through the mailer.
//! - [`spawn_sweeper`]: drops idle per-key state of the in-process adapters.
//! - [`spawn_key_change_watch`]: evicts from the key cache what changed on other instances.
//! - [`spawn_sign_in_link_worker`]: looks up and sends the sign-in links requested over HTTP.
//!
//! Each loop drives a use case or a port of `keys-domain`; none names an adapter.

mod delivery_worker;
mod key_change_watch;
mod sign_in_link_worker;
mod sweeper;
mod usage_flusher;

pub use delivery_worker::{DELIVERY_BATCH, spawn_delivery_worker};
pub use key_change_watch::{KeyChangeWatch, spawn_key_change_watch};
pub use sign_in_link_worker::{
    LinkOutcomeObserver, QueueFull, SignInLinkRequests, spawn_sign_in_link_worker,
};
pub use sweeper::{Sweep, spawn_sweeper};
pub use usage_flusher::{DroppedAtExit, UsageFlusher, spawn_usage_flusher};
