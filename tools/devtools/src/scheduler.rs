//! `nlebench-dev bench scheduler`: `--workers` `nlebench worker` processes on PostgreSQL and
//! Redis run a sweep of `models × runs × examples` one-example jobs over `--models` random
//! models. Reports jobs/s, the time a job takes from claim to completion, the time between a
//! worker's jobs (delivery and claim: the per-job overhead above the work), and the model
//! loads the workers counted (their `/metrics`) against the minimum and against the distinct
//! (model, worker) pairs the store records.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, JoinType, QueryFilter, QuerySelect};
use store::entities::{job, run, sweep, sweep_cell};
use store::{RunStatus, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::args::BenchSchedulerArgs;
use crate::report::median;

/// The pairs file the runs score (33 rows).
const PAIRS: &str = "experiments/data/no-crows-pairs-mini.csv";

/// Worker processes, stopped with SIGTERM when dropped.
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

/// A job's span on its worker: claimed, completed.
type Span = (DateTime<Utc>, DateTime<Utc>);

/// A job row: its worker, claim and completion times, and its run's model.
type JobRow = (
    Option<String>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    String,
);

/// A free loopback port.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The body of `GET /metrics` on `port`.
async fn scrape(port: u16) -> anyhow::Result<String> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut text = String::new();
    s.read_to_string(&mut text).await?;
    Ok(text)
}

/// The value of the unlabelled sample `name` in an exposition text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn sweep_toml(
    a: &BenchSchedulerArgs,
    name: &str,
    seeds: std::ops::Range<usize>,
    pairs: &Path,
) -> String {
    let seeds: Vec<String> = seeds.map(|s| s.to_string()).collect();
    let mut s = format!(
        "name = \"{name}\"\ntasks = [\"no-crows-pairs\"]\nseeds = [{}]\nshard_size = 1\n\n\
         [datasets]\nno-crows-pairs = \"path:{}\"\n\n[[settings]]\nname = \"one-per-job\"\n\
         limit = {}\nbatch_size = 1\n",
        seeds.join(", "),
        pairs.display(),
        a.examples
    );
    for m in 1..=a.models {
        s += &format!("\n[[models]]\nname = \"m{m:02}\"\nsource = \"random:norgpt-tiny@{m}\"\n");
    }
    s
}

/// Where the benchmark runs `nlebench`.
struct Bench<'a> {
    a: &'a BenchSchedulerArgs,
    nlebench: PathBuf,
    repo: PathBuf,
    dir: PathBuf,
    store: Store,
}

/// One phase's figures.
struct Figures {
    jobs: usize,
    submit_s: f64,
    wall_s: f64,
    job_ms: f64,
    gap_median_ms: f64,
    gap_mean_ms: f64,
    loads: f64,
    pairs: usize,
}

impl Bench<'_> {
    fn cmd(&self, queue: &str, args: &[&str]) -> Command {
        let mut c = Command::new(&self.nlebench);
        c.args(args)
            .env("NLEBENCH_DATABASE_URL", &self.a.database_url)
            .env("NLEBENCH_QUEUE_URL", &self.a.queue_url)
            .env("NLEBENCH_QUEUE_NAME", queue)
            .env("NLEBENCH_DATA_DIR", self.dir.join("data"))
            .env("NLEBENCH_TASKS_DIR", self.repo.join("experiments/tasks"))
            .env("HF_HUB_OFFLINE", "1")
            .env("NO_COLOR", "1");
        c
    }

    fn run_cmd(&self, queue: &str, args: &[&str]) -> anyhow::Result<String> {
        let out = self
            .cmd(queue, args)
            .output()
            .with_context(|| format!("cannot run {}", self.nlebench.display()))?;
        if !out.status.success() {
            bail!(
                "nlebench {args:?} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Submit the sweep `name` over `seeds`, run it with fresh workers (with model affinity or
    /// in queue order) on a queue of its own, and measure.
    async fn phase(
        &self,
        name: &str,
        seeds: std::ops::Range<usize>,
        affinity: bool,
    ) -> anyhow::Result<Figures> {
        let a = self.a;
        let queue = format!("{name}-{}", std::process::id());
        let sweep = self.dir.join(format!("{name}.toml"));
        std::fs::write(&sweep, sweep_toml(a, name, seeds, &self.repo.join(PAIRS)))?;
        let t = Instant::now();
        self.run_cmd(&queue, &["submit", sweep.to_str().unwrap_or_default()])?;
        let submit_s = t.elapsed().as_secs_f64();

        let mut ports = Vec::new();
        let mut children = Vec::new();
        for w in 0..a.workers {
            let port = free_port()?;
            let log = std::fs::File::create(self.dir.join(format!("{name}-worker-{w}.log")))?;
            let (worker_name, addr) = (format!("{name}-w{w}"), format!("127.0.0.1:{port}"));
            let mut args = vec!["worker", "--name", &worker_name, "--metrics-addr", &addr];
            if !affinity {
                args.push("--no-affinity");
            }
            children.push(
                self.cmd(&queue, &args)
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()?,
            );
            ports.push(port);
        }
        let mut workers = Workers(children);
        let runs = (a.models * a.runs_per_model) as i64;
        let start = Instant::now();
        loop {
            let counts = self.store.sweep_counts(name).await?;
            if counts.get(&RunStatus::Failed).copied().unwrap_or(0) > 0 {
                bail!(
                    "a run failed; see the worker logs in {}",
                    self.dir.display()
                );
            }
            if counts.get(&RunStatus::Done).copied().unwrap_or(0) == runs {
                break;
            }
            if start.elapsed() > Duration::from_secs(3600) {
                bail!("not done after an hour: {counts:?}");
            }
            for (w, c) in workers.0.iter_mut().enumerate() {
                if let Some(status) = c.try_wait()? {
                    bail!(
                        "worker {w} of {name} exited ({status}); see its log in {}",
                        self.dir.display()
                    );
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut loads = 0.0;
        for &port in &ports {
            let text = scrape(port).await?;
            loads += sample(&text, "nlebench_model_loads_total")
                .ok_or_else(|| anyhow!("worker on port {port} reports no model loads"))?;
        }
        drop(workers); // SIGTERM, and wait for each to stop

        // The sweep's jobs: holder and times, from the store.
        let rows: Vec<JobRow> = job::Entity::find()
            .select_only()
            .column(job::Column::Worker)
            .column(job::Column::StartedAt)
            .column(job::Column::FinishedAt)
            .column(run::Column::ModelSource)
            .join(JoinType::InnerJoin, job::run_relation())
            .join(
                JoinType::InnerJoin,
                run::Entity::belongs_to(sweep_cell::Entity)
                    .from(run::Column::Id)
                    .to(sweep_cell::Column::RunId)
                    .into(),
            )
            .join(JoinType::InnerJoin, sweep_cell::sweep_relation())
            .filter(sweep::Column::Name.eq(name))
            .into_tuple()
            .all(self.store.connection())
            .await?;
        let jobs = rows.len();
        let mut per_worker: BTreeMap<String, Vec<Span>> = BTreeMap::new();
        let mut pairs = HashSet::new();
        for (w, s, f, model) in rows {
            let (Some(w), Some(s), Some(f)) = (w, s, f) else {
                bail!("a done job without its worker or times");
            };
            pairs.insert((w.clone(), model));
            per_worker.entry(w).or_default().push((s, f));
        }
        let secs = |d: chrono::TimeDelta| d.num_microseconds().unwrap_or(0) as f64 / 1e6;
        let (mut work, mut gaps) = (Vec::new(), Vec::new());
        let (mut first, mut last) = (None::<DateTime<Utc>>, None::<DateTime<Utc>>);
        for spans in per_worker.values_mut() {
            spans.sort();
            for (i, (s, f)) in spans.iter().enumerate() {
                work.push(secs(*f - *s));
                if i > 0 {
                    gaps.push(secs(*s - spans[i - 1].1));
                }
                first = Some(first.map_or(*s, |x| x.min(*s)));
                last = Some(last.map_or(*f, |x| x.max(*f)));
            }
        }
        let wall_s = match (first, last) {
            (Some(a), Some(b)) => secs(b - a),
            _ => bail!("no job ran"),
        };
        Ok(Figures {
            jobs,
            submit_s,
            wall_s,
            job_ms: 1000.0 * median(&work),
            gap_mean_ms: 1000.0 * gaps.iter().sum::<f64>() / gaps.len().max(1) as f64,
            gap_median_ms: 1000.0 * median(&gaps),
            loads,
            pairs: pairs.len(),
        })
    }
}

pub async fn run(a: BenchSchedulerArgs) -> anyhow::Result<ExitCode> {
    if !(1..=33).contains(&a.examples) {
        bail!("--examples must be between 1 and 33 (the rows of {PAIRS})");
    }
    let repo = std::env::current_dir()?;
    if !repo.join(PAIRS).is_file() {
        bail!("{PAIRS} is not here: run from the repository root");
    }
    let nlebench = match &a.nlebench {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("nlebench"),
    };
    let dir = std::env::temp_dir().join(format!("nlebench-bench-scheduler-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // The models exist before the clock starts: the benchmark times scheduling, not writing.
    for m in 1..=a.models {
        engine::random::ensure("norgpt-tiny", m as u64, &dir.join("data/models"))?;
    }
    let store = Store::connect(&a.database_url).await?;
    let bench = Bench {
        a: &a,
        nlebench,
        repo,
        dir: dir.clone(),
        store,
    };
    bench.run_cmd("bench-scheduler", &["migrate"])?;
    if bench.store.totals().await?.runs.iter().any(|(_, n)| *n > 0) {
        bail!("the store has runs already: give the benchmark an empty database");
    }
    // The same work twice in one session, on new cells (other seeds) each time.
    let r = a.runs_per_model;
    let on = bench.phase("bench-affinity", 0..r, true).await?;
    let off = bench.phase("bench-queue-order", r..2 * r, false).await?;
    let row = |what: &str, f: &dyn Fn(&Figures) -> String| {
        format!("| {what} | {} | {} |\n", f(&on), f(&off))
    };
    let report = format!(
        "| | model affinity (default) | queue order (`--no-affinity`) |\n| --- | --- | --- |\n{}{}{}{}{}{}{}{}",
        row("jobs (one example each)", &|f| f.jobs.to_string()),
        row("submit (plan, store, queue)", &|f| format!(
            "{:.1} s",
            f.submit_s
        )),
        row("first claim to last completion", &|f| format!(
            "{:.1} s",
            f.wall_s
        )),
        row("jobs/s", &|f| format!("{:.1}", f.jobs as f64 / f.wall_s)),
        row("job, claim to completion (median)", &|f| format!(
            "{:.1} ms",
            f.job_ms
        )),
        row(
            "between a worker's jobs: delivery and claim (median / mean)",
            &|f| format!("{:.1} ms / {:.1} ms", f.gap_median_ms, f.gap_mean_ms)
        ),
        row("model loads (the workers' `/metrics`)", &|f| format!(
            "{:.0}",
            f.loads
        )),
        row(
            &format!(
                "minimum ({} models once each) / distinct (model, worker) pairs",
                a.models
            ),
            &|f| format!("{} / {}", a.models, f.pairs)
        ),
    );
    println!("{report}");
    if let Some(path) = &a.write {
        write_section(path, &a, &report)?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ExitCode::SUCCESS)
}

/// How to read the table (what the figures show whatever the machine).
const READING: &str = "With affinity a worker keeps to the model it holds, but the job it takes instead of the delivered one leaves its own queue entry behind, delivered later and skipped by its claim: about two deliveries per job, hence the longer time between jobs. These tiny models load in about a millisecond, so here the extra deliveries cost more than the loads they save; a real checkpoint takes seconds to minutes to load.";

fn write_section(path: &Path, a: &BenchSchedulerArgs, report: &str) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let section = format!(
        "## Scheduler (issue 13)\n\n\
         {} `nlebench worker` processes on loopback PostgreSQL and Redis run a sweep of \
         {} random models (norgpt-tiny) × {} seeds × {} NO-CrowS-Pairs examples, one example per \
         job, twice in one session: with model affinity, then (new cells) in queue order, on {} ({cores} cores shared by the workers, PostgreSQL and Redis; {}). Job times \
         come from the store (claim and completion), model loads from each worker's `/metrics`.\n\n\
         ```sh\nNLEBENCH_DATABASE_URL=postgres://…/empty NLEBENCH_QUEUE_URL=redis://… \
         nlebench-dev bench scheduler --workers {} --models {} --runs-per-model {} --examples {} --write BENCHMARKS.md\n```\n\n\
         {report}\n{READING}\n",
        a.workers,
        a.models,
        a.runs_per_model,
        a.examples,
        crate::report::cpu_model(),
        chrono::Utc::now().format("%Y-%m-%d"),
        a.workers,
        a.models,
        a.runs_per_model,
        a.examples
    );
    crate::report::replace_section(path, "Scheduler (issue 13)", &section)
}
