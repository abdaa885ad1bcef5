//! `jobs`: a shard of a run, the unit on the queue.

use sea_orm::entity::prelude::*;

use crate::RunStatus;

/// A job.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub run_id: i64,
    pub shard: i32,
    pub start_idx: i64,
    pub end_idx: i64,
    pub status: RunStatus,
    pub attempts: i32,
    pub deaths: i32,
    pub worker: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub enqueued_at: Option<ChronoDateTimeUtc>,
    pub started_at: Option<ChronoDateTimeUtc>,
    pub finished_at: Option<ChronoDateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Join a job to its run.
pub fn run_relation() -> RelationDef {
    Entity::belongs_to(super::run::Entity)
        .from(Column::RunId)
        .to(super::run::Column::Id)
        .into()
}
