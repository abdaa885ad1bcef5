//! The metrics' tests against scikit-learn, mauve-text and the significance references.
//!
//! One module per area in one test binary per crate: a debug test binary links every crate
//! it uses (tens of MB), so one link instead of one per file keeps the build's disk and time
//! small. `cargo test -p nlebench-metrics mauve::` runs one area.

mod classification;
mod mauve;
mod significance;
