//! A job's life on a worker: claim, completion, release, failure. Every transition is one
//! transaction that first locks the job's run row (so transitions of one run never
//! interleave) and then re-reads the state it depends on: a stale actor (a worker whose job
//! was taken over, a claim racing a cancel) changes nothing.
//!
//! Invariant (tested by `tests/faults.rs`): every run ends in exactly one terminal state, and
//! a run that is not terminal has each unfinished job either on the queue or held by a live
//! worker, once the reconciler (`crate::reconcile`) has passed.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter,
    QuerySelect, sea_query::Expr,
};

use super::entities::{job, metric, run, sample, worker};
use super::{MetricValue, RunStatus, Store, StoreError, now, rows};
use spec::manifest::RunManifest;

/// A job a worker has taken, with its run.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    /// The job row (after the claim).
    pub job: job::Model,
    /// The run row.
    pub run: run::Model,
    /// The run's manifest.
    pub manifest: RunManifest,
}

/// What a delivery of a job comes to.
#[derive(Debug)]
pub enum Claim {
    /// The job is this worker's now.
    Claimed(Box<ClaimedJob>),
    /// Nothing to do; why, for the log.
    Skip(String),
    /// The job had its `max_attempts`: the job and its run are failed with this message.
    GaveUp(String),
}

/// How a failed attempt ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    /// The job goes back on the queue after a backoff.
    Retry,
    /// No attempts left: the job and its run are failed.
    GiveUp,
}

/// What recording a computed job came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// Recorded; other jobs of the run are still open.
    Done,
    /// It is the run's last open job: compute the metrics, then [`Store::finish_job`]. The
    /// job stays `running` until then, so a crash before the finish leaves it to be
    /// delivered again rather than a run `running` for ever.
    Last,
    /// The job is no longer this worker's (taken over, cancelled, failed): nothing recorded.
    Stale(String),
}

/// The run row locked for the rest of the transaction (a no-op write takes the row lock on
/// PostgreSQL and the write lock on SQLite).
async fn lock_run(txn: &DatabaseTransaction, run_id: i64) -> Result<(), StoreError> {
    run::Entity::update_many()
        .col_expr(run::Column::Attempts, Expr::col(run::Column::Attempts))
        .filter(run::Column::Id.eq(run_id))
        .exec(txn)
        .await?;
    Ok(())
}

/// Job and run as this transaction sees them after the lock.
async fn read<C: ConnectionTrait>(
    db: &C,
    job_id: i64,
    run_id: i64,
) -> Result<Option<(job::Model, run::Model)>, StoreError> {
    let Some(j) = job::Entity::find_by_id(job_id).one(db).await? else {
        return Ok(None);
    };
    let Some(r) = run::Entity::find_by_id(run_id).one(db).await? else {
        return Ok(None);
    };
    Ok(Some((j, r)))
}

/// A transaction holding the run's lock, and the job and run as it sees them.
async fn locked(
    db: &sea_orm::DatabaseConnection,
    job_id: i64,
    run_id: i64,
) -> Result<(DatabaseTransaction, Option<(job::Model, run::Model)>), StoreError> {
    let txn = super::begin(db).await?;
    lock_run(&txn, run_id).await?;
    let rows = read(&txn, job_id, run_id).await?;
    Ok((txn, rows))
}

/// The job done (its run is finished separately).
async fn set_done(
    txn: &DatabaseTransaction,
    job_id: i64,
    t: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    job::Entity::update_many()
        .col_expr(job::Column::Status, Expr::value(RunStatus::Done.as_str()))
        .col_expr(job::Column::FinishedAt, Expr::value(Some(t)))
        .col_expr(job::Column::Error, Expr::value(Option::<String>::None))
        .filter(job::Column::Id.eq(job_id))
        .exec(txn)
        .await?;
    Ok(())
}

/// Why `j` is not `worker`'s to record, if it is not.
fn not_held_by(j: &job::Model, worker: &str) -> Option<String> {
    if j.status != RunStatus::Running {
        return Some(format!("the job is {} now", j.status));
    }
    match j.worker.as_deref() {
        Some(w) if w == worker => None,
        Some(w) => Some(format!("worker {w} took the job over")),
        None => Some("the job has no holder".into()),
    }
}

impl Store {
    /// Take a job for `worker`: nothing to do when the job is gone or finished, its run is
    /// terminal, or a live worker holds it (a duplicate delivery); failed for good when it
    /// already had `max_attempts` deliveries.
    pub async fn claim_job(
        &self,
        job_id: i64,
        worker: &str,
        stale_after: std::time::Duration,
        max_attempts: u32,
    ) -> Result<Claim, StoreError> {
        let Some(j) = job::Entity::find_by_id(job_id).one(&self.db).await? else {
            return Ok(Claim::Skip("the job is gone".into()));
        };
        let (txn, rows) = locked(&self.db, job_id, j.run_id).await?;
        let Some((j, r)) = rows else {
            return Ok(Claim::Skip("the run is gone".into()));
        };
        if r.status.is_terminal() {
            if !j.status.is_terminal() {
                set_job(&txn, job_id, RunStatus::Cancelled).await?;
                txn.commit().await?;
            }
            return Ok(Claim::Skip(format!("the run is {}", r.status)));
        }
        if j.status.is_terminal() {
            return Ok(Claim::Skip(format!("the job is {}", j.status)));
        }
        // A `running` job's holder either lives (a duplicate delivery: leave it) or died.
        let holder = j.worker.clone().filter(|_| j.status == RunStatus::Running);
        if let Some(h) = holder.as_deref()
            && h != worker
            && self.holds(&txn, h, job_id, stale_after).await?
        {
            return Ok(Claim::Skip(format!("worker {h} holds the job")));
        }
        // This worker's own earlier delivery that it pushed back during a store outage: no
        // death, no new attempt. Any other dead holder (this name restarted included) died.
        let own = holder.as_deref() == Some(worker)
            && self.holds(&txn, worker, job_id, stale_after).await?;
        let died = holder.is_some() && !own;
        let deaths = j.deaths + i32::from(died);
        if !own && j.attempts >= max_attempts as i32 {
            let message = match (&holder, deaths) {
                (Some(h), n) if n > 0 => {
                    format!("worker died {n} times on this job (last: {h})")
                }
                _ => format!("the job failed {} times", j.attempts),
            };
            fail(&txn, job_id, j.run_id, &message, JobOutcome::GiveUp, deaths).await?;
            txn.commit().await?;
            return Ok(Claim::GaveUp(message));
        }
        let attempts = j.attempts + i32::from(!own);
        let t = now();
        job::Entity::update_many()
            .col_expr(
                job::Column::Status,
                Expr::value(RunStatus::Running.as_str()),
            )
            .col_expr(job::Column::Worker, Expr::value(Some(worker.to_string())))
            .col_expr(job::Column::Attempts, Expr::value(attempts))
            .col_expr(job::Column::Deaths, Expr::value(deaths))
            .col_expr(job::Column::StartedAt, Expr::value(Some(t)))
            .filter(job::Column::Id.eq(job_id))
            .exec(&txn)
            .await?;
        run::Entity::update_many()
            .col_expr(
                run::Column::Status,
                Expr::value(RunStatus::Running.as_str()),
            )
            .col_expr(run::Column::Worker, Expr::value(Some(worker.to_string())))
            .col_expr(
                run::Column::StartedAt,
                Expr::value(Some(r.started_at.unwrap_or(t))),
            )
            .col_expr(run::Column::Attempts, Expr::value(r.attempts + 1))
            .filter(run::Column::Id.eq(r.id))
            .exec(&txn)
            .await?;
        // The holder names the job inside the claim, so a live holder is never taken for dead.
        worker::Entity::update_many()
            .col_expr(worker::Column::CurrentJob, Expr::value(Some(job_id)))
            .col_expr(worker::Column::LastHeartbeat, Expr::value(t))
            .filter(worker::Column::Name.eq(worker))
            .exec(&txn)
            .await?;
        let (job, run) = read(&txn, job_id, r.id)
            .await?
            .ok_or(StoreError::NoRun(r.id))?;
        txn.commit().await?;
        let manifest = run.manifest()?;
        Ok(Claim::Claimed(Box::new(ClaimedJob { job, run, manifest })))
    }

    /// Whether worker `name` is alive (registered as running, heartbeat younger than
    /// `within`) and on job `job_id`.
    async fn holds<C: ConnectionTrait>(
        &self,
        db: &C,
        name: &str,
        job_id: i64,
        within: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let w = worker::Entity::find()
            .filter(worker::Column::Name.eq(name))
            .one(db)
            .await?;
        Ok(w.is_some_and(|w| super::workers::alive(&w, within) && w.current_job == Some(job_id)))
    }

    /// The run's current status (workers check it between batches to honour cancellation).
    pub async fn run_status(&self, run_id: i64) -> Result<Option<RunStatus>, StoreError> {
        Ok(run::Entity::find_by_id(run_id)
            .one(&self.db)
            .await?
            .map(|r| r.status))
    }

    /// Record that `worker` computed its job.
    pub async fn complete_job(
        &self,
        job_id: i64,
        run_id: i64,
        worker: &str,
    ) -> Result<Completion, StoreError> {
        let (txn, rows) = locked(&self.db, job_id, run_id).await?;
        let Some((j, r)) = rows else {
            return Ok(Completion::Stale("the job is gone".into()));
        };
        if let Some(why) = not_held_by(&j, worker) {
            return Ok(Completion::Stale(why));
        }
        if r.status.is_terminal() {
            set_job(&txn, job_id, RunStatus::Cancelled).await?;
            txn.commit().await?;
            return Ok(Completion::Stale(format!("the run is {}", r.status)));
        }
        let others_open = job::Entity::find()
            .filter(job::Column::RunId.eq(run_id))
            .filter(job::Column::Id.ne(job_id))
            .filter(job::Column::Status.ne(RunStatus::Done))
            .count(&txn)
            .await?;
        if others_open == 0 {
            return Ok(Completion::Last);
        }
        set_done(&txn, job_id, now()).await?;
        txn.commit().await?;
        Ok(Completion::Done)
    }

    /// Finish a run whose last job `worker` holds: its metrics and notes, the job done and the
    /// run done, all or nothing. `false` (nothing written) when the job is no longer this
    /// worker's or the run was cancelled meanwhile.
    pub async fn finish_job(
        &self,
        job_id: i64,
        run_id: i64,
        worker: &str,
        metrics: &[MetricValue],
        notes: &[String],
    ) -> Result<bool, StoreError> {
        let (txn, rows) = locked(&self.db, job_id, run_id).await?;
        let Some((j, r)) = rows else {
            return Ok(false);
        };
        if not_held_by(&j, worker).is_some() || r.status.is_terminal() {
            return Ok(false);
        }
        set_done(&txn, job_id, now()).await?;
        store_metrics(&txn, run_id, metrics, notes).await?;
        txn.commit().await?;
        Ok(true)
    }

    /// Record a failed attempt of `worker`. With [`JobOutcome::GiveUp`] the job and its run
    /// are failed with `error`; otherwise the job waits to be delivered again. `false`
    /// (nothing written) when the job is no longer this worker's.
    pub async fn fail_job(
        &self,
        job_id: i64,
        run_id: i64,
        worker: &str,
        error: &str,
        outcome: JobOutcome,
    ) -> Result<bool, StoreError> {
        let (txn, rows) = locked(&self.db, job_id, run_id).await?;
        let Some((j, _)) = rows else {
            return Ok(false);
        };
        if not_held_by(&j, worker).is_some() {
            return Ok(false);
        }
        fail(&txn, job_id, run_id, error, outcome, j.deaths).await?;
        txn.commit().await?;
        Ok(true)
    }

    /// Give a job back without spending an attempt (the worker is stopping, or cannot record
    /// its results): it is queued again, for the caller to push. `false` when it was not
    /// this worker's any more.
    pub async fn release_job(
        &self,
        job_id: i64,
        run_id: i64,
        worker: &str,
    ) -> Result<bool, StoreError> {
        let (txn, rows) = locked(&self.db, job_id, run_id).await?;
        let Some((j, r)) = rows else {
            return Ok(false);
        };
        if not_held_by(&j, worker).is_some() || r.status.is_terminal() {
            return Ok(false);
        }
        job::Entity::update_many()
            .col_expr(job::Column::Status, Expr::value(RunStatus::Queued.as_str()))
            .col_expr(job::Column::Worker, Expr::value(Option::<String>::None))
            .col_expr(job::Column::Attempts, Expr::value((j.attempts - 1).max(0)))
            .col_expr(
                job::Column::EnqueuedAt,
                Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
            )
            .filter(job::Column::Id.eq(job_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(true)
    }

    /// Mark one job as on the queue again (after a retry push).
    pub async fn mark_job_enqueued(&self, job_id: i64) -> Result<(), StoreError> {
        job::Entity::update_many()
            .col_expr(job::Column::EnqueuedAt, Expr::value(Some(now())))
            .filter(job::Column::Id.eq(job_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

async fn set_job(
    txn: &DatabaseTransaction,
    job_id: i64,
    status: RunStatus,
) -> Result<(), StoreError> {
    job::Entity::update_many()
        .col_expr(job::Column::Status, Expr::value(status.as_str()))
        .filter(job::Column::Id.eq(job_id))
        .exec(txn)
        .await?;
    Ok(())
}

/// The failed attempt's writes (the caller holds the run lock).
async fn fail(
    txn: &DatabaseTransaction,
    job_id: i64,
    run_id: i64,
    error: &str,
    outcome: JobOutcome,
    deaths: i32,
) -> Result<(), StoreError> {
    let status = match outcome {
        JobOutcome::Retry => RunStatus::Queued,
        JobOutcome::GiveUp => RunStatus::Failed,
    };
    job::Entity::update_many()
        .col_expr(job::Column::Status, Expr::value(status.as_str()))
        .col_expr(job::Column::Error, Expr::value(Some(error.to_string())))
        .col_expr(job::Column::Deaths, Expr::value(deaths))
        .filter(job::Column::Id.eq(job_id))
        .exec(txn)
        .await?;
    let mut update = run::Entity::update_many()
        .col_expr(run::Column::Error, Expr::value(Some(error.to_string())))
        .filter(run::Column::Id.eq(run_id))
        .filter(
            run::Column::Status
                .is_not_in([RunStatus::Cancelled.as_str(), RunStatus::Done.as_str()]),
        );
    if outcome == JobOutcome::GiveUp {
        update = update
            .col_expr(run::Column::Status, Expr::value(status.as_str()))
            .col_expr(run::Column::FinishedAt, Expr::value(Some(now())));
    }
    update.exec(txn).await?;
    Ok(())
}

/// The identity of the examples run `run_id` stored samples of ([`spec::examples`]).
pub(super) async fn examples_id<C: ConnectionTrait>(
    db: &C,
    run_id: i64,
) -> Result<Option<String>, StoreError> {
    let Some(r) = run::Entity::find_by_id(run_id).one(db).await? else {
        return Ok(None);
    };
    let kind = r.manifest()?.task.kind;
    let texts: Vec<(String, Option<String>)> = sample::Entity::find()
        .select_only()
        .column(sample::Column::Prompt)
        .column(sample::Column::Reference)
        .filter(sample::Column::RunId.eq(run_id))
        .into_tuple()
        .all(db)
        .await?;
    Ok(Some(rows::examples_id(
        kind,
        texts.iter().map(|(p, r)| (p.as_str(), r.as_deref())),
    )))
}

/// A run's metrics (replacing earlier values of the same names), notes and examples, and the
/// run done.
pub(super) async fn store_metrics<C: ConnectionTrait>(
    db: &C,
    run_id: i64,
    metrics: &[MetricValue],
    notes: &[String],
) -> Result<(), StoreError> {
    let t = now();
    if !metrics.is_empty() {
        use sea_orm::sea_query::OnConflict;
        metric::Entity::insert_many(rows::metric_rows(run_id, metrics, t))
            .on_conflict(
                OnConflict::columns([metric::Column::RunId, metric::Column::Name])
                    .update_columns([
                        metric::Column::Value,
                        metric::Column::CiLow,
                        metric::Column::CiHigh,
                        metric::Column::N,
                        metric::Column::Version,
                        metric::Column::CreatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    let examples = examples_id(db, run_id).await?;
    run::Entity::update_many()
        .col_expr(run::Column::Status, Expr::value(RunStatus::Done.as_str()))
        .col_expr(run::Column::ExamplesId, Expr::value(examples))
        .col_expr(run::Column::FinishedAt, Expr::value(Some(t)))
        .col_expr(run::Column::Error, Expr::value(Option::<String>::None))
        .col_expr(
            run::Column::Notes,
            Expr::value((!notes.is_empty()).then(|| notes.join("\n"))),
        )
        .filter(run::Column::Id.eq(run_id))
        .exec(db)
        .await?;
    Ok(())
}
