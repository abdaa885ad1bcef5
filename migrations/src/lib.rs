//! Schema migrations of the nlebench store.
//!
//! One migration set serves both PostgreSQL (team mode) and SQLite (embedded default). Each
//! migration runs in one transaction with its record on both (SQLite's DDL is transactional
//! too), so one that fails half-way (a full disk) leaves nothing applied and runs again whole.
//! Result writes are made idempotent by unique constraints: a sample is unique on
//! (run, index), a metric on (run, name), a job on (run, shard), a chain step on (run, index, step,
//! item).

pub use sea_orm_migration::prelude::*;

mod m20261127_000001_init;
mod m20261127_000002_users;
mod m20261130_000003_chain_steps;
mod m20261130_000004_run_notes;
mod m20261130_000005_job_deaths;
mod m20261130_000006_session_last_seen;
mod m20261130_000007_worker_memory;
mod m20261130_000008_sweep_archive;
mod m20261130_000009_annotations;
mod m20261130_000010_leaderboard_index;
mod m20261130_000011_dashboard_aggregates;
mod m20261207_000012_examples;
mod m20261207_000013_worker_release;

/// All migrations of the store, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_init::Migration),
            Box::new(m20261127_000002_users::Migration),
            Box::new(m20261130_000003_chain_steps::Migration),
            Box::new(m20261130_000004_run_notes::Migration),
            Box::new(m20261130_000005_job_deaths::Migration),
            Box::new(m20261130_000006_session_last_seen::Migration),
            Box::new(m20261130_000007_worker_memory::Migration),
            Box::new(m20261130_000008_sweep_archive::Migration),
            Box::new(m20261130_000009_annotations::Migration),
            Box::new(m20261130_000010_leaderboard_index::Migration),
            Box::new(m20261130_000011_dashboard_aggregates::Migration),
            Box::new(m20261207_000012_examples::Migration),
            Box::new(m20261207_000013_worker_release::Migration),
        ]
    }
}
