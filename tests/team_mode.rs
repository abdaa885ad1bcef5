//! Team mode against real PostgreSQL and Redis: separate `nlebench worker` processes share a
//! sweep, resubmission only fills missing cells, and a killed worker's job is finished by
//! another worker from the samples already stored.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use crate::common;

use std::time::{Duration, Instant};

use common::{Env, mini_pairs, sweep_toml};

#[test]
#[cfg_attr(
    not(nlebench_services),
    ignore = "needs PostgreSQL and Redis: set NLEBENCH_TEST_DATABASE_URL and NLEBENCH_TEST_REDIS_URL (.ci/run does)"
)]
fn two_workers_complete_a_sweep_and_resubmission_fills_only_missing_cells() {
    let env = Env::team();
    env.ok(&["migrate"]);
    let mut w1 = env.worker("w1");
    let mut w2 = env.worker("w2");
    // Both workers registered before any job exists, so both compete for the jobs.
    let start = Instant::now();
    while env.count("SELECT COUNT(*) FROM workers WHERE status = 'running'") < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "workers did not register"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let sweep = env.write(
        "team.toml",
        &sweep_toml(
            "team",
            &[
                ("tiny-a", "random:norgpt-tiny@1"),
                ("tiny-b", "random:norgpt-tiny@2"),
            ],
            &[("first-10", 10), ("first-20", 20)],
            2,
            &mini_pairs(),
        ),
    );
    let out = env.ok(&["submit", sweep.to_str().unwrap()]);
    assert!(out.contains("4 cell(s): 4 new"), "{out}");
    assert!(out.contains("30 job(s) queued"), "{out}");

    let status = env.wait_finished("team", Duration::from_secs(180));
    assert_eq!(status["counts"]["done"], 4, "{status}");
    for run in status["runs"].as_array().unwrap() {
        let expected = if run["cell"].as_str().unwrap().contains("first-10") {
            10
        } else {
            20
        };
        assert_eq!(run["samples"], expected, "{run}");
        assert!(run["metrics"]["bias_paper"].as_f64().is_some(), "{run}");
        assert_eq!(run["random_weights"], true);
    }
    // Both processes ran jobs; no sample was written twice.
    let by_worker = env.query("SELECT worker, COUNT(*) FROM jobs GROUP BY worker ORDER BY worker");
    assert_eq!(by_worker.len(), 2, "jobs by worker: {by_worker:?}");
    assert_eq!(env.count("SELECT COUNT(*) FROM samples"), 60);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM (SELECT DISTINCT run_id, idx FROM samples) d"),
        60
    );

    // Resubmitting enqueues nothing.
    let out = env.ok(&["submit", sweep.to_str().unwrap()]);
    assert!(out.contains("4 already done"), "{out}");
    assert!(out.contains("0 job(s) queued"), "{out}");
    assert_eq!(env.count("SELECT COUNT(*) FROM runs"), 4);

    // --force runs every cell again as new runs; the old runs stay in the history.
    let out = env.ok(&["submit", "--force", sweep.to_str().unwrap()]);
    assert!(out.contains("4 forced"), "{out}");
    let status = env.wait_finished("team", Duration::from_secs(180));
    assert_eq!(status["counts"]["done"], 4, "{status}");
    assert_eq!(env.count("SELECT COUNT(*) FROM runs"), 8);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM runs WHERE status = 'done'"),
        8
    );
    let ids: Vec<i64> = status["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_i64().unwrap())
        .collect();
    assert!(
        ids.iter().all(|&id| id > 4),
        "the sweep points at the new runs: {ids:?}"
    );
    w1.terminate();
    w2.terminate();
    assert_eq!(
        env.count("SELECT COUNT(*) FROM workers WHERE status = 'stopped'"),
        2,
        "SIGTERM stops workers cleanly"
    );
}

#[test]
#[cfg_attr(
    not(nlebench_services),
    ignore = "needs PostgreSQL and Redis: set NLEBENCH_TEST_DATABASE_URL and NLEBENCH_TEST_REDIS_URL (.ci/run does)"
)]
fn a_killed_workers_job_is_finished_by_another_without_recomputing_stored_samples() {
    let env = Env::team();
    env.ok(&["migrate"]);
    // 256 pairs in one job, scored two at a time by a model that takes a few seconds.
    let mut csv = String::from("sent_more_no,sent_less_no,stereo_antistereo,bias_type\n");
    let base = std::fs::read_to_string(mini_pairs()).unwrap();
    for k in 0..8 {
        for line in base.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            csv += &format!(
                "{} Klokka var {k}.,{} Klokka var {k}.,{},{}\n",
                f[0], f[1], f[2], f[3]
            );
        }
    }
    let data = env.write("pairs.csv", &csv);
    let sweep = env.write(
        "crash.toml",
        &sweep_toml(
            "crash",
            &[("small", "random:norgpt-small@3")],
            &[("all", 256)],
            1000,
            &data,
        ),
    );
    env.ok(&["submit", sweep.to_str().unwrap()]);

    let mut a = env.worker("doomed");
    let start = Instant::now();
    while env.count("SELECT COUNT(*) FROM samples") < 10 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "worker A stored nothing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    a.kill(); // SIGKILL: no cleanup, the job stays claimed by a dead worker
    let before = env.query(
        "SELECT CAST(idx AS TEXT), worker, CAST(created_at AS TEXT) FROM samples ORDER BY idx",
    );
    assert!(before.len() < 256, "the run must be unfinished when A dies");
    assert!(before.iter().all(|r| r[1] == "doomed"));
    assert!(
        before.iter().all(|r| r[2].len() >= 19),
        "timestamps read back: {before:?}"
    );

    let mut b = env.worker("rescuer");
    let status = env.wait_finished("crash", Duration::from_secs(240));
    b.terminate();
    assert_eq!(status["counts"]["done"], 1, "{status}");

    assert_eq!(env.count("SELECT COUNT(*) FROM samples"), 256);
    assert_eq!(env.count("SELECT COUNT(DISTINCT idx) FROM samples"), 256);
    // The samples stored before the kill are untouched: same rows, same writer, same time.
    let after = env.query(
        "SELECT CAST(idx AS TEXT), worker, CAST(created_at AS TEXT) FROM samples WHERE worker = 'doomed' ORDER BY idx",
    );
    assert_eq!(before, after);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM samples WHERE worker = 'rescuer'"),
        256 - before.len() as i64
    );
    // The job was delivered a second time.
    let job = env.query("SELECT attempts, worker, status FROM jobs");
    assert_eq!(
        job,
        vec![vec!["2".to_string(), "rescuer".into(), "done".into()]]
    );
}
