//! `chain_steps`: one step of a `chain` task for one example (and item); unique on
//! (run, idx, step, item).

use sea_orm::entity::prelude::*;

/// A stored step.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "chain_steps")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub run_id: i64,
    pub idx: i64,
    /// Position of the step in the task's `[[steps]]`.
    pub step: i32,
    /// Position of the item for steps run once per item; 0 otherwise.
    pub item: i32,
    #[sea_orm(column_type = "Text")]
    pub prompt: String,
    #[sea_orm(column_type = "Text")]
    pub output: String,
    pub created_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
