//! The end-to-end tests: nlebench's commands against SQLite, PostgreSQL, Redis, MLflow,
//! lm-evaluation-harness and containers, and the authors' released outputs.
//!
//! One module per area in one test binary per crate: a debug test binary links every crate
//! it uses (tens of MB), so one link instead of one per file keeps the build's disk and time
//! small. `cargo test -p nlebench-tests faults::` runs one area.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

mod common;

mod admission;
mod affinity;
mod architecture;
mod backup;
mod bad_input;
mod chain;
mod chat_templates;
mod cli_engine;
mod compare;
mod compose;
mod dashboard;
mod disk_full;
mod embedded;
mod faults;
mod lmeval;
mod lmeval_sweeps;
mod lmeval_tasks;
mod mlflow;
mod model_metrics;
mod perspective;
mod prometheus;
mod queue_scale;
mod released_outputs;
mod releases;
mod report;
mod score_metrics;
mod soak;
mod store_pool;
mod task_files;
mod team_mode;
mod text_metrics;
mod toxicity;
mod upgrade;
