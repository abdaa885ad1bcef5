//! Backup and restore mid-sweep, as README's "Backups" says: `pg_dump` of a team's store while
//! a sweep is half done, `pg_restore` into a new database, the workers pointed at it,
//! `nlebench reconcile`, and the sweep finishes with nothing lost or duplicated; and the
//! embedded store's online copy (`VACUUM INTO`) resumes the same way.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use crate::common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Env, Proc, mini_pairs, sweep_toml};

/// Sweep `half` half done, deterministically: models a and b finished, then model c added and
/// its first job held by a worker that aborted on it (as the OOM killer would kill it).
fn half_done(env: &Env) {
    let models = [
        ("a", "random:norgpt-tiny@1"),
        ("b", "random:norgpt-tiny@2"),
        ("c", "random:norgpt-tiny@3"),
    ];
    let sweep = |n: usize| {
        env.write(
            "half.toml",
            &sweep_toml("half", &models[..n], &[("all", 32)], 8, &mini_pairs()),
        )
    };
    env.ok(&["submit", sweep(2).to_str().unwrap()]);
    env.ok(&["worker", "--name", "first", "--exit-when-idle", "1"]);
    env.ok(&["submit", sweep(3).to_str().unwrap()]);
    let out = env
        .cmd(&["worker", "--name", "doomed"])
        .env("NLEBENCH_TEST_FAULT_ABORT_MODEL", "c")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "the worker aborted at model c");
    assert_eq!(
        env.count("SELECT COUNT(*) FROM runs WHERE status = 'done'"),
        2
    );
    assert_eq!(env.count("SELECT COUNT(*) FROM samples"), 64);
}

/// Run a worker until sweep `half` is finished; return the runs' statuses.
fn finish(env: &Env) -> serde_json::Value {
    let _w = Proc {
        child: env
            .cmd(&["worker", "--name", "after"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    };
    env.wait_finished("half", Duration::from_secs(120))
}

fn check_whole(env: &Env, before: &[Vec<String>]) {
    assert_eq!(
        env.count("SELECT COUNT(*) FROM runs WHERE status = 'done'"),
        3
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM samples"),
        96,
        "nothing lost"
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM (SELECT DISTINCT run_id, idx FROM samples) s"),
        96,
        "nothing duplicated"
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM runs"),
        3,
        "no run planned twice"
    );
    // The samples of the backup are the restored store's, unchanged.
    let after = env
        .query("SELECT run_id, idx, data FROM samples WHERE run_id IN (1, 2) ORDER BY run_id, idx");
    assert_eq!(after, before);
}

#[test]
#[cfg_attr(
    not(nlebench_services),
    ignore = "needs PostgreSQL and Redis: set NLEBENCH_TEST_DATABASE_URL and NLEBENCH_TEST_REDIS_URL (.ci/run does)"
)]
fn a_team_store_restored_from_pg_dump_mid_sweep_finishes_the_sweep() {
    let mut env = Env::team();
    env.ok(&["migrate"]);
    half_done(&env);
    let before = env.query("SELECT run_id, idx, data FROM samples ORDER BY run_id, idx");
    let dump = env.dir.path().join("store.dump");
    let status = Command::new("pg_dump")
        .args([
            "--format=custom",
            "--file",
            dump.to_str().unwrap(),
            &env.database_url,
        ])
        .status()
        .expect("pg_dump is installed with PostgreSQL");
    assert!(status.success());
    // The store is lost; a new database gets the backup.
    let (base, old) = env.database_url.rsplit_once('/').unwrap();
    let restored = format!("{old}_restored");
    let admin = format!("{base}/postgres");
    let psql = |sql: &str| {
        let s = Command::new("psql")
            .args([&admin, "-v", "ON_ERROR_STOP=1", "-c", sql])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(s.success(), "{sql}");
    };
    psql(&format!("CREATE DATABASE \"{restored}\""));
    let new_url = format!("{base}/{restored}");
    let status = Command::new("pg_restore")
        .args(["--no-owner", "--dbname", &new_url, dump.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    psql(&format!("DROP DATABASE \"{old}\" WITH (FORCE)"));
    env.database_url = new_url;
    // The restored store is at the current schema; reconcile requeues what no worker holds.
    env.ok(&["migrate"]);
    let out = env.ok(&["reconcile"]);
    assert!(out.contains("queued again"), "{out}");
    let status = finish(&env);
    assert_eq!(status["counts"]["done"], 3, "{status}");
    check_whole(&env, &before);
}

#[test]
fn an_embedded_store_restored_from_its_online_copy_finishes_the_sweep() {
    let mut env = Env::embedded();
    half_done(&env);
    let before = env.query("SELECT run_id, idx, data FROM samples ORDER BY run_id, idx");
    // The online copy README gives: consistent while workers write (WAL), one file.
    let copy = env.dir.path().join("backup.sqlite");
    env.execute(&format!("VACUUM INTO '{}'", copy.display()));
    // The data directory is lost; the copy is put in place of the store.
    let data = env.dir.path().join("data");
    for f in [
        "nlebench.sqlite",
        "nlebench.sqlite-wal",
        "nlebench.sqlite-shm",
    ] {
        let _ = std::fs::remove_file(data.join(f));
    }
    std::fs::copy(&copy, data.join("nlebench.sqlite")).unwrap();
    env.database_url = format!("sqlite://{}", data.join("nlebench.sqlite").display());
    env.ok(&["reconcile"]);
    let status = finish(&env);
    assert_eq!(status["counts"]["done"], 3, "{status}");
    check_whole(&env, &before);
}
