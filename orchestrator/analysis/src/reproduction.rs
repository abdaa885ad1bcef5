//! The reproduction report of a sweep: every stored value that has a baseline (same task,
//! model and metric name, whatever the setting is called), the baseline with what it was
//! computed on, the difference and a verdict with its evidence. Metrics are matched by name
//! only: a baseline of the opposite direction convention (e.g. `bias_standard` for
//! `bias_paper`) is never flipped.
//!
//! A value **reproduces** its baseline only when the run measured the baseline's examples
//! (trained weights, the same examples identity, the same n) and the evidence is tight:
//! either the two numbers agree within the tolerance (the same examples, so the same outputs
//! give the same number), or an equivalence test against the metric's margin passes (TOST at
//! 5 %: the value's 90 % interval lies within baseline ± margin). It **differs** when the
//! baseline lies outside the value's 95 % interval, or the whole 90 % interval lies beyond the
//! margin. Anything else is **inconclusive**, with the reason: random weights, other or
//! unknown examples, another n, or an interval wider than the margin.

use std::collections::BTreeMap;

use serde::Serialize;

use spec::examples::short;
use store::RunStatus;
use store::dashboard::SweepData;
use store::entities::{baseline, metric, run};

/// How values are judged, in a sentence for the report's readers.
pub const RULE: &str = "Reproduced: the run measured the baseline's examples (trained weights, the same examples, the same n) and either agrees with it within the tolerance or is equivalent within the metric's margin (TOST at 5 %: its 90 % interval inside baseline ± margin). Differs: the baseline lies outside the value's 95 % interval, or beyond the margin. Inconclusive: anything else, with the reason. Metrics are matched by name, never flipped. Not measured: the run has no such value.";

/// Default tolerance: a value within 1e-4 · max(|baseline|, 1) of its baseline agrees.
pub const DEFAULT_TOLERANCE: f64 = 1e-4;

/// z of a two-sided 95 % interval and of a two-sided 90 % one (TOST at 5 %).
const Z95: f64 = 1.959_963_984_540_054;
const Z90: f64 = 1.644_853_626_951_472_2;

/// What a row says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The run measured the baseline's examples and agrees within the tolerance, or is
    /// equivalent within the margin.
    Reproduced,
    /// The baseline lies outside the value's 95 % interval, or beyond the margin.
    Differs,
    /// The evidence cannot tell: the reason says why.
    Inconclusive,
    /// A finished run of the cell does not have this metric (e.g. no example of that bias
    /// type among the examples it ran).
    NotMeasured,
    /// No run of the cell has finished yet.
    NoRun,
}

impl Verdict {
    /// The word shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Reproduced => "reproduced",
            Verdict::Differs => "differs",
            Verdict::Inconclusive => "inconclusive",
            Verdict::NotMeasured => "not measured",
            Verdict::NoRun => "no run yet",
        }
    }
}

/// One value against its baseline.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Task name.
    pub task: String,
    /// Model name.
    pub model: String,
    /// Adapter name, empty for none.
    pub adapter: String,
    /// Setting name of the run (empty without a run).
    pub setting: String,
    /// The run, if one finished.
    pub run_id: Option<i64>,
    /// Metric name.
    pub metric: String,
    /// The run's value.
    pub value: Option<f64>,
    /// Its 95 % interval.
    pub ci_low: Option<f64>,
    /// Its 95 % interval.
    pub ci_high: Option<f64>,
    /// Examples behind the run's value.
    pub n: Option<i64>,
    /// The run's examples identity (short).
    pub examples: Option<String>,
    /// The run has random weights.
    pub random_weights: bool,
    /// The baseline value.
    pub baseline: f64,
    /// Examples behind the baseline, when recorded.
    pub baseline_n: Option<i64>,
    /// The baseline's examples identity (short), when recorded.
    pub baseline_examples: Option<String>,
    /// The baseline's setting as recorded.
    pub baseline_setting: String,
    /// Where the baseline comes from.
    pub source: String,
    /// Its provenance: the file and the command that recomputed it.
    pub provenance: String,
    /// The equivalence margin used, in the metric's unit.
    pub margin: Option<f64>,
    /// value − baseline.
    pub delta: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
    /// Its evidence ("same 1677 examples, Δ within tolerance") or reason ("random weights").
    pub reason: String,
}

/// Counts of verdicts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Task name, or `overall`.
    pub scope: String,
    /// Values reproduced.
    pub reproduced: usize,
    /// Values that differ.
    pub differs: usize,
    /// Values the evidence cannot decide.
    pub inconclusive: usize,
    /// Baselines a finished run has no value for.
    pub not_measured: usize,
    /// Baselines without a finished run.
    pub no_run: usize,
}

impl Summary {
    /// Values compared or waiting.
    pub fn total(&self) -> usize {
        self.reproduced + self.differs + self.inconclusive + self.not_measured + self.no_run
    }

    /// "overall: 2 of 22 values reproduced, 1 differs, 19 inconclusive, 0 not measured, 0
    /// without a run yet".
    pub fn line(&self) -> String {
        format!(
            "{}: {} of {} values reproduced, {} differ, {} inconclusive, {} not measured by the run, {} without a run yet",
            self.scope,
            self.reproduced,
            self.total(),
            self.differs,
            self.inconclusive,
            self.not_measured,
            self.no_run
        )
    }

    fn add(&mut self, v: Verdict) {
        match v {
            Verdict::Reproduced => self.reproduced += 1,
            Verdict::Differs => self.differs += 1,
            Verdict::Inconclusive => self.inconclusive += 1,
            Verdict::NotMeasured => self.not_measured += 1,
            Verdict::NoRun => self.no_run += 1,
        }
    }
}

/// How values are judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// Agreement: |Δ| ≤ tolerance · max(|baseline|, 1).
    pub tolerance: f64,
    /// An equivalence margin for every metric, instead of the task files' `[margins]`.
    pub margin: Option<f64>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            tolerance: DEFAULT_TOLERANCE,
            margin: None,
        }
    }
}

/// The report of one sweep.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Sweep name.
    pub sweep: String,
    /// The tolerance used.
    pub tolerance: f64,
    /// The margin given for every metric, if one was.
    pub margin: Option<f64>,
    /// One row per value with a baseline.
    pub rows: Vec<Row>,
    /// Counts per task.
    pub per_task: Vec<Summary>,
    /// Counts over all tasks.
    pub overall: Summary,
    /// lm-eval prompt variants' best value and mean per cell (shown, not judged: a baseline
    /// names one task).
    pub variants: Vec<crate::variants::VariantSummary>,
}

/// What a value is judged on besides its own numbers.
struct Evidence<'a> {
    run: &'a run::Model,
    metric: &'a metric::Model,
    baseline: &'a baseline::Model,
    margin: Option<f64>,
}

/// The verdict on `e.metric` against `e.baseline`, and its evidence or reason.
fn judge(e: &Evidence, tolerance: f64) -> (Verdict, String) {
    let (m, b) = (e.metric, e.baseline);
    let mut reasons = Vec::new();
    if e.run.random_weights {
        reasons.push("random weights".to_string());
    }
    match (b.examples.as_deref(), e.run.examples_id.as_deref()) {
        (None, _) => reasons.push("the baseline's examples are not recorded".into()),
        (Some(_), None) => reasons.push("the run's examples are not known yet".into()),
        (Some(want), Some(got)) if want != got => {
            reasons.push(format!(
                "other examples (dataset replaced: {} vs the baseline's {})",
                short(got),
                short(want)
            ));
        }
        _ => {}
    }
    match b.n {
        Some(n) if n != m.n => reasons.push(format!("n = {} of {}", m.n, n)),
        None => reasons.push("the baseline's n is not recorded".into()),
        _ => {}
    }
    let fmt = |v: f64| metrics::format_value(&m.name, v);
    if !reasons.is_empty() {
        // Say too when the evidence would be too wide even on the right examples.
        if let (Some(lo), Some(hi), Some(margin)) = (m.ci_low, m.ci_high, e.margin) {
            let half = (hi - lo) / 2.0;
            if half > margin {
                reasons.push(format!("interval ±{} > margin {}", fmt(half), fmt(margin)));
            }
        }
        return (Verdict::Inconclusive, reasons.join("; "));
    }
    let delta = m.value - b.value;
    if delta.abs() <= tolerance * b.value.abs().max(1.0) {
        return (
            Verdict::Reproduced,
            format!(
                "the same {} examples; Δ within the tolerance {tolerance}",
                m.n
            ),
        );
    }
    let (Some(lo), Some(hi)) = (m.ci_low, m.ci_high) else {
        return (
            Verdict::Inconclusive,
            format!("Δ {} and no interval to judge it by", fmt(delta)),
        );
    };
    if b.value < lo || b.value > hi {
        return (
            Verdict::Differs,
            format!(
                "the baseline lies outside the 95 % interval [{}, {}]",
                fmt(lo),
                fmt(hi)
            ),
        );
    }
    let Some(margin) = e.margin else {
        return (
            Verdict::Inconclusive,
            format!(
                "no equivalence margin for {} (set [margins] in the task file or --margin)",
                m.name
            ),
        );
    };
    // The 90 % interval of TOST at 5 %, from the stored 95 % percentile interval.
    let (lo90, hi90) = (
        m.value - (m.value - lo) * Z90 / Z95,
        m.value + (hi - m.value) * Z90 / Z95,
    );
    if b.value - margin <= lo90 && hi90 <= b.value + margin {
        return (
            Verdict::Reproduced,
            format!(
                "equivalent within ±{} (TOST at 5 %: 90 % interval [{}, {}])",
                fmt(margin),
                fmt(lo90),
                fmt(hi90)
            ),
        );
    }
    if lo90 > b.value + margin || hi90 < b.value - margin {
        return (
            Verdict::Differs,
            format!("beyond the margin ±{}", fmt(margin)),
        );
    }
    let half = (hi - lo) / 2.0;
    (
        Verdict::Inconclusive,
        format!("interval ±{} > margin {}", fmt(half), fmt(margin)),
    )
}

/// The report of a sweep's stored runs against every baseline of its (task, model) pairs.
/// A value's margin is `rules.margin`, else its task file's `[margins]` entry as the run
/// recorded it in its manifest (a group such as `bias_paper/gender` takes its metric's).
pub fn build(data: &SweepData, rules: Rules) -> Report {
    let mut by_run: BTreeMap<i64, Vec<&metric::Model>> = BTreeMap::new();
    for m in &data.metrics {
        by_run.entry(m.run_id).or_default().push(m);
    }
    // (task, model) pairs of the sweep, in cell order.
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for c in &data.runs {
        let p = (c.run.task_name.as_str(), c.run.model_name.as_str());
        if !pairs.contains(&p) {
            pairs.push(p);
        }
    }
    let margins: BTreeMap<i64, BTreeMap<String, f64>> = data
        .runs
        .iter()
        .filter_map(|c| Some((c.run.id, c.run.manifest().ok()?.task.margins)))
        .collect();
    let margin_of = |run: Option<&run::Model>, metric: &str| {
        rules.margin.or_else(|| {
            let base = metric.split('/').next().unwrap_or(metric);
            margins.get(&run?.id)?.get(base).copied()
        })
    };
    let mut rows = Vec::new();
    for (task, model) in pairs {
        let baselines = data
            .baselines
            .iter()
            .filter(|b| b.task == task && b.model.eq_ignore_ascii_case(model));
        let runs: Vec<_> = data
            .runs
            .iter()
            .filter(|c| {
                c.run.task_name == task
                    && c.run.model_name == model
                    && c.run.status == RunStatus::Done
            })
            .collect();
        for b in baselines {
            let row = |run: Option<&run::Model>| Row {
                task: task.to_string(),
                model: model.to_string(),
                adapter: run.and_then(|r| r.adapter_name.clone()).unwrap_or_default(),
                setting: run.map(|r| r.setting_name.clone()).unwrap_or_default(),
                run_id: run.map(|r| r.id),
                metric: b.metric.clone(),
                value: None,
                ci_low: None,
                ci_high: None,
                n: None,
                examples: run
                    .and_then(|r| r.examples_id.as_deref())
                    .map(|e| short(e).to_string()),
                random_weights: run.is_some_and(|r| r.random_weights),
                baseline: b.value,
                baseline_n: b.n,
                baseline_examples: b.examples.as_deref().map(|e| short(e).to_string()),
                baseline_setting: b.setting.clone(),
                source: b.source.clone(),
                provenance: b.note.clone().unwrap_or_default(),
                margin: margin_of(run, &b.metric),
                delta: None,
                verdict: Verdict::NoRun,
                reason: "no finished run of this task and model".into(),
            };
            for c in &runs {
                let Some(m) = by_run
                    .get(&c.run.id)
                    .and_then(|ms| ms.iter().find(|m| m.name == b.metric))
                else {
                    rows.push(Row {
                        verdict: Verdict::NotMeasured,
                        reason: "the run has no such value".into(),
                        ..row(Some(&c.run))
                    });
                    continue;
                };
                let evidence = Evidence {
                    run: &c.run,
                    metric: m,
                    baseline: b,
                    margin: margin_of(Some(&c.run), &b.metric),
                };
                let (verdict, reason) = judge(&evidence, rules.tolerance);
                rows.push(Row {
                    value: Some(m.value),
                    ci_low: m.ci_low,
                    ci_high: m.ci_high,
                    n: Some(m.n),
                    delta: Some(m.value - b.value),
                    verdict,
                    reason,
                    ..row(Some(&c.run))
                });
            }
            if runs.is_empty() {
                rows.push(row(None));
            }
        }
    }
    let mut per_task: BTreeMap<&str, Summary> = BTreeMap::new();
    let mut overall = Summary {
        scope: "overall".into(),
        ..Summary::default()
    };
    for r in &rows {
        per_task
            .entry(&r.task)
            .or_insert_with(|| Summary {
                scope: r.task.clone(),
                ..Summary::default()
            })
            .add(r.verdict);
        overall.add(r.verdict);
    }
    let variants = crate::variants::summaries(data.runs.iter().map(|c| {
        let metrics = by_run.get(&c.run.id).cloned().unwrap_or_default();
        (&c.run, metrics)
    }));
    Report {
        sweep: data.sweep.name.clone(),
        tolerance: rules.tolerance,
        margin: rules.margin,
        per_task: per_task.into_values().collect(),
        overall,
        rows,
        variants,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(random: bool, examples: Option<&str>) -> run::Model {
        run::Model {
            id: 1,
            fingerprint: String::new(),
            model_name: "m".into(),
            model_source: String::new(),
            model_revision: None,
            adapter_name: None,
            adapter_source: None,
            task_name: "t".into(),
            task_version: 1,
            setting_name: "s".into(),
            seed: 0,
            sample_limit: None,
            manifest: String::new(),
            source: "engine".into(),
            status: RunStatus::Done,
            n_expected: 100,
            dataset_rows: Some(100),
            examples_id: examples.map(str::to_string),
            random_weights: random,
            error: None,
            notes: None,
            worker: None,
            attempts: 1,
            created_at: chrono::Utc::now(),
            started_at: None,
            finished_at: None,
        }
    }

    fn value(v: f64, half: f64, n: i64) -> metric::Model {
        metric::Model {
            id: 1,
            run_id: 1,
            name: "bias_paper".into(),
            value: v,
            ci_low: Some(v - half),
            ci_high: Some(v + half),
            n,
            version: 1,
            created_at: chrono::Utc::now(),
        }
    }

    fn base(v: f64, n: Option<i64>, examples: Option<&str>) -> baseline::Model {
        baseline::Model {
            id: 1,
            task: "t".into(),
            model: "m".into(),
            setting: String::new(),
            metric: "bias_paper".into(),
            value: v,
            n,
            examples: examples.map(str::to_string),
            source: "paper".into(),
            note: None,
            created_at: chrono::Utc::now(),
        }
    }

    fn verdict(
        r: &run::Model,
        m: &metric::Model,
        b: &baseline::Model,
        margin: Option<f64>,
    ) -> (Verdict, String) {
        judge(
            &Evidence {
                run: r,
                metric: m,
                baseline: b,
                margin,
            },
            DEFAULT_TOLERANCE,
        )
    }

    #[test]
    fn noise_is_never_reproduced() {
        // A random model on 32 practice pairs, its interval wide enough to hold the paper's
        // number: inconclusive, with every reason.
        let (v, why) = verdict(
            &run(true, Some("practice")),
            &value(47.0, 18.0, 32),
            &base(47.1, Some(1677), Some("released")),
            Some(2.0),
        );
        assert_eq!(v, Verdict::Inconclusive);
        assert!(
            why.contains("random weights")
                && why.contains("n = 32 of 1677")
                && why.contains("dataset replaced"),
            "{why}"
        );
        let (v, why) = verdict(
            &run(false, Some("e")),
            &value(47.1, 2.0, 1677),
            &base(47.1, None, None),
            Some(2.0),
        );
        assert_eq!(v, Verdict::Inconclusive);
        assert!(why.contains("not recorded"), "{why}");
    }

    #[test]
    fn the_same_examples_reproduce_exactly_equivalently_or_differ() {
        let (r, b) = (
            run(false, Some("e")),
            base(47.107931, Some(1677), Some("e")),
        );
        let (v, why) = verdict(&r, &value(47.10793083, 2.4, 1677), &b, Some(2.0));
        assert_eq!(v, Verdict::Reproduced, "{why}");
        assert!(why.contains("the same 1677 examples"), "{why}");
        // Within the margin with a tight interval: equivalent.
        let (v, why) = verdict(&r, &value(47.5, 0.5, 1677), &b, Some(2.0));
        assert_eq!(v, Verdict::Reproduced, "{why}");
        assert!(why.contains("TOST"), "{why}");
        // The baseline outside the 95 % interval.
        let (v, _) = verdict(&r, &value(50.7, 2.4, 1677), &b, Some(2.0));
        assert_eq!(v, Verdict::Differs);
        // An interval wider than the margin around a small difference.
        let (v, why) = verdict(&r, &value(48.5, 18.0, 1677), &b, Some(2.0));
        assert_eq!(v, Verdict::Inconclusive);
        assert!(why.starts_with("interval ±18.00 > margin 2.00"), "{why}");
        // No margin: a difference inside the interval cannot be judged.
        let (v, why) = verdict(&r, &value(48.5, 2.4, 1677), &b, None);
        assert_eq!(v, Verdict::Inconclusive);
        assert!(why.contains("no equivalence margin"), "{why}");
    }
}
