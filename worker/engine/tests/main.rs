//! The engine's tests against transformers, PEFT and its own invariants.
//!
//! One module per area in one test binary per crate: a debug test binary links every crate
//! it uses (tens of MB), so one link instead of one per file keeps the build's disk and time
//! small. `cargo test -p nlebench-engine parity_arch::` runs one area.

mod batch_invariance;
mod continuous;
mod engine_models;
mod entailment;
mod fuzz_files;
mod loading;
mod mauve_features;
mod parity_arch;
mod parity_generate;
mod parity_gpt2;
mod parity_half;
mod parity_lora;
mod toxicity_classifier;
