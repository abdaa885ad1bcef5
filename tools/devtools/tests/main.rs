//! The development tools' tests: the dashboard's aggregates and queries, and the GPU check's tools.
//!
//! One module per area in one test binary per crate: a debug test binary links every crate
//! it uses (tens of MB), so one link instead of one per file keeps the build's disk and time
//! small. `cargo test -p nlebench-devtools queries::` runs one area.

mod aggregates;
mod gpu_tools;
mod queries;
