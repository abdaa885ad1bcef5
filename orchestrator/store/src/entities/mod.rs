//! sea-orm entities of the store, one module per table.

pub mod annotation;
pub mod baseline;
pub mod chain_step;
pub mod job;
pub mod leaderboard_latest;
pub mod metric;
pub mod run;
pub mod sample;
pub mod session;
pub mod sweep;
pub mod sweep_cell;
pub mod sweep_run_count;
pub mod user;
pub mod worker;
