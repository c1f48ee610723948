//! A key's use per clock hour, for the dashboard's chart: the last 24 whole hours and the
//! current one. Counted by the usage flush in the same write as `usage_count`.

use std::time::Duration;

use crate::timestamp::Timestamp;

/// Hours the chart shows: 24 whole hours plus the current one.
pub const HOURS_SHOWN: usize = 25;
/// How long hourly counts are kept before the sweeper removes them: the chart's day, and the
/// week before the current hour that `usage_spike` compares it with, with a margin.
pub const HOURS_KEPT: Duration = Duration::from_secs(8 * 24 * 3600);

const HOUR_MS: i64 = 3_600_000;

/// One hour's count; `start` is the hour's first instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourCount {
    pub start: Timestamp,
    pub count: u64,
}

/// The start of the clock hour `at` falls in.
#[must_use]
pub fn hour_start(at: Timestamp) -> Timestamp {
    Timestamp::from_millis(at.as_millis().div_euclid(HOUR_MS) * HOUR_MS)
}

/// The first hour the chart shows at `now`.
#[must_use]
pub fn first_hour_shown(now: Timestamp) -> Timestamp {
    Timestamp::from_millis(hour_start(now).as_millis() - 24 * HOUR_MS)
}

/// The [`HOURS_SHOWN`] hours ending with `now`'s, oldest first, with `stored` counts filled in
/// and zero for hours without any.
#[must_use]
pub fn chart(now: Timestamp, stored: &[HourCount]) -> Vec<HourCount> {
    let first = first_hour_shown(now).as_millis();
    (0..HOURS_SHOWN)
        .map(|i| {
            let start = Timestamp::from_millis(first + i64::try_from(i).unwrap_or(0) * HOUR_MS);
            let count = stored
                .iter()
                .filter(|h| h.start == start)
                .map(|h| h.count)
                .sum();
            HourCount { start, count }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_has_25_hours_oldest_first_ending_with_the_current_one() {
        let now = Timestamp::from_millis(1_800_000_000_000 + 1234);
        let current = hour_start(now);
        assert!(current <= now && now.as_millis() - current.as_millis() < HOUR_MS);
        let old = Timestamp::from_millis(current.as_millis() - 24 * HOUR_MS);
        let too_old = Timestamp::from_millis(current.as_millis() - 25 * HOUR_MS);
        let c = chart(
            now,
            &[
                HourCount {
                    start: current,
                    count: 3,
                },
                HourCount {
                    start: old,
                    count: 2,
                },
                HourCount {
                    start: too_old,
                    count: 9,
                },
            ],
        );
        assert_eq!(c.len(), HOURS_SHOWN);
        assert_eq!(
            c[0],
            HourCount {
                start: old,
                count: 2
            }
        );
        assert_eq!(
            c[24],
            HourCount {
                start: current,
                count: 3
            }
        );
        assert_eq!(c.iter().map(|h| h.count).sum::<u64>(), 5);
        assert!(
            c.windows(2)
                .all(|w| w[1].start.as_millis() - w[0].start.as_millis() == HOUR_MS)
        );
    }
}
