//! The initial schema: sweeps, runs, sweep cells, jobs, samples, metrics, workers, baselines.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Sweeps {
    Table,
    Id,
    Name,
    Owner,
    Description,
    SpecPath,
    Spec,
    Priority,
    ShardSize,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    Id,
    Fingerprint,
    ModelName,
    ModelSource,
    ModelRevision,
    AdapterName,
    AdapterSource,
    TaskName,
    TaskVersion,
    SettingName,
    Seed,
    SampleLimit,
    Manifest,
    Source,
    Status,
    NExpected,
    RandomWeights,
    Error,
    Worker,
    Attempts,
    CreatedAt,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum SweepCells {
    Table,
    Id,
    SweepId,
    CellKey,
    RunId,
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    RunId,
    Shard,
    StartIdx,
    EndIdx,
    Status,
    Attempts,
    Worker,
    Error,
    EnqueuedAt,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum Samples {
    Table,
    Id,
    RunId,
    Idx,
    Shard,
    Prompt,
    Output,
    Reference,
    Data,
    Worker,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Metrics {
    Table,
    Id,
    RunId,
    Name,
    Value,
    CiLow,
    CiHigh,
    N,
    Version,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Workers {
    Table,
    Id,
    Name,
    Host,
    Pid,
    Device,
    Queue,
    Status,
    CurrentJob,
    JobsDone,
    StartedAt,
    LastHeartbeat,
}

#[derive(DeriveIden)]
enum Baselines {
    Table,
    Id,
    Task,
    Model,
    Setting,
    Metric,
    Value,
    Source,
    Note,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Sweeps::Table)
                .if_not_exists()
                .col(big_pk_auto(Sweeps::Id))
                .col(string_uniq(Sweeps::Name))
                .col(string_null(Sweeps::Owner))
                .col(text_null(Sweeps::Description))
                .col(string(Sweeps::SpecPath))
                .col(text(Sweeps::Spec))
                .col(integer(Sweeps::Priority))
                .col(big_integer(Sweeps::ShardSize))
                .col(timestamp_with_time_zone(Sweeps::CreatedAt))
                .col(timestamp_with_time_zone(Sweeps::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Runs::Table)
                .if_not_exists()
                .col(big_pk_auto(Runs::Id))
                .col(string(Runs::Fingerprint))
                .col(string(Runs::ModelName))
                .col(string(Runs::ModelSource))
                .col(string_null(Runs::ModelRevision))
                .col(string_null(Runs::AdapterName))
                .col(string_null(Runs::AdapterSource))
                .col(string(Runs::TaskName))
                .col(integer(Runs::TaskVersion))
                .col(string(Runs::SettingName))
                .col(big_integer(Runs::Seed))
                .col(big_integer_null(Runs::SampleLimit))
                .col(text(Runs::Manifest))
                .col(string(Runs::Source))
                .col(string(Runs::Status))
                .col(big_integer(Runs::NExpected))
                .col(boolean(Runs::RandomWeights))
                .col(text_null(Runs::Error))
                .col(string_null(Runs::Worker))
                .col(integer(Runs::Attempts))
                .col(timestamp_with_time_zone(Runs::CreatedAt))
                .col(timestamp_with_time_zone_null(Runs::StartedAt))
                .col(timestamp_with_time_zone_null(Runs::FinishedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_runs_fingerprint")
                .table(Runs::Table)
                .col(Runs::Fingerprint)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_runs_status")
                .table(Runs::Table)
                .col(Runs::Status)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(SweepCells::Table)
                .if_not_exists()
                .col(big_pk_auto(SweepCells::Id))
                .col(big_integer(SweepCells::SweepId))
                .col(string(SweepCells::CellKey))
                .col(big_integer(SweepCells::RunId))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_sweep_cells_sweep")
                        .from(SweepCells::Table, SweepCells::SweepId)
                        .to(Sweeps::Table, Sweeps::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_sweep_cells_run")
                        .from(SweepCells::Table, SweepCells::RunId)
                        .to(Runs::Table, Runs::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uq_sweep_cells_key")
                .table(SweepCells::Table)
                .col(SweepCells::SweepId)
                .col(SweepCells::CellKey)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_sweep_cells_run")
                .table(SweepCells::Table)
                .col(SweepCells::RunId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Jobs::Table)
                .if_not_exists()
                .col(big_pk_auto(Jobs::Id))
                .col(big_integer(Jobs::RunId))
                .col(integer(Jobs::Shard))
                .col(big_integer(Jobs::StartIdx))
                .col(big_integer(Jobs::EndIdx))
                .col(string(Jobs::Status))
                .col(integer(Jobs::Attempts))
                .col(string_null(Jobs::Worker))
                .col(text_null(Jobs::Error))
                .col(timestamp_with_time_zone_null(Jobs::EnqueuedAt))
                .col(timestamp_with_time_zone_null(Jobs::StartedAt))
                .col(timestamp_with_time_zone_null(Jobs::FinishedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_jobs_run")
                        .from(Jobs::Table, Jobs::RunId)
                        .to(Runs::Table, Runs::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uq_jobs_run_shard")
                .table(Jobs::Table)
                .col(Jobs::RunId)
                .col(Jobs::Shard)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Samples::Table)
                .if_not_exists()
                .col(big_pk_auto(Samples::Id))
                .col(big_integer(Samples::RunId))
                .col(big_integer(Samples::Idx))
                .col(integer(Samples::Shard))
                .col(text(Samples::Prompt))
                .col(text_null(Samples::Output))
                .col(text_null(Samples::Reference))
                .col(text(Samples::Data))
                .col(string_null(Samples::Worker))
                .col(timestamp_with_time_zone(Samples::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_samples_run")
                        .from(Samples::Table, Samples::RunId)
                        .to(Runs::Table, Runs::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uq_samples_run_idx")
                .table(Samples::Table)
                .col(Samples::RunId)
                .col(Samples::Idx)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Metrics::Table)
                .if_not_exists()
                .col(big_pk_auto(Metrics::Id))
                .col(big_integer(Metrics::RunId))
                .col(string(Metrics::Name))
                .col(double(Metrics::Value))
                .col(double_null(Metrics::CiLow))
                .col(double_null(Metrics::CiHigh))
                .col(big_integer(Metrics::N))
                .col(integer(Metrics::Version))
                .col(timestamp_with_time_zone(Metrics::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_metrics_run")
                        .from(Metrics::Table, Metrics::RunId)
                        .to(Runs::Table, Runs::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uq_metrics_run_name")
                .table(Metrics::Table)
                .col(Metrics::RunId)
                .col(Metrics::Name)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Workers::Table)
                .if_not_exists()
                .col(big_pk_auto(Workers::Id))
                .col(string_uniq(Workers::Name))
                .col(string(Workers::Host))
                .col(big_integer(Workers::Pid))
                .col(string(Workers::Device))
                .col(string(Workers::Queue))
                .col(string(Workers::Status))
                .col(big_integer_null(Workers::CurrentJob))
                .col(big_integer(Workers::JobsDone))
                .col(timestamp_with_time_zone(Workers::StartedAt))
                .col(timestamp_with_time_zone(Workers::LastHeartbeat))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Baselines::Table)
                .if_not_exists()
                .col(big_pk_auto(Baselines::Id))
                .col(string(Baselines::Task))
                .col(string(Baselines::Model))
                .col(string(Baselines::Setting))
                .col(string(Baselines::Metric))
                .col(double(Baselines::Value))
                .col(string(Baselines::Source))
                .col(text_null(Baselines::Note))
                .col(timestamp_with_time_zone(Baselines::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uq_baselines_row")
                .table(Baselines::Table)
                .col(Baselines::Task)
                .col(Baselines::Model)
                .col(Baselines::Setting)
                .col(Baselines::Metric)
                .col(Baselines::Source)
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            Baselines::Table.into_iden(),
            Workers::Table.into_iden(),
            Metrics::Table.into_iden(),
            Samples::Table.into_iden(),
            Jobs::Table.into_iden(),
            SweepCells::Table.into_iden(),
            Runs::Table.into_iden(),
            Sweeps::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
