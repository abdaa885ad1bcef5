//! `sweep_run_counts`: runs per (sweep, status), kept by the store's triggers (migration 11)
//! so that the sweeps list reads a row per status instead of every run.

use sea_orm::entity::prelude::*;

use crate::RunStatus;

/// How many of a sweep's cells have a run in `status`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sweep_run_counts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub sweep_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub status: RunStatus,
    pub n: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
