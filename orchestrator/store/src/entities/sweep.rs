//! `sweeps`: one row per sweep name; the spec of its latest submission.

use sea_orm::entity::prelude::*;

/// A sweep.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sweeps")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub name: String,
    pub owner: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    pub spec_path: String,
    #[sea_orm(column_type = "Text")]
    pub spec: String,
    pub priority: i32,
    pub shard_size: i64,
    pub created_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
    /// Archived: hidden from the lists, kept, restorable.
    pub archived_at: Option<ChronoDateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
