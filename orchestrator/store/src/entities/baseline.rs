//! `baselines`: published or recomputed numbers to compare runs against.

use sea_orm::entity::prelude::*;

/// A baseline number with its source.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "baselines")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub task: String,
    pub model: String,
    pub setting: String,
    pub metric: String,
    pub value: f64,
    /// Examples the value was computed on (`None`: not recorded).
    pub n: Option<i64>,
    /// Their identity ([`spec::examples`]; `None`: not recorded).
    pub examples: Option<String>,
    pub source: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub note: Option<String>,
    pub created_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
