//! Reading sweeps back: status, results, exports; and the user actions cancel, retry and
//! archive.

use std::collections::HashMap;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::Expr,
};
use serde::Serialize;

use super::entities::{job, metric, run, sample, sweep, sweep_cell};
use super::plan::JobRef;
use super::{RunStatus, Store, StoreError};

/// One run of a sweep with its progress and metrics.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Cell key in the sweep.
    pub cell: String,
    /// The run row.
    #[serde(skip)]
    pub run: run::Model,
    /// Samples stored so far.
    pub samples_done: u64,
    /// Metrics, by name.
    #[serde(skip)]
    pub metrics: Vec<metric::Model>,
}

impl RunSummary {
    /// (name, implementation version) of each metric.
    pub fn metric_versions(&self) -> impl Iterator<Item = (&str, i32)> {
        self.metrics.iter().map(|m| (m.name.as_str(), m.version))
    }
}

/// A sweep and its runs.
#[derive(Debug, Clone)]
pub struct SweepStatus {
    /// The sweep row.
    pub sweep: sweep::Model,
    /// Its cells' runs, in cell order.
    pub runs: Vec<RunSummary>,
}

impl SweepStatus {
    /// Number of runs per status name.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        RunStatus::ALL
            .into_iter()
            .map(|s| {
                (
                    s.as_str(),
                    self.runs.iter().filter(|r| r.run.status == s).count(),
                )
            })
            .collect()
    }

    /// Whether every run has reached a terminal status.
    pub fn finished(&self) -> bool {
        self.runs.iter().all(|r| r.run.status.is_terminal())
    }
}

/// One exported sample of a run of a sweep.
#[derive(Debug, Clone, Serialize)]
pub struct SampleRow {
    /// Run id.
    pub run_id: i64,
    /// Example index within the run.
    pub idx: i64,
    /// Model name.
    pub model: String,
    /// Adapter name, empty for none.
    pub adapter: String,
    /// Task name.
    pub task: String,
    /// The input.
    pub prompt: String,
    /// The model's output.
    pub output: String,
    /// The reference.
    pub reference: String,
    /// The source text the entailment ratios read (tasks with a `source` field).
    pub source: String,
}

/// One exported row: a metric of a run of a sweep.
#[derive(Debug, Clone, Serialize)]
pub struct ExportRow {
    /// Sweep name.
    pub sweep: String,
    /// Run id.
    pub run_id: i64,
    /// Run fingerprint.
    pub fingerprint: String,
    /// Model name.
    pub model: String,
    /// Model source.
    pub model_source: String,
    /// Adapter name, empty for none.
    pub adapter: String,
    /// Task name.
    pub task: String,
    /// Task version.
    pub task_version: i32,
    /// Setting name.
    pub setting: String,
    /// Seed.
    pub seed: i64,
    /// Run status.
    pub status: RunStatus,
    /// Whether the model had random weights.
    pub random_weights: bool,
    /// Metric name.
    pub metric: String,
    /// Metric value.
    pub value: Option<f64>,
    /// CI low.
    pub ci_low: Option<f64>,
    /// CI high.
    pub ci_high: Option<f64>,
    /// Samples behind the value.
    pub n: Option<i64>,
    /// Metric implementation version.
    pub metric_version: Option<i32>,
    /// The run's tags and its sweep's, space-separated.
    pub tags: String,
}

impl Store {
    /// All sweeps, newest first.
    pub async fn sweeps(&self) -> Result<Vec<sweep::Model>, StoreError> {
        Ok(sweep::Entity::find()
            .order_by_desc(sweep::Column::UpdatedAt)
            .all(&self.db)
            .await?)
    }

    pub(super) async fn sweep_by_name(&self, name: &str) -> Result<sweep::Model, StoreError> {
        sweep::Entity::find()
            .filter(sweep::Column::Name.eq(name))
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::NoSweep(name.to_string()))
    }

    async fn cells(&self, sweep_id: i64) -> Result<Vec<(String, run::Model)>, StoreError> {
        let cells = sweep_cell::Entity::find()
            .filter(sweep_cell::Column::SweepId.eq(sweep_id))
            .order_by_asc(sweep_cell::Column::Id)
            .all(&self.db)
            .await?;
        let ids: Vec<i64> = cells.iter().map(|c| c.run_id).collect();
        let mut runs: HashMap<i64, run::Model> = HashMap::new();
        for chunk in ids.chunks(500) {
            for r in run::Entity::find()
                .filter(run::Column::Id.is_in(chunk.iter().copied()))
                .all(&self.db)
                .await?
            {
                runs.insert(r.id, r);
            }
        }
        Ok(cells
            .into_iter()
            .filter_map(|c| runs.remove(&c.run_id).map(|r| (c.cell_key, r)))
            .collect())
    }

    /// A sweep with its runs, their progress and metrics.
    pub async fn sweep_status(&self, name: &str) -> Result<SweepStatus, StoreError> {
        let sweep = self.sweep_by_name(name).await?;
        let cells = self.cells(sweep.id).await?;
        let ids: Vec<i64> = cells.iter().map(|(_, r)| r.id).collect();
        let mut metrics: HashMap<i64, Vec<metric::Model>> = HashMap::new();
        for m in self.metrics_of(&ids).await? {
            metrics.entry(m.run_id).or_default().push(m);
        }
        let mut counts: HashMap<i64, i64> = HashMap::new();
        for chunk in ids.chunks(500) {
            counts.extend(
                sample::Entity::find()
                    .select_only()
                    .column(sample::Column::RunId)
                    .column_as(sample::Column::Id.count(), "n")
                    .filter(sample::Column::RunId.is_in(chunk.iter().copied()))
                    .group_by(sample::Column::RunId)
                    .into_tuple::<(i64, i64)>()
                    .all(&self.db)
                    .await?,
            );
        }
        let runs = cells
            .into_iter()
            .map(|(cell, run)| RunSummary {
                cell,
                metrics: metrics.remove(&run.id).unwrap_or_default(),
                samples_done: counts.get(&run.id).copied().unwrap_or(0) as u64,
                run,
            })
            .collect();
        Ok(SweepStatus { sweep, runs })
    }

    /// Rows for `nlebench export`: one per metric of each run (one empty row for runs
    /// without metrics).
    pub async fn export_rows(&self, name: &str) -> Result<Vec<ExportRow>, StoreError> {
        let sweep = self.sweep_by_name(name).await?;
        let cells = self.cells(sweep.id).await?;
        let ids: Vec<i64> = cells.iter().map(|(_, r)| r.id).collect();
        let mut metrics: HashMap<i64, Vec<metric::Model>> = HashMap::new();
        for m in self.metrics_of(&ids).await? {
            metrics.entry(m.run_id).or_default().push(m);
        }
        let mut tags_of = self.run_and_sweep_tags(sweep.id, &ids).await?;
        let mut rows = Vec::new();
        for (_, r) in cells {
            let tags = tags_of.remove(&r.id).unwrap_or_default().join(" ");
            let base = |m: Option<&metric::Model>| ExportRow {
                sweep: sweep.name.clone(),
                run_id: r.id,
                fingerprint: r.fingerprint.clone(),
                model: r.model_name.clone(),
                model_source: r.model_source.clone(),
                adapter: r.adapter_name.clone().unwrap_or_default(),
                task: r.task_name.clone(),
                task_version: r.task_version,
                setting: r.setting_name.clone(),
                seed: r.seed,
                status: r.status,
                random_weights: r.random_weights,
                metric: m.map(|m| m.name.clone()).unwrap_or_default(),
                value: m.map(|m| m.value),
                ci_low: m.and_then(|m| m.ci_low),
                ci_high: m.and_then(|m| m.ci_high),
                n: m.map(|m| m.n),
                metric_version: m.map(|m| m.version),
                tags: tags.clone(),
            };
            match metrics.get(&r.id) {
                Some(ms) => rows.extend(ms.iter().map(|m| base(Some(m)))),
                None => rows.push(base(None)),
            }
        }
        Ok(rows)
    }

    /// Every sample of a sweep's runs, one row each (for scoring elsewhere and importing the
    /// scores back with `import --onto`).
    pub async fn export_samples(&self, name: &str) -> Result<Vec<SampleRow>, StoreError> {
        let sweep = self.sweep_by_name(name).await?;
        let mut rows = Vec::new();
        for (_, r) in self.cells(sweep.id).await? {
            for s in self.samples(r.id).await? {
                let source = s.data_text("source").unwrap_or_default();
                rows.push(SampleRow {
                    run_id: r.id,
                    idx: s.idx,
                    model: r.model_name.clone(),
                    adapter: r.adapter_name.clone().unwrap_or_default(),
                    task: r.task_name.clone(),
                    prompt: s.prompt,
                    output: s.output.unwrap_or_default(),
                    reference: s.reference.unwrap_or_default(),
                    source,
                });
            }
        }
        Ok(rows)
    }

    /// The runs a rescore target names: every run of sweep `target`, or run `run:ID`.
    pub async fn runs_for(&self, target: &str) -> Result<Vec<run::Model>, StoreError> {
        if let Some(id) = target
            .strip_prefix("run:")
            .and_then(|i| i.parse::<i64>().ok())
        {
            return run::Entity::find_by_id(id)
                .one(&self.db)
                .await?
                .map(|r| vec![r])
                .ok_or_else(|| StoreError::NoRun(id));
        }
        let sweep = self.sweep_by_name(target).await?;
        Ok(self
            .cells(sweep.id)
            .await?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    /// Archive sweep `name` (hide it from the lists, keep everything) or restore it; `false`
    /// when it already was so.
    pub async fn set_archived(&self, name: &str, archived: bool) -> Result<bool, StoreError> {
        let sweep = self.sweep_by_name(name).await?;
        if sweep.archived_at.is_some() == archived {
            return Ok(false);
        }
        let mut a: sweep::ActiveModel = sweep.into();
        a.archived_at = Set(archived.then(Utc::now));
        a.update(&self.db).await?;
        Ok(true)
    }

    /// Cancel a sweep's queued and running runs; returns how many were cancelled.
    pub async fn cancel_sweep(&self, name: &str) -> Result<u64, StoreError> {
        let sweep = self.sweep_by_name(name).await?;
        let ids: Vec<i64> = self
            .cells(sweep.id)
            .await?
            .iter()
            .map(|(_, r)| r.id)
            .collect();
        let txn = super::begin(&self.db).await?;
        let mut cancelled = 0;
        for chunk in ids.chunks(500) {
            cancelled += run::Entity::update_many()
                .col_expr(
                    run::Column::Status,
                    Expr::value(RunStatus::Cancelled.as_str()),
                )
                .col_expr(run::Column::FinishedAt, Expr::value(Some(super::now())))
                .filter(run::Column::Id.is_in(chunk.iter().copied()))
                .filter(
                    run::Column::Status
                        .is_in([RunStatus::Queued.as_str(), RunStatus::Running.as_str()]),
                )
                .exec(&txn)
                .await?
                .rows_affected;
            job::Entity::update_many()
                .col_expr(
                    job::Column::Status,
                    Expr::value(RunStatus::Cancelled.as_str()),
                )
                .filter(job::Column::RunId.is_in(chunk.iter().copied()))
                .filter(
                    job::Column::Status
                        .is_in([RunStatus::Queued.as_str(), RunStatus::Running.as_str()]),
                )
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(cancelled)
    }

    /// Put a sweep's failed and cancelled runs back on the queue; they resume from their
    /// stored samples. Returns the jobs to enqueue.
    pub async fn retry_sweep(&self, name: &str) -> Result<Vec<JobRef>, StoreError> {
        let sweep = self.sweep_by_name(name).await?;
        let cells = self.cells(sweep.id).await?;
        let txn = super::begin(&self.db).await?;
        let mut jobs = Vec::new();
        for (_, r) in cells {
            if matches!(r.status, RunStatus::Failed | RunStatus::Cancelled) {
                jobs.extend(Self::reset_run(&txn, r.id).await?);
            }
        }
        txn.commit().await?;
        Ok(jobs)
    }
}
