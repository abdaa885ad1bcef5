//! What nlebench's users write, read and checked before anything is stored: sweep, task and
//! model files with errors located by file, line and key; prompt templates; the grid of cells
//! a sweep expands to; and the run manifest whose hash is a cell's fingerprint.
//!
//! Models and datasets are identified through the [`resolve::Resolver`] trait, which the
//! worker implements: this crate never opens a model or a dataset itself.

pub mod error;
pub mod eval;
pub mod examples;
pub mod grid;
pub mod load;
pub mod manifest;
pub mod memory;
pub mod model;
pub mod resolve;
pub mod sweep;
pub mod task;
pub mod template;

pub use error::SpecError;
pub use model::Catalog;
pub use sweep::{AdapterRef, Decoding, ModelRef, Origin, Setting, SweepSpec};
pub use task::{
    ChainStep, DataFormat, DatasetRef, InputLimit, ListColumn, LmEvalTask, LmEvalTasks, RowBound,
    RowRange, TaskKind, TaskRegistry, TaskSpec,
};
pub use template::Template;
pub use types::{Dtype, Source, SourceError};
