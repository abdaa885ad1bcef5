//! The nlebench worker: the job handler, the candle inference engine, NLEBench task kinds,
//! paper-faithful metrics and dataset loaders.

pub mod data;
pub mod engine;
pub mod handler;
pub mod metrics;
pub mod resolver;
pub mod runlog;
pub mod tasks;

pub use engine::ENGINE_VERSION;
