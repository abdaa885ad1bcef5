//! The nlebench worker: NLEBench task kinds, dataset loaders and the job handler that runs
//! them with the engine (`nlebench-engine`) and scores them with the metrics
//! (`nlebench-metrics`).

pub mod data;
pub mod handler;
mod hooks;
pub mod import;
pub mod lifecycle;
pub mod metric_models;
pub mod perspective;
pub mod resolver;
pub mod runlog;
pub mod tasks;

pub use hooks::{BeforeJob, Hooks};
