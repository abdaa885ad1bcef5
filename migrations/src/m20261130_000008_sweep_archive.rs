//! `sweeps.archived_at`: when a sweep was archived (hidden from the lists, kept with all its
//! runs, restorable). Sweeps stored before this migration are not archived.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Sweeps {
    Table,
    ArchivedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Sweeps::Table)
                .add_column(
                    ColumnDef::new(Sweeps::ArchivedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Sweeps::Table)
                .drop_column(Sweeps::ArchivedAt)
                .to_owned(),
        )
        .await
    }
}
