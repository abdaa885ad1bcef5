//! `sweep_cells`: which run currently stands for each cell of a sweep.

use sea_orm::entity::prelude::*;

/// A cell of a sweep and its run.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sweep_cells")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub sweep_id: i64,
    pub cell_key: String,
    pub run_id: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Join a cell to its sweep.
pub fn sweep_relation() -> RelationDef {
    Entity::belongs_to(super::sweep::Entity)
        .from(Column::SweepId)
        .to(super::sweep::Column::Id)
        .into()
}
