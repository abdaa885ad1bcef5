//! `annotations`: what people say about sweeps and runs. A tag (`kind = 'tag'`: one word,
//! once per sweep or run) or a note (`kind = 'note'`: free text, with its author and time, in
//! the order written). Each row names a sweep or a run and goes with it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Annotations {
    Table,
    Id,
    SweepId,
    RunId,
    Kind,
    Text,
    Author,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Sweeps {
    Table,
    Id,
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
                .table(Annotations::Table)
                .if_not_exists()
                .col(big_pk_auto(Annotations::Id))
                .col(big_integer_null(Annotations::SweepId))
                .col(big_integer_null(Annotations::RunId))
                .col(string(Annotations::Kind))
                .col(text(Annotations::Text))
                .col(string_null(Annotations::Author))
                .col(timestamp_with_time_zone(Annotations::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_annotations_sweep")
                        .from(Annotations::Table, Annotations::SweepId)
                        .to(Sweeps::Table, Sweeps::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_annotations_run")
                        .from(Annotations::Table, Annotations::RunId)
                        .to(Runs::Table, Runs::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        for (name, col) in [
            ("ix_annotations_sweep", Annotations::SweepId),
            ("ix_annotations_run", Annotations::RunId),
        ] {
            m.create_index(
                Index::create()
                    .name(name)
                    .table(Annotations::Table)
                    .col(col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Annotations::Table).to_owned())
            .await
    }
}
