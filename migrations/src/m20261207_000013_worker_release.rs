//! `workers.release`: the engine version a worker computes with, so that a job is computed
//! only by a worker of the release its run was planned for, and `status` can say which runs
//! wait for which release. Workers registered before this migration have none.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Workers {
    Table,
    Release,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Workers::Table)
                .add_column(ColumnDef::new(Workers::Release).string().null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Workers::Table)
                .drop_column(Workers::Release)
                .to_owned(),
        )
        .await
    }
}
