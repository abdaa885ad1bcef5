//! Releases side by side: a run is computed only by a worker of the engine release it was
//! planned for. A run whose manifest names another release (as one planned by the previous
//! release during a rolling upgrade) is left on the queue with a logged reason, `status` says
//! which release it waits for, nothing of it is computed, and a worker of its release (here:
//! the manifest planned anew for this one) then finishes it with nothing lost. Hosts upgraded
//! together migrate the team store one after the other.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use crate::common;

use std::time::{Duration, Instant};

use common::{Env, mini_pairs, sweep_toml};

/// Wait until `f` holds, or fail saying `what` (with the worker's log).
fn wait_until(env: &Env, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "{what} never happened:\n{}",
            std::fs::read_to_string(env.dir.path().join("w.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_worker_leaves_runs_planned_by_another_release_to_a_worker_of_that_release() {
    let env = Env::embedded();
    let sweep = env.write(
        "mixed.toml",
        &sweep_toml(
            "mixed",
            &[("a", "random:norgpt-tiny@1"), ("b", "random:norgpt-tiny@2")],
            &[("first-4", 4)],
            4,
            &mini_pairs(),
        ),
    );
    env.ok(&["submit", sweep.to_str().unwrap()]);
    // Run 2 as the previous release planned it.
    let manifest = env.query("SELECT manifest FROM runs WHERE id = 2")[0][0].clone();
    let mut old: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let this_release = old["engine_version"].as_str().unwrap().to_string();
    old["engine_version"] = "0.0.9".into();
    env.execute(&format!(
        "UPDATE runs SET manifest = '{}' WHERE id = 2",
        old.to_string().replace('\'', "''")
    ));

    let _w = env.worker("w");
    let log = || std::fs::read_to_string(env.dir.path().join("w.log")).unwrap_or_default();
    wait_until(&env, "run 1 finishing", || {
        env.count("SELECT COUNT(*) FROM runs WHERE id = 1 AND status = 'done'") == 1
    });
    wait_until(&env, "the worker logging why it left run 2", || {
        log().contains(&format!(
            "run 2 was planned for engine 0.0.9 and this worker computes with engine {this_release}: left on the queue for a worker of that release"
        ))
    });
    assert_eq!(
        env.count("SELECT COUNT(*) FROM samples WHERE run_id = 2"),
        0,
        "nothing of run 2 was computed by this release"
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM workers WHERE release IS NOT NULL"),
        1
    );
    let status = env.status("mixed");
    let waiting = status["waiting"].as_str().unwrap_or_default();
    assert!(
        waiting.contains("run 2 wait for a worker of engine 0.0.9")
            && waiting.contains(&format!("live workers compute with engine {this_release}")),
        "{status}"
    );

    // The run planned for this release (a worker of 0.0.9 would do the same): it is computed
    // from where it stood, and the sweep finishes.
    env.execute(&format!(
        "UPDATE runs SET manifest = '{}' WHERE id = 2",
        manifest.replace('\'', "''")
    ));
    wait_until(&env, "the sweep finishing", || {
        env.count("SELECT COUNT(*) FROM runs WHERE status = 'done'") == 2
    });
    assert_eq!(
        env.count("SELECT COUNT(*) FROM samples WHERE run_id = 2"),
        4
    );
}

/// Hosts upgraded together migrate one team store at once: both `nlebench migrate` succeed,
/// one applies the migrations while the other waits (an advisory lock), none fails on tables
/// the other created.
#[test]
#[cfg_attr(
    not(nlebench_services),
    ignore = "needs PostgreSQL and Redis: set NLEBENCH_TEST_DATABASE_URL and NLEBENCH_TEST_REDIS_URL (.ci/run does)"
)]
fn two_hosts_migrating_one_team_store_at_once_both_succeed() {
    for _ in 0..3 {
        let env = Env::team();
        let spawn = || {
            env.cmd(&["migrate"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        let mut applied = vec![];
        for child in [a, b] {
            let out = child.wait_with_output().unwrap();
            let (stdout, stderr) = common::text(&out);
            assert!(out.status.success(), "{stdout}\n{stderr}");
            applied.push(stdout);
        }
        assert!(
            applied
                .iter()
                .any(|o| o.contains(": 0 migration(s) applied")),
            "one waited for the other: {applied:?}"
        );
        assert_eq!(
            env.count("SELECT COUNT(*) - COUNT(DISTINCT version) FROM seaql_migrations"),
            0,
            "every migration recorded once"
        );
        assert!(env.count("SELECT COUNT(*) FROM seaql_migrations") >= 13);
    }
}

/// A rolling upgrade: the first upgraded host migrates the team store while hosts of the
/// previous release still run (this build stands in for them; the newer release's migration
/// adds a column and its record). Their commands and workers keep working with the store,
/// each saying a newer release migrated it, and a sweep submitted and computed there finishes
/// whole. A store that also lacks one of this release's migrations is refused, naming both.
#[test]
#[cfg_attr(
    not(nlebench_services),
    ignore = "needs PostgreSQL and Redis: set NLEBENCH_TEST_DATABASE_URL and NLEBENCH_TEST_REDIS_URL (.ci/run does)"
)]
fn a_store_migrated_by_a_newer_release_keeps_serving_the_previous_release() {
    let env = Env::team();
    env.ok(&["migrate"]);
    let newer = "m20991231_000099_newer_release";
    env.execute(&format!(
        "ALTER TABLE runs ADD COLUMN newer_release_note TEXT; \
         INSERT INTO seaql_migrations (version, applied_at) VALUES ('{newer}', 4102358400)"
    ));
    let warning = format!(
        "was migrated by a newer release of nlebench (1 migration(s) this release does not know: {newer}); this release keeps working with it"
    );

    let out = env.run(&["migrate"]);
    let (stdout, stderr) = common::text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("0 migration(s) applied; the store is ahead of this release (1 migration(s) of a newer release)"),
        "{stdout}"
    );
    assert!(stderr.contains(&warning), "{stderr}");

    let sweep = env.write(
        "rolling.toml",
        &sweep_toml(
            "rolling",
            &[("a", "random:norgpt-tiny@1"), ("b", "random:norgpt-tiny@2")],
            &[("first-6", 6)],
            3,
            &mini_pairs(),
        ),
    );
    let out = env.run(&["submit", sweep.to_str().unwrap()]);
    let (stdout, stderr) = common::text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains(&warning), "{stderr}");
    let _w = env.worker("w");
    let status = env.wait_finished("rolling", Duration::from_secs(120));
    assert_eq!(status["counts"]["done"], 2, "{status}");
    assert_eq!(env.count("SELECT COUNT(*) FROM samples"), 12);
    let log = std::fs::read_to_string(env.dir.path().join("w.log")).unwrap();
    assert!(log.contains(&warning), "{log}");

    // One of this release's own migrations missing as well: refused, naming both.
    let last = env.query(
        "SELECT version FROM seaql_migrations WHERE version <> 'm20991231_000099_newer_release' ORDER BY version DESC LIMIT 1",
    )[0][0]
        .clone();
    env.execute(&format!(
        "DELETE FROM seaql_migrations WHERE version = '{last}'"
    ));
    let out = env.run(&["migrate"]);
    let (_, stderr) = common::text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "has migrations of a newer release ({newer}) and lacks some of this one's ({last})"
        )) && stderr.contains("fix: migrate it with the newest release"),
        "{stderr}"
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM samples"),
        12,
        "nothing lost"
    );
}
