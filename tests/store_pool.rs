//! The store's PostgreSQL pool survives cancelled work: a store call dropped while its
//! transaction was starting (a dashboard client that disconnects, a job its queue gave up on)
//! must not leave a pooled connection inside a transaction that later writes join and are
//! lost with (sqlx 0.9.0, launchbadge/sqlx#4393). Found by `tests/faults.rs` losing samples.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::future::Future;
use std::time::Duration;

use common::Env;
use sea_orm::ConnectionTrait;
use store::{Completion, Store, WorkerInfo};

#[test]
#[cfg_attr(
    not(nlebench_services),
    ignore = "needs PostgreSQL and Redis: set NLEBENCH_TEST_DATABASE_URL and NLEBENCH_TEST_REDIS_URL (.ci/run does)"
)]
fn writes_after_cancelled_store_calls_are_seen_at_once_and_kept() {
    let team = Env::team();
    team.ok(&["migrate"]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = Store::connect(&team.database_url).await.unwrap();
        let other = sea_orm::Database::connect(&team.database_url)
            .await
            .unwrap();
        let count = || async {
            let row = other
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    "SELECT COUNT(*)::bigint AS n FROM workers",
                ))
                .await
                .unwrap()
                .unwrap();
            row.try_get::<i64>("", "n").unwrap()
        };
        for i in 0..300i64 {
            // A store transaction dropped after a few polls, somewhere in its BEGIN round trip
            // or after it ...
            let mut call = Box::pin(store.complete_job(1, 1, "w"));
            for _ in 0..=i % 6 {
                let ready = std::future::poll_fn(|cx| {
                    std::task::Poll::Ready(call.as_mut().poll(cx).is_ready())
                })
                .await;
                if ready {
                    break;
                }
                std::thread::sleep(Duration::from_micros(i as u64 % 4 * 25));
                tokio::task::yield_now().await;
            }
            drop(call);
            // ... a write, which everyone sees as soon as it returns ...
            store
                .register_worker(&WorkerInfo {
                    name: format!("w{i}"),
                    host: "h".into(),
                    pid: i,
                    device: "cpu".into(),
                    queue: "q".into(),
                    memory_mb: None,
                    release: "0.3.0".into(),
                })
                .await
                .unwrap();
            assert_eq!(count().await, i + 1, "worker w{i} is seen at once");
            // ... and a transaction that ends without a commit keeps it.
            let c = store.complete_job(1, 1, "w").await.unwrap();
            assert!(matches!(c, Completion::Stale(_)), "{c:?}");
            assert_eq!(count().await, i + 1, "worker w{i} is kept");
        }
    });
}
