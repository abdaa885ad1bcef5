//! Prometheus metrics against real PostgreSQL and Redis: a worker started with `--metrics-addr`
//! counts the jobs, samples, generated tokens and model loads of the quickstart sweep exactly as
//! the store has them, and the dashboard's `/metrics` (open to a scraper while the pages need a
//! sign-in) reports runs, jobs and workers by state, the queue depth and heartbeat ages. Both
//! are parsed as the text exposition format.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use crate::common;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use common::{Env, Proc, free_port, get, metric, root, scrape, wait_for_port};

#[test]
#[cfg_attr(
    not(nlebench_services),
    ignore = "needs PostgreSQL and Redis: set NLEBENCH_TEST_DATABASE_URL and NLEBENCH_TEST_REDIS_URL (.ci/run does)"
)]
fn worker_and_dashboard_metrics_match_the_store() {
    let env = Env::team();
    env.ok(&["migrate"]);
    let (_worker, metrics_port) = env.worker_with_metrics("m1");
    // Before any job: every counter is there, at zero.
    let before = scrape(metrics_port);
    assert_eq!(metric(&before, "nlebench_jobs_started_total", &[]), 0.0);
    assert_eq!(metric(&before, "nlebench_samples_total", &[]), 0.0);

    let sweep = root().join("experiments/sweeps/quickstart.toml");
    env.ok(&["submit", sweep.to_str().unwrap()]);
    let status = env.wait_finished("quickstart", Duration::from_secs(240));
    assert_eq!(status["counts"]["done"], 4, "{status}");

    let w = scrape(metrics_port);
    let jobs = env.count("SELECT COUNT(*) FROM jobs") as f64;
    let samples = env.count("SELECT COUNT(*) FROM samples") as f64;
    let tokens = env
        .count("SELECT COALESCE(SUM((data::jsonb->>'new_tokens')::bigint), 0)::bigint FROM samples")
        as f64;
    assert!(tokens > 0.0, "the generation task stores its token counts");
    assert_eq!(metric(&w, "nlebench_jobs_started_total", &[]), jobs);
    assert_eq!(metric(&w, "nlebench_jobs_finished_total", &[]), jobs);
    assert_eq!(metric(&w, "nlebench_samples_total", &[]), samples);
    assert_eq!(metric(&w, "nlebench_generated_tokens_total", &[]), tokens);
    // One model for the whole sweep: loaded once, kept for every later job.
    assert_eq!(metric(&w, "nlebench_model_loads_total", &[]), 1.0);
    assert!(metric(&w, "nlebench_model_load_seconds_total", &[]) > 0.0);
    // Heartbeats every second here: a live worker's last one is recent.
    assert!(metric(&w, "nlebench_heartbeat_age_seconds", &[]) < 30.0);

    // The dashboard, with an account: pages need a sign-in, /metrics does not.
    let mut add = env
        .cmd(&[
            "users",
            "add",
            "ola",
            "--role",
            "viewer",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery\n")
        .unwrap();
    assert!(add.wait().unwrap().success());
    let port = free_port();
    let _server = Proc {
        child: env
            .cmd(&["serve", "--addr", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    };
    wait_for_port(port, Duration::from_secs(30), "dashboard did not start");
    let (status, head, _) = get(port, "/");
    assert_eq!(status, 303, "the pages need a sign-in: {head}");
    let d = scrape(port);
    assert_eq!(metric(&d, "nlebench_runs", &[("state", "done")]), 4.0);
    assert_eq!(metric(&d, "nlebench_jobs", &[("state", "done")]), jobs);
    assert_eq!(
        metric(&d, "nlebench_queue_depth", &[("queue", &env.queue_name)]),
        0.0
    );
    assert_eq!(metric(&d, "nlebench_workers", &[("state", "running")]), 1.0);
    assert!(
        metric(
            &d,
            "nlebench_worker_heartbeat_age_seconds",
            &[("worker", "m1")]
        ) < 30.0
    );
}
