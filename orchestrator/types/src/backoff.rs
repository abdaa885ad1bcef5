//! The one retry policy of nlebench's retry loops (a failed job's next attempt, waiting out a
//! store outage, a Perspective request): delays that double from a first delay up to a cap,
//! each stretched by a random share of itself so that workers failing together do not retry
//! together.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// Exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay's base.
    pub first: Duration,
    /// The largest base a delay grows to.
    pub cap: Duration,
}

impl Backoff {
    /// Delays doubling from `first` up to `cap`.
    pub const fn new(first: Duration, cap: Duration) -> Backoff {
        Backoff { first, cap }
    }

    /// The delays between tries, without end: the `n`-th is `min(first · 2ⁿ⁻¹, cap)` plus a
    /// random share of that base (so within `[base, 2 · base)`).
    pub fn delays(&self) -> impl Iterator<Item = Duration> + use<> {
        ExponentialBuilder::new()
            .with_min_delay(self.first)
            .with_max_delay(self.cap.max(self.first))
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
    }

    /// The delay after `failed` failed tries (the first delay after one).
    pub fn delay(&self, failed: u32) -> Duration {
        let n = failed.max(1) as usize - 1;
        self.delays().nth(n).unwrap_or(self.cap)
    }

    /// The base of the delay after `failed` failed tries, without jitter.
    pub fn base(&self, failed: u32) -> Duration {
        let doublings = failed.max(1) - 1;
        self.first
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(self.cap.max(self.first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_within_one_base() {
        let b = Backoff::new(Duration::from_secs(5), Duration::from_secs(60));
        for (failed, base) in [(1, 5), (2, 10), (3, 20), (4, 40), (5, 60), (9, 60)] {
            let base = Duration::from_secs(base);
            assert_eq!(b.base(failed), base);
            for _ in 0..50 {
                let d = b.delay(failed);
                assert!(d >= base && d < base * 2, "{failed}: {d:?} vs {base:?}");
            }
        }
        // Jitter: two series of delays differ.
        let a: Vec<_> = b.delays().take(8).collect();
        let c: Vec<_> = b.delays().take(8).collect();
        assert_ne!(a, c);
        // No delay at all stays none.
        let zero = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert!(zero.delays().take(5).all(|d| d.is_zero()));
    }
}
