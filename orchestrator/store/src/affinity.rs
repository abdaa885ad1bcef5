//! Model affinity: which queued jobs a worker holding a model should take first. A job is a
//! candidate when it is queued, never attempted (a retry keeps its backoff), its run is active,
//! and its sweeps' priority is at least the delivered job's (priorities still win).

use std::collections::{BTreeMap, HashMap};

use sea_orm::{ColumnTrait, EntityTrait, JoinType, QueryFilter, QueryOrder, QuerySelect};

use super::entities::{job, run, sweep, sweep_cell};
use super::{JobRef, RunStatus, Store, StoreError};

/// Queued jobs looked at to find the busiest model (the oldest first).
const WINDOW: u64 = 256;

/// Queued jobs of one model looked at for one of a high enough priority.
const MODEL_WINDOW: u64 = 16;

/// A delivered job's model and priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobModel {
    /// The run's model source (`hf:…`, `path:…`, `random:…`).
    pub source: String,
    /// The highest priority of the run's sweeps.
    pub priority: i32,
    /// The job waits to be claimed (not taken, done or cancelled since it was queued).
    pub queued: bool,
}

impl Store {
    /// The model and priority of job `job_id`'s run (`None` when the job is gone).
    pub async fn job_model(&self, job_id: i64) -> Result<Option<JobModel>, StoreError> {
        let row: Option<(i64, String, RunStatus)> = job::Entity::find_by_id(job_id)
            .select_only()
            .column(run::Column::Id)
            .column(run::Column::ModelSource)
            .column(job::Column::Status)
            .join(JoinType::InnerJoin, job::run_relation())
            .into_tuple()
            .one(&self.db)
            .await?;
        let Some((run_id, source, status)) = row else {
            return Ok(None);
        };
        if status != RunStatus::Queued {
            // Taken already (an earlier swap chose it, or a duplicate delivery): its claim
            // skips it; no priority needed.
            return Ok(Some(JobModel {
                source,
                priority: 0,
                queued: false,
            }));
        }
        let priority = self
            .priorities(&[run_id])
            .await?
            .get(&run_id)
            .copied()
            .unwrap_or(0);
        Ok(Some(JobModel {
            source,
            priority,
            queued: true,
        }))
    }

    /// MiB a job of run `run_id` needs ([`spec::memory::need_mb`]); `None` when the run
    /// is gone or its manifest predates model sizes.
    pub async fn job_need_mb(&self, run_id: i64) -> Result<Option<u64>, StoreError> {
        let Some(r) = run::Entity::find_by_id(run_id).one(&self.db).await? else {
            return Ok(None);
        };
        Ok(spec::memory::need_mb(&r.manifest()?))
    }

    /// The engine version run `run_id` was planned for; `None` when the run is gone.
    pub async fn job_release(&self, run_id: i64) -> Result<Option<String>, StoreError> {
        let Some(r) = run::Entity::find_by_id(run_id).one(&self.db).await? else {
            return Ok(None);
        };
        Ok(Some(r.manifest()?.engine_version))
    }

    /// The oldest candidate job of a run of model `source` at priority `min_priority` or
    /// higher.
    pub async fn queued_job_for_model(
        &self,
        source: &str,
        min_priority: i32,
    ) -> Result<Option<JobRef>, StoreError> {
        let rows = self.candidates(Some(source), MODEL_WINDOW).await?;
        let runs: Vec<i64> = rows.iter().map(|r| r.1).collect();
        let priorities = self.priorities(&runs).await?;
        Ok(rows
            .into_iter()
            .find(|(_, run_id, _, _)| priorities.get(run_id).copied().unwrap_or(0) >= min_priority)
            .map(|(job_id, run_id, shard, _)| JobRef {
                job_id,
                run_id,
                shard,
            }))
    }

    /// The model with the most candidate jobs at priority `min_priority` or higher (ties: the
    /// one whose oldest such job is oldest).
    pub async fn busiest_model(&self, min_priority: i32) -> Result<Option<String>, StoreError> {
        let rows = self.candidates(None, WINDOW).await?;
        let runs: Vec<i64> = rows.iter().map(|r| r.1).collect();
        let priorities = self.priorities(&runs).await?;
        // source → (jobs, oldest job id)
        let mut work: BTreeMap<String, (usize, i64)> = BTreeMap::new();
        for (job_id, run_id, _, source) in rows {
            if priorities.get(&run_id).copied().unwrap_or(0) >= min_priority {
                let e = work.entry(source).or_insert((0, job_id));
                e.0 += 1;
                e.1 = e.1.min(job_id);
            }
        }
        Ok(work
            .into_iter()
            .max_by(|a, b| a.1.0.cmp(&b.1.0).then(b.1.1.cmp(&a.1.1)))
            .map(|(source, _)| source))
    }

    /// (job, run, shard, model source) of the `window` oldest candidate jobs, of model `source`
    /// if given.
    async fn candidates(
        &self,
        source: Option<&str>,
        window: u64,
    ) -> Result<Vec<(i64, i64, i32, String)>, StoreError> {
        let mut q = job::Entity::find()
            .select_only()
            .column(job::Column::Id)
            .column(job::Column::RunId)
            .column(job::Column::Shard)
            .column(run::Column::ModelSource)
            .join(JoinType::InnerJoin, job::run_relation())
            .filter(job::Column::Status.eq(RunStatus::Queued.as_str()))
            .filter(job::Column::Attempts.eq(0))
            .filter(
                run::Column::Status
                    .is_in([RunStatus::Queued.as_str(), RunStatus::Running.as_str()]),
            );
        if let Some(s) = source {
            q = q.filter(run::Column::ModelSource.eq(s));
        }
        Ok(q.order_by_asc(job::Column::Id)
            .limit(window)
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    /// The highest priority of each run's sweeps.
    async fn priorities(&self, runs: &[i64]) -> Result<HashMap<i64, i32>, StoreError> {
        if runs.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(i64, Option<i32>)> = sweep_cell::Entity::find()
            .select_only()
            .column(sweep_cell::Column::RunId)
            .column_as(sweep::Column::Priority.max(), "p")
            .join(JoinType::InnerJoin, sweep_cell::sweep_relation())
            .filter(sweep_cell::Column::RunId.is_in(runs.to_vec()))
            .group_by(sweep_cell::Column::RunId)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(|(r, p)| (r, p.unwrap_or(0))).collect())
    }
}
