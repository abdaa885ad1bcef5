//! How numbers, intervals, deltas, durations and colours are written on the pages.

use chrono::{DateTime, Utc};
use store::entities::{baseline, metric};

/// A metric value with its interval in the metric's decimals: `0.4711 [0.4502, 0.4920]`,
/// `47.11 [44.72, 49.50]` (percentages and BLEU with 2, scores in 0–1 with 4).
pub fn value_ci(m: &metric::Model) -> String {
    let f = |v: f64| metrics::format_value(&m.name, v);
    match (m.ci_low, m.ci_high) {
        (Some(lo), Some(hi)) => format!("{} [{}, {}]", f(m.value), f(lo), f(hi)),
        _ => f(m.value),
    }
}

/// A signed difference of metric `name` in its decimals: `+0.0123`, `-2.41`.
pub fn metric_delta(name: &str, v: f64) -> String {
    let s = metrics::format_value(name, v);
    if v > 0.0 { format!("+{s}") } else { s }
}

/// Four significant decimals for values below 10, two above.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v.abs() >= 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// The baseline of `metric` for `task` and `model` (model names compared case-insensitively).
pub fn baseline_for<'a>(
    baselines: &'a [baseline::Model],
    task: &str,
    model: &str,
    metric: &str,
) -> Option<&'a baseline::Model> {
    baselines
        .iter()
        .find(|b| b.task == task && b.metric == metric && b.model.eq_ignore_ascii_case(model))
}

/// `2026-11-27 10:38`.
pub fn time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

/// `1 h 02 min`, `3 min 05 s`, `12 s`.
pub fn duration(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h} h {m:02} min")
    } else if m > 0 {
        format!("{m} min {s:02} s")
    } else {
        format!("{s} s")
    }
}
