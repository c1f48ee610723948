//! Per-minute limits shared by all instances: one counter per subject and window in Redis,
//! `jt:fw:<limiter>:<subject>:<window>`, the window being the minute of the Unix clock
//! (`unix_seconds / 60`), counted by one atomic script.
//!
//! [`FixedWindowLimiter::refused`] never asks Redis: each instance remembers, until their
//! window ends, the subjects whose count it saw reach the limit. Another instance's counts are
//! learnt at this instance's next count for the subject, so `count`ed events total at most
//! `limit + instances - 1` per window; `take`, which asks Redis every time, admits exactly
//! `limit`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use keys_domain::ports::{Clock, FixedWindowLimiter, SystemClock};
use redis::Script;

use crate::redis_shared::RedisShared;

/// The window, aligned to the Unix clock so that all instances count in the same one.
const WINDOW_MS: i64 = 60_000;

/// The shared limiter; falls back to the limiter it is given while Redis is down.
pub struct RedisFixedWindow {
    shared: RedisShared,
    /// Names the counters in Redis: limiters sharing a Redis must have different names.
    name: &'static str,
    limit: u32,
    script: Script,
    /// Whose minute it is; every instance must read (nearly) the same.
    clock: Arc<dyn Clock>,
    /// Subjects seen at or over the limit, with their window's end in Unix milliseconds.
    full: DashMap<String, i64, foldhash::fast::RandomState>,
    /// `full`'s entries: while it is 0, `refused` answers without a map lookup.
    full_count: AtomicUsize,
    /// The in-process limiter, counting while Redis is down.
    fallback: Arc<dyn FixedWindowLimiter>,
}

impl RedisFixedWindow {
    /// A limiter of `limit` events per subject and minute (0 is read as 1) across instances,
    /// counting in Redis as `name`, and in `fallback` (the same limit, in this process) while
    /// Redis is unreachable.
    #[must_use]
    pub fn new(
        shared: RedisShared,
        name: &'static str,
        limit: u32,
        fallback: Arc<dyn FixedWindowLimiter>,
    ) -> Self {
        Self {
            shared,
            name,
            limit: limit.max(1),
            script: Script::new(include_str!("fixed_window.lua")),
            clock: Arc::new(SystemClock),
            full: DashMap::with_hasher(foldhash::fast::RandomState::default()),
            full_count: AtomicUsize::new(0),
            fallback,
        }
    }

    /// Reads the time from `clock` rather than the system's (tests use a fixed one).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Forgets subjects whose window has ended (the background sweeper calls this).
    pub fn sweep(&self) {
        let now = self.clock.now().as_millis();
        self.full.retain(|_, end| {
            let keep = now < *end;
            if !keep {
                self.full_count.fetch_sub(1, Ordering::AcqRel);
            }
            keep
        });
    }

    /// Subjects remembered at their limit (for tests).
    #[must_use]
    pub fn tracked(&self) -> usize {
        self.full.len()
    }

    /// The seconds until `subject`'s window ends when this instance saw it at the limit.
    /// While no subject is remembered full, answers without formatting `subject`.
    fn known_full(&self, subject: &dyn std::fmt::Display) -> Option<u64> {
        if self.full_count.load(Ordering::Acquire) == 0 {
            return None;
        }
        let end = *self.full.get(&subject.to_string())?;
        let now = self.clock.now().as_millis();
        (now < end).then(|| retry_after(end, now))
    }

    fn remember_full(&self, subject: &str, end: i64) {
        match self.full.entry(subject.to_owned()) {
            Entry::Occupied(mut known) => {
                let later = (*known.get()).max(end);
                known.insert(later);
            }
            Entry::Vacant(new) => {
                new.insert(end);
                self.full_count.fetch_add(1, Ordering::AcqRel);
            }
        }
    }

    /// Counts one event in Redis (`even_if_full`: past the limit too); `None` while Redis is
    /// down.
    async fn count_shared(&self, subject: &str, even_if_full: bool) -> Option<Result<(), u64>> {
        let now = self.clock.now().as_millis();
        let (window, end) = window_of(now);
        let counter = format!("jt:fw:{}:{subject}:{window}", self.name);
        // Kept a window past its end, so an instance whose clock lags still finds the count.
        let keep_ms = end - now + WINDOW_MS;
        let (limit, script) = (self.limit, &self.script);
        let (count, counted): (u64, u8) = self
            .shared
            .run("fixed-window count", |mut conn| async move {
                script
                    .key(counter)
                    .arg(limit)
                    .arg(keep_ms)
                    .arg(u8::from(even_if_full))
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        if count >= u64::from(limit) {
            self.remember_full(subject, end);
        }
        Some(if counted == 1 {
            Ok(())
        } else {
            Err(retry_after(end, now))
        })
    }
}

/// The window holding `now_ms` (Unix milliseconds): its number and its end.
fn window_of(now_ms: i64) -> (i64, i64) {
    let window = now_ms.div_euclid(WINDOW_MS);
    (window, (window + 1) * WINDOW_MS)
}

/// Whole seconds from `now_ms` to `end_ms`, at least 1 (for `Retry-After`).
fn retry_after(end_ms: i64, now_ms: i64) -> u64 {
    let left_ms = u64::try_from(end_ms.saturating_sub(now_ms)).unwrap_or(0);
    left_ms.div_ceil(1000).max(1)
}

#[async_trait]
impl FixedWindowLimiter for RedisFixedWindow {
    fn refused(&self, subject: &dyn std::fmt::Display) -> Option<u64> {
        // The fallback too: a subject that filled its window while Redis was down stays
        // refused until that window ends.
        self.known_full(subject)
            .or_else(|| self.fallback.refused(subject))
    }

    async fn count(&self, subject: &str) {
        // A window known full stays full: Redis has nothing to add.
        if self.known_full(&subject).is_some() {
            return;
        }
        if self.count_shared(subject, true).await.is_none() {
            self.fallback.count(subject).await;
        }
    }

    async fn take(&self, subject: &str) -> Result<(), u64> {
        if let Some(retry_after) = self.refused(&subject) {
            return Err(retry_after);
        }
        match self.count_shared(subject, false).await {
            Some(taken) => taken,
            None => self.fallback.take(subject).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_the_minutes_of_the_unix_clock() {
        assert_eq!(window_of(0), (0, 60_000));
        assert_eq!(window_of(59_999), (0, 60_000));
        assert_eq!(window_of(60_000), (1, 120_000));
        assert_eq!(
            window_of(1_700_000_030_000),
            (28_333_333, 1_700_000_040_000)
        );
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_and_is_at_least_one() {
        assert_eq!(retry_after(60_000, 0), 60);
        assert_eq!(retry_after(60_000, 1), 60);
        assert_eq!(retry_after(60_000, 59_001), 1);
        assert_eq!(retry_after(60_000, 59_999), 1);
        assert_eq!(retry_after(60_000, 60_000), 1);
        assert_eq!(retry_after(60_000, 70_000), 1);
    }
}
