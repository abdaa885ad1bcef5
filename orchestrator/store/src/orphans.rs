//! What the reconciler reads and repairs: unfinished jobs of active runs that no live worker
//! holds, and the lock that lets one reconciler pass run at a time.

use std::collections::HashMap;
use std::time::Duration;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, sea_query::Expr,
};

use super::entities::{job, run, worker};
use super::{JobRef, RunStatus, Store, StoreError, now};

/// An unfinished job that no live worker holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unheld {
    /// The job.
    pub job: JobRef,
    /// Its status in the store.
    pub status: RunStatus,
    /// The worker named as its holder, gone now.
    pub holder: Option<String>,
    /// The job row must be put back to `queued` before it is pushed (it is cancelled or
    /// failed under a run that is still active, or it is the done last job of a run whose
    /// finish was lost).
    pub reset: bool,
}

impl Unheld {
    /// Why the job needs the queue again, in words.
    pub fn reason(&self) -> String {
        match (&self.status, &self.holder, self.reset) {
            (RunStatus::Done, _, _) => {
                "every job is done but the run never finished: its last job runs again to finish it"
                    .into()
            }
            (_, _, true) => format!("the job is {} under an active run", self.status),
            (RunStatus::Running, Some(h), _) => format!("its worker {h} is gone"),
            _ => "it is queued in the store".into(),
        }
    }
}

/// Held while a reconciler pass runs; dropping it lets the next pass in.
#[derive(Debug)]
pub struct ReconcileLock(Option<DatabaseTransaction>);

impl ReconcileLock {
    /// Let the next pass in.
    pub async fn release(self) -> Result<(), StoreError> {
        if let Some(txn) = self.0 {
            txn.commit().await?;
        }
        Ok(())
    }
}

impl Store {
    /// The reconciler's lock, or `None` when another pass holds it: a PostgreSQL advisory
    /// lock (held by an open transaction); on SQLite every caller gets it (one process runs
    /// the embedded workers, and a second pass only pushes duplicates, which claims ignore).
    pub async fn reconcile_lock(&self) -> Result<Option<ReconcileLock>, StoreError> {
        /// "nlebench reconcile", as a 64-bit lock key.
        const KEY: i64 = 0x6e6c_6562_7265_636f;
        if self.db.get_database_backend() != sea_orm::DbBackend::Postgres {
            return Ok(Some(ReconcileLock(None)));
        }
        let txn = super::begin(&self.db).await?;
        let row = txn
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                format!("SELECT pg_try_advisory_xact_lock({KEY}) AS locked"),
            ))
            .await?;
        let locked = row
            .map(|r| r.try_get::<bool>("", "locked"))
            .transpose()?
            .unwrap_or(false);
        Ok(locked.then_some(ReconcileLock(Some(txn))))
    }

    /// Unfinished jobs of active runs with no live holder (a worker registered as running,
    /// with a heartbeat younger than `stale_after`, on that job). Jobs queued or created
    /// within `grace` are left out: their push may still be on its way.
    pub async fn unheld_jobs(
        &self,
        stale_after: Duration,
        grace: Duration,
    ) -> Result<Vec<Unheld>, StoreError> {
        let runs = run::Entity::find()
            .filter(
                run::Column::Status
                    .is_in([RunStatus::Queued.as_str(), RunStatus::Running.as_str()]),
            )
            .all(&self.db)
            .await?;
        let created: HashMap<i64, _> = runs.iter().map(|r| (r.id, r.created_at)).collect();
        let mut jobs: HashMap<i64, Vec<job::Model>> = HashMap::new();
        let ids: Vec<i64> = runs.iter().map(|r| r.id).collect();
        for chunk in ids.chunks(500) {
            for j in job::Entity::find()
                .filter(job::Column::RunId.is_in(chunk.iter().copied()))
                .all(&self.db)
                .await?
            {
                jobs.entry(j.run_id).or_default().push(j);
            }
        }
        let t = now();
        let age = |at: chrono::DateTime<chrono::Utc>| (t - at).to_std().unwrap_or_default();
        let live: HashMap<String, Option<i64>> = self
            .live_workers(stale_after)
            .await?
            .into_iter()
            .map(|w| (w.name, w.current_job))
            .collect();
        let mut out = Vec::new();
        for (run_id, mut js) in jobs {
            js.sort_by_key(|j| j.shard);
            let unheld = |j: &job::Model, reset: bool| Unheld {
                job: JobRef {
                    job_id: j.id,
                    run_id,
                    shard: j.shard,
                },
                status: j.status,
                holder: j.worker.clone().filter(|_| j.status == RunStatus::Running),
                reset,
            };
            if js.iter().all(|j| j.status == RunStatus::Done) {
                if let Some(last) = js.last() {
                    out.push(unheld(last, true));
                }
                continue;
            }
            for j in &js {
                let recent = match j.enqueued_at.or(j.started_at) {
                    Some(at) => age(at) < grace,
                    None => created.get(&run_id).is_some_and(|c| age(*c) < grace),
                };
                match j.status {
                    RunStatus::Done => {}
                    RunStatus::Queued if !recent => out.push(unheld(j, false)),
                    RunStatus::Queued => {}
                    RunStatus::Running => {
                        let held = j
                            .worker
                            .as_ref()
                            .and_then(|w| live.get(w))
                            .is_some_and(|on| *on == Some(j.id));
                        if !held {
                            out.push(unheld(j, false));
                        }
                    }
                    RunStatus::Failed | RunStatus::Cancelled => out.push(unheld(j, true)),
                }
            }
        }
        out.sort_by_key(|u| u.job.job_id);
        Ok(out)
    }

    /// Put a job of an active run back to `queued` (for [`Unheld::reset`]); `false` when its
    /// run is no longer active.
    pub async fn requeue_job(&self, job: &JobRef) -> Result<bool, StoreError> {
        let txn = super::begin(&self.db).await?;
        let active = run::Entity::update_many()
            .col_expr(run::Column::Attempts, Expr::col(run::Column::Attempts))
            .filter(run::Column::Id.eq(job.run_id))
            .filter(
                run::Column::Status
                    .is_in([RunStatus::Queued.as_str(), RunStatus::Running.as_str()]),
            )
            .exec(&txn)
            .await?
            .rows_affected
            > 0;
        if active {
            job::Entity::update_many()
                .col_expr(job::Column::Status, Expr::value(RunStatus::Queued.as_str()))
                .col_expr(job::Column::Worker, Expr::value(Option::<String>::None))
                .col_expr(job::Column::Attempts, Expr::value(0))
                .col_expr(job::Column::Deaths, Expr::value(0))
                .filter(job::Column::Id.eq(job.job_id))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(active)
    }

    /// Workers registered as running whose heartbeat is younger than `within`.
    pub async fn live_workers(&self, within: Duration) -> Result<Vec<worker::Model>, StoreError> {
        Ok(worker::Entity::find()
            .filter(worker::Column::Status.eq("running"))
            .all(&self.db)
            .await?
            .into_iter()
            .filter(|w| super::workers::alive(w, within))
            .collect())
    }
}
