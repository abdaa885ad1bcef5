//! `workers`: processes that pull jobs, with their heartbeat.

use sea_orm::entity::prelude::*;

/// A worker process.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub name: String,
    pub host: String,
    pub pid: i64,
    pub device: String,
    pub queue: String,
    pub status: String,
    pub current_job: Option<i64>,
    pub jobs_done: i64,
    pub started_at: ChronoDateTimeUtc,
    pub last_heartbeat: ChronoDateTimeUtc,
    /// MiB it offers its jobs (migration 7; `None` for workers registered before).
    pub memory_mb: Option<i64>,
    /// Engine version it computes with (migration 13; `None` for workers registered before).
    pub release: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
