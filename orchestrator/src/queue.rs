//! The job queue behind one interface: apalis-redis in team mode, apalis-sqlite in the
//! embedded default. The job handler is shared by both.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::*;
use apalis_redis::RedisStorage;
use apalis_sqlite::SqliteStorage;

use store::{JobRef, StoreError};

/// How to reach the queue and how workers keep their leases.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// `redis://…` or `sqlite://FILE`.
    pub url: String,
    /// Queue name (explicit, so that every process agrees on it).
    pub name: String,
    /// How often workers send heartbeats.
    pub heartbeat: Duration,
    /// Missed heartbeats after which a worker counts as dead and its jobs are delivered again.
    pub missed_heartbeats: usize,
}

/// Default queue name.
pub const DEFAULT_QUEUE: &str = "nlebench-jobs";

/// Errors of the queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The queue could not be reached.
    #[error("cannot connect to the queue at {url}: {message}\n  fix: {fix}")]
    Connect {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
        /// What to do about it ([`store::connect_fix`]).
        fix: String,
    },
    /// The URL has an unknown scheme.
    #[error(
        "unsupported queue URL `{0}`\n  fix: use `redis://HOST:PORT` (team mode) or `sqlite://FILE` (embedded)"
    )]
    Scheme(String),
    /// Pushing jobs failed.
    #[error("cannot push jobs to the queue: {0}")]
    Push(String),
    /// The queue's contents could not be read.
    #[error("cannot read the queue: {0}")]
    Inspect(String),
    /// The worker loop failed.
    #[error("worker stopped with an error: {0}")]
    Worker(String),
}

/// Run `$body` with `$s` bound to the backend's storage, whichever backend `$queue` is (the
/// backends share apalis' traits but are different types).
macro_rules! with_backend {
    ($queue:expr, $s:ident => $body:expr) => {
        match $queue {
            Queue::Redis($s) => $body,
            Queue::Sqlite($s) => $body,
        }
    };
}

/// A connected queue of [`JobRef`]s.
#[derive(Clone)]
pub enum Queue {
    /// Team mode.
    Redis(RedisStorage<JobRef>),
    /// Embedded default.
    Sqlite(SqliteStorage<JobRef>),
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Queue::Redis(_) => f.write_str("Queue::Redis"),
            Queue::Sqlite(_) => f.write_str("Queue::Sqlite"),
        }
    }
}

/// Takes the jobs the queue delivers: the [`Runner`](crate::runner::Runner).
pub trait Deliveries: Send + Sync + 'static {
    /// Process a delivered job. Its failures are recorded inside (retries, failing the run);
    /// an `Err` here means not even that was possible, and the queue delivers it again.
    fn handle(&self, job: JobRef) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>>;
}

impl Queue {
    /// Connect and check the queue is reachable.
    pub async fn connect(cfg: &QueueConfig) -> Result<Queue, QueueError> {
        let connect_err = |message: String| QueueError::Connect {
            fix: store::connect_fix(store::Service::Queue, &cfg.url, &message),
            url: store::redact(&cfg.url),
            message,
        };
        if cfg.url.starts_with("redis://") || cfg.url.starts_with("rediss://") {
            // One quick attempt first: the connection manager retries with backoff.
            let client = apalis_redis::Client::open(cfg.url.as_str())
                .map_err(|e| connect_err(e.to_string()))?;
            tokio::time::timeout(
                Duration::from_secs(5),
                client.get_multiplexed_async_connection(),
            )
            .await
            .map_err(|_| connect_err("no answer within 5 s".into()))?
            .map_err(|e| connect_err(e.to_string()))?;
            let conn = tokio::time::timeout(
                Duration::from_secs(10),
                apalis_redis::connect(cfg.url.as_str()),
            )
            .await
            .map_err(|_| connect_err("timed out after 10 s".into()))?
            .map_err(|e| connect_err(e.to_string()))?;
            let config = apalis_redis::Config::default()
                .queue(cfg.name.as_str())
                .heartbeat_interval(cfg.heartbeat)
                .missed_heartbeats(cfg.missed_heartbeats);
            Ok(Queue::Redis(RedisStorage::new(conn).with_config(config)))
        } else if let Some(path) = cfg.url.strip_prefix("sqlite://") {
            let file = path.split('?').next().unwrap_or(path);
            if let Some(dir) = std::path::Path::new(file).parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir)
                    .map_err(|e| connect_err(format!("cannot create {}: {e}", dir.display())))?;
            }
            let opts: apalis_sqlite::SqliteConnectOptions = cfg
                .url
                .parse::<apalis_sqlite::SqliteConnectOptions>()
                .map_err(|e| connect_err(e.to_string()))?
                .create_if_missing(true)
                .busy_timeout(Duration::from_secs(30));
            let pool = apalis_sqlite::SqlitePool::connect_with(opts)
                .await
                .map_err(|e| connect_err(e.to_string()))?;
            // One process at a time creates the queue's tables (two commands started at once).
            let lock = store::setup_lock(std::path::Path::new(file))
                .await
                .map_err(|e| connect_err(format!("cannot lock the queue for its setup: {e}")))?;
            SqliteStorage::setup(&pool)
                .await
                .map_err(|e| connect_err(e.to_string()))?;
            drop(lock);
            let config = apalis_sqlite::Config::default()
                .queue(cfg.name.as_str())
                .heartbeat_interval(cfg.heartbeat)
                .missed_heartbeats(cfg.missed_heartbeats);
            Ok(Queue::Sqlite(SqliteStorage::new(&pool).with_config(config)))
        } else {
            Err(QueueError::Scheme(store::redact(&cfg.url)))
        }
    }

    /// Push jobs with a priority (higher first where the backend supports it), after an
    /// optional delay.
    pub async fn push(
        &mut self,
        jobs: &[JobRef],
        priority: i32,
        delay: Option<Duration>,
    ) -> Result<(), QueueError> {
        if jobs.is_empty() {
            return Ok(());
        }
        let tasks: Vec<_> = jobs
            .iter()
            .map(|j| {
                let mut b = TaskBuilder::new(*j).priority(priority.max(0) as usize);
                if let Some(d) = delay {
                    b = b.run_after(d);
                }
                b.build()
            })
            .collect();
        let push_err = |e: String| QueueError::Push(e);
        match self {
            Queue::Sqlite(s) => s
                .push_all(&mut futures::stream::iter(tasks))
                .await
                .map_err(|e| push_err(e.to_string())),
            Queue::Redis(s) => {
                // apalis-redis 1.0 files every task as scheduled (at `now` at the earliest) and
                // its fetch moves all due ones to the active list with one Lua `unpack`, which
                // fails past ~8,000 values: then no worker can fetch anything. So tasks go in
                // chunks, each moved to the active list here, a chunk at a time.
                let mut tasks = tasks.into_iter();
                loop {
                    let chunk: Vec<_> = tasks.by_ref().take(PUSH_CHUNK).collect();
                    if chunk.is_empty() {
                        return Ok(());
                    }
                    s.push_all(&mut futures::stream::iter(chunk))
                        .await
                        .map_err(|e| push_err(e.to_string()))?;
                    promote_due(s).await.map_err(push_err)?;
                }
            }
        }
    }
}

/// Tasks pushed to Redis (and due tasks moved to its active list) per round trip.
const PUSH_CHUNK: usize = 1000;

/// Move the due scheduled tasks of a Redis queue to its active list, [`PUSH_CHUNK`] at a time
/// (see [`Queue::push`]).
async fn promote_due(s: &mut RedisStorage<JobRef>) -> Result<(), String> {
    let cfg = s.get_config().clone();
    let script = redis::Script::new(
        r#"
local due = redis.call("zrangebyscore", KEYS[1], 0, ARGV[1], "LIMIT", 0, ARGV[2])
if #due > 0 then
    redis.call("rpush", KEYS[2], unpack(due))
    redis.call("zrem", KEYS[1], unpack(due))
    redis.call("del", KEYS[3])
    redis.call("lpush", KEYS[3], 1)
end
return #due
"#,
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    loop {
        let moved: usize = script
            .key(cfg.scheduled_jobs_set())
            .key(cfg.active_jobs_list())
            .key(cfg.signal_list())
            .arg(now)
            .arg(PUSH_CHUNK)
            .invoke_async(s.get_connection())
            .await
            .map_err(|e| e.to_string())?;
        if moved < PUSH_CHUNK {
            return Ok(());
        }
    }
}

impl Queue {
    /// The job ids the queue will still deliver: waiting, delayed or being worked on (a
    /// worker's job comes back when the worker dies).
    pub async fn held_jobs(&self) -> Result<HashSet<i64>, QueueError> {
        const PAGE: u32 = 1000;
        let held =
            |status: Status| !matches!(status, Status::Done | Status::Failed | Status::Killed);
        let decode = |args: &[u8]| {
            serde_json::from_slice::<JobRef>(args)
                .ok()
                .map(|j| j.job_id)
        };
        let err = |e: String| QueueError::Inspect(e);
        let mut out = HashSet::new();
        match self {
            // Every task of this queue, paged (the status filter applies after paging).
            Queue::Redis(s) => {
                for page in 1.. {
                    let filter = Filter {
                        status: None,
                        page,
                        page_size: Some(PAGE),
                    };
                    let tasks = s
                        .list_all_tasks(&filter)
                        .await
                        .map_err(|e| err(e.to_string()))?;
                    if tasks.is_empty() {
                        break;
                    }
                    out.extend(
                        tasks
                            .iter()
                            .filter(|t| held(t.status()))
                            .filter_map(|t| decode(&t.args)),
                    );
                }
            }
            Queue::Sqlite(s) => {
                for status in [Status::Pending, Status::Queued, Status::Running] {
                    for page in 1.. {
                        let filter = Filter {
                            status: Some(status.clone()),
                            page,
                            page_size: Some(PAGE),
                        };
                        let tasks = s
                            .list_tasks(&filter)
                            .await
                            .map_err(|e| err(e.to_string()))?;
                        out.extend(tasks.iter().filter_map(|t| decode(&t.args)));
                        if tasks.len() < PAGE as usize {
                            break;
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Forget the queue's registration of worker `name` and put the jobs it had taken back
    /// in line, so a worker restarted under the same name is accepted and the jobs of its
    /// previous life are delivered again (the caller checked no live worker has that name).
    pub async fn forget_worker(&mut self, name: &str) -> Result<(), QueueError> {
        let err = |e: String| QueueError::Inspect(e);
        match self {
            Queue::Redis(s) => {
                let cfg = s.get_config().clone();
                let script = redis::Script::new(
                    r#"
local jobs = redis.call("smembers", KEYS[3])
if #jobs > 0 then
    redis.call("rpush", KEYS[2], unpack(jobs))
    redis.call("del", KEYS[3])
    redis.call("del", KEYS[4])
    redis.call("lpush", KEYS[4], 1)
end
redis.call("zrem", KEYS[1], ARGV[1])
return #jobs
"#,
                );
                let _: i64 = script
                    .key(cfg.workers_set())
                    .key(cfg.active_jobs_list())
                    .key(format!("{}:{name}", cfg.inflight_jobs_set()))
                    .key(cfg.signal_list())
                    .arg(name)
                    .invoke_async(s.get_connection())
                    .await
                    .map_err(|e| err(e.to_string()))?;
            }
            Queue::Sqlite(s) => {
                for sql in [
                    "UPDATE Jobs SET status = 'Pending', done_at = NULL, lock_by = NULL, lock_at = NULL \
                     WHERE lock_by = ?1 AND status IN ('Running', 'Queued')",
                    "DELETE FROM Workers WHERE id = ?1",
                ] {
                    sea_orm::sqlx::query(sql)
                        .bind(name.to_string())
                        .execute(s.pool())
                        .await
                        .map_err(|e| err(e.to_string()))?;
                }
            }
        }
        Ok(())
    }

    /// A warning when the queue forgets its jobs on a restart (Redis with neither snapshots
    /// nor an append-only file); `None` when it keeps them or cannot be asked.
    pub async fn persistence_warning(&mut self) -> Option<String> {
        let Queue::Redis(s) = self else { return None };
        let conn = s.get_connection();
        let get = |key: &'static str| redis::cmd("CONFIG").arg("GET").arg(key).clone();
        let save: Vec<String> = get("save").query_async(conn).await.ok()?;
        let aof: Vec<String> = get("appendonly").query_async(conn).await.ok()?;
        let (save, aof) = (save.get(1)?.trim().to_string(), aof.get(1)?.clone());
        (save.is_empty() && aof == "no").then(|| {
            "Redis keeps the queue in memory only (`save \"\"` and `appendonly no`): a restart loses every queued job.\n  \
             Workers re-enqueue lost jobs from the store (`nlebench reconcile`), but set `appendonly yes` in redis.conf to keep them."
                .to_string()
        })
    }
}

/// The handler as worker data (a named type keeps the job function's signature simple).
#[derive(Clone)]
struct SharedHandler(Arc<dyn Deliveries>);

async fn handle_job(job: JobRef, handler: Data<SharedHandler>) -> Result<(), BoxDynError> {
    let SharedHandler(h) = &*handler;
    h.handle(job).await.map_err(|e| e.into())
}

/// Pull and run jobs one at a time as worker `name` until `shutdown` completes.
pub async fn run_worker<F>(
    queue: Queue,
    name: String,
    handler: Arc<dyn Deliveries>,
    shutdown: F,
) -> Result<(), QueueError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let signal = async move {
        shutdown.await;
        Ok::<(), std::io::Error>(())
    };
    let handler = SharedHandler(handler);
    let res = with_backend!(queue, storage => {
        WorkerBuilder::new(name.as_str())
            .backend(storage)
            .data(handler)
            .concurrency(1)
            .build(handle_job)
            .run_until(signal)
            .await
    });
    res.map_err(|e| QueueError::Worker(e.to_string()))
}
