//! `nlebench-dev bench dashboard`: seed a synthetic history (10,000 runs, 1,000,000 samples,
//! 50,000 metric rows by default), serve the dashboard in-process on loopback, and measure
//! every page's latency under concurrent clients, and the store queries each page runs.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use devtools::seed::{SeedSize, seed_history};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::args::BenchDashboardArgs;

/// Page kinds and how to make a URL of each from the seeded ids.
struct Targets {
    sweeps: Vec<String>,
    runs: Vec<(i64, i64)>,
    sweep_pages: u64,
}

const KINDS: [&str; 11] = [
    "sweeps",
    "sweeps page N",
    "sweep grid",
    "run",
    "run samples search",
    "compare",
    "leaderboard",
    "workers",
    "baselines",
    "sweep export",
    "samples export",
];

impl Targets {
    fn url(&self, kind: &str, rng: &mut impl Rng) -> String {
        // The store was checked to hold sweeps; a store without runs asks for run 1.
        let sweep = self.sweeps.choose(rng).map_or("", String::as_str);
        let &(run, other) = self.runs.choose(rng).unwrap_or(&(1, 1));
        match kind {
            "sweeps" => "/".into(),
            "sweeps page N" => format!("/?page={}", rng.random_range(1..=self.sweep_pages)),
            "sweep grid" => format!("/sweeps/{sweep}"),
            "run" => format!("/runs/{run}?page={}", rng.random_range(1..=2)),
            "run samples search" => format!("/runs/{run}?q=svar"),
            "compare" => format!("/compare?runs={run},{other}"),
            "leaderboard" => "/leaderboard?metric=bias_paper".into(),
            "workers" => "/workers".into(),
            "baselines" => "/baselines".into(),
            "sweep export" => format!("/sweeps/{sweep}/export.csv"),
            _ => format!("/runs/{run}/samples.json"),
        }
    }
}

async fn get(port: u16, path: &str) -> anyhow::Result<(u16, usize)> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let status = std::str::from_utf8(buf.get(9..12).unwrap_or(b"000"))?.parse()?;
    Ok((status, buf.len()))
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

pub async fn run(a: BenchDashboardArgs) -> anyhow::Result<std::process::ExitCode> {
    let mut store = Store::connect(&a.database_url).await?;
    store.migrate().await?;
    if a.seed {
        let size = SeedSize {
            sweeps: a.sweeps,
            runs: a.runs,
            samples_per_run: a.samples_per_run,
            metrics_per_run: a.metrics_per_run,
            workers: 20,
        };
        let t = Instant::now();
        let n = seed_history(&store, size, |what, done, total| {
            eprintln!("seeding {what}: {done}/{total}");
        })
        .await?;
        eprintln!("seeded {n} rows in {:.0} s", t.elapsed().as_secs_f64());
    }
    // Targets from the store.
    let (overviews, total_sweeps) = store
        .sweep_overviews(
            store::dashboard::Shelf::Active,
            None,
            store::dashboard::SweepSort::Name,
            false,
            store::dashboard::Window {
                offset: 0,
                limit: 500,
            },
            |_, _| false,
        )
        .await?;
    if overviews.is_empty() {
        return Err(anyhow!(
            "the store has no sweeps\n  fix: run with --seed on an empty database"
        ));
    }
    let mut runs = Vec::new();
    for o in overviews.iter().take(20) {
        let (_, cells, _) = store.sweep_runs(&o.sweep.name).await?;
        for pair in cells.windows(3).step_by(3) {
            runs.push((pair[0].run.id, pair[2].run.id));
        }
    }
    let targets = Targets {
        sweeps: overviews.iter().map(|o| o.sweep.name.clone()).collect(),
        runs,
        sweep_pages: total_sweeps.div_ceil(50).max(1),
    };
    let counter = store.count_queries();
    let counts = store_counts(&store).await?;
    let targets = std::sync::Arc::new(targets);
    // The configured aggregate cache, and without it as the reference, in the same run.
    let mut settings = vec![a.cache_ms];
    if a.cache_ms > 0 {
        settings.push(0);
    }
    let mut report = format!("store: {counts}\n");
    for cache_ms in settings {
        let app = web::AppState {
            store: store.clone(),
            stale: metrics::is_stale_metric,
            access: web::access::Access::Public,
            secure_cookies: false,
            queue: None,
            caches: std::sync::Arc::new(web::cache::Caches::new(Duration::from_millis(cache_ms))),
            limits: Default::default(),
            polls: Default::default(),
            queue_name: orchestrator::queue::DEFAULT_QUEUE.into(),
            trusted_proxies: Default::default(),
        };
        let (table, verdict) = measure(app, &targets, &counter, a.clients, a.seconds).await?;
        report += &format!(
            "\n### Aggregate cache {}\n\n{table}\n\n{verdict}\n",
            if cache_ms == 0 {
                "off (`--cache-ms 0`)".to_string()
            } else {
                format!("{cache_ms} ms (the default)")
            }
        );
    }
    println!("{report}");
    if let Some(path) = &a.write {
        write_section(path, &a, &report)?;
        eprintln!("wrote the dashboard section of {}", path.display());
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Serve `app` on a loopback port, count each page's queries, then load it with `clients`
/// for `seconds`; returns the table and the verdict against the targets.
async fn measure(
    app: web::AppState,
    targets: &std::sync::Arc<Targets>,
    counter: &std::sync::atomic::AtomicUsize,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<(String, String)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let server = tokio::spawn(async move { axum::serve(listener, web::router(app)).await });
    // Warm up, and count each page's queries (on a cold cache).
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut queries: BTreeMap<&str, usize> = BTreeMap::new();
    for kind in KINDS {
        let url = targets.url(kind, &mut rng);
        let before = counter.load(Ordering::SeqCst);
        let (status, _) = get(port, &url).await?;
        if status != 200 {
            return Err(anyhow!("{url} answered {status}"));
        }
        queries.insert(kind, counter.load(Ordering::SeqCst) - before);
    }
    eprintln!("{clients} clients for {seconds} s on http://127.0.0.1:{port}/ …");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let targets = targets.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(100 + c as u64);
            let mut out: Vec<(&'static str, f64, u16)> = Vec::new();
            let mut i = c;
            while Instant::now() < deadline {
                let kind = KINDS[i % KINDS.len()];
                i += 1;
                let url = targets.url(kind, &mut rng);
                let t = Instant::now();
                let status = get(port, &url).await.map(|r| r.0).unwrap_or(0);
                out.push((kind, t.elapsed().as_secs_f64() * 1000.0, status));
            }
            out
        }));
    }
    let mut by_kind: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut errors = 0;
    for t in tasks {
        for (kind, ms, status) in t.await? {
            if status != 200 {
                errors += 1;
            }
            by_kind.entry(kind).or_default().push(ms);
        }
    }
    server.abort();
    let mut lines = vec![
        "| page | requests | p50 ms | p95 ms | p99 ms | max ms | queries |".to_string(),
        "|---|---|---|---|---|---|---|".to_string(),
    ];
    let mut worst = (0.0f64, 0.0f64);
    for kind in KINDS {
        let mut v = by_kind.remove(kind).unwrap_or_default();
        v.sort_by(f64::total_cmp);
        let (p95, p99) = (percentile(&v, 0.95), percentile(&v, 0.99));
        worst = (worst.0.max(p95), worst.1.max(p99));
        lines.push(format!(
            "| {kind} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            v.len(),
            percentile(&v, 0.5),
            p95,
            p99,
            v.last().copied().unwrap_or(f64::NAN),
            queries[kind]
        ));
    }
    let verdict = format!(
        "Worst page p95 {:.1} ms (target ≤ 100 ms: {:.2}× the target), worst p99 {:.1} ms (target ≤ 250 ms: {:.2}×); {errors} non-200 answers.",
        worst.0,
        worst.0 / 100.0,
        worst.1,
        worst.1 / 250.0
    );
    Ok((lines.join("\n"), verdict))
}

/// Row counts of the tables the pages read.
async fn store_counts(store: &Store) -> anyhow::Result<String> {
    use sea_orm::{ConnectionTrait, Statement};
    let db = store.connection();
    let mut parts = Vec::new();
    for t in [
        "sweeps",
        "runs",
        "samples",
        "metrics",
        "workers",
        "baselines",
    ] {
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {t}"),
            ))
            .await?
            .ok_or_else(|| anyhow!("no count of {t}"))?;
        let n: i64 = row.try_get("", "n")?;
        parts.push(format!("{n} {t}"));
    }
    Ok(parts.join(", "))
}

fn write_section(path: &Path, a: &BenchDashboardArgs, report: &str) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = crate::report::cpu_model();
    let section = format!(
        "## Dashboard (issue 5)\n\n\
         Latency of every page under {} concurrent clients for {} s on loopback, measured by the \
         client (so it includes the server time), the server in the same process \
         (`nlebench-dev bench dashboard`), on {cpu} ({cores} cores) shared by the clients, the \
         server and PostgreSQL. `queries` is the number of store queries the page ran on a cold \
         cache; `tools/devtools/tests/queries.rs` checks that it does not grow with the rows shown. The pages are \
         measured with the aggregate cache of `nlebench serve` (sweeps list, sweep grid and \
         leaderboard data reused for `--cache-ms`) and without it, in the same run.\n\n\
         Seeding and measuring (into an empty PostgreSQL database):\n\n\
         ```sh\nNLEBENCH_DATABASE_URL=postgres://…/empty nlebench-dev bench dashboard --seed --clients {} --seconds {} --write BENCHMARKS.md\n```\n\n\
         {report}",
        a.clients, a.seconds, a.clients, a.seconds
    );
    crate::report::replace_section(path, "Dashboard (issue 5)", &section)
}
