//! The worker's tests: dataset formats, dataset fuzzing, the Perspective client and lm-eval's
//! requests run as lm-eval's HFLM runs them, against its own results.
//!
//! One module per area in one test binary per crate: a debug test binary links every crate
//! it uses (tens of MB), so one link instead of one per file keeps the build's disk and time
//! small. `cargo test -p nlebench-worker dataset_formats::` runs one area.

mod dataset_formats;
mod fuzz_data;
mod lmeval_hflm;
mod perspective;
