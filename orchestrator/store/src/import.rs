//! Storing outputs produced elsewhere as a finished run (`source = import`), with its samples
//! and metrics, in one transaction.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use super::entities::{metric, sample, sweep};
use super::{MetricValue, NewSample, RunStatus, Store, StoreError, now, rows};
use spec::manifest::RunManifest;

impl Store {
    /// Store an imported run under sweep `sweep_name` (created when missing) as cell `cell_key`;
    /// returns the run id.
    pub async fn import_run(
        &self,
        sweep_name: &str,
        cell_key: &str,
        manifest: &RunManifest,
        samples: &[NewSample],
        metrics: &[MetricValue],
    ) -> Result<i64, StoreError> {
        let txn = super::begin(&self.db).await?;
        let t = now();
        let sweep_id = match sweep::Entity::find()
            .filter(sweep::Column::Name.eq(sweep_name))
            .one(&txn)
            .await?
        {
            Some(s) => s.id,
            None => {
                sweep::ActiveModel {
                    name: Set(sweep_name.to_string()),
                    owner: Set(None),
                    description: Set(Some("outputs imported with `nlebench import`".into())),
                    spec_path: Set(String::new()),
                    spec: Set(String::new()),
                    priority: Set(0),
                    shard_size: Set(0),
                    created_at: Set(t),
                    updated_at: Set(t),
                    ..Default::default()
                }
                .insert(&txn)
                .await?
                .id
            }
        };
        let mut new = rows::new_run(
            manifest,
            manifest.fingerprint(),
            "import",
            RunStatus::Done,
            samples.len() as u64,
            t,
        )?;
        new.examples_id = Set(Some(rows::examples_id(
            manifest.task.kind,
            samples
                .iter()
                .map(|s| (s.prompt.as_str(), s.reference.as_deref())),
        )));
        let r = new.insert(&txn).await?;
        for chunk in samples.chunks(500) {
            sample::Entity::insert_many(rows::sample_rows(r.id, "import", chunk, t))
                .exec_without_returning(&txn)
                .await?;
        }
        if !metrics.is_empty() {
            metric::Entity::insert_many(rows::metric_rows(r.id, metrics, t))
                .exec_without_returning(&txn)
                .await?;
        }
        rows::link_cell(&txn, sweep_id, cell_key, r.id).await?;
        txn.commit().await?;
        Ok(r.id)
    }
}
