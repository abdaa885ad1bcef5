//! A PostgreSQL store written by the previous release (the schema of its two migrations, its
//! rows) upgrades with `nlebench migrate` keeping every row, and works afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{Env, mini_pairs, root, sweep_toml};
use migrations::MigratorTrait;

/// Migrations of the oldest release a team may still hold (init, users, chain steps, run notes);
/// the later ones (job deaths, session last seen, worker memory, sweep archive, annotations, the
/// leaderboard's index on runs, the dashboard's aggregates, what runs and baselines were measured
/// on) are applied by `nlebench migrate` here.
const PREVIOUS_RELEASE_MIGRATIONS: u32 = 4;

fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[test]
#[cfg_attr(
    not(nlebench_services),
    ignore = "needs PostgreSQL and Redis: set NLEBENCH_TEST_DATABASE_URL and NLEBENCH_TEST_REDIS_URL (.ci/run does)"
)]
fn a_previous_release_store_upgrades_keeping_every_row() {
    let team = Env::team();
    // A finished run as the previous release stored it: manifest, samples and metrics (made
    // here on an embedded store; the previous release wrote the same fields).
    let made = Env::embedded();
    let s = made.write(
        "old.toml",
        &sweep_toml(
            "old",
            &[("NorGPT-369M", "random:norgpt-tiny@1")],
            &[("six", 6)],
            10,
            &mini_pairs(),
        ),
    );
    made.ok(&["run", s.to_str().unwrap()]);
    let run =
        made.query("SELECT fingerprint, manifest, CAST(n_expected AS TEXT) FROM runs")[0].clone();
    let samples = made.query("SELECT CAST(idx AS TEXT), prompt, data FROM samples ORDER BY idx");
    let metrics = made.query("SELECT name, CAST(value AS TEXT), CAST(n AS TEXT), CAST(version AS TEXT) FROM metrics ORDER BY name");
    let spec = std::fs::read_to_string(&s).unwrap();

    // The previous release's schema on a fresh PostgreSQL database, and its rows.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let db = sea_orm::Database::connect(&team.database_url)
            .await
            .unwrap();
        migrations::Migrator::up(&db, Some(PREVIOUS_RELEASE_MIGRATIONS))
            .await
            .unwrap();
    });
    let now = "TIMESTAMPTZ '2026-11-27 12:00:00+00'";
    team.execute(&format!(
        "INSERT INTO sweeps (name, owner, description, spec_path, spec, priority, shard_size, created_at, updated_at) VALUES ('old', NULL, NULL, 'old.toml', {}, 0, 10, {now}, {now})",
        sql_text(&spec)
    ));
    team.execute(&format!(
        "INSERT INTO runs (fingerprint, model_name, model_source, model_revision, adapter_name, adapter_source, task_name, task_version, setting_name, seed, sample_limit, manifest, source, status, n_expected, random_weights, error, worker, attempts, created_at, started_at, finished_at) \
         VALUES ({}, 'NorGPT-369M', 'random:norgpt-tiny@1', '1', NULL, NULL, 'no-crows-pairs', 1, 'six', 0, 6, {}, 'engine', 'done', {}, TRUE, NULL, 'w1', 1, {now}, {now}, {now})",
        sql_text(&run[0]),
        sql_text(&run[1]),
        run[2]
    ));
    // An import of trained weights' outputs on the whole dataset (run 2).
    let dataset_rows: serde_json::Value = serde_json::from_str(&run[1]).unwrap();
    let dataset_rows = dataset_rows["dataset"]["rows"].as_i64().unwrap();
    team.execute(&format!(
        "INSERT INTO runs (fingerprint, model_name, model_source, model_revision, adapter_name, adapter_source, task_name, task_version, setting_name, seed, sample_limit, manifest, source, status, n_expected, random_weights, error, worker, attempts, created_at, started_at, finished_at) \
         VALUES ('import-1', 'NorGPT-369M', 'import:bias.csv', '1', NULL, NULL, 'no-crows-pairs', 1, 'six', 0, 6, {}, 'import', 'done', {}, FALSE, NULL, NULL, 1, {now}, {now}, {now})",
        sql_text(&run[1]),
        dataset_rows
    ));
    team.execute(&format!(
        "INSERT INTO baselines (task, model, setting, metric, value, source, note, created_at) VALUES ('no-crows-pairs', 'NorGPT-369M', 'six', 'bias_paper', 50.0, 'paper', NULL, {now})"
    ));
    team.execute(
        "INSERT INTO sweep_cells (sweep_id, cell_key, run_id) VALUES (1, 'NorGPT-369M/no-crows-pairs/six/seed=0', 1)",
    );
    team.execute(&format!(
        "INSERT INTO jobs (run_id, shard, start_idx, end_idx, status, attempts, worker, error, enqueued_at, started_at, finished_at) VALUES (1, 0, 0, 6, 'done', 1, 'w1', NULL, {now}, {now}, {now})"
    ));
    for r in &samples {
        team.execute(&format!(
            "INSERT INTO samples (run_id, idx, shard, prompt, output, reference, data, worker, created_at) VALUES (1, {}, 0, {}, NULL, NULL, {}, 'w1', {now})",
            r[0],
            sql_text(&r[1]),
            sql_text(&r[2])
        ));
    }
    for (run_id, m) in [1, 2]
        .into_iter()
        .flat_map(|id| metrics.iter().map(move |m| (id, m)))
    {
        team.execute(&format!(
            "INSERT INTO metrics (run_id, name, value, ci_low, ci_high, n, version, created_at) VALUES ({run_id}, {}, {}, NULL, NULL, {}, {}, {now})",
            sql_text(&m[0]),
            m[1],
            m[2],
            m[3]
        ));
    }
    let count = |t: &str| team.count(&format!("SELECT COUNT(*) FROM {t}"));
    let tables = [
        "sweeps",
        "runs",
        "sweep_cells",
        "jobs",
        "samples",
        "metrics",
        "baselines",
    ];
    let counts = || tables.map(count);
    let before = counts();
    let rows_before =
        team.query("SELECT CAST(idx AS TEXT), prompt, data FROM samples ORDER BY idx");

    team.ok(&["migrate"]);

    assert_eq!(before, counts(), "every row is kept");
    assert_eq!(
        team.query("SELECT CAST(idx AS TEXT), prompt, data FROM samples ORDER BY idx"),
        rows_before
    );
    assert_eq!(count("chain_steps"), 0, "the new table exists");
    assert_eq!(count("annotations"), 0, "the tags and notes table exists");
    assert_eq!(
        team.count(
            "SELECT COUNT(*) FROM pg_indexes WHERE tablename = 'runs' AND indexname = 'ix_runs_status_task_model_adapter'"
        ),
        1,
        "the leaderboard's index exists"
    );
    assert_eq!(
        team.query("SELECT CAST(sweep_id AS TEXT), status, CAST(n AS TEXT) FROM sweep_run_counts"),
        vec![vec!["1".to_string(), "done".into(), "1".into()]],
        "the sweeps list's counts are filled from the stored runs"
    );
    assert_eq!(
        team.count("SELECT COUNT(*) FROM leaderboard_latest WHERE run_id = 2"),
        metrics.len() as i64,
        "the leaderboard's entries are filled from the stored metrics of trained weights"
    );
    assert_eq!(
        team.count("SELECT COUNT(*) FROM leaderboard_latest WHERE run_id = 1"),
        0,
        "a run of random weights does not stand on the leaderboard by default"
    );
    assert_eq!(
        team.query("SELECT CAST(dataset_rows AS TEXT) FROM runs ORDER BY id"),
        vec![vec![dataset_rows.to_string()]; 2],
        "each run's dataset size is filled from its manifest"
    );
    assert_eq!(
        team.count("SELECT COUNT(*) FROM runs WHERE examples_id IS NULL"),
        2,
        "the examples of stored runs are not guessed"
    );
    assert_eq!(
        team.count("SELECT COUNT(*) FROM baselines WHERE n IS NULL AND examples IS NULL"),
        1,
        "a stored baseline keeps its row, with n and examples unknown"
    );
    assert_eq!(
        team.count("SELECT COUNT(*) FROM runs WHERE notes IS NULL"),
        2
    );
    assert_eq!(
        team.count("SELECT COUNT(*) FROM sweeps WHERE archived_at IS NULL"),
        1,
        "a sweep of the previous release is not archived"
    );

    // The upgraded store works: the old run reads back, rescores, reports, and new kinds run.
    let st = team.status("old");
    assert_eq!(st["runs"][0]["status"], "done", "{st}");
    assert_eq!(st["runs"][0]["samples"], 6);
    let rescored = team.ok(&["rescore", "old"]);
    assert!(rescored.contains("rescored 1 run(s)"), "{rescored}");
    assert_eq!(
        team.count("SELECT COUNT(*) FROM runs WHERE id = 1 AND examples_id IS NOT NULL"),
        1,
        "rescoring records the examples a stored run measured"
    );
    team.import_released_baselines();
    let report = team.ok(&["report", "old"]);
    assert!(report.contains("values reproduced"), "{report}");
    assert!(
        report.contains("inconclusive") && report.contains("random weights"),
        "the stored random-weight run is judged by the new rules: {report}"
    );
    let quick = root().join("experiments/sweeps/quickstart.toml");
    let mut w = team.worker("w2");
    team.ok(&["submit", quick.to_str().unwrap()]);
    let done = team.wait_finished("quickstart", std::time::Duration::from_secs(240));
    w.terminate();
    assert_eq!(done["counts"]["done"], 4, "{done}");
    assert_eq!(count("chain_steps"), 10);
    assert_eq!(
        team.count("SELECT CAST(SUM(n) AS TEXT) FROM sweep_run_counts WHERE status = 'done'"),
        5,
        "the counts follow the runs written after the upgrade"
    );
}
