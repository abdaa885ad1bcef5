//! `runs`: one evaluation of a cell; its fingerprint says what it computed.

use sea_orm::entity::prelude::*;

use crate::{RunStatus, StoreError};
use spec::manifest::RunManifest;

/// A run.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "runs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub fingerprint: String,
    pub model_name: String,
    pub model_source: String,
    pub model_revision: Option<String>,
    pub adapter_name: Option<String>,
    pub adapter_source: Option<String>,
    pub task_name: String,
    pub task_version: i32,
    pub setting_name: String,
    pub seed: i64,
    pub sample_limit: Option<i64>,
    /// JSON [`spec::manifest::RunManifest`].
    #[sea_orm(column_type = "Text")]
    pub manifest: String,
    /// `engine` or `import`.
    pub source: String,
    pub status: RunStatus,
    pub n_expected: i64,
    /// Examples in the run's dataset (`None` for manifests that do not say).
    pub dataset_rows: Option<i64>,
    /// The identity of the examples the run measured ([`spec::examples`]), once finished.
    pub examples_id: Option<String>,
    pub random_weights: bool,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    /// What a finished run could not compute, and why, one per line.
    #[sea_orm(column_type = "Text", nullable)]
    pub notes: Option<String>,
    pub worker: Option<String>,
    pub attempts: i32,
    pub created_at: ChronoDateTimeUtc,
    pub started_at: Option<ChronoDateTimeUtc>,
    pub finished_at: Option<ChronoDateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The run measured fewer examples than its dataset holds (a limit or a sample).
    pub fn partial(&self) -> bool {
        self.dataset_rows.is_some_and(|rows| self.n_expected < rows)
    }

    /// The run's manifest, typed.
    pub fn manifest(&self) -> Result<RunManifest, StoreError> {
        serde_json::from_str(&self.manifest).map_err(|e| StoreError::Manifest {
            run_id: self.id,
            message: e.to_string(),
        })
    }
}
