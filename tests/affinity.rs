//! Model affinity against real PostgreSQL and Redis: a worker keeps to the model it holds while
//! that model has queued work, a cold worker starts with the model with the most queued work,
//! and a higher priority still goes first. Jobs of two models are queued interleaved (A, B, A,
//! B), so a worker taking jobs in queue order would load a model four times.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use crate::common;

use std::time::Duration;

use common::{Env, metric, mini_pairs, scrape, sweep_toml};

const A: &str = "random:norgpt-tiny@11";
const B: &str = "random:norgpt-tiny@12";

/// Submit four sweeps, A (2 jobs), B (3), A (3), B (4), the first at `first_priority`; run one
/// worker until all are done. Returns the env, the worker's model loads, jobs started, and the
/// model of the first job it ran.
fn interleaved(first_priority: i32) -> (Env, f64, f64, String) {
    let env = Env::team();
    env.ok(&["migrate"]);
    let sweeps = [
        ("aff-1", A, 10, first_priority),
        ("aff-2", B, 15, 0),
        ("aff-3", A, 14, 0),
        ("aff-4", B, 20, 0),
    ];
    for (name, source, limit, priority) in sweeps {
        let toml = format!(
            "priority = {priority}\n{}",
            sweep_toml(name, &[("m", source)], &[("s", limit)], 5, &mini_pairs())
        );
        let path = env.write(&format!("{name}.toml"), &toml);
        env.ok(&["submit", path.to_str().unwrap()]);
    }
    let (mut worker, port) = env.worker_with_metrics("aff");
    for (name, ..) in sweeps {
        let status = env.wait_finished(name, Duration::from_secs(180));
        assert_eq!(status["counts"]["done"], 1, "{status}");
    }
    let m = scrape(port);
    let loads = metric(&m, "nlebench_model_loads_total", &[]);
    let started = metric(&m, "nlebench_jobs_started_total", &[]);
    worker.terminate();
    let first = env.query(
        "SELECT r.model_source FROM jobs j JOIN runs r ON r.id = j.run_id ORDER BY j.started_at, j.id LIMIT 1",
    )[0][0]
        .clone();
    (env, loads, started, first)
}

#[test]
#[cfg_attr(
    not(nlebench_services),
    ignore = "needs PostgreSQL and Redis: set NLEBENCH_TEST_DATABASE_URL and NLEBENCH_TEST_REDIS_URL (.ci/run does)"
)]
fn a_worker_keeps_to_its_model_and_starts_with_the_busiest() {
    let (env, loads, started, first) = interleaved(0);
    let jobs = env.count("SELECT COUNT(*) FROM jobs");
    assert_eq!(jobs, 12);
    // Each job ran once (the entries skipped for affinity started nothing), every sample once.
    assert_eq!(started, jobs as f64);
    assert_eq!(env.count("SELECT COUNT(*) FROM samples"), 10 + 15 + 14 + 20);
    // The minimum: each model loaded once, B (7 queued jobs against A's 5) first.
    assert_eq!(loads, 2.0, "model loads");
    assert_eq!(first, B);
}

#[test]
#[cfg_attr(
    not(nlebench_services),
    ignore = "needs PostgreSQL and Redis: set NLEBENCH_TEST_DATABASE_URL and NLEBENCH_TEST_REDIS_URL (.ci/run does)"
)]
fn a_higher_priority_goes_first_whatever_the_worker_would_prefer() {
    let (_env, loads, _, first) = interleaved(5);
    // A's first sweep outranks B's larger queue: A first; then the worker keeps to A.
    assert_eq!(first, A);
    assert_eq!(loads, 2.0, "model loads");
}
