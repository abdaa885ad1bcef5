//! No N+1: every page runs the same number of store queries whatever the number of rows it
//! shows (two synthetic histories, ten times apart in size).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use devtools::seed::{SeedSize, seed_history};
use store::Store;
use tower::ServiceExt;

const PAGES: [&str; 10] = [
    "/?per_page=500",
    "/sweeps/bench-0000",
    "/runs/1?per_page=500",
    "/runs/1?q=Trondheim&per_page=500",
    "/compare?runs=1,3&per_page=500",
    "/leaderboard?metric=bias_paper",
    "/workers?per_page=500",
    "/baselines",
    "/sweeps/bench-0000/export.json",
    "/runs/1/samples.csv",
];

/// The dashboard over `store`, viewable by anyone, without the aggregate cache.
fn public_app(store: Store) -> axum::Router {
    web::router(web::AppState {
        store,
        stale: |_, _| false,
        access: web::access::Access::Public,
        secure_cookies: false,
        queue: None,
        caches: std::sync::Arc::new(web::cache::Caches::new(std::time::Duration::ZERO)),
        limits: Default::default(),
        polls: Default::default(),
        queue_name: orchestrator::queue::DEFAULT_QUEUE.into(),
        trusted_proxies: Default::default(),
    })
}

async fn counts(size: SeedSize) -> Vec<usize> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.sqlite").display());
    let mut store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    seed_history(&store, size, |_, _, _| {}).await.unwrap();
    let n = store.count_queries();
    let app = public_app(store);
    let mut out = Vec::new();
    for page in PAGES {
        let before = n.load(Ordering::SeqCst);
        let res = app
            .clone()
            .oneshot(Request::get(page).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{page}");
        out.push(n.load(Ordering::SeqCst) - before);
    }
    out
}

#[tokio::test]
async fn query_counts_do_not_grow_with_the_rows_shown() {
    let small = counts(SeedSize {
        sweeps: 2,
        runs: 8,
        samples_per_run: 5,
        metrics_per_run: 5,
        workers: 2,
    })
    .await;
    let large = counts(SeedSize {
        sweeps: 2,
        runs: 80,
        samples_per_run: 50,
        metrics_per_run: 5,
        workers: 20,
    })
    .await;
    for ((page, a), b) in PAGES.iter().zip(&small).zip(&large) {
        assert!(*a > 0, "{page}: no query counted");
        assert_eq!(
            a, b,
            "{page}: {a} queries with few rows, {b} with ten times more"
        );
    }
}

/// Four live streams of one active sweep share one store poll: each of their events costs
/// one query in all, not one per stream.
#[tokio::test]
async fn live_streams_of_one_sweep_share_one_poll() {
    use futures::StreamExt;
    use sea_orm::ConnectionTrait;

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.sqlite").display());
    let mut store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let size = SeedSize {
        sweeps: 1,
        runs: 4,
        samples_per_run: 1,
        metrics_per_run: 1,
        workers: 1,
    };
    seed_history(&store, size, |_, _, _| {}).await.unwrap();
    store
        .connection()
        .execute_unprepared("UPDATE runs SET status = 'queued'")
        .await
        .unwrap();
    let n = store.count_queries();
    let app = public_app(store);
    let mut streams = Vec::new();
    for _ in 0..4 {
        let res = app
            .clone()
            .oneshot(
                Request::get("/sweeps/bench-0000/events")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        streams.push(res.into_body().into_data_stream());
    }
    let events = 3;
    let read = streams.iter_mut().map(|s| async move {
        for _ in 0..events {
            let chunk = s.next().await.unwrap().unwrap();
            assert!(
                String::from_utf8_lossy(&chunk).contains("event: progress"),
                "{chunk:?}"
            );
        }
    });
    futures::future::join_all(read).await;
    let polls = n.load(Ordering::SeqCst);
    assert!(
        polls <= events + 1,
        "{polls} store queries for {events} events on each of 4 streams"
    );
}

/// `Store::metric_versions` (a recursive loose index scan) gives what a plain `SELECT DISTINCT`
/// gives, with several implementation versions per metric name.
#[tokio::test]
async fn metric_versions_by_loose_scan_equal_a_distinct_scan() {
    use sea_orm::{ConnectionTrait, Statement};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.sqlite").display());
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    assert!(store.metric_versions().await.unwrap().is_empty());
    seed_history(
        &store,
        SeedSize {
            sweeps: 2,
            runs: 40,
            samples_per_run: 1,
            metrics_per_run: 5,
            workers: 1,
        },
        |_, _, _| {},
    )
    .await
    .unwrap();
    let db = sea_orm::Database::connect(&url).await.unwrap();
    for sql in [
        "UPDATE metrics SET version = 3 WHERE run_id % 3 = 0",
        "UPDATE metrics SET version = 0 WHERE run_id % 7 = 0",
    ] {
        db.execute_unprepared(sql).await.unwrap();
    }
    let distinct: Vec<(String, i32)> = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT DISTINCT name, version FROM metrics ORDER BY name, version",
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.try_get("", "name").unwrap(),
                r.try_get("", "version").unwrap(),
            )
        })
        .collect();
    assert!(distinct.len() >= 15, "{distinct:?}");
    assert_eq!(store.metric_versions().await.unwrap(), distinct);
    let mut names: Vec<String> = distinct.into_iter().map(|(n, _)| n).collect();
    names.dedup();
    assert_eq!(store.metric_names().await.unwrap(), names);
}
