//! The aggregates the dashboard reads (runs per sweep and status, the leaderboard's newest run
//! per task, model and adapter; migration 11) stay equal to counting and grouping the history
//! itself, through every kind of write: runs queued again, running, finishing and failing,
//! rescoring, cells dropped or moved, runs and sweeps deleted. On SQLite, and on PostgreSQL
//! where `NLEBENCH_TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use std::collections::BTreeMap;

use devtools::seed::{SeedSize, seed_history};
use sea_orm::{ConnectionTrait, Statement};
use store::Store;
use store::dashboard::{Shelf, SweepSort, Window};
use types::MetricValue;

const SIZE: SeedSize = SeedSize {
    sweeps: 3,
    runs: 30,
    samples_per_run: 2,
    metrics_per_run: 5,
    workers: 1,
};

/// Rows of `sql`, whose columns are all text (up to three).
async fn rows(store: &Store, sql: &str) -> Vec<Vec<String>> {
    let db = store.connection();
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (0..3)
                .map_while(|i| r.try_get_by_index::<String>(i).ok())
                .collect()
        })
        .collect()
}

async fn exec(store: &Store, sql: &str) {
    store.connection().execute_unprepared(sql).await.unwrap();
}

async fn one(store: &Store, sql: &str) -> i64 {
    rows(store, sql).await[0][0].parse().unwrap()
}

/// What the sweeps list and the leaderboard show equals counting and grouping the rows.
async fn assert_consistent(store: &Store, step: &str) {
    let (overviews, _) = store
        .sweep_overviews(
            Shelf::Active,
            None,
            SweepSort::Name,
            false,
            Window {
                offset: 0,
                limit: 500,
            },
            |_, _| false,
        )
        .await
        .unwrap();
    let mut shown: BTreeMap<(i64, String), i64> = BTreeMap::new();
    for o in &overviews {
        for (status, n) in &o.counts {
            shown.insert((o.sweep.id, status.as_str().to_string()), *n);
        }
    }
    let counted: BTreeMap<(i64, String), i64> = rows(
        store,
        "SELECT CAST(c.sweep_id AS VARCHAR), r.status, CAST(COUNT(*) AS VARCHAR)
         FROM sweep_cells c JOIN runs r ON r.id = c.run_id GROUP BY c.sweep_id, r.status",
    )
    .await
    .into_iter()
    .map(|r| ((r[0].parse().unwrap(), r[1].clone()), r[2].parse().unwrap()))
    .collect();
    assert_eq!(shown, counted, "sweeps list counts {step}");
    assert!(!counted.is_empty(), "{step}: the history has runs");

    for name in store.metric_names().await.unwrap() {
        let mut shown: Vec<i64> = store
            .leaderboard(&name)
            .await
            .unwrap()
            .iter()
            .map(|(r, _)| r.id)
            .collect();
        shown.sort();
        let mut grouped: Vec<i64> = rows(
            store,
            &format!(
                "SELECT CAST(MAX(r.id) AS VARCHAR) FROM metrics m JOIN runs r ON r.id = m.run_id
                 WHERE m.name = '{name}' AND r.status = 'done' AND NOT r.random_weights
                   AND (r.dataset_rows IS NULL OR r.n_expected >= r.dataset_rows)
                 GROUP BY r.task_name, r.setting_name, r.examples_id, r.model_name, r.adapter_name"
            ),
        )
        .await
        .into_iter()
        .map(|r| r[0].parse().unwrap())
        .collect();
        grouped.sort();
        assert_eq!(shown, grouped, "leaderboard of {name} {step}");
    }
}

async fn writes_keep_the_aggregates(url: &str) {
    let store = Store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    seed_history(&store, SIZE, |_, _, _| {}).await.unwrap();
    assert_consistent(&store, "after seeding").await;

    let newest = "SELECT CAST(MAX(id) AS VARCHAR) FROM runs WHERE status = 'done'";
    let run = one(&store, newest).await;
    for status in [
        "queued",
        "running",
        "done",
        "failed",
        "cancelled",
        "queued",
        "done",
    ] {
        exec(
            &store,
            &format!("UPDATE runs SET status = '{status}' WHERE id = {run}"),
        )
        .await;
        assert_consistent(&store, &format!("after run {run} became {status}")).await;
    }
    // The run's examples become known, then change: its entries move to the new key.
    for examples in ["aaaa", "bbbb"] {
        exec(
            &store,
            &format!("UPDATE runs SET examples_id = '{examples}' WHERE id = {run}"),
        )
        .await;
        assert_consistent(
            &store,
            &format!("after run {run}'s examples became {examples}"),
        )
        .await;
    }
    // A partial run (fewer examples than its dataset) leaves the leaderboard.
    let partial = one(
        &store,
        "SELECT CAST(MIN(id) AS VARCHAR) FROM runs WHERE status = 'done'",
    )
    .await;
    exec(
        &store,
        &format!("UPDATE runs SET dataset_rows = n_expected + 1 WHERE id = {partial}"),
    )
    .await;
    exec(
        &store,
        &format!("UPDATE runs SET status = 'queued' WHERE id = {partial}"),
    )
    .await;
    exec(
        &store,
        &format!("UPDATE runs SET status = 'done' WHERE id = {partial}"),
    )
    .await;
    assert_consistent(&store, "after a partial run finished").await;
    // The same status written again changes nothing.
    exec(
        &store,
        &format!("UPDATE runs SET status = 'done' WHERE id = {run}"),
    )
    .await;
    assert_consistent(&store, "after a status written twice").await;

    // Rescoring the newest run drops one metric and changes another.
    let kept = MetricValue {
        name: "bias_paper".into(),
        value: 0.5,
        ci_low: None,
        ci_high: None,
        n: 2,
        version: 1,
    };
    store.replace_metrics(run, &[kept]).await.unwrap();
    assert_consistent(&store, "after rescoring the newest run").await;
    exec(&store, &format!("DELETE FROM metrics WHERE run_id = {run}")).await;
    assert_consistent(&store, "after deleting the newest run's metrics").await;

    // A run shared by two sweeps' cells, and a cell moved to another run.
    let other = one(&store, "SELECT CAST(MIN(id) AS VARCHAR) FROM runs").await;
    let sweeps = rows(&store, "SELECT CAST(id AS VARCHAR) FROM sweeps ORDER BY id").await;
    exec(
        &store,
        &format!(
            "INSERT INTO sweep_cells (sweep_id, cell_key, run_id) VALUES ({}, 'shared', {other})",
            sweeps[2][0]
        ),
    )
    .await;
    assert_consistent(&store, "after a cell shared a run").await;
    exec(
        &store,
        &format!("UPDATE runs SET status = 'running' WHERE id = {other}"),
    )
    .await;
    assert_consistent(&store, "after the shared run ran again").await;
    exec(
        &store,
        &format!("UPDATE sweep_cells SET run_id = {run} WHERE cell_key = 'shared'"),
    )
    .await;
    assert_consistent(&store, "after a cell moved to another run").await;
    exec(&store, "DELETE FROM sweep_cells WHERE cell_key = 'shared'").await;
    assert_consistent(&store, "after a cell was dropped").await;

    // Deleting a run (its cells, jobs, samples and metrics go with it) and a sweep.
    let gone = one(&store, newest).await;
    exec(&store, &format!("DELETE FROM jobs WHERE run_id = {gone}")).await;
    exec(&store, &format!("DELETE FROM runs WHERE id = {gone}")).await;
    assert_consistent(&store, &format!("after deleting run {gone}")).await;
    exec(
        &store,
        &format!("DELETE FROM sweeps WHERE id = {}", sweeps[0][0]),
    )
    .await;
    assert_consistent(&store, "after deleting a sweep").await;
}

#[tokio::test]
async fn aggregates_follow_every_write_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.sqlite").display());
    writes_keep_the_aggregates(&url).await;
}

#[tokio::test]
#[cfg_attr(
    not(nlebench_services),
    ignore = "needs PostgreSQL: set NLEBENCH_TEST_DATABASE_URL and NLEBENCH_TEST_REDIS_URL (.ci/run does)"
)]
async fn aggregates_follow_every_write_on_postgres() {
    let base = std::env::var("NLEBENCH_TEST_DATABASE_URL").unwrap();
    let name = format!("nlebench_agg_{}", std::process::id());
    let admin = sea_orm::Database::connect(&base).await.unwrap();
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\""))
        .await
        .unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
    let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
    writes_keep_the_aggregates(&url).await;
}
