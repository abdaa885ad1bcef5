//! Prompt variants summarised as NorEval reports them: lm-eval tasks named as NorEval names
//! its prompts (`norcommonsenseqa_nob_p0` … `_p4`, under the tag `norcommonsenseqa_nob`)
//! give, per model, adapter, setting and seed, each metric's best value over the variants
//! (the maximum where higher is better, as for all of NorEval's metrics; the minimum for a
//! perplexity) and their mean. The family is read from the task's name, so a run shared with a sweep that named
//! one variant alone counts too. A summary of fewer variants than the sweep has (some not
//! done, or without the metric) says so.

use std::collections::BTreeMap;

use store::RunStatus;
use store::entities::{metric, run};

/// One metric over the prompt variants of one cell.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VariantSummary {
    /// The cell with the group in place of the task: `MODEL[+ADAPTER]/lm-eval:GROUP/SETTING/seed=N`.
    pub cell: String,
    /// The variants' family (their name without `_pN`: NorEval's tag of them).
    pub group: String,
    /// The metric.
    pub metric: String,
    /// The best value over the variants that have it, by the metric's direction (the maximum
    /// where higher is better).
    pub best: f64,
    /// The variant with the best value.
    pub best_task: String,
    /// The mean over the variants that have it.
    pub mean: f64,
    /// Variants with a value.
    pub variants: usize,
    /// Variants of the group in the sweep (done or not).
    pub of: usize,
    /// Documents behind each variant's value (the smallest, when they differ).
    pub n: i64,
}

impl VariantSummary {
    /// Every variant has a value.
    pub fn complete(&self) -> bool {
        self.variants == self.of
    }

    /// How many variants the values cover: `5 (n = 100)`, or `3 of 5: incomplete`.
    pub fn coverage(&self) -> String {
        if self.complete() {
            format!("{} (n = {})", self.variants, self.n)
        } else {
            format!("{} of {}: incomplete", self.variants, self.of)
        }
    }
}

/// The family of a prompt variant's task name: the name without its `_pN` ending.
pub fn family(task: &str) -> Option<String> {
    let (base, n) = task.rsplit_once("_p")?;
    (!base.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .then(|| base.to_string())
}

/// The variant summaries of a sweep's runs, each with its stored metrics, in cell and metric
/// order.
pub fn summaries<'a>(
    runs: impl IntoIterator<Item = (&'a run::Model, Vec<&'a metric::Model>)>,
) -> Vec<VariantSummary> {
    // (cell with the group, group) → each variant's task and its metrics when done.
    type Variants<'a> = Vec<(String, Vec<&'a metric::Model>)>;
    let mut cells: BTreeMap<(String, String), Variants> = BTreeMap::new();
    for (run, metrics) in runs {
        let Ok(m) = run.manifest() else { continue };
        let Some(group) = m.task.lm_eval.as_ref().and_then(|l| family(&l.task)) else {
            continue;
        };
        let model = match &m.adapter {
            Some(a) => format!("{}+{}", m.model.name, a.name),
            None => m.model.name.clone(),
        };
        let cell = format!(
            "{model}/{}{group}/{}/seed={}",
            spec::LmEvalTask::PREFIX,
            m.setting.name,
            m.seed
        );
        let done = if run.status == RunStatus::Done {
            metrics
        } else {
            vec![]
        };
        cells
            .entry((cell, group))
            .or_default()
            .push((m.task.name.clone(), done));
    }
    let mut out = Vec::new();
    for ((cell, group), variants) in cells {
        let mut metrics: BTreeMap<&str, Vec<(&str, f64, i64)>> = BTreeMap::new();
        for (task, done) in &variants {
            for v in done {
                metrics
                    .entry(v.name.as_str())
                    .or_default()
                    .push((task.as_str(), v.value, v.n));
            }
        }
        for (metric, values) in metrics {
            let direction = metrics::direction(metric);
            let (best_task, best, _) = values
                .iter()
                .copied()
                .min_by(|a, b| direction.distance(a.1).total_cmp(&direction.distance(b.1)))
                .unwrap_or_default();
            out.push(VariantSummary {
                cell: cell.clone(),
                group: group.clone(),
                metric: metric.to_string(),
                best,
                best_task: best_task.to_string(),
                mean: values.iter().map(|v| v.1).sum::<f64>() / values.len() as f64,
                variants: values.len(),
                of: variants.len(),
                n: values.iter().map(|v| v.2).min().unwrap_or(0),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::family;

    #[test]
    fn a_variant_belongs_to_the_name_before_its_prompt_number() {
        assert_eq!(
            family("norcommonsenseqa_nob_p0").as_deref(),
            Some("norcommonsenseqa_nob")
        );
        assert_eq!(
            family("nrk_quiz_qa_nno_p12").as_deref(),
            Some("nrk_quiz_qa_nno")
        );
        for not_one in ["norquad", "x_p", "_p1", "ncb_pa", "norec_p1x"] {
            assert_eq!(family(not_one), None, "{not_one}");
        }
    }
}
