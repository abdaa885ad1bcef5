//! Spec files: tasks, models and sweeps, parsed and validated with located errors.

pub mod error;
pub mod load;
pub mod model;
pub mod sweep;
pub mod task;
pub mod template;

pub use error::SpecError;
pub use model::Catalog;
pub use sweep::{AdapterRef, Decoding, ModelRef, Origin, Setting, SweepSpec};
pub use task::{
    ChainStep, DataFormat, DatasetRef, InputLimit, ListColumn, RowBound, RowRange, TaskKind,
    TaskRegistry, TaskSpec,
};
pub use template::Template;
pub use types::{Dtype, Source, SourceError};
