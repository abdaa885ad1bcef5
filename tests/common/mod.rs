//! Helpers of the end-to-end tests: run the `nlebench` binary against an embedded SQLite
//! store or against real PostgreSQL and Redis (from `NLEBENCH_TEST_DATABASE_URL` and
//! `NLEBENCH_TEST_REDIS_URL`, which `.ci/run` sets after starting both servers).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use prometheus_parse::{Sample, Scrape, Value};
use sea_orm::{ConnectionTrait, Database, Statement};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The repository root.
pub fn root() -> PathBuf {
    test_support::repo()
}

/// Build nlebench's images with podman (`deploy/podman/build-images.sh`, with this build's
/// binary) once per test process, for every container test; a failed build fails each.
pub fn images() {
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let out = Command::new(root().join("deploy/podman/build-images.sh"))
            .args(["--binary", env!("CARGO_BIN_EXE_nlebench-test")])
            .output()
            .unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "build-images.sh failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = built {
        panic!("{e}");
    }
}

/// A TCP port on loopback that nothing listens on (for a server a test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Wait until something listens on loopback `port`; fail with `what` after `within`.
pub fn wait_for_port(port: u16, within: Duration, what: &str) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < within, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The small Norwegian pairs file shipped with the project.
pub fn mini_pairs() -> PathBuf {
    root().join("experiments/data/no-crows-pairs-mini.csv")
}

/// An isolated place to run `nlebench`: its own data dir, store and queue.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub database_url: String,
    pub queue_url: String,
    pub queue_name: String,
    pub extra: Vec<(String, String)>,
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

impl Env {
    /// The embedded default: SQLite store and queue in a temp dir.
    pub fn embedded() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        Env {
            database_url: format!("sqlite://{}", data.join("nlebench.sqlite").display()),
            queue_url: format!("sqlite://{}", data.join("queue.sqlite").display()),
            queue_name: "nlebench-jobs".into(),
            dir,
            extra: vec![],
        }
    }

    /// Team mode against real PostgreSQL (a fresh database) and Redis (a fresh queue name).
    /// Tests that use it are marked ignored where the servers are not configured
    /// (`cfg(nlebench_services)`); run anyway, they fail here.
    pub fn team() -> Env {
        let (Ok(db), Ok(redis)) = (
            std::env::var("NLEBENCH_TEST_DATABASE_URL"),
            std::env::var("NLEBENCH_TEST_REDIS_URL"),
        ) else {
            panic!(
                "this test needs PostgreSQL and Redis: set NLEBENCH_TEST_DATABASE_URL and NLEBENCH_TEST_REDIS_URL (.ci/run does)"
            );
        };
        let name = unique("nlebench_t");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let conn = Database::connect(&db)
                .await
                .expect("test PostgreSQL reachable");
            conn.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .unwrap();
        });
        let base = db.rsplit_once('/').unwrap().0;
        Env {
            dir: tempfile::tempdir().unwrap(),
            database_url: format!("{base}/{name}"),
            queue_url: redis,
            queue_name: unique("q"),
            extra: vec![],
        }
    }

    /// Add the generation task `continue` (template `Fortsett: {sent_more_no}`, reference
    /// `sent_less_no`, scored with `metrics`) in a tasks folder of its own.
    pub fn add_continue_task(&mut self, metrics: &[&str]) {
        let tasks = self.dir.path().join("tasks");
        std::fs::create_dir_all(&tasks).unwrap();
        let metrics: Vec<String> = metrics.iter().map(|m| format!("\"{m}\"")).collect();
        std::fs::write(
            tasks.join("continue.toml"),
            format!(
                "name = \"continue\"\nversion = 1\nkind = \"generation\"\nprimary_metric = \"rouge_l\"\n\
                 metrics = [{}]\ntemplate = \"Fortsett: {{sent_more_no}}\"\n\
                 [dataset]\nsource = \"path:/unused.csv\"\n[fields]\nreference = \"sent_less_no\"\n",
                metrics.join(", ")
            ),
        )
        .unwrap();
        self.extra
            .push(("NLEBENCH_TASKS_DIR".into(), tasks.display().to_string()));
    }

    /// A command running `nlebench` in this environment (fast heartbeats, no network).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_nlebench-test"));
        c.args(args)
            .current_dir(self.dir.path())
            .env_remove("NLEBENCH_CONFIG")
            .env("NLEBENCH_DATABASE_URL", &self.database_url)
            .env("NLEBENCH_QUEUE_URL", &self.queue_url)
            .env("NLEBENCH_QUEUE_NAME", &self.queue_name)
            .env("NLEBENCH_DATA_DIR", self.dir.path().join("data"))
            .env("NLEBENCH_TASKS_DIR", root().join("experiments/tasks"))
            .env(
                "NLEBENCH_CATALOG",
                root().join("experiments/models/catalog.toml"),
            )
            .env("NLEBENCH_HEARTBEAT_SECS", "1")
            .env("NLEBENCH_MISSED_HEARTBEATS", "2")
            .env("NLEBENCH_BACKOFF_SECS", "1")
            .env("HF_HOME", self.dir.path().join("hf"))
            .env("HF_HUB_OFFLINE", "1")
            .env("NO_COLOR", "1");
        for (k, v) in &self.extra {
            c.env(k, v);
        }
        c
    }

    /// Run `nlebench` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "nlebench {args:?} failed:\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Start a worker process (killed when the guard drops).
    pub fn worker(&self, name: &str) -> Proc {
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap();
        let child = self
            .cmd(&["worker", "--name", name])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Proc { child }
    }

    /// Start a worker process serving its metrics on a free port (killed when the guard drops).
    pub fn worker_with_metrics(&self, name: &str) -> (Proc, u16) {
        let port = free_port();
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap();
        let child = self
            .cmd(&[
                "worker",
                "--name",
                name,
                "--metrics-addr",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        wait_for_port(
            port,
            Duration::from_secs(60),
            "the worker's metrics endpoint did not start",
        );
        (Proc { child }, port)
    }

    /// Write a file into the env's directory.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// `status SWEEP --json`.
    pub fn status(&self, sweep: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["status", sweep, "--json"])).unwrap()
    }

    /// Poll until every run of the sweep is terminal; returns the last status.
    pub fn wait_finished(&self, sweep: &str, timeout: Duration) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let s = self.status(sweep);
            let c = &s["counts"];
            if c["queued"] == 0 && c["running"] == 0 {
                return s;
            }
            assert!(
                start.elapsed() < timeout,
                "sweep {sweep} did not finish in {timeout:?}: {s}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Run SQL on the store and return rows as JSON-ish strings.
    pub fn query(&self, sql: &str) -> Vec<Vec<String>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let url = if self.database_url.starts_with("sqlite://") {
                format!("{}?mode=ro", self.database_url)
            } else {
                self.database_url.clone()
            };
            let conn = Database::connect(&url).await.unwrap();
            let backend = conn.get_database_backend();
            let rows = conn
                .query_all_raw(Statement::from_string(backend, sql.to_string()))
                .await
                .unwrap();
            rows.iter()
                .map(|r| {
                    (0..r.column_names().len())
                        .map(|i| {
                            r.try_get_by_index::<Option<String>>(i)
                                .map(|v| v.unwrap_or_default())
                                .or_else(|_| r.try_get_by_index::<i64>(i).map(|v| v.to_string()))
                                .or_else(|_| r.try_get_by_index::<i32>(i).map(|v| v.to_string()))
                                .unwrap_or_else(|_| "?".into())
                        })
                        .collect()
                })
                .collect()
        })
    }

    /// Run a statement that changes the store (to simulate what tests cannot provoke).
    pub fn execute(&self, sql: &str) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let conn = Database::connect(&self.database_url).await.unwrap();
            conn.execute_unprepared(sql).await.unwrap();
        });
    }

    /// A single number from SQL.
    pub fn count(&self, sql: &str) -> i64 {
        self.query(sql)[0][0].parse().unwrap()
    }

    /// Import the paper's baselines (`experiments/baselines/norglm-released.csv`).
    pub fn import_released_baselines(&self) -> String {
        let csv = root().join("experiments/baselines/norglm-released.csv");
        self.ok(&["baselines", "import", csv.to_str().unwrap()])
    }
}

/// A child process killed (SIGKILL) on drop.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    /// Kill with SIGKILL now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stop with SIGTERM and wait.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Put the tiny GPT-2 fixture in a Hugging Face cache as `test/tiny-gpt2` at commit `c0ffee`.
pub fn hub_fixture(env: &Env) -> std::path::PathBuf {
    let repo = env.dir.path().join("hf/hub/models--test--tiny-gpt2");
    let snap = repo.join("snapshots/c0ffee");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "c0ffee").unwrap();
    for f in std::fs::read_dir(root().join("tests/fixtures/tiny-gpt2")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, snap.join(f.file_name().unwrap())).unwrap();
    }
    snap
}

/// A sweep over the mini pairs file.
pub fn sweep_toml(
    name: &str,
    models: &[(&str, &str)],
    settings: &[(&str, u64)],
    shard: u64,
    data: &Path,
) -> String {
    let mut s = format!(
        "name = \"{name}\"\ntasks = [\"no-crows-pairs\"]\nshard_size = {shard}\n\n[datasets]\nno-crows-pairs = \"path:{}\"\n",
        data.display()
    );
    for (m, src) in models {
        s += &format!("\n[[models]]\nname = \"{m}\"\nsource = \"{src}\"\n");
    }
    for (n, limit) in settings {
        s += &format!("\n[[settings]]\nname = \"{n}\"\nlimit = {limit}\nbatch_size = 2\n");
    }
    s
}

/// Text of a command's output streams.
pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Status, headers and body of `GET path`.
pub fn get(port: u16, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    (
        head[9..12].parse().unwrap(),
        head.to_string(),
        body.to_string(),
    )
}

/// `/metrics` on `port`, parsed; its content type is the exposition format's.
pub fn scrape(port: u16) -> Scrape {
    let (status, head, body) = get(port, "/metrics");
    assert_eq!(status, 200, "{head}\n{body}");
    assert!(
        head.to_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap()
}

/// The value of `metric` whose labels include `labels`.
pub fn metric(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<&Sample> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    assert_eq!(found.len(), 1, "{metric}{labels:?} in {:?}", scrape.samples);
    match found[0].value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        ref other => panic!("{metric} is {other:?}"),
    }
}

/// A tmpfs of `size` at `dir` (unmounted when dropped). Only where this user may mount
/// (`cfg(nlebench_tmpfs)`: `NLEBENCH_TEST_TMPFS=1`, as `.ci/run` sets as root).
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(
            ok,
            "mount -t tmpfs at {} (NLEBENCH_TEST_TMPFS says it may)",
            dir.display()
        );
        Tmpfs(dir.to_path_buf())
    }

    pub fn grow(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

impl Tmpfs {
    /// Fill the file system with `ballast` until no byte more fits; returns its path.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let ballast = self.0.join("ballast");
        let mut f = std::fs::File::create(&ballast).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        ballast
    }
}
