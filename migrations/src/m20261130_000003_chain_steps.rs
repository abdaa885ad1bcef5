//! Steps of `chain` tasks: each step's prompt and output per example (and per item of a
//! step run once per item), written as soon as the step is computed, so a resumed job never
//! recomputes a stored step. Unique on (run, idx, step, item).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ChainSteps {
    Table,
    Id,
    RunId,
    Idx,
    Step,
    Item,
    Prompt,
    Output,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ChainSteps::Table)
                .if_not_exists()
                .col(big_pk_auto(ChainSteps::Id))
                .col(big_integer(ChainSteps::RunId))
                .col(big_integer(ChainSteps::Idx))
                .col(integer(ChainSteps::Step))
                .col(integer(ChainSteps::Item))
                .col(text(ChainSteps::Prompt))
                .col(text(ChainSteps::Output))
                .col(timestamp_with_time_zone(ChainSteps::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_chain_steps_run")
                        .from(ChainSteps::Table, ChainSteps::RunId)
                        .to(Runs::Table, Runs::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uq_chain_steps_run_idx_step_item")
                .table(ChainSteps::Table)
                .col(ChainSteps::RunId)
                .col(ChainSteps::Idx)
                .col(ChainSteps::Step)
                .col(ChainSteps::Item)
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ChainSteps::Table).to_owned())
            .await
    }
}
