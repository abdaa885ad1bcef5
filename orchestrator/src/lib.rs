//! The nlebench orchestrator: sweep, task and model specs and their validation, grid
//! expansion, fingerprints, the store (sea-orm over PostgreSQL or SQLite) and the job queue
//! (apalis over Redis or SQLite).
//!
//! It never touches candle or axum: models and datasets are resolved through the
//! [`resolve::Resolver`] trait, and jobs are computed through the [`runner::JobHandler`]
//! trait, both implemented by the worker crate; the [`runner::Runner`] owns a job's states and
//! its retries.

pub mod admission;
pub mod compare;
pub mod config;
pub mod grid;
pub mod manifest;
pub mod queue;
pub mod reconcile;
pub mod reproduction;
pub mod resolve;
pub mod runner;
pub mod spec;
pub mod store;
pub mod submit;
pub mod telemetry;
