//! Turning a planned grid into stored runs and jobs: only cells without a successful run get
//! work; failed or cancelled runs are resumed; `--force` starts fresh runs.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde::Serialize;

use super::entities::{job, run, sweep, sweep_cell};
use super::{RunStatus, Store, StoreError, now, rows};
use spec::manifest::RunManifest;

/// What submitting does with one cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum CellAction {
    /// No run has this fingerprint: create one.
    New,
    /// A run with this fingerprint succeeded: reuse it.
    Done {
        /// The run.
        run_id: i64,
    },
    /// The last run with this fingerprint failed or was cancelled: resume it.
    Retry {
        /// The run.
        run_id: i64,
        /// Failed or cancelled.
        was: RunStatus,
    },
    /// A run with this fingerprint is queued or running: leave it.
    InProgress {
        /// The run.
        run_id: i64,
    },
    /// `--force`: a fresh run although one exists.
    Forced {
        /// The run it replaces in the sweep.
        previous_run_id: i64,
    },
}

/// A job to put on the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct JobRef {
    /// The job row.
    pub job_id: i64,
    /// Its run.
    pub run_id: i64,
    /// Shard number within the run.
    pub shard: i32,
}

/// A cell ready to be stored.
#[derive(Debug, Clone)]
pub struct PlannedCell {
    /// `model[+adapter]/task/setting/seed=N`.
    pub key: String,
    /// The run manifest.
    pub manifest: RunManifest,
    /// Its fingerprint.
    pub fingerprint: String,
    /// What submitting does.
    pub action: CellAction,
}

/// The sweep row's fields.
#[derive(Debug, Clone)]
pub struct SweepRow {
    /// Unique name.
    pub name: String,
    /// Owner.
    pub owner: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Path of the sweep file.
    pub spec_path: String,
    /// The sweep file's text.
    pub spec: String,
    /// Queue priority.
    pub priority: i32,
    /// Examples per job.
    pub shard_size: u64,
}

impl Store {
    /// Decide each cell's action from the runs stored under its fingerprint.
    pub async fn decide(
        &self,
        fingerprints: &[String],
        force: bool,
    ) -> Result<Vec<CellAction>, StoreError> {
        Self::decide_in(&self.db, fingerprints, force).await
    }

    async fn decide_in<C: ConnectionTrait>(
        db: &C,
        fingerprints: &[String],
        force: bool,
    ) -> Result<Vec<CellAction>, StoreError> {
        let mut latest: HashMap<String, Vec<run::Model>> = HashMap::new();
        for chunk in fingerprints.chunks(500) {
            let runs = run::Entity::find()
                .filter(run::Column::Fingerprint.is_in(chunk.iter().map(|s| s.as_str())))
                .filter(run::Column::Source.eq("engine"))
                .order_by_desc(run::Column::Id)
                .all(db)
                .await?;
            for r in runs {
                latest.entry(r.fingerprint.clone()).or_default().push(r);
            }
        }
        Ok(fingerprints
            .iter()
            .map(|fp| {
                let runs = latest.get(fp).map(Vec::as_slice).unwrap_or(&[]);
                let done = runs.iter().find(|r| r.status == RunStatus::Done);
                let active = runs.iter().find(|r| r.status.is_active());
                match (force, runs.first(), done, active) {
                    (_, None, _, _) => CellAction::New,
                    (true, Some(last), _, _) => CellAction::Forced {
                        previous_run_id: last.id,
                    },
                    (false, _, Some(d), _) => CellAction::Done { run_id: d.id },
                    (false, _, None, Some(a)) => CellAction::InProgress { run_id: a.id },
                    (false, Some(last), None, None) => CellAction::Retry {
                        run_id: last.id,
                        was: last.status,
                    },
                }
            })
            .collect())
    }

    /// Store the sweep, its runs and jobs in one transaction; returns the jobs to enqueue
    /// (new jobs, jobs of resumed runs, and jobs that never reached the queue). Submissions
    /// are serialized, and each cell's action is decided again inside the transaction, so
    /// two submissions of one sweep at once create each run once (`cells` is updated).
    pub async fn apply(
        &self,
        sweep_row: &SweepRow,
        cells: &mut [PlannedCell],
    ) -> Result<(i64, Vec<JobRef>), StoreError> {
        let txn = super::begin(&self.db).await?;
        serialize_submissions(&txn).await?;
        let fingerprints: Vec<String> = cells.iter().map(|c| c.fingerprint.clone()).collect();
        let force = cells
            .iter()
            .any(|c| matches!(c.action, CellAction::Forced { .. }));
        if !force {
            let actions = Self::decide_in(&txn, &fingerprints, false).await?;
            for (cell, action) in cells.iter_mut().zip(actions) {
                cell.action = action;
            }
        }
        let t = now();
        let sweep_id = Self::upsert_sweep(&txn, sweep_row, t).await?;
        Self::drop_removed_cells(&txn, sweep_id, cells).await?;
        let mut to_enqueue = Vec::new();
        for cell in cells.iter() {
            let run_id = match &cell.action {
                CellAction::New | CellAction::Forced { .. } => {
                    let (run_id, jobs) =
                        Self::create_run(&txn, cell, sweep_row.shard_size, t).await?;
                    to_enqueue.extend(jobs);
                    run_id
                }
                CellAction::Retry { run_id, .. } => {
                    to_enqueue.extend(Self::reset_run(&txn, *run_id).await?);
                    *run_id
                }
                CellAction::InProgress { run_id } => {
                    to_enqueue.extend(Self::unqueued_jobs(&txn, *run_id).await?);
                    *run_id
                }
                CellAction::Done { run_id } => *run_id,
            };
            rows::link_cell(&txn, sweep_id, &cell.key, run_id).await?;
        }
        txn.commit().await?;
        Ok((sweep_id, to_enqueue))
    }

    /// The sweep named in `row`, created or updated to `row`; returns its id.
    async fn upsert_sweep<C: ConnectionTrait>(
        db: &C,
        row: &SweepRow,
        t: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let existing = sweep::Entity::find()
            .filter(sweep::Column::Name.eq(&row.name))
            .one(db)
            .await?;
        let fill = |mut a: sweep::ActiveModel| {
            a.owner = Set(row.owner.clone());
            a.description = Set(row.description.clone());
            a.spec_path = Set(row.spec_path.clone());
            a.spec = Set(row.spec.clone());
            a.priority = Set(row.priority);
            a.shard_size = Set(row.shard_size as i64);
            a.updated_at = Set(t);
            a
        };
        Ok(match existing {
            Some(s) => fill(s.into()).update(db).await?.id,
            None => {
                fill(sweep::ActiveModel {
                    name: Set(row.name.clone()),
                    created_at: Set(t),
                    ..Default::default()
                })
                .insert(db)
                .await?
                .id
            }
        })
    }

    /// Cells no longer in the sweep file leave the sweep (their runs stay in the history).
    async fn drop_removed_cells<C: ConnectionTrait>(
        db: &C,
        sweep_id: i64,
        cells: &[PlannedCell],
    ) -> Result<(), StoreError> {
        let keep: std::collections::HashSet<&str> = cells.iter().map(|c| c.key.as_str()).collect();
        let dropped: Vec<i64> = sweep_cell::Entity::find()
            .filter(sweep_cell::Column::SweepId.eq(sweep_id))
            .all(db)
            .await?
            .into_iter()
            .filter(|c| !keep.contains(c.cell_key.as_str()))
            .map(|c| c.id)
            .collect();
        for chunk in dropped.chunks(500) {
            sweep_cell::Entity::delete_many()
                .filter(sweep_cell::Column::Id.is_in(chunk.iter().copied()))
                .exec(db)
                .await?;
        }
        Ok(())
    }

    /// A queued run of `cell` with one job per `shard_size` examples.
    async fn create_run<C: ConnectionTrait>(
        db: &C,
        cell: &PlannedCell,
        shard_size: u64,
        t: DateTime<Utc>,
    ) -> Result<(i64, Vec<JobRef>), StoreError> {
        let m = &cell.manifest;
        let r = rows::new_run(
            m,
            cell.fingerprint.clone(),
            "engine",
            RunStatus::Queued,
            m.n_expected,
            t,
        )?
        .insert(db)
        .await?;
        let (shard, n) = (shard_size.max(1), m.n_expected);
        let mut jobs = Vec::new();
        for s in 0..n.div_ceil(shard) {
            let j = job::ActiveModel {
                run_id: Set(r.id),
                shard: Set(s as i32),
                start_idx: Set((s * shard) as i64),
                end_idx: Set(((s + 1) * shard).min(n) as i64),
                status: Set(RunStatus::Queued),
                attempts: Set(0),
                deaths: Set(0),
                worker: Set(None),
                error: Set(None),
                enqueued_at: Set(None),
                started_at: Set(None),
                finished_at: Set(None),
                ..Default::default()
            }
            .insert(db)
            .await?;
            jobs.push(JobRef {
                job_id: j.id,
                run_id: r.id,
                shard: j.shard,
            });
        }
        Ok((r.id, jobs))
    }

    /// Queued jobs of a run whose push never reached the queue (they go out again).
    async fn unqueued_jobs<C: ConnectionTrait>(
        db: &C,
        run_id: i64,
    ) -> Result<Vec<JobRef>, StoreError> {
        let lost = job::Entity::find()
            .filter(job::Column::RunId.eq(run_id))
            .filter(job::Column::EnqueuedAt.is_null())
            .filter(job::Column::Status.eq(RunStatus::Queued))
            .all(db)
            .await?;
        Ok(lost
            .into_iter()
            .map(|j| JobRef {
                job_id: j.id,
                run_id: j.run_id,
                shard: j.shard,
            })
            .collect())
    }

    /// Put a failed or cancelled run back to queued; its unfinished jobs start again from
    /// the samples already stored. Returns the jobs to enqueue: none when the run is no longer
    /// failed or cancelled (another submission or `retry` got there first).
    pub(super) async fn reset_run<C: sea_orm::ConnectionTrait>(
        db: &C,
        run_id: i64,
    ) -> Result<Vec<JobRef>, StoreError> {
        let reset = run::Entity::update_many()
            .col_expr(
                run::Column::Status,
                sea_orm::sea_query::Expr::value(RunStatus::Queued.as_str()),
            )
            .col_expr(
                run::Column::Error,
                sea_orm::sea_query::Expr::value(Option::<String>::None),
            )
            .col_expr(
                run::Column::FinishedAt,
                sea_orm::sea_query::Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
            )
            .filter(run::Column::Id.eq(run_id))
            .filter(
                run::Column::Status
                    .is_in([RunStatus::Failed.as_str(), RunStatus::Cancelled.as_str()]),
            )
            .exec(db)
            .await?;
        if reset.rows_affected == 0 {
            return Ok(Vec::new());
        }
        let jobs = job::Entity::find()
            .filter(job::Column::RunId.eq(run_id))
            .filter(job::Column::Status.ne(RunStatus::Done))
            .all(db)
            .await?;
        let mut out = Vec::new();
        for j in jobs {
            let r = JobRef {
                job_id: j.id,
                run_id,
                shard: j.shard,
            };
            let mut a: job::ActiveModel = j.into();
            a.status = Set(RunStatus::Queued);
            a.attempts = Set(0);
            a.deaths = Set(0);
            a.worker = Set(None);
            a.error = Set(None);
            a.enqueued_at = Set(None);
            a.update(db).await?;
            out.push(r);
        }
        Ok(out)
    }

    /// Record that jobs reached the queue.
    pub async fn mark_enqueued(&self, jobs: &[JobRef]) -> Result<(), StoreError> {
        let ids: Vec<i64> = jobs.iter().map(|j| j.job_id).collect();
        for chunk in ids.chunks(500) {
            job::Entity::update_many()
                .col_expr(
                    job::Column::EnqueuedAt,
                    sea_orm::sea_query::Expr::value(Some(now())),
                )
                .filter(job::Column::Id.is_in(chunk.iter().copied()))
                .exec(&self.db)
                .await?;
        }
        Ok(())
    }
}

/// Take the submission lock for the rest of the transaction: a PostgreSQL advisory lock; on
/// SQLite the first write of a transaction takes the database's write lock.
async fn serialize_submissions(txn: &sea_orm::DatabaseTransaction) -> Result<(), StoreError> {
    /// "nlebench submit", as a 64-bit lock key.
    const SUBMIT_LOCK: i64 = 0x6e6c_6562_7375_626d;
    let sql = match txn.get_database_backend() {
        sea_orm::DbBackend::Postgres => format!("SELECT pg_advisory_xact_lock({SUBMIT_LOCK})"),
        _ => "UPDATE sweeps SET id = id WHERE id < 0".to_string(),
    };
    txn.execute_unprepared(&sql).await?;
    Ok(())
}
