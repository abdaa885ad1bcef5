//! Writing samples per batch and metrics per run, idempotently.

use sea_orm::{
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, OnConflict},
};

use super::entities::{metric, run, sample};
use super::{MetricValue, Store, StoreError, now, rows};

/// A sample to store.
#[derive(Debug, Clone)]
pub struct NewSample {
    /// Example index within the run.
    pub idx: i64,
    /// Shard the example belongs to.
    pub shard: i32,
    /// The input.
    pub prompt: String,
    /// The model's output, if the task generates.
    pub output: Option<String>,
    /// The reference, if any.
    pub reference: Option<String>,
    /// Task-specific JSON.
    pub data: serde_json::Value,
}

impl Store {
    /// Indices in `[start, end)` of `run_id` that already have a sample.
    pub async fn stored_indices(
        &self,
        run_id: i64,
        start: i64,
        end: i64,
    ) -> Result<Vec<i64>, StoreError> {
        Ok(sample::Entity::find()
            .select_only()
            .column(sample::Column::Idx)
            .filter(sample::Column::RunId.eq(run_id))
            .filter(sample::Column::Idx.gte(start))
            .filter(sample::Column::Idx.lt(end))
            .into_tuple::<i64>()
            .all(&self.db)
            .await?)
    }

    /// Store a batch of samples of `run_id` written by `worker`; samples already stored
    /// under the same (run, index) are kept as they are. Returns how many were new.
    pub async fn insert_samples(
        &self,
        run_id: i64,
        worker: &str,
        samples: &[NewSample],
    ) -> Result<u64, StoreError> {
        if samples.is_empty() {
            return Ok(0);
        }
        let t = now();
        let res = sample::Entity::insert_many(rows::sample_rows(run_id, worker, samples, t))
            .on_conflict(
                OnConflict::columns([sample::Column::RunId, sample::Column::Idx])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await;
        match res {
            Ok(n) => Ok(n),
            Err(sea_orm::DbErr::RecordNotInserted) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// All samples of a run, by index.
    pub async fn samples(&self, run_id: i64) -> Result<Vec<sample::Model>, StoreError> {
        Ok(sample::Entity::find()
            .filter(sample::Column::RunId.eq(run_id))
            .order_by_asc(sample::Column::Idx)
            .all(&self.db)
            .await?)
    }

    /// Store a run's metrics (replacing earlier values of the same names) and what it could
    /// not compute (`notes`), and mark it done (after rescoring or importing; workers finish
    /// runs through [`Store::finish_job`]).
    pub async fn finish_run(
        &self,
        run_id: i64,
        metrics: &[MetricValue],
        notes: &[String],
    ) -> Result<(), StoreError> {
        let txn = super::begin(&self.db).await?;
        super::jobs::store_metrics(&txn, run_id, metrics, notes).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Replace a finished run's notes (after rescoring).
    pub async fn set_notes(&self, run_id: i64, notes: &[String]) -> Result<(), StoreError> {
        run::Entity::update_many()
            .col_expr(
                run::Column::Notes,
                Expr::value((!notes.is_empty()).then(|| notes.join("\n"))),
            )
            .filter(run::Column::Id.eq(run_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Merge per-sample scores into the samples' `data` of `run_id` (e.g. toxicity scores
    /// computed elsewhere) and replace the run's metrics with `metrics`, all or nothing.
    /// Every index must be a stored sample of the run.
    pub async fn add_sample_scores(
        &self,
        run_id: i64,
        scores: &[(i64, serde_json::Map<String, serde_json::Value>)],
        metrics: &[MetricValue],
    ) -> Result<(), StoreError> {
        let txn = super::begin(&self.db).await?;
        for (idx, add) in scores {
            let s = sample::Entity::find()
                .filter(sample::Column::RunId.eq(run_id))
                .filter(sample::Column::Idx.eq(*idx))
                .one(&txn)
                .await?
                .ok_or(StoreError::NoSample { run_id, idx: *idx })?;
            sample::Entity::update_many()
                .col_expr(sample::Column::Data, Expr::value(s.data_merged(add)))
                .filter(sample::Column::Id.eq(s.id))
                .exec(&txn)
                .await?;
        }
        metric::Entity::delete_many()
            .filter(metric::Column::RunId.eq(run_id))
            .exec(&txn)
            .await?;
        if !metrics.is_empty() {
            metric::Entity::insert_many(rows::metric_rows(run_id, metrics, now()))
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Replace a finished run's metrics with `metrics` (rescoring) and record the examples it
    /// measured (runs stored before migration 12 have none recorded); its status is unchanged.
    pub async fn replace_metrics(
        &self,
        run_id: i64,
        metrics: &[MetricValue],
    ) -> Result<(), StoreError> {
        let txn = super::begin(&self.db).await?;
        metric::Entity::delete_many()
            .filter(metric::Column::RunId.eq(run_id))
            .exec(&txn)
            .await?;
        let t = now();
        if !metrics.is_empty() {
            metric::Entity::insert_many(rows::metric_rows(run_id, metrics, t))
                .exec_without_returning(&txn)
                .await?;
        }
        let examples = super::jobs::examples_id(&txn, run_id).await?;
        run::Entity::update_many()
            .col_expr(run::Column::ExamplesId, Expr::value(examples))
            .filter(run::Column::Id.eq(run_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Metrics of a set of runs.
    pub async fn metrics_of(&self, run_ids: &[i64]) -> Result<Vec<metric::Model>, StoreError> {
        let mut out = Vec::new();
        for chunk in run_ids.chunks(500) {
            out.extend(
                metric::Entity::find()
                    .filter(metric::Column::RunId.is_in(chunk.iter().copied()))
                    .order_by_asc(metric::Column::RunId)
                    .order_by_asc(metric::Column::Name)
                    .all(&self.db)
                    .await?,
            );
        }
        Ok(out)
    }
}
