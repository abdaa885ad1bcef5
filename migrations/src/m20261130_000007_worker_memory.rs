//! `workers.memory_mb`: the memory a worker offers its jobs (`--memory-gb`, or its device's),
//! for memory admission and `status`. Workers registered before this migration have none.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Workers {
    Table,
    MemoryMb,
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
                .add_column(ColumnDef::new(Workers::MemoryMb).big_integer().null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Workers::Table)
                .drop_column(Workers::MemoryMb)
                .to_owned(),
        )
        .await
    }
}
