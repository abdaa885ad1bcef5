//! Fault injection against real PostgreSQL and Redis on loopback, with a fixed seed: workers
//! killed at random points, Redis flushed and restarted without persistence, PostgreSQL
//! unreachable for 10 s and 60 s, cancels racing claims and last batches, two submissions at
//! once, and a poison job that kills every worker taking it. Every scenario must end with
//! each cell in exactly one terminal state, exact sample counts, no duplicate, no stuck run.
//!
//! Each scenario has its own Redis server (so flushing and restarting it touches nothing
//! else) and reaches PostgreSQL through a loopback proxy the test can cut. With
//! `NLEBENCH_RELIABILITY_OUT=FILE` each scenario appends its row of figures to FILE
//! (`tools/reliability/run.sh` turns them into RELIABILITY.md).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use crate::common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Env, Proc, free_port, mini_pairs, sweep_toml, wait_for_port};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The fixed seed of every random choice (kill times, victims, cancel delays).
const SEED: u64 = 20261130;

/// Scenarios share two cores; one at a time keeps their timings meaningful.
static SERIAL: Mutex<()> = Mutex::new(());

/// A Redis server of one scenario, without persistence (as `.ci/services.sh` starts it).
struct Redis {
    port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl Redis {
    fn start() -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Self::spawn(port, &dir);
        Redis { port, dir, child }
    }

    fn spawn(port: u16, dir: &tempfile::TempDir) -> Child {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server, which must be on PATH: {e}"));
        wait_for_port(port, Duration::from_secs(10), "redis-server did not start");
        child
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// SIGKILL and start again on the same port: every queued job is gone.
    fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(500));
        self.child = Self::spawn(self.port, &self.dir);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy to PostgreSQL that can be cut: open connections are reset and new ones closed
/// at once, as when the server is down.
struct Proxy {
    port: u16,
    down: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (d, o) = (down.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if d.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let mut list = o.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, down, open }
    }

    /// `url` (of PostgreSQL) through this proxy.
    fn url(&self, url: &str) -> String {
        let target = pg_port(url);
        url.replace(&format!(":{target}/"), &format!(":{}/", self.port))
    }

    /// Cut PostgreSQL off for `d`.
    fn outage(&self, d: Duration) {
        self.down.store(true, Ordering::SeqCst);
        for c in self.open.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        std::thread::sleep(d);
        self.down.store(false, Ordering::SeqCst);
    }
}

/// The port of a `postgres://USER@HOST:PORT/DB` URL.
fn pg_port(url: &str) -> u16 {
    url.rsplit_once('@')
        .and_then(|(_, host)| host.split_once(':'))
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("NLEBENCH_TEST_DATABASE_URL names host:port")
}

/// One scenario's environment: a fresh database, its own Redis, workers that are restarted
/// under their names when they die (as a service manager would).
struct Scenario {
    name: &'static str,
    env: Env,
    redis: Redis,
    proxy: Proxy,
    workers: BTreeMap<String, Proc>,
    worker_env: Vec<(String, String)>,
    rng: ChaCha8Rng,
    restarts: usize,
}

impl Scenario {
    fn new(name: &'static str) -> Scenario {
        let mut env = Env::team();
        let redis = Redis::start();
        env.queue_url = redis.url();
        let proxy = Proxy::start(pg_port(&env.database_url));
        env.ok(&["migrate"]);
        let proxied = proxy.url(&env.database_url);
        Scenario {
            name,
            env,
            redis,
            proxy,
            workers: BTreeMap::new(),
            worker_env: vec![
                ("NLEBENCH_DATABASE_URL".into(), proxied),
                ("NLEBENCH_RECONCILE_SECS".into(), "2".into()),
            ],
            rng: ChaCha8Rng::seed_from_u64(SEED),
            restarts: 0,
        }
    }

    fn worker_var(&mut self, k: &str, v: &str) {
        self.worker_env.push((k.into(), v.into()));
    }

    fn spawn(&self, name: &str) -> Proc {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.env.dir.path().join(format!("{name}.log")))
            .unwrap();
        let mut c = self.env.cmd(&["worker", "--name", name]);
        for (k, v) in &self.worker_env {
            c.env(k, v);
        }
        Proc {
            child: c.stdout(Stdio::null()).stderr(log).spawn().unwrap(),
        }
    }

    fn start_workers(&mut self, n: usize) {
        for i in 0..n {
            let name = format!("w{i}");
            let p = self.spawn(&name);
            self.workers.insert(name, p);
        }
    }

    /// Restart workers that exited (killed by a fault); returns how many.
    fn supervise(&mut self) -> usize {
        let dead: Vec<String> = self
            .workers
            .iter_mut()
            .filter_map(|(n, p)| p.child.try_wait().unwrap().map(|_| n.clone()))
            .collect();
        for n in &dead {
            let log = std::fs::read_to_string(self.env.dir.path().join(format!("{n}.log")))
                .unwrap_or_default();
            let last: Vec<&str> = log.lines().rev().take(2).collect();
            eprintln!("{}: worker {n} exited; its log ends: {last:?}", self.name);
            let p = self.spawn(n);
            self.workers.insert(n.clone(), p);
        }
        self.restarts += dead.len();
        dead.len()
    }

    /// SIGKILL a random worker and start it again under its name.
    fn kill_one(&mut self) -> String {
        let names: Vec<String> = self.workers.keys().cloned().collect();
        let victim = names[self.rng.random_range(0..names.len())].clone();
        self.workers.get_mut(&victim).unwrap().kill();
        let p = self.spawn(&victim);
        self.workers.insert(victim.clone(), p);
        victim
    }

    fn sleep_random(&mut self, ms: std::ops::Range<u64>) {
        std::thread::sleep(Duration::from_millis(self.rng.random_range(ms)));
    }

    fn samples(&self) -> i64 {
        self.env.count("SELECT COUNT(*) FROM samples")
    }

    fn wait_samples(&mut self, n: i64, within: Duration) {
        let start = Instant::now();
        while self.samples() < n {
            assert!(
                start.elapsed() < within,
                "{}: fewer than {n} samples after {within:?}",
                self.name
            );
            self.supervise();
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Poll until every run of `sweep` is terminal, restarting dead workers meanwhile.
    fn wait_terminal(&mut self, sweep: &str, within: Duration) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let s = self.env.status(sweep);
            if s["counts"]["queued"] == 0 && s["counts"]["running"] == 0 {
                return s;
            }
            assert!(
                start.elapsed() < within,
                "{}: runs stuck after {within:?}: {s}\n{}",
                self.name,
                self.logs()
            );
            self.supervise();
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for n in self.workers.keys() {
            let log =
                std::fs::read_to_string(self.env.dir.path().join(format!("{n}.log"))).unwrap();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            out += &format!("--- {n} (last lines, newest first)\n{}\n", tail.join("\n"));
        }
        out
    }

    fn sweep(&self, name: &str, models: &[(&str, &str)], n: u64, shard: u64) -> PathBuf {
        let data = self.env.write("pairs.csv", &pairs(n));
        self.env.write(
            &format!("{name}.toml"),
            &sweep_toml(name, models, &[("all", n)], shard, &data),
        )
    }

    fn verify(&self, status: &serde_json::Value, expect_failed: usize) -> Figures {
        verify(&self.env, self.name, status, expect_failed)
    }

    fn stop(&mut self) {
        for p in self.workers.values_mut() {
            p.terminate();
        }
    }
}

/// Figures of one scenario, as RELIABILITY.md shows them.
#[derive(Debug, Default)]
pub(crate) struct Figures {
    pub(crate) runs_done: usize,
    pub(crate) runs_failed: usize,
    pub(crate) samples_lost: i64,
    pub(crate) duplicates: i64,
}

/// The end state every scenario must reach (each run of the sweep done with every sample or
/// failed, `expect_failed` failed, nothing stored or computed twice, no job of a done run
/// unfinished); returns the figures.
pub(crate) fn verify(
    env: &Env,
    name: &str,
    status: &serde_json::Value,
    expect_failed: usize,
) -> Figures {
    let runs = status["runs"].as_array().unwrap();
    let mut f = Figures::default();
    for r in runs {
        match r["status"].as_str().unwrap() {
            "done" => {
                f.runs_done += 1;
                let (got, want) = (
                    r["samples"].as_i64().unwrap(),
                    r["expected"].as_i64().unwrap(),
                );
                assert_eq!(got, want, "{}: a done run has every sample: {r}", name);
                f.samples_lost += want - got;
                assert!(
                    r["metrics"].as_object().is_some_and(|m| !m.is_empty()),
                    "{r}"
                );
            }
            "failed" => f.runs_failed += 1,
            other => panic!("{}: run ended {other}: {r}", name),
        }
    }
    assert_eq!(
        f.runs_failed,
        expect_failed,
        "{}: {status}\njobs (shard status worker attempts deaths samples):\n{}",
        name,
        jobs_table(env)
    );
    f.duplicates = env.count(
        "SELECT COUNT(*) FROM (SELECT run_id, idx FROM samples GROUP BY run_id, idx HAVING COUNT(*) > 1) d",
    ) + env.count("SELECT COUNT(*) - COUNT(DISTINCT fingerprint) FROM runs");
    assert_eq!(
        f.duplicates, 0,
        "{}: nothing stored or computed twice",
        name
    );
    let not_done = env.count(
        "SELECT COUNT(*) FROM jobs j JOIN runs r ON r.id = j.run_id WHERE r.status = 'done' AND j.status <> 'done'",
    );
    assert_eq!(not_done, 0, "{}: every job of a done run is done", name);
    f
}

/// Each job with the samples stored in its range, for a failure message.
fn jobs_table(env: &Env) -> String {
    env
        .query(
            "SELECT CAST(j.shard AS TEXT), j.status, COALESCE(j.worker, '-'), CAST(j.attempts AS TEXT), CAST(j.deaths AS TEXT), \
             CAST((SELECT COUNT(*) FROM samples s WHERE s.run_id = j.run_id AND s.idx >= j.start_idx AND s.idx < j.end_idx) AS TEXT) \
             FROM jobs j ORDER BY j.run_id, j.shard",
        )
        .iter()
        .map(|r| r.join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Append the scenario's row to `NLEBENCH_RELIABILITY_OUT`, when set.
pub(crate) fn report(
    name: &str,
    faults: &str,
    jobs: i64,
    f: &Figures,
    recover: Duration,
    restarts: usize,
) {
    let row = format!(
        "| {name} | {faults} | {jobs} | {} done, {} failed | {} | {} | {:.1} s | {restarts} |\n",
        f.runs_done,
        f.runs_failed,
        f.samples_lost,
        f.duplicates,
        recover.as_secs_f64()
    );
    eprint!("{row}");
    if let Ok(path) = std::env::var("NLEBENCH_RELIABILITY_OUT") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        file.write_all(row.as_bytes()).unwrap();
    }
}

/// `n` Norwegian sentence pairs (the mini file, repeated with a distinguishing suffix).
pub(crate) fn pairs(n: u64) -> String {
    let mut csv = String::from("sent_more_no,sent_less_no,stereo_antistereo,bias_type\n");
    let base = std::fs::read_to_string(mini_pairs()).unwrap();
    let rows: Vec<&str> = base.lines().skip(1).collect();
    for i in 0..n as usize {
        let f: Vec<&str> = rows[i % rows.len()].split(',').collect();
        let k = i / rows.len();
        csv += &format!(
            "{} Klokka var {k}.,{} Klokka var {k}.,{},{}\n",
            f[0], f[1], f[2], f[3]
        );
    }
    csv
}

fn jobs(s: &Scenario) -> i64 {
    s.env.count("SELECT COUNT(*) FROM jobs")
}

macro_rules! services_test {
    ($name:ident, $body:expr) => {
        #[test]
        #[cfg_attr(
            not(nlebench_services),
            ignore = "needs PostgreSQL and Redis (set NLEBENCH_TEST_DATABASE_URL and NLEBENCH_TEST_REDIS_URL, as .ci/run does) and redis-server on PATH"
        )]
        fn $name() {
            let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
            let f: fn() = $body;
            f();
        }
    };
}

services_test!(workers_killed_at_random_points, || {
    let mut s = Scenario::new("SIGKILL of workers");
    // Deaths are the fault here, not a poison job: a job may lose several workers.
    s.worker_var("NLEBENCH_MAX_ATTEMPTS", "100");
    let sweep = s.sweep(
        "kills",
        &[
            ("a", "random:norgpt-small@1"),
            ("b", "random:norgpt-small@2"),
        ],
        256,
        6,
    );
    s.env.ok(&["submit", sweep.to_str().unwrap()]);
    s.start_workers(3);
    // Kills at random points of the sweep's progress (so a fast machine does not finish the
    // sweep before them): 20 sample counts between 2 % and 85 % of the 512, each followed by
    // a random pause into the next batch.
    let mut at: Vec<i64> = (0..20).map(|_| s.rng.random_range(10..435)).collect();
    at.sort_unstable();
    let mut kills = 0;
    for n in at {
        s.wait_samples(n, Duration::from_secs(120));
        s.sleep_random(0..200);
        s.kill_one();
        kills += 1;
    }
    let last_kill = Instant::now();
    assert!(
        s.env.status("kills")["counts"]["done"].as_i64().unwrap() < 2,
        "the sweep must still be running after the 20th kill"
    );
    let status = s.wait_terminal("kills", Duration::from_secs(240));
    let recover = last_kill.elapsed();
    let f = s.verify(&status, 0);
    assert!(jobs(&s) >= 40, "at least 40 jobs");
    let deaths = s.env.count("SELECT COALESCE(SUM(deaths), 0) FROM jobs");
    assert!(deaths >= 1, "killed holders are counted");
    report(
        s.name,
        &format!("{kills} × SIGKILL (workers restarted under their names)"),
        jobs(&s),
        &f,
        recover,
        s.restarts,
    );
    s.stop();
});

services_test!(redis_flushed_mid_sweep, || {
    let mut s = Scenario::new("Redis FLUSHALL");
    let sweep = s.sweep("flush", &[("a", "random:norgpt-small@3")], 256, 8);
    s.env.ok(&["submit", sweep.to_str().unwrap()]);
    s.start_workers(2);
    s.wait_samples(40, Duration::from_secs(120));
    assert_eq!(s.redis.cli(&["FLUSHALL"]), "OK");
    let fault = Instant::now();
    let status = s.wait_terminal("flush", Duration::from_secs(120));
    let f = s.verify(&status, 0);
    report(
        s.name,
        "FLUSHALL after 40 samples",
        jobs(&s),
        &f,
        fault.elapsed(),
        s.restarts,
    );
    s.stop();
});

services_test!(redis_restarted_without_persistence, || {
    let mut s = Scenario::new("Redis restart, no persistence");
    let sweep = s.sweep("restart", &[("a", "random:norgpt-small@4")], 256, 8);
    s.env.ok(&["submit", sweep.to_str().unwrap()]);
    s.start_workers(2);
    s.wait_samples(40, Duration::from_secs(120));
    s.redis.restart();
    let fault = Instant::now();
    let status = s.wait_terminal("restart", Duration::from_secs(120));
    let f = s.verify(&status, 0);
    report(
        s.name,
        "SIGKILL of redis-server, restarted empty",
        jobs(&s),
        &f,
        fault.elapsed(),
        s.restarts,
    );
    s.stop();
});

fn postgres_outage(secs: u64) {
    let mut s = Scenario::new(if secs < 30 {
        "PostgreSQL down 10 s"
    } else {
        "PostgreSQL down 60 s"
    });
    let name = format!("pg{secs}");
    let sweep = s.sweep(&name, &[("a", "random:norgpt-small@5")], 256, 8);
    s.env.ok(&["submit", sweep.to_str().unwrap()]);
    s.start_workers(2);
    s.wait_samples(40, Duration::from_secs(120));
    s.proxy.outage(Duration::from_secs(secs));
    let back = Instant::now();
    let status = s.wait_terminal(&name, Duration::from_secs(180));
    let f = s.verify(&status, 0);
    report(
        s.name,
        &format!("every connection cut, none accepted for {secs} s"),
        jobs(&s),
        &f,
        back.elapsed(),
        s.restarts,
    );
    s.stop();
}

services_test!(postgres_unreachable_for_10_s, || postgres_outage(10));
services_test!(postgres_unreachable_for_60_s, || postgres_outage(60));

services_test!(cancel_races_claims_and_last_batches, || {
    let mut s = Scenario::new("cancel racing claims");
    let data = s.env.write("pairs.csv", &pairs(64));
    let sweep = s.env.write(
        "cancel.toml",
        &sweep_toml(
            "cancel",
            &[("a", "random:norgpt-tiny@1"), ("b", "random:norgpt-tiny@2")],
            &[("first-32", 32), ("all", 64)],
            4,
            &data,
        ),
    );
    s.env.ok(&["submit", sweep.to_str().unwrap()]);
    s.start_workers(2);
    let mut cancels = 0;
    for round in 0..4 {
        s.sleep_random(50..1500);
        s.env.ok(&["cancel", "cancel"]);
        cancels += 1;
        let after_cancel = s.env.status("cancel");
        let settled = s.wait_terminal("cancel", Duration::from_secs(60));
        // A run cancelled stays cancelled: no claim or last batch writes over it.
        for (a, b) in after_cancel["runs"]
            .as_array()
            .unwrap()
            .iter()
            .zip(settled["runs"].as_array().unwrap())
        {
            if a["status"] == "cancelled" {
                assert_eq!(b["status"], "cancelled", "round {round}: {a} became {b}");
            }
        }
        assert_eq!(
            s.env
                .count("SELECT COUNT(*) FROM jobs WHERE status = 'running'"),
            0
        );
        s.env.ok(&["retry", "cancel"]);
    }
    let resumed = Instant::now();
    let status = s.wait_terminal("cancel", Duration::from_secs(120));
    let f = s.verify(&status, 0);
    report(
        s.name,
        &format!("{cancels} × cancel at random times, then retry"),
        jobs(&s),
        &f,
        resumed.elapsed(),
        s.restarts,
    );
    s.stop();
});

services_test!(two_submissions_of_one_sweep_at_once, || {
    let mut s = Scenario::new("two submits at once");
    let sweep = s.sweep(
        "twice",
        &[("a", "random:norgpt-tiny@3"), ("b", "random:norgpt-tiny@4")],
        64,
        8,
    );
    let spawn = || {
        s.env
            .cmd(&["submit", sweep.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success(), "{a:?} {b:?}");
    assert_eq!(
        s.env.count("SELECT COUNT(*) FROM runs"),
        2,
        "each cell has one run"
    );
    assert_eq!(s.env.count("SELECT COUNT(*) FROM jobs"), 16);
    let start = Instant::now();
    s.start_workers(2);
    let status = s.wait_terminal("twice", Duration::from_secs(120));
    let f = s.verify(&status, 0);
    report(
        s.name,
        "2 × `submit` started together",
        jobs(&s),
        &f,
        start.elapsed(),
        s.restarts,
    );
    s.stop();
});

services_test!(a_poison_job_fails_after_max_attempts, || {
    let mut s = Scenario::new("poison job (OOM-like deaths)");
    s.worker_var("NLEBENCH_TEST_FAULT_ABORT_MODEL", "poison");
    s.worker_var("NLEBENCH_MAX_ATTEMPTS", "3");
    let sweep = s.sweep(
        "poison",
        &[
            ("poison", "random:norgpt-tiny@5"),
            ("fine", "random:norgpt-tiny@6"),
        ],
        32,
        100,
    );
    s.env.ok(&["submit", sweep.to_str().unwrap()]);
    let start = Instant::now();
    s.start_workers(2);
    let status = s.wait_terminal("poison", Duration::from_secs(120));
    let f = s.verify(&status, 1);
    let failed = status["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["status"] == "failed")
        .unwrap();
    assert!(
        failed["cell"].as_str().unwrap().starts_with("poison"),
        "{failed}"
    );
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.starts_with("worker died 3 times on this job (last: w"),
        "{error}"
    );
    assert!(
        s.restarts >= 3,
        "every death took a worker down: {}",
        s.restarts
    );
    report(
        s.name,
        "every worker taking the job aborts (max_attempts 3)",
        jobs(&s),
        &f,
        start.elapsed(),
        s.restarts,
    );
    s.stop();
});

services_test!(migrate_waits_for_a_database_still_starting, || {
    // As in a compose stack: `migrate` starts before PostgreSQL accepts connections.
    let mut env = Env::team();
    let proxy = Proxy::start(pg_port(&env.database_url));
    proxy.down.store(true, Ordering::SeqCst);
    env.database_url = proxy.url(&env.database_url);
    let out = env.run(&["migrate"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("cannot connect to the database"),
        "{stderr}"
    );

    let waiting = env
        .cmd(&["migrate", "--wait", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    proxy.down.store(false, Ordering::SeqCst);
    let out = waiting.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("store unavailable (connecting), retrying"),
        "{stderr}"
    );
    assert!(stdout.contains("the schema is up to date"), "{stdout}");
    assert!(env.count("SELECT COUNT(*) FROM runs") == 0);
});
