//! A Redis queue holding more jobs than one Lua call can move (apalis-redis 1.0 moves every due
//! job in one `unpack`, which fails past about 8,000): 9,000 jobs pushed at once are still
//! delivered to a worker.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use orchestrator::queue::{Deliveries, Queue, QueueConfig, run_worker};
use store::{JobRef, StoreError};
use tokio::sync::mpsc;

/// Sends each delivered job id to the test.
struct Collect(mpsc::UnboundedSender<i64>);

impl Deliveries for Collect {
    fn handle(&self, job: JobRef) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>> {
        let _ = self.0.send(job.job_id);
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
#[cfg_attr(
    not(nlebench_services),
    ignore = "needs Redis: set NLEBENCH_TEST_DATABASE_URL and NLEBENCH_TEST_REDIS_URL (.ci/run does)"
)]
async fn nine_thousand_jobs_pushed_at_once_are_delivered() {
    let url = std::env::var("NLEBENCH_TEST_REDIS_URL")
        .expect("this test needs Redis: set NLEBENCH_TEST_REDIS_URL (.ci/run does)");
    let cfg = QueueConfig {
        url,
        name: format!("scale-{}", std::process::id()),
        heartbeat: Duration::from_secs(1),
        missed_heartbeats: 2,
    };
    let mut queue = Queue::connect(&cfg).await.unwrap();
    let jobs: Vec<JobRef> = (1..=9_000)
        .map(|i| JobRef {
            job_id: i,
            run_id: 1,
            shard: i as i32,
        })
        .collect();
    queue.push(&jobs, 0, None).await.unwrap();
    assert_eq!(queue.held_jobs().await.unwrap().len(), 9_000);

    let (tx, mut rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(run_worker(
        queue,
        "scale-worker".into(),
        Arc::new(Collect(tx)),
        async move {
            let _ = stop_rx.await;
        },
    ));
    // Deliveries arrive (without the fix every fetch fails and none does), the first from the
    // first jobs pushed (within a second Redis orders by task id, not push order), and every
    // job is delivered, once.
    let mut got = Vec::with_capacity(9_000);
    while got.len() < 9_000 {
        let id = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no delivery within a minute after {}", got.len()))
            .unwrap();
        got.push(id);
    }
    let first: Vec<i64> = got[..100].to_vec();
    assert!(
        first.iter().all(|&id| (1..=1000).contains(&id)),
        "{first:?}"
    );
    got.sort_unstable();
    got.dedup();
    assert_eq!(
        got,
        (1..=9_000).collect::<Vec<i64>>(),
        "each job delivered once"
    );
    let _ = stop_tx.send(());
    let _ = worker.await;
}
