//! Sign-in attempts are limited per client address and per account name (GCRA limits from
//! `governor`): passwords cannot be guessed quickly from one address, nor against one
//! account from many.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

/// Attempts one client address may make at once, then one per [`CLIENT_EVERY`].
const CLIENT_BURST: u32 = 20;
const CLIENT_EVERY: Duration = Duration::from_secs(6);
/// Attempts on one account at once, then one per [`ACCOUNT_EVERY`].
const ACCOUNT_BURST: u32 = 5;
const ACCOUNT_EVERY: Duration = Duration::from_secs(60);
/// Remembered keys beyond which idle ones are forgotten.
const MAX_KEYS: usize = 10_000;

/// A keyed limit on the clock `C`.
type Limiter<K, C> =
    RateLimiter<K, DefaultKeyedStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The sign-in limits of one dashboard process (on the system clock; tests give their own).
#[derive(Debug)]
pub struct SignInLimits<C: Clock = DefaultClock> {
    client: Limiter<IpAddr, C>,
    account: Limiter<String, C>,
    clock: C,
}

/// A refused attempt: who made too many, and when the next is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Too many attempts from this client address.
    Client(Duration),
    /// Too many attempts on this account.
    Account(Duration),
}

impl Refused {
    /// How long until the next attempt is allowed (whole seconds, at least one).
    pub fn retry_after(self) -> u64 {
        let (Refused::Client(d) | Refused::Account(d)) = self;
        d.as_secs_f64().ceil().max(1.0) as u64
    }

    /// The message the sign-in page shows.
    pub fn message(self) -> String {
        let whom = match self {
            Refused::Client(_) => "from this address",
            Refused::Account(_) => "for this account",
        };
        format!(
            "too many sign-in attempts {whom}; try again in {} s",
            self.retry_after()
        )
    }
}

fn quota(burst: u32, every: Duration) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(every)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl Default for SignInLimits {
    fn default() -> Self {
        SignInLimits::with_clock(DefaultClock::default())
    }
}

impl<C: Clock + Clone> SignInLimits<C> {
    /// The limits, timed by `clock`.
    pub fn with_clock(clock: C) -> Self {
        SignInLimits {
            client: RateLimiter::new(
                quota(CLIENT_BURST, CLIENT_EVERY),
                DefaultKeyedStateStore::default(),
                clock.clone(),
            ),
            account: RateLimiter::new(
                quota(ACCOUNT_BURST, ACCOUNT_EVERY),
                DefaultKeyedStateStore::default(),
                clock.clone(),
            ),
            clock,
        }
    }

    /// Count an attempt on `account` from `client` (unknown without a peer address); `Err`
    /// when one of the two has had too many.
    pub fn check(&self, client: Option<IpAddr>, account: &str) -> Result<(), Refused> {
        if self.client.len() + self.account.len() > MAX_KEYS {
            self.client.retain_recent();
            self.account.retain_recent();
        }
        let now = self.clock.now();
        if let Some(ip) = client {
            self.client
                .check_key(&ip)
                .map_err(|n| Refused::Client(n.wait_time_from(now)))?;
        }
        let key: String = account.trim().to_lowercase().chars().take(64).collect();
        self.account
            .check_key(&key)
            .map_err(|n| Refused::Account(n.wait_time_from(now)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_refused_after_its_burst_and_a_client_after_its_own() {
        // A clock that stands still: no attempt is refilled while the test runs.
        let clock = governor::clock::FakeRelativeClock::default();
        let l = SignInLimits::with_clock(clock.clone());
        let me: IpAddr = "192.0.2.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        for _ in 0..ACCOUNT_BURST {
            assert_eq!(l.check(Some(me), "kari"), Ok(()));
        }
        let refused = l.check(Some(me), "Kari ").unwrap_err();
        assert!(matches!(refused, Refused::Account(_)), "{refused:?}");
        assert!((1..=60).contains(&refused.retry_after()));
        assert!(refused.message().contains("for this account"));
        // Another client is refused on that account too.
        let other: IpAddr = "192.0.2.2".parse().unwrap_or(me);
        assert!(matches!(
            l.check(Some(other), "kari"),
            Err(Refused::Account(_))
        ));
        // One client guessing many accounts runs out of its own attempts.
        let attempts = (0..100)
            .take_while(|i| l.check(Some(me), &format!("u{i}")).is_ok())
            .count();
        assert_eq!(attempts as u32, CLIENT_BURST - ACCOUNT_BURST - 1);
        let refused = l.check(Some(me), "someone").unwrap_err();
        assert!(
            refused.message().contains("from this address"),
            "{refused:?}"
        );
        assert_eq!(
            l.check(Some(other), "someone"),
            Ok(()),
            "other clients go on"
        );
        // After the account's period, one more attempt on it.
        clock.advance(ACCOUNT_EVERY);
        assert_eq!(l.check(Some(other), "kari"), Ok(()));
    }
}
