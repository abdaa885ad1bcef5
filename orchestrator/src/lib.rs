//! The nlebench orchestrator: submitting a sweep (plan the grid against the store, queue the
//! new cells' jobs), the queue (apalis over Redis or SQLite), the job runner with its retry
//! policy, the reconciler, memory admission, configuration and the workers' telemetry.
//!
//! It never touches candle or axum: models and datasets are resolved through
//! [`spec::resolve::Resolver`], and jobs are computed through the [`runner::JobHandler`]
//! trait, both implemented by the worker crate; the [`runner::Runner`] owns a job's states and
//! its retries.

pub mod admission;
pub mod config;
pub mod queue;
pub mod reconcile;
pub mod runner;
pub mod submit;
pub mod telemetry;
