//! `samples`: one example's input, output, reference and scores; unique on (run, idx).

use sea_orm::entity::prelude::*;

/// A sample.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "samples")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub run_id: i64,
    pub idx: i64,
    pub shard: i32,
    #[sea_orm(column_type = "Text")]
    pub prompt: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub output: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub reference: Option<String>,
    /// Task-specific JSON: log-likelihoods, perplexities, groups, per-sample scores.
    #[sea_orm(column_type = "Text")]
    pub data: String,
    pub worker: Option<String>,
    pub created_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
