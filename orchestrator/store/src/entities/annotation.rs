//! `annotations`: a tag or a note on a sweep (`sweep_id`) or a run (`run_id`).

use sea_orm::entity::prelude::*;

/// A stored tag or note.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "annotations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub sweep_id: Option<i64>,
    pub run_id: Option<i64>,
    /// `tag` or `note`.
    pub kind: String,
    #[sea_orm(column_type = "Text")]
    pub text: String,
    pub author: Option<String>,
    pub created_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
