//! Telling a store outage (server down or restarting, connections lost, pool exhausted) from
//! other errors, and waiting one out: a retry may succeed after an outage, never after a
//! constraint violation or a bad query.

use std::future::Future;
use std::time::{Duration, Instant};

use sea_orm::{DbErr, RuntimeErr};
use tracing::warn;
use types::Backoff;

use super::StoreError;

/// Waits between two tries: from 250 ms, doubling up to 5 s, with jitter.
const BACKOFF: Backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(5));

impl StoreError {
    /// The store could not be reached: another try later may succeed.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Connect { .. } | StoreError::Unavailable(_) => true,
            StoreError::Db(e) => db_unavailable(e),
            _ => false,
        }
    }
}

fn db_unavailable(e: &DbErr) -> bool {
    match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            sqlx_unavailable(e)
        }
        _ => false,
    }
}

fn sqlx_unavailable(e: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error;
    match e {
        Error::Io(_)
        | Error::Tls(_)
        | Error::Protocol(_)
        | Error::PoolTimedOut
        | Error::PoolClosed
        | Error::WorkerCrashed => true,
        // PostgreSQL: connection exceptions (08…) and operator intervention (57P…: shutdown,
        // crash recovery); SQLite: the database is busy or locked.
        Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P") || c == "5" || c == "6"),
        _ => false,
    }
}

/// Run `op` until it succeeds, fails with an error that is not an outage, or `budget` has
/// passed since the first try (then the last outage error is returned). Waits follow
/// [`BACKOFF`]; each is logged with `what`.
pub async fn retry<T, F, Fut>(budget: Duration, what: &str, mut op: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let start = Instant::now();
    let mut delays = BACKOFF.delays();
    loop {
        let delay = delays.next().unwrap_or(BACKOFF.cap);
        match op().await {
            Err(e) if e.is_unavailable() && start.elapsed() + delay < budget => {
                warn!(
                    "store unavailable ({what}), retrying in {delay:?} ({:.0} s of {:.0} s): {e}",
                    start.elapsed().as_secs_f64(),
                    budget.as_secs_f64()
                );
                tokio::time::sleep(delay).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_told_from_other_errors() {
        let io = || sea_orm::sqlx::Error::Io(std::io::Error::other("connection reset"));
        let exec = |e| StoreError::Db(DbErr::Exec(RuntimeErr::SqlxError(std::sync::Arc::new(e))));
        assert!(exec(io()).is_unavailable());
        assert!(exec(sea_orm::sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(!exec(sea_orm::sqlx::Error::RowNotFound).is_unavailable());
        assert!(!StoreError::NoRun(3).is_unavailable());
        assert!(!StoreError::Db(DbErr::RecordNotFound("x".into())).is_unavailable());
    }

    #[tokio::test]
    async fn retries_outages_until_the_budget_and_nothing_else() {
        let mut tries = 0;
        let r: Result<(), _> = retry(Duration::from_millis(600), "test", || {
            tries += 1;
            async {
                Err(StoreError::Db(DbErr::ConnectionAcquire(
                    sea_orm::ConnAcquireErr::Timeout,
                )))
            }
        })
        .await;
        assert!(r.is_err_and(|e| e.is_unavailable()));
        assert!(tries >= 2, "tried {tries} times");
        let mut tries = 0;
        let r: Result<(), _> = retry(Duration::from_secs(60), "test", || {
            tries += 1;
            async { Err(StoreError::NoRun(1)) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(tries, 1, "a non-outage error is returned at once");
    }
}
