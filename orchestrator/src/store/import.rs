//! Storing outputs produced elsewhere as a finished run (`source = import`), with its samples
//! and metrics, in one transaction.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait,
    sea_query::OnConflict,
};

use super::entities::{metric, run, sample, sweep, sweep_cell};
use super::{MetricValue, NewSample, RunStatus, Store, StoreError, now};
use crate::manifest::RunManifest;

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
        let txn = self.db.begin().await?;
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
        let m = manifest;
        let r = run::ActiveModel {
            fingerprint: Set(m.fingerprint()),
            model_name: Set(m.model.name.clone()),
            model_source: Set(m.model.source.to_string()),
            model_revision: Set(m.model.resolved.revision.clone()),
            adapter_name: Set(None),
            adapter_source: Set(None),
            task_name: Set(m.task.name.clone()),
            task_version: Set(m.task.version as i32),
            setting_name: Set(m.setting.name.clone()),
            seed: Set(m.seed as i64),
            sample_limit: Set(None),
            manifest: Set(serde_json::to_string(m).expect("manifests always serialize")),
            source: Set("import".into()),
            status: Set(RunStatus::Done.as_str().into()),
            n_expected: Set(samples.len() as i64),
            random_weights: Set(false),
            error: Set(None),
            worker: Set(None),
            attempts: Set(0),
            created_at: Set(t),
            started_at: Set(Some(t)),
            finished_at: Set(Some(t)),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        for chunk in samples.chunks(500) {
            sample::Entity::insert_many(chunk.iter().map(|s| sample::ActiveModel {
                run_id: Set(r.id),
                idx: Set(s.idx),
                shard: Set(s.shard),
                prompt: Set(s.prompt.clone()),
                output: Set(s.output.clone()),
                reference: Set(s.reference.clone()),
                data: Set(s.data.to_string()),
                worker: Set(Some("import".into())),
                created_at: Set(t),
                ..Default::default()
            }))
            .exec_without_returning(&txn)
            .await?;
        }
        if !metrics.is_empty() {
            metric::Entity::insert_many(metrics.iter().map(|x| metric::ActiveModel {
                run_id: Set(r.id),
                name: Set(x.name.clone()),
                value: Set(x.value),
                ci_low: Set(x.ci_low),
                ci_high: Set(x.ci_high),
                n: Set(x.n),
                version: Set(x.version),
                created_at: Set(t),
                ..Default::default()
            }))
            .exec_without_returning(&txn)
            .await?;
        }
        sweep_cell::Entity::insert(sweep_cell::ActiveModel {
            sweep_id: Set(sweep_id),
            cell_key: Set(cell_key.to_string()),
            run_id: Set(r.id),
            ..Default::default()
        })
        .on_conflict(
            OnConflict::columns([sweep_cell::Column::SweepId, sweep_cell::Column::CellKey])
                .update_column(sweep_cell::Column::RunId)
                .to_owned(),
        )
        .exec(&txn)
        .await?;
        txn.commit().await?;
        Ok(r.id)
    }
}
