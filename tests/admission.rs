//! Memory admission against real PostgreSQL and Redis: a worker offering less memory than a
//! job needs never takes it, `status` says which runs no live worker can fit and how much they
//! need, and a worker with enough memory then runs them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use crate::common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Env, Proc, mini_pairs, sweep_toml};

#[test]
#[cfg_attr(
    not(nlebench_services),
    ignore = "needs PostgreSQL and Redis: set NLEBENCH_TEST_DATABASE_URL and NLEBENCH_TEST_REDIS_URL (.ci/run does)"
)]
fn a_job_too_big_for_a_worker_waits_for_one_it_fits() {
    let env = Env::team();
    env.ok(&["migrate"]);
    // 0.1 MiB: less than the tiny model's 0.7 MiB of f32 weights.
    let log = env.dir.path().join("small.log");
    let _small = Proc {
        child: env
            .cmd(&["worker", "--name", "small", "--memory-gb", "0.0001"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    };
    let sweep = env.write(
        "fit.toml",
        &sweep_toml(
            "fit",
            &[("tiny", "random:norgpt-tiny@3")],
            &[("first-6", 6)],
            3,
            &mini_pairs(),
        ),
    );
    env.ok(&["submit", sweep.to_str().unwrap()]);

    // The small worker is delivered the jobs and gives them back.
    let start = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("back to the queue for another worker")
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the small worker never refused a job:\n{}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        env.count("SELECT COUNT(*) FROM jobs WHERE worker IS NOT NULL"),
        0,
        "no job was claimed"
    );
    let status = env.status("fit");
    let waiting = status["waiting"].as_str().unwrap();
    assert!(
        waiting.contains("need more memory than any live worker offers (the largest: 0 MiB)")
            && waiting.contains("run 1 (")
            && waiting.contains("--memory-gb"),
        "{waiting}"
    );

    // A worker with the machine's memory takes them all.
    let _big = env.worker("big");
    let status = env.wait_finished("fit", Duration::from_secs(300));
    assert_eq!(status["counts"]["done"], 1, "{status}");
    assert_eq!(
        env.query("SELECT DISTINCT worker FROM jobs"),
        vec![vec!["big".to_string()]]
    );
}
