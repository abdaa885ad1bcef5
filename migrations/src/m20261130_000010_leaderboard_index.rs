//! An index on runs (status, task, model, adapter, id): the leaderboard groups finished runs
//! by task, model and adapter, and with it reads the index alone instead of every run row
//! (which carries its manifest).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Runs {
    Table,
    Status,
    TaskName,
    ModelName,
    AdapterName,
    Id,
}

const NAME: &str = "ix_runs_status_task_model_adapter";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name(NAME)
                .table(Runs::Table)
                .col(Runs::Status)
                .col(Runs::TaskName)
                .col(Runs::ModelName)
                .col(Runs::AdapterName)
                .col(Runs::Id)
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name(NAME).table(Runs::Table).to_owned())
            .await
    }
}
