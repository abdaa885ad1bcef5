//! The chaos soak: a cluster in podman containers (PostgreSQL, Redis and four workers on a
//! container network of their own, from the images of `deploy/podman/build-images.sh`), a
//! stream of sweeps submitted from the host every 1–4 s, some cancelled and retried, and a
//! random fault every 15–25 s, in rounds of each kind once in a random order:
//! - a worker's container killed (SIGKILL) and started again, as a service manager would;
//! - Redis killed and started again without persistence (the queue lost);
//! - PostgreSQL killed and started again (crash recovery, its data kept);
//! - one worker disconnected from the network for 20 s;
//! - every worker's disk (a 64 MiB tmpfs of its own) full for 20 s while a sweep on a model
//!   none has written yet arrives.
//!
//! Checked throughout: no sample stored twice. At the end: every run of every sweep in one
//! terminal state (done with every sample; none failed), no run computed twice, no job of a
//! done run unfinished. `NLEBENCH_SOAK_SECS` sets its length (180 s by default, CI's run; it
//! goes on until its last round of faults is complete);
//! with `NLEBENCH_RELIABILITY_OUT` it appends its row to RELIABILITY.md's table
//! (`tools/reliability/run.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use crate::common;
use crate::faults::{Figures, pairs, report, verify};

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Env, Tmpfs, free_port, root, sweep_toml, wait_for_port};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The fixed seed of every random choice (sweeps, cancels, faults, victims).
const SEED: u64 = 20261207;

/// The workers' queue (the host's commands use the same).
const QUEUE: &str = "nlebench-jobs";

/// `podman ARGS` with the project's settings (runc, cgroupfs); its output, whatever its status.
fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .env(
            "CONTAINERS_CONF",
            root().join("deploy/podman/containers.conf"),
        )
        .args(args)
        .output()
        .unwrap()
}

/// `podman ARGS`, which must succeed; its standard output.
fn podman_ok(args: &[&str]) -> String {
    let out = podman(args);
    assert!(
        out.status.success(),
        "podman {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The soak's containers and network, named after this process; all removed when it drops.
struct Cluster {
    /// Each worker's disk, mounted at its data directory (unmounted before `env`'s folder
    /// goes: fields drop in this order).
    disks: Vec<Tmpfs>,
    id: String,
    env: Env,
    workers: Vec<String>,
    rng: ChaCha8Rng,
    /// Worker containers found exited and started again (not the ones the soak killed).
    restarts: usize,
}

impl Cluster {
    /// PostgreSQL and Redis on a network of their own, published on loopback for the host's
    /// commands; the schema migrated from the host.
    fn start() -> Cluster {
        common::images();
        let id = format!("nlebench-soak-{}", std::process::id());
        podman_ok(&["network", "create", &id]);
        let (pg, redis) = (free_port(), free_port());
        podman_ok(&[
            "run",
            "-d",
            "--name",
            &format!("{id}-pg"),
            "--network",
            &id,
            "-p",
            &format!("127.0.0.1:{pg}:5432"),
            "-e",
            "POSTGRES_USER=nlebench",
            "-e",
            "POSTGRES_PASSWORD=nlebench",
            "localhost/nlebench-postgres:15",
        ]);
        podman_ok(&[
            "run",
            "-d",
            "--name",
            &format!("{id}-redis"),
            "--network",
            &id,
            "-p",
            &format!("127.0.0.1:{redis}:6379"),
            "localhost/nlebench-redis:7",
            "redis-server",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
        ]);
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
            database_url: format!("postgres://nlebench:nlebench@127.0.0.1:{pg}/nlebench"),
            queue_url: format!("redis://127.0.0.1:{redis}"),
            queue_name: QUEUE.into(),
            extra: vec![],
        };
        let c = Cluster {
            id,
            env,
            workers: vec![],
            disks: vec![],
            rng: ChaCha8Rng::seed_from_u64(SEED),
            restarts: 0,
        };
        wait_for_port(redis, Duration::from_secs(60), "Redis did not start");
        c.wait_postgres();
        let migrated = c.env.ok(&["migrate", "--wait", "60"]);
        assert!(migrated.contains("the schema is up to date"), "{migrated}");
        c
    }

    /// Wait until PostgreSQL accepts connections again (after its start or a crash).
    fn wait_postgres(&self) {
        let start = Instant::now();
        let pg = format!("{}-pg", self.id);
        while !podman(&["exec", &pg, "pg_isready", "-q", "-h", "/var/run/postgresql"])
            .status
            .success()
        {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "PostgreSQL not ready after 60 s:\n{}",
                self.logs(&pg)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A folder of the host's shared read-only with every worker at the same path (the
    /// sweeps' datasets).
    fn shared(&self) -> std::path::PathBuf {
        let dir = self.env.dir.path().join("shared");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Start worker container `name`: the store and queue by their container names, its
    /// data directory (copies of the random models) on a 64 MiB disk of its own, a tmpfs
    /// mounted on the host (it outlives the container's restarts, as a host's disk would; a
    /// tmpfs of podman's own comes back root-owned from `podman start`).
    fn start_worker(&mut self, name: &str) {
        let disk = self.env.dir.path().join("disks").join(name);
        let tmpfs = Tmpfs::mount(&disk, "64m");
        std::fs::set_permissions(&disk, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let disk = format!("{}:/data", disk.display());
        self.disks.push(tmpfs);
        let shared = self.shared();
        let shared = shared.to_str().unwrap();
        let id = &self.id;
        let vars = [
            format!("NLEBENCH_DATABASE_URL=postgres://nlebench:nlebench@{id}-pg:5432/nlebench"),
            format!("NLEBENCH_QUEUE_URL=redis://{id}-redis:6379"),
            format!("NLEBENCH_QUEUE_NAME={QUEUE}"),
            "NLEBENCH_DATA_DIR=/data".into(),
            "NLEBENCH_HEARTBEAT_SECS=1".into(),
            "NLEBENCH_MISSED_HEARTBEATS=2".into(),
            "NLEBENCH_BACKOFF_SECS=1".into(),
            "NLEBENCH_RECONCILE_SECS=2".into(),
            // Deaths are faults here, not a poison job: a job may lose several workers.
            "NLEBENCH_MAX_ATTEMPTS=100".into(),
            "HF_HUB_OFFLINE=1".into(),
            "NO_COLOR=1".into(),
        ];
        let container = format!("{id}-{name}");
        let volume = format!("{shared}:{shared}:ro");
        let mut args = vec![
            "run",
            "-d",
            "--name",
            &container,
            "--network",
            id,
            "-v",
            &disk,
            "-v",
            &volume,
        ];
        for v in &vars {
            args.extend(["-e", v]);
        }
        args.extend(["localhost/nlebench:latest", "worker", "--name", name]);
        podman_ok(&args);
        self.workers.push(container);
    }

    /// The worker containers' states: name → running.
    fn states(&self) -> BTreeMap<String, bool> {
        let mut args = vec!["inspect", "--format", "{{.Name}} {{.State.Running}}"];
        args.extend(self.workers.iter().map(String::as_str));
        podman_ok(&args)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(n, running)| (n.trim_start_matches('/').to_string(), running == "true"))
            .collect()
    }

    /// Start worker containers that exited by themselves again; returns how many.
    fn supervise(&mut self) -> usize {
        let dead: Vec<String> = self
            .states()
            .into_iter()
            .filter(|(_, running)| !running)
            .map(|(n, _)| n)
            .collect();
        for n in &dead {
            eprintln!(
                "chaos soak: worker {n} exited; its log ends:\n{}",
                self.logs(n)
            );
            podman_ok(&["start", n]);
        }
        self.restarts += dead.len();
        dead.len()
    }

    /// A random worker container.
    fn victim(&mut self) -> String {
        self.workers[self.rng.random_range(0..self.workers.len())].clone()
    }

    fn sleep_random(&mut self, ms: std::ops::Range<u64>) {
        std::thread::sleep(Duration::from_millis(self.rng.random_range(ms)));
    }

    /// The last lines a container wrote.
    fn logs(&self, container: &str) -> String {
        let out = podman(&["logs", "--tail", "15", container]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    fn all_logs(&self) -> String {
        self.workers
            .iter()
            .map(|w| format!("--- {w}\n{}", self.logs(w)))
            .collect()
    }

    /// Poll until every run of `sweep` is terminal, starting exited workers meanwhile.
    fn wait_terminal(&mut self, sweep: &str, within: Duration) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let s = self.env.status(sweep);
            if s["counts"]["queued"] == 0 && s["counts"]["running"] == 0 {
                return s;
            }
            assert!(
                start.elapsed() < within,
                "chaos soak: runs stuck after {within:?}: {s}\n{}",
                self.all_logs()
            );
            self.supervise();
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Samples stored twice for one (run, example).
    fn stored_twice(&self) -> i64 {
        self.env.count(
            "SELECT COUNT(*) FROM (SELECT run_id, idx FROM samples GROUP BY run_id, idx HAVING COUNT(*) > 1) d",
        )
    }

    /// Fill every worker's disk; returns the ballast files.
    fn fill_disks(&self) -> Vec<std::path::PathBuf> {
        self.disks.iter().map(Tmpfs::fill).collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let ids = podman(&["ps", "-aq", "--filter", &format!("name=^{}-", self.id)]);
        let ids = String::from_utf8_lossy(&ids.stdout);
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-v", "-t", "0"];
            args.extend(ids);
            podman(&args);
        }
        podman(&["network", "rm", "-f", &self.id]);
    }
}

#[test]
#[cfg_attr(
    not(nlebench_containers),
    ignore = "starts PostgreSQL, Redis and four workers in containers: needs root, podman, runc, debootstrap and a Debian mirror; set NLEBENCH_TEST_CONTAINERS=1 (.ci/run does)"
)]
fn chaos_soak_of_four_workers_in_containers() {
    let secs: u64 = std::env::var("NLEBENCH_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    let mut c = Cluster::start();
    for i in 0..4 {
        c.start_worker(&format!("w{i}"));
    }
    let data = c.shared().join("pairs.csv");
    std::fs::write(&data, pairs(32)).unwrap();
    let pool = [
        ("a", "random:norgpt-tiny@1"),
        ("b", "random:norgpt-tiny@2"),
        ("c", "random:norgpt-tiny@3"),
    ];
    let (mut sweeps, mut cancelled): (Vec<String>, Vec<String>) = (vec![], vec![]);
    let mut cancels = 0;
    let mut faults: BTreeMap<&str, usize> = BTreeMap::new();
    let start = Instant::now();
    let mut next_fault = Duration::from_secs(c.rng.random_range(15..25));
    // The faults come in rounds of all five kinds in a random order; the stream goes on until
    // its time is up and a round is complete, so that even a short soak meets each kind.
    let mut round: Vec<usize> = vec![];
    while start.elapsed() < Duration::from_secs(secs) || !round.is_empty() || faults.len() < 5 {
        // A new sweep: one or two models, and a limit of its own (part of the fingerprint),
        // so each sweep brings new runs.
        let name = format!("soak{}", sweeps.len());
        let k = c.rng.random_range(1..=2);
        let first = c.rng.random_range(0..pool.len());
        let models: Vec<(&str, &str)> = (0..k).map(|i| pool[(first + i) % pool.len()]).collect();
        let limit = 8 + (sweeps.len() as u64 % 25);
        let file = c.env.write(
            &format!("{name}.toml"),
            &sweep_toml(&name, &models, &[(&name, limit)], 4, &data),
        );
        c.env.ok(&["submit", file.to_str().unwrap()]);
        sweeps.push(name);
        // Now and then cancel a sweep, and retry one cancelled before.
        if c.rng.random_range(0..5) == 0 {
            let victim = sweeps[c.rng.random_range(0..sweeps.len())].clone();
            c.env.ok(&["cancel", &victim]);
            cancelled.push(victim);
            cancels += 1;
        }
        if !cancelled.is_empty() && c.rng.random_range(0..4) == 0 {
            let again = cancelled.remove(0);
            c.env.ok(&["retry", &again]);
        }
        if start.elapsed() >= next_fault {
            if round.is_empty() {
                round = (0..5).collect();
                round.shuffle(&mut c.rng);
            }
            let fault = match round.pop().unwrap() {
                0 => {
                    let w = c.victim();
                    podman_ok(&["kill", "-s", "KILL", &w]);
                    podman_ok(&["start", &w]);
                    "SIGKILL of a worker's container"
                }
                1 => {
                    podman_ok(&["restart", "-t", "0", &format!("{}-redis", c.id)]);
                    "Redis killed, restarted without persistence"
                }
                2 => {
                    podman_ok(&["restart", "-t", "0", &format!("{}-pg", c.id)]);
                    c.wait_postgres();
                    "PostgreSQL killed and restarted"
                }
                3 => {
                    let w = c.victim();
                    podman_ok(&["network", "disconnect", &c.id, &w]);
                    std::thread::sleep(Duration::from_secs(20));
                    podman_ok(&["network", "connect", &c.id, &w]);
                    "one worker disconnected from the network for 20 s"
                }
                _ => {
                    // Every worker's disk full while a sweep on a model none has written yet
                    // arrives: their writes fail, the jobs wait and are retried.
                    let ballast = c.fill_disks();
                    let name = format!("soak{}", sweeps.len());
                    let model = format!("random:norgpt-tiny@{}", 100 + sweeps.len());
                    let file = c.env.write(
                        &format!("{name}.toml"),
                        &sweep_toml(&name, &[("fresh", &model)], &[(&name, 8)], 4, &data),
                    );
                    c.env.ok(&["submit", file.to_str().unwrap()]);
                    sweeps.push(name);
                    let episode = Instant::now();
                    let met = loop {
                        let met = c.env.count(
                            "SELECT COUNT(*) FROM jobs WHERE error LIKE '%No space left on device%' OR error LIKE '%disk is full%'",
                        ) > 0;
                        if met || episode.elapsed() >= Duration::from_secs(20) {
                            break met;
                        }
                        std::thread::sleep(Duration::from_millis(250));
                    };
                    assert!(met, "no worker met the full disk:\n{}", c.all_logs());
                    std::thread::sleep(Duration::from_secs(20).saturating_sub(episode.elapsed()));
                    for file in ballast {
                        std::fs::remove_file(file).unwrap();
                    }
                    "every worker's disk full for 20 s"
                }
            };
            *faults.entry(fault).or_default() += 1;
            next_fault = start.elapsed() + Duration::from_secs(c.rng.random_range(15..25));
        }
        assert_eq!(c.stored_twice(), 0, "a sample stored twice");
        c.supervise();
        c.sleep_random(1000..4000);
    }
    let end = Instant::now();
    for name in &cancelled {
        c.env.ok(&["retry", name]);
    }
    let mut total = Figures::default();
    for name in &sweeps {
        let status = c.wait_terminal(name, Duration::from_secs(300));
        let f = verify(&c.env, "chaos soak", &status, 0);
        total.samples_lost += f.samples_lost;
        total.duplicates = total.duplicates.max(f.duplicates);
    }
    // Sweeps share runs (the same model and limit): each run counted once.
    total.runs_done = c
        .env
        .count("SELECT COUNT(*) FROM runs WHERE status = 'done'") as usize;
    let said: Vec<String> = faults.iter().map(|(f, n)| format!("{n} × {f}")).collect();
    report(
        &format!("chaos soak, {} min", secs / 60),
        &format!(
            "4 worker containers; {} sweeps submitted every 1–4 s, {cancels} cancels then retries; a fault every 15–25 s: {}",
            sweeps.len(),
            said.join(", ")
        ),
        c.env.count("SELECT COUNT(*) FROM jobs"),
        &total,
        end.elapsed(),
        c.restarts,
    );
}
