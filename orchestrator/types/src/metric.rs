//! A metric value as computed and stored.

use serde::Serialize;

/// One aggregate metric of a run, as computed and stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricValue {
    /// Name, e.g. `bias_paper/gender`.
    pub name: String,
    /// The value.
    pub value: f64,
    /// Lower end of the confidence interval.
    pub ci_low: Option<f64>,
    /// Upper end of the confidence interval.
    pub ci_high: Option<f64>,
    /// Number of samples behind the value.
    pub n: i64,
    /// Implementation version.
    pub version: i32,
}
