//! `leaderboard_latest`: per (metric, task, setting, examples, model, adapter) the newest
//! finished run with trained weights on its whole dataset that has the metric, kept by the
//! store's triggers (migrations 11 and 12) so that the leaderboard reads a row per entry
//! instead of grouping every finished run.

use sea_orm::entity::prelude::*;

/// The leaderboard's run for one metric and (task, model, adapter).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "leaderboard_latest")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub task_name: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub setting_name: String,
    /// The run's examples identity, empty when unknown.
    #[sea_orm(primary_key, auto_increment = false)]
    pub examples_key: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub model_name: String,
    /// The adapter's name, empty for none.
    #[sea_orm(primary_key, auto_increment = false)]
    pub adapter_key: String,
    /// Empty only inside the trigger that recomputes it.
    pub run_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
