//! The spec's tests: the shipped experiment files and fuzzed sweep and task files.
//!
//! One module per area in one test binary per crate: a debug test binary links every crate
//! it uses (tens of MB), so one link instead of one per file keeps the build's disk and time
//! small. `cargo test -p nlebench-spec experiments::` runs one area.

mod experiments;
mod fuzz_specs;
