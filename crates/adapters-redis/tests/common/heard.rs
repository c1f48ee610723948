//! Caches that only write down what the revocation bus's listener told them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use adapters_redis::Announcement;
use keys_domain::ports::CacheInvalidation;
use keys_domain::{KeyHash, UserId};

#[derive(Default)]
pub struct Heard {
    announcements: Mutex<Vec<(Announcement, Instant)>>,
    resyncs: AtomicU32,
}

impl Heard {
    /// When `announcement` was first heard.
    pub fn first(&self, announcement: &Announcement) -> Option<Instant> {
        self.announcements
            .lock()
            .unwrap()
            .iter()
            .find(|(a, _)| a == announcement)
            .map(|&(_, at)| at)
    }

    /// (Re)subscriptions so far: each told the caches that announcements may have been missed.
    pub fn resyncs(&self) -> u32 {
        self.resyncs.load(Ordering::SeqCst)
    }

    fn heard(&self, announcement: Announcement) {
        self.announcements
            .lock()
            .unwrap()
            .push((announcement, Instant::now()));
    }
}

impl CacheInvalidation for Heard {
    fn key_changed(&self, key: &KeyHash) {
        self.heard(Announcement::KeyChanged(*key));
    }

    fn keys_may_have_changed(&self) {
        unreachable!("the bus reports missed announcements, not a feed gap");
    }

    fn keys_current_as_of(&self, _: Instant) {
        unreachable!("the bus does not follow the change feed");
    }

    fn signed_out(&self, user: &UserId) {
        self.heard(Announcement::SignedOut(user.clone()));
    }

    fn announcements_may_have_been_missed(&self) {
        self.resyncs.fetch_add(1, Ordering::SeqCst);
    }
}
