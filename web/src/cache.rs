//! A short-lived cache of the aggregate data behind the heaviest pages (the sweeps list, a
//! sweep's grid, the leaderboard): many people watching a dashboard ask for the same
//! aggregates every few seconds. Entries live `ttl` (2 s by default, `--cache-ms`; 0 turns
//! the cache off); editors' actions clear it. Only store data is cached — pages are rendered
//! per request, so no user's session or CSRF token is shared.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use store::dashboard::{LeaderboardData, LeaderboardFilter, Shelf, SweepData, SweepOverview};

/// Entries kept at most per cache (oldest dropped first when full).
const MAX_ENTRIES: usize = 512;

/// Values by key, each valid for `ttl` after it was computed.
pub struct Ttl<K, V> {
    ttl: Duration,
    map: Mutex<HashMap<K, (Instant, Arc<V>)>>,
}

impl<K: Hash + Eq + Clone, V> Ttl<K, V> {
    /// An empty cache.
    pub fn new(ttl: Duration) -> Self {
        Ttl {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The cached value of `key`, or `compute()`'s (then cached).
    pub async fn get_or<E, F, Fut>(&self, key: K, compute: F) -> Result<Arc<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<V, E>>,
    {
        if self.ttl.is_zero() {
            return compute().await.map(Arc::new);
        }
        if let Some((at, v)) = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            && at.elapsed() < self.ttl
        {
            return Ok(v.clone());
        }
        let v = Arc::new(compute().await?);
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            map.retain(|_, (at, _)| at.elapsed() < ttl);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(key, (Instant::now(), v.clone()));
        Ok(v)
    }

    /// Drop every entry.
    pub fn clear(&self) {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

/// Sweeps list pages by (sort, descending, offset, limit): the overviews and the total.
pub type SweepsCache = Ttl<(Shelf, Option<String>, u8, bool, u64, u64), (Vec<SweepOverview>, u64)>;

/// The caches of the dashboard.
pub struct Caches {
    /// Sweeps list pages by (sort, descending, offset, limit).
    pub sweeps: SweepsCache,
    /// A sweep's runs and metrics by name.
    pub sweep: Ttl<String, SweepData>,
    /// Leaderboard data by metric.
    pub leaderboard: Ttl<(String, LeaderboardFilter), LeaderboardData>,
}

impl Caches {
    /// Caches whose entries live `ttl`.
    pub fn new(ttl: Duration) -> Caches {
        Caches {
            sweeps: Ttl::new(ttl),
            sweep: Ttl::new(ttl),
            leaderboard: Ttl::new(ttl),
        }
    }

    /// Forget everything (after a change made from the dashboard).
    pub fn clear(&self) {
        self.sweeps.clear();
        self.sweep.clear();
        self.leaderboard.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // On tokio's paused clock: time moves only with the sleep below.
    #[tokio::test(start_paused = true)]
    async fn values_live_their_ttl_and_clear_forgets_them() {
        let c: Ttl<u8, u32> = Ttl::new(Duration::from_millis(200));
        let v = c.get_or(1, || async { Ok::<_, ()>(7) }).await.unwrap();
        assert_eq!(*v, 7);
        let v = c.get_or(1, || async { Ok::<_, ()>(8) }).await.unwrap();
        assert_eq!(*v, 7, "cached");
        c.clear();
        let v = c.get_or(1, || async { Ok::<_, ()>(9) }).await.unwrap();
        assert_eq!(*v, 9);
        tokio::time::sleep(Duration::from_millis(250)).await;
        let v = c.get_or(1, || async { Ok::<_, ()>(10) }).await.unwrap();
        assert_eq!(*v, 10, "expired");
        let off: Ttl<u8, u32> = Ttl::new(Duration::ZERO);
        off.get_or(1, || async { Ok::<_, ()>(1) }).await.unwrap();
        assert_eq!(
            *off.get_or(1, || async { Ok::<_, ()>(2) }).await.unwrap(),
            2
        );
    }
}
