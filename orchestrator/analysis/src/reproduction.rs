//! The reproduction report of a sweep: every stored value that has a baseline (same task,
//! model and metric name, whatever the setting is called), the baseline with its provenance,
//! the difference and a verdict. Metrics are matched by name only: a baseline of the
//! opposite direction convention (e.g. `bias_standard` for `bias_paper`) is never flipped.

use std::collections::BTreeMap;

use serde::Serialize;

use store::RunStatus;
use store::dashboard::SweepData;
use store::entities::{baseline, metric};

/// Default tolerance: a value within 1e-4 · max(|baseline|, 1) of its baseline is reproduced.
pub const DEFAULT_TOLERANCE: f64 = 1e-4;

/// What a row says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The baseline is inside the value's 95 % interval, or within the tolerance.
    Reproduced,
    /// Neither.
    Differs,
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
    /// The baseline value.
    pub baseline: f64,
    /// The baseline's setting as recorded.
    pub baseline_setting: String,
    /// Where the baseline comes from.
    pub source: String,
    /// Its provenance: the file and the command that recomputed it.
    pub provenance: String,
    /// value − baseline.
    pub delta: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
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
    /// Baselines a finished run has no value for.
    pub not_measured: usize,
    /// Baselines without a finished run.
    pub no_run: usize,
}

impl Summary {
    /// Values compared or waiting.
    pub fn total(&self) -> usize {
        self.reproduced + self.differs + self.not_measured + self.no_run
    }

    /// "31 of 40 values reproduced (5 differ, 0 not measured, 4 without a run yet)".
    pub fn line(&self) -> String {
        format!(
            "{}: {} of {} values reproduced ({} differ, {} not measured by the run, {} without a run yet)",
            self.scope,
            self.reproduced,
            self.total(),
            self.differs,
            self.not_measured,
            self.no_run
        )
    }

    fn add(&mut self, v: Verdict) {
        match v {
            Verdict::Reproduced => self.reproduced += 1,
            Verdict::Differs => self.differs += 1,
            Verdict::NotMeasured => self.not_measured += 1,
            Verdict::NoRun => self.no_run += 1,
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
    /// One row per value with a baseline.
    pub rows: Vec<Row>,
    /// Counts per task.
    pub per_task: Vec<Summary>,
    /// Counts over all tasks.
    pub overall: Summary,
}

/// The verdict on `value` (with its interval) against `baseline`.
pub fn verdict(m: &metric::Model, baseline: f64, tolerance: f64) -> Verdict {
    let inside =
        matches!((m.ci_low, m.ci_high), (Some(lo), Some(hi)) if lo <= baseline && baseline <= hi);
    if inside || (m.value - baseline).abs() <= tolerance * baseline.abs().max(1.0) {
        Verdict::Reproduced
    } else {
        Verdict::Differs
    }
}

/// The report of a sweep's stored runs against every baseline of its (task, model) pairs.
pub fn build(data: &SweepData, tolerance: f64) -> Report {
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
    let mut rows = Vec::new();
    for (task, model) in pairs {
        let baselines: Vec<&baseline::Model> = data
            .baselines
            .iter()
            .filter(|b| b.task == task && b.model.eq_ignore_ascii_case(model))
            .collect();
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
            let row = |adapter: String, setting: String| Row {
                task: task.to_string(),
                model: model.to_string(),
                adapter,
                setting,
                run_id: None,
                metric: b.metric.clone(),
                value: None,
                ci_low: None,
                ci_high: None,
                baseline: b.value,
                baseline_setting: b.setting.clone(),
                source: b.source.clone(),
                provenance: b.note.clone().unwrap_or_default(),
                delta: None,
                verdict: Verdict::NoRun,
            };
            for c in &runs {
                let here = || {
                    row(
                        c.run.adapter_name.clone().unwrap_or_default(),
                        c.run.setting_name.clone(),
                    )
                };
                let Some(m) = by_run
                    .get(&c.run.id)
                    .and_then(|ms| ms.iter().find(|m| m.name == b.metric))
                else {
                    rows.push(Row {
                        run_id: Some(c.run.id),
                        verdict: Verdict::NotMeasured,
                        ..here()
                    });
                    continue;
                };
                rows.push(Row {
                    run_id: Some(c.run.id),
                    value: Some(m.value),
                    ci_low: m.ci_low,
                    ci_high: m.ci_high,
                    delta: Some(m.value - b.value),
                    verdict: verdict(m, b.value, tolerance),
                    ..here()
                });
            }
            if runs.is_empty() {
                rows.push(row(String::new(), String::new()));
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
    Report {
        sweep: data.sweep.name.clone(),
        tolerance,
        per_task: per_task.into_values().collect(),
        overall,
        rows,
    }
}
