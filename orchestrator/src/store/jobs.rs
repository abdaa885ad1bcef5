//! A job's life on a worker: claim, progress checks, completion, failure.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set, sea_query::Expr,
};

use super::entities::{job, run};
use super::{RunStatus, Store, StoreError, now};
use crate::manifest::RunManifest;

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

/// How a failed attempt ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    /// The job goes back on the queue after a backoff.
    Retry,
    /// No attempts left: the job and its run are failed.
    GiveUp,
}

impl Store {
    /// Take a job for `worker`. `None` when there is nothing to do: the job is gone, already
    /// done, its run was cancelled, or another worker whose heartbeat is younger than
    /// `stale_after` is on it (a duplicate delivery).
    pub async fn claim_job(
        &self,
        job_id: i64,
        worker: &str,
        stale_after: std::time::Duration,
    ) -> Result<Option<ClaimedJob>, StoreError> {
        let Some(j) = job::Entity::find_by_id(job_id).one(&self.db).await? else {
            return Ok(None);
        };
        let Some(r) = run::Entity::find_by_id(j.run_id).one(&self.db).await? else {
            return Ok(None);
        };
        let job_status = Some(j.status);
        if matches!(job_status, Some(RunStatus::Done | RunStatus::Cancelled)) {
            return Ok(None);
        }
        if job_status == Some(RunStatus::Running)
            && let Some(holder) = j.worker.as_deref().filter(|h| *h != worker)
            && self.worker_alive(holder, stale_after).await?
        {
            return Ok(None);
        }
        if r.status == RunStatus::Cancelled {
            self.set_job_status(job_id, RunStatus::Cancelled).await?;
            return Ok(None);
        }
        let manifest = r.manifest()?;
        let t = now();
        let mut a: job::ActiveModel = j.clone().into();
        a.status = Set(RunStatus::Running);
        a.worker = Set(Some(worker.to_string()));
        a.attempts = Set(j.attempts + 1);
        a.started_at = Set(Some(t));
        let job = a.update(&self.db).await?;
        let mut a: run::ActiveModel = r.clone().into();
        a.status = Set(RunStatus::Running);
        a.worker = Set(Some(worker.to_string()));
        if r.started_at.is_none() {
            a.started_at = Set(Some(t));
        }
        a.attempts = Set(r.attempts + 1);
        let run = a.update(&self.db).await?;
        Ok(Some(ClaimedJob { job, run, manifest }))
    }

    /// The run's current status (workers check it between batches to honour cancellation).
    pub async fn run_status(&self, run_id: i64) -> Result<Option<RunStatus>, StoreError> {
        Ok(run::Entity::find_by_id(run_id)
            .one(&self.db)
            .await?
            .map(|r| r.status))
    }

    async fn set_job_status(&self, job_id: i64, status: RunStatus) -> Result<(), StoreError> {
        job::Entity::update_many()
            .col_expr(job::Column::Status, Expr::value(status.as_str()))
            .filter(job::Column::Id.eq(job_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Mark a job done; `true` when it was the run's last unfinished job.
    pub async fn complete_job(&self, job_id: i64, run_id: i64) -> Result<bool, StoreError> {
        job::Entity::update_many()
            .col_expr(job::Column::Status, Expr::value(RunStatus::Done.as_str()))
            .col_expr(job::Column::FinishedAt, Expr::value(Some(now())))
            .col_expr(job::Column::Error, Expr::value(Option::<String>::None))
            .filter(job::Column::Id.eq(job_id))
            .exec(&self.db)
            .await?;
        let open = job::Entity::find()
            .filter(job::Column::RunId.eq(run_id))
            .filter(job::Column::Status.ne(RunStatus::Done))
            .count(&self.db)
            .await?;
        Ok(open == 0)
    }

    /// Record a failed attempt. With [`JobOutcome::GiveUp`] the job and its run are failed
    /// with `error`; otherwise the job waits to be delivered again.
    pub async fn fail_job(
        &self,
        job_id: i64,
        run_id: i64,
        error: &str,
        outcome: JobOutcome,
    ) -> Result<(), StoreError> {
        let (job_status, run_status) = match outcome {
            JobOutcome::Retry => (RunStatus::Queued, RunStatus::Queued),
            JobOutcome::GiveUp => (RunStatus::Failed, RunStatus::Failed),
        };
        job::Entity::update_many()
            .col_expr(job::Column::Status, Expr::value(job_status.as_str()))
            .col_expr(job::Column::Error, Expr::value(Some(error.to_string())))
            .filter(job::Column::Id.eq(job_id))
            .exec(&self.db)
            .await?;
        let mut update = run::Entity::update_many()
            .col_expr(run::Column::Error, Expr::value(Some(error.to_string())))
            .filter(run::Column::Id.eq(run_id))
            .filter(run::Column::Status.ne(RunStatus::Cancelled));
        if outcome == JobOutcome::GiveUp {
            update = update
                .col_expr(run::Column::Status, Expr::value(run_status.as_str()))
                .col_expr(run::Column::FinishedAt, Expr::value(Some(now())));
        }
        update.exec(&self.db).await?;
        Ok(())
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
