//! Retry policy: what happens after a failed attempt. Pure functions, shared by every engine.
//!
//! After attempt `n` of a job with `max_attempts` fails:
//! - if `n >= max_attempts`, or the strategy is [`RetryStrategy::None`], the job fails for good;
//! - otherwise attempt `n + 1` is scheduled after [`retry_delay`]`(strategy, n)`.
//!
//! A lease that expired (a crashed worker) counts as a failed attempt exactly like a reported
//! failure. [`Store::fail_with_retry_at`](crate::Store::fail_with_retry_at) forces the time of the
//! next attempt but still respects `max_attempts`.

use std::time::Duration;

use crate::options::RetryStrategy;

/// The longest delay any strategy produces: one year (an uncapped exponential saturates here).
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(365 * 24 * 3600);

/// What to do after a failed attempt.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum NextStep {
    /// Schedule `attempt` after `delay`.
    Retry {
        /// The next attempt's number.
        attempt: u32,
        /// How long to wait before it.
        delay: Duration,
    },
    /// Fail the job for good.
    GiveUp,
}

/// The delay before the attempt following failed attempt `attempt` (1-based), or `None` for
/// [`RetryStrategy::None`]. Never longer than [`MAX_RETRY_DELAY`] nor an exponential's cap.
pub fn retry_delay(strategy: &RetryStrategy, attempt: u32) -> Option<Duration> {
    match strategy {
        RetryStrategy::None => None,
        RetryStrategy::Fixed { delay } => Some((*delay).min(MAX_RETRY_DELAY)),
        RetryStrategy::Exponential { base, factor, cap } => {
            let limit = cap.unwrap_or(MAX_RETRY_DELAY).min(MAX_RETRY_DELAY);
            let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
            let secs = base.as_secs_f64() * factor.powi(exponent);
            if !secs.is_finite() || secs >= limit.as_secs_f64() {
                Some(limit)
            } else {
                Some(Duration::from_secs_f64(secs.max(0.0)))
            }
        }
    }
}

/// The policy decision after failed attempt `attempt` of a job allowing `max_attempts`.
pub fn after_failure(strategy: &RetryStrategy, attempt: u32, max_attempts: u32) -> NextStep {
    if attempt >= max_attempts {
        return NextStep::GiveUp;
    }
    match retry_delay(strategy, attempt) {
        Some(delay) => NextStep::Retry {
            attempt: attempt + 1,
            delay,
        },
        None => NextStep::GiveUp,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn exp(base_ms: u64, factor: f64, cap_ms: Option<u64>) -> RetryStrategy {
        RetryStrategy::Exponential {
            base: Duration::from_millis(base_ms),
            factor,
            cap: cap_ms.map(Duration::from_millis),
        }
    }

    #[test]
    fn exponential_grows_by_factor_and_stops_at_cap() {
        let s = exp(1000, 2.0, Some(5000));
        let delays: Vec<_> = (1..=5).map(|n| retry_delay(&s, n).unwrap()).collect();
        assert_eq!(
            delays,
            [1000, 2000, 4000, 5000, 5000].map(Duration::from_millis)
        );
    }

    #[test]
    fn fixed_is_constant_and_none_never_retries() {
        let s = RetryStrategy::Fixed {
            delay: Duration::from_secs(30),
        };
        assert_eq!(retry_delay(&s, 1), retry_delay(&s, 9));
        assert_eq!(after_failure(&RetryStrategy::None, 1, 20), NextStep::GiveUp);
    }

    #[test]
    fn last_attempt_gives_up_and_earlier_ones_retry() {
        let s = RetryStrategy::default();
        assert_eq!(after_failure(&s, 3, 3), NextStep::GiveUp);
        assert_eq!(
            after_failure(&s, 1, 3),
            NextStep::Retry {
                attempt: 2,
                delay: Duration::from_secs(1)
            }
        );
    }

    #[test]
    fn huge_attempt_numbers_saturate_instead_of_overflowing() {
        assert_eq!(
            retry_delay(&exp(1000, 10.0, None), u32::MAX),
            Some(MAX_RETRY_DELAY)
        );
    }

    proptest! {
        #[test]
        fn exponential_is_monotonic_and_bounded(
            base in 1u64..100_000,
            factor in 1.0f64..10.0,
            cap in proptest::option::of(1u64..10_000_000),
            attempt in 1u32..200,
        ) {
            let s = exp(base, factor, cap);
            let this = retry_delay(&s, attempt).unwrap();
            let next = retry_delay(&s, attempt + 1).unwrap();
            prop_assert!(next >= this);
            prop_assert!(this <= MAX_RETRY_DELAY);
            if let Some(cap) = cap {
                prop_assert!(this <= Duration::from_millis(cap));
            }
            if attempt == 1 {
                prop_assert_eq!(this, Duration::from_millis(base).min(cap.map_or(MAX_RETRY_DELAY, Duration::from_millis)));
            }
        }

        #[test]
        fn attempts_never_exceed_the_budget(max in 1u32..50, strategy_kind in 0u8..3) {
            let s = match strategy_kind {
                0 => RetryStrategy::None,
                1 => RetryStrategy::Fixed { delay: Duration::from_millis(5) },
                _ => RetryStrategy::default(),
            };
            // Run the state machine: attempt 1, fail, maybe retry, until it gives up.
            let mut attempt = 1;
            let mut runs = 1;
            while let NextStep::Retry { attempt: next, .. } = after_failure(&s, attempt, max) {
                prop_assert_eq!(next, attempt + 1);
                attempt = next;
                runs += 1;
            }
            let expected = if strategy_kind == 0 { 1 } else { max };
            prop_assert_eq!(runs, expected);
        }
    }
}
