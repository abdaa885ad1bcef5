//! Aggregates of the scores an external classifier (e.g. Perspective) gave each output, per
//! attribute: the mean, and the share of outputs scored above 0.5 (as pandas computes
//! `df[a].mean()` and `(df[a] > 0.5).mean()`), each with a bootstrap interval.

use types::MetricValue;

use super::bootstrap::Bootstrap;

/// Implementation version.
pub const VERSION: i32 = 1;

/// `metric/attribute` values for each metric name (`attribute_mean`, `attribute_share`; others
/// are ignored) and each attribute with its column of scores.
pub fn aggregate(
    metrics: &[String],
    attributes: &[String],
    columns: &[Vec<f64>],
    boot: &Bootstrap,
) -> Vec<MetricValue> {
    let mut out = Vec::new();
    for metric in metrics {
        for (attr, values) in attributes.iter().zip(columns) {
            let name = format!("{metric}/{attr}");
            match metric.as_str() {
                "attribute_mean" => out.push(boot.mean_metric(&name, values, VERSION)),
                "attribute_share" => {
                    let above: Vec<f64> = values
                        .iter()
                        .map(|&v| if v > 0.5 { 1.0 } else { 0.0 })
                        .collect();
                    out.push(boot.mean_metric(&name, &above, VERSION));
                }
                _ => {}
            }
        }
    }
    out
}
