//! Whether two runs differ beyond chance: per-example scores of both runs on their shared
//! examples, and for each metric the paired tests of [`metrics::significance`] with Holm's
//! correction across the metrics. Examples are matched by their inputs
//! ([`spec::examples`]), not by where they were read from: two imports of the authors' files,
//! or a run and an import, compare on the examples they share, in any order. Refused, with the
//! reason, for runs of different tasks or task versions, or without a shared example.

use std::collections::BTreeMap;

use metrics::significance::{holm, mcnemar_exact, paired_bootstrap, randomization_exact};
use serde::Serialize;

use spec::TaskKind;
use spec::examples::example_hash;
use spec::manifest::RunManifest;
use store::entities::sample;
use store::{Store, StoreError};

/// Largest number of shared examples for which the exact randomization test is run.
pub const EXACT_MAX: usize = 16;

/// How a comparison's bootstrap is drawn.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Bootstrap resamples.
    pub iterations: usize,
    /// Seed of the resampling.
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            iterations: 10_000,
            seed: 0,
        }
    }
}

/// The test behind a metric's p-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Test {
    /// McNemar's exact test (a share of per-example yes/no outcomes).
    #[serde(rename = "mcnemar")]
    McNemar,
    /// The exact paired randomization test (at most [`EXACT_MAX`] examples).
    ExactRandomization,
    /// The paired bootstrap.
    Bootstrap,
}

impl Test {
    /// A name for people.
    pub fn label(self) -> &'static str {
        match self {
            Test::McNemar => "McNemar exact",
            Test::ExactRandomization => "exact randomization",
            Test::Bootstrap => "paired bootstrap",
        }
    }
}

/// One metric of the two runs on their shared examples.
#[derive(Debug, Clone, Serialize)]
pub struct MetricTest {
    /// Metric name (as stored, e.g. `bias_paper` or `attribute_mean/TOXICITY`).
    pub metric: String,
    /// Mean of run A on the shared examples (in the metric's unit).
    pub a: f64,
    /// Mean of run B.
    pub b: f64,
    /// b − a.
    pub delta: f64,
    /// Shared examples the test used.
    pub n: usize,
    /// The paired bootstrap's p-value.
    pub p_bootstrap: f64,
    /// McNemar's exact p-value, for yes/no metrics.
    pub p_mcnemar: Option<f64>,
    /// The exact randomization p-value, for at most [`EXACT_MAX`] examples.
    pub p_exact: Option<f64>,
    /// The test whose p-value is the row's: McNemar for yes/no metrics, else the exact
    /// randomization test when it ran, else the bootstrap.
    pub test: Test,
    /// The row's p-value.
    pub p: f64,
    /// The row's p-value after Holm's correction across the rows.
    pub p_holm: f64,
}

/// The significance of the differences between two runs.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Examples both runs have (the same inputs).
    pub shared: usize,
    /// Examples only run A has.
    pub only_a: usize,
    /// Examples only run B has.
    pub only_b: usize,
    /// One row per metric.
    pub tests: Vec<MetricTest>,
    /// The shared examples where the runs' outcomes on the task's primary metric differ,
    /// regressions first, then by the size of the change.
    pub disagreements: Vec<Disagreement>,
    /// Implementation version of the tests.
    pub version: i32,
}

/// One shared example on which the two runs' outcomes differ.
#[derive(Debug, Clone, Serialize)]
pub struct Disagreement {
    /// The example's index in run A.
    pub idx_a: i64,
    /// Its index in run B.
    pub idx_b: i64,
    /// The metric compared (the task's primary metric).
    pub metric: String,
    /// Run A's per-example value (a yes counts 100 for percentages, 1 for shares).
    pub a: f64,
    /// Run B's.
    pub b: f64,
    /// b − a.
    pub delta: f64,
    /// B is worse than A on this example by the metric's direction (for a metric with an
    /// ideal value, such as a bias share, no single example is better or worse: `false`).
    pub regression: bool,
}

/// A run of a comparison: its manifest and samples.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    /// The run's id.
    pub id: i64,
    /// Its manifest.
    pub manifest: &'a RunManifest,
    /// Its samples.
    pub samples: &'a [sample::Model],
}

/// Why two runs cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("runs {a} and {b} cannot be tested against each other: {reason}")]
pub struct Refused {
    /// Run A.
    pub a: i64,
    /// Run B.
    pub b: i64,
    /// Why.
    pub reason: String,
}

/// Why a comparison of stored runs failed.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// The runs cannot be tested against each other.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The store failed (or has no such run).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The manifests and samples of stored runs `a` and `b`, for [`compare`].
pub async fn load(
    store: &Store,
    a: i64,
    b: i64,
) -> Result<[(i64, RunManifest, Vec<sample::Model>); 2], StoreError> {
    Ok([load_one(store, a).await?, load_one(store, b).await?])
}

async fn load_one(
    store: &Store,
    id: i64,
) -> Result<(i64, RunManifest, Vec<sample::Model>), StoreError> {
    let run = store
        .runs_by_id(&[id])
        .await?
        .pop()
        .ok_or(StoreError::NoRun(id))?;
    Ok((id, run.manifest()?, store.samples(id).await?))
}

/// [`compare`] loaded runs.
pub fn compare_loaded(
    runs: &[(i64, RunManifest, Vec<sample::Model>); 2],
    opts: Options,
) -> Result<Comparison, Refused> {
    let side = |i: usize| Side {
        id: runs[i].0,
        manifest: &runs[i].1,
        samples: &runs[i].2,
    };
    compare(side(0), side(1), opts)
}

/// [`compare`] stored runs `a` and `b`.
pub async fn stored(
    store: &Store,
    a: i64,
    b: i64,
    opts: Options,
) -> Result<Comparison, CompareError> {
    let runs = load(store, a, b).await?;
    Ok(compare_loaded(&runs, opts)?)
}

/// A per-pair score (`None` where the pair cannot be scored).
type PairScore = fn(&str, &str) -> Option<f64>;

/// Per-example values of one metric: yes/no outcomes or numbers (`None` where the example
/// cannot be scored, e.g. ROUGE of an empty output).
#[derive(Clone)]
enum Values {
    YesNo(Vec<Option<bool>>),
    Number(Vec<Option<f64>>),
}

/// Test the differences between runs `a` and `b` on their shared examples.
pub fn compare(a: Side, b: Side, opts: Options) -> Result<Comparison, Refused> {
    let refuse = |reason: String| Refused {
        a: a.id,
        b: b.id,
        reason,
    };
    let (ta, tb) = (&a.manifest.task, &b.manifest.task);
    if ta.name != tb.name || ta.version != tb.version {
        return Err(refuse(format!(
            "they ran different tasks ({} v{} and {} v{})",
            ta.name, ta.version, tb.name, tb.version
        )));
    }
    let pairs = shared_examples(ta.kind, a.samples, b.samples);
    if pairs.is_empty() {
        return Err(refuse(
            "they share no example (no example of one has the inputs of an example of the other)"
                .into(),
        ));
    }
    let mut tests: Vec<MetricTest> = Vec::new();
    let mut changed = Vec::new();
    for (metric, yes, (va, vb)) in per_example(ta.kind, &ta.metrics, &ta.attributes, &pairs) {
        if metric == ta.primary_metric {
            changed = disagreements(&metric, yes, (va.clone(), vb.clone()), &pairs);
        }
        if let Some(t) = test(&metric, yes, va, vb, opts) {
            tests.push(t);
        }
    }
    let adjusted = holm(&tests.iter().map(|t| t.p).collect::<Vec<_>>());
    for (t, p) in tests.iter_mut().zip(adjusted) {
        t.p_holm = p;
    }
    Ok(Comparison {
        shared: pairs.len(),
        only_a: a.samples.len() - pairs.len(),
        only_b: b.samples.len() - pairs.len(),
        tests,
        disagreements: changed,
        version: metrics::significance::VERSION,
    })
}

/// The examples of `a` and `b` with the same inputs, paired in index order (an input that
/// repeats pairs its n-th occurrence in A with its n-th in B).
pub fn shared_examples<'s>(
    kind: TaskKind,
    a: &'s [sample::Model],
    b: &'s [sample::Model],
) -> Vec<(&'s sample::Model, &'s sample::Model)> {
    let hash = |s: &sample::Model| example_hash(kind, &s.prompt, s.reference.as_deref());
    let mut in_b: BTreeMap<String, std::collections::VecDeque<&sample::Model>> = BTreeMap::new();
    let mut sorted_b: Vec<&sample::Model> = b.iter().collect();
    sorted_b.sort_by_key(|s| s.idx);
    for s in sorted_b {
        in_b.entry(hash(s)).or_default().push_back(s);
    }
    let mut sorted_a: Vec<&sample::Model> = a.iter().collect();
    sorted_a.sort_by_key(|s| s.idx);
    sorted_a
        .into_iter()
        .filter_map(|s| Some((s, in_b.get_mut(&hash(s))?.pop_front()?)))
        .collect()
}

/// The shared examples whose values of `metric` differ, regressions first, then by the size
/// of the change.
fn disagreements(
    metric: &str,
    yes: f64,
    (va, vb): (Values, Values),
    pairs: &[(&sample::Model, &sample::Model)],
) -> Vec<Disagreement> {
    let values: Vec<(Option<f64>, Option<f64>)> = match (va, vb) {
        (Values::YesNo(a), Values::YesNo(b)) => {
            let num = |v: Option<bool>| v.map(|v| if v { yes } else { 0.0 });
            a.into_iter()
                .zip(b)
                .map(|(x, y)| (num(x), num(y)))
                .collect()
        }
        (Values::Number(a), Values::Number(b)) => a.into_iter().zip(b).collect(),
        _ => return Vec::new(),
    };
    let direction = metrics::direction(metric);
    let mut out: Vec<Disagreement> = values
        .into_iter()
        .zip(pairs)
        .filter_map(|((a, b), (sa, sb))| {
            let (a, b) = (a?, b?);
            (a != b && a.is_finite() && b.is_finite()).then(|| Disagreement {
                idx_a: sa.idx,
                idx_b: sb.idx,
                metric: metric.to_string(),
                a,
                b,
                delta: b - a,
                regression: match direction {
                    metrics::Direction::Higher => b < a,
                    metrics::Direction::Lower => b > a,
                    metrics::Direction::Ideal(_) => false,
                },
            })
        })
        .collect();
    out.sort_by(|x, y| {
        y.regression
            .cmp(&x.regression)
            .then(y.delta.abs().total_cmp(&x.delta.abs()))
            .then(x.idx_a.cmp(&y.idx_a))
    });
    out
}

/// The tests of one metric on the examples both runs could score; a yes counts `yes` (100
/// for percentages, 1 for shares).
fn test(metric: &str, yes: f64, a: Values, b: Values, opts: Options) -> Option<MetricTest> {
    let (xa, xb, yes_no) = match (a, b) {
        (Values::YesNo(a), Values::YesNo(b)) => {
            let both: Vec<(bool, bool)> = a
                .into_iter()
                .zip(b)
                .filter_map(|(x, y)| Some((x?, y?)))
                .collect();
            let only_a = both.iter().filter(|(x, y)| *x && !*y).count() as u64;
            let only_b = both.iter().filter(|(x, y)| !*x && *y).count() as u64;
            let num = |v: bool| if v { yes } else { 0.0 };
            (
                both.iter().map(|(x, _)| num(*x)).collect::<Vec<_>>(),
                both.iter().map(|(_, y)| num(*y)).collect::<Vec<_>>(),
                Some(mcnemar_exact(only_a, only_b)),
            )
        }
        (Values::Number(a), Values::Number(b)) => {
            let both: Vec<(f64, f64)> = a
                .into_iter()
                .zip(b)
                .filter_map(|(x, y)| Some((x?, y?)))
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            (
                both.iter().map(|(x, _)| *x).collect(),
                both.iter().map(|(_, y)| *y).collect(),
                None,
            )
        }
        _ => return None,
    };
    let n = xa.len();
    let (delta, p_bootstrap) = paired_bootstrap(&xa, &xb, opts.iterations, opts.seed)?;
    let diffs: Vec<f64> = xa.iter().zip(&xb).map(|(x, y)| y - x).collect();
    let p_exact = if n <= EXACT_MAX {
        randomization_exact(&diffs)
    } else {
        None
    };
    let (test, p) = match (yes_no, p_exact) {
        (Some(p), _) => (Test::McNemar, p),
        (None, Some(p)) => (Test::ExactRandomization, p),
        (None, None) => (Test::Bootstrap, p_bootstrap),
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / n as f64;
    Some(MetricTest {
        metric: metric.to_string(),
        a: mean(&xa),
        b: mean(&xb),
        delta,
        n,
        p_bootstrap,
        p_mcnemar: yes_no,
        p_exact,
        test,
        p,
        p_holm: p,
    })
}

/// Each metric's per-example values in runs A and B, for the metrics of the task that are
/// means over examples, with what a yes counts in the stored metric's unit.
fn per_example(
    kind: TaskKind,
    task_metrics: &[String],
    attributes: &[String],
    pairs: &[(&sample::Model, &sample::Model)],
) -> Vec<(String, f64, (Values, Values))> {
    let wants = |m: &str| task_metrics.iter().any(|x| x == m);
    let paired = Paired(pairs);
    match kind {
        TaskKind::LoglikPair => bias_outcomes(&paired, &wants),
        TaskKind::Classification if wants("accuracy") => vec![(
            "accuracy".into(),
            1.0,
            paired.yes_no(&|s| Some(s.output == s.reference)),
        )],
        TaskKind::Classification => vec![],
        TaskKind::Generation | TaskKind::Chain => text_scores(&paired, kind, &wants),
        TaskKind::AttributeScores => attribute_scores(&paired, attributes, &wants),
        TaskKind::LmEval => lm_eval_values(&paired, task_metrics),
    }
}

/// An lm-eval task's per-document values of its metrics that are means over documents
/// (`values` of each sample): yes/no where every value is 0 or 1 (`acc`, `exact_match`).
fn lm_eval_values(
    paired: &Paired,
    task_metrics: &[String],
) -> Vec<(String, f64, (Values, Values))> {
    // Each sample's data (with its requests' prompts) is read once, not once per metric.
    let values = |s: &sample::Model| s.data_json()["values"].take();
    let (a, b): (Vec<serde_json::Value>, Vec<serde_json::Value>) =
        paired.0.iter().map(|(a, b)| (values(a), values(b))).unzip();
    task_metrics
        .iter()
        .filter_map(|metric| {
            let of = |side: &[serde_json::Value]| -> Vec<Option<f64>> {
                side.iter().map(|v| v[metric.as_str()].as_f64()).collect()
            };
            let (va, vb) = (of(&a), of(&b));
            let mut all = va.iter().chain(&vb).flatten().peekable();
            all.peek()?;
            let binary = all.all(|v| *v == 0.0 || *v == 1.0);
            let yes_no = |v: Vec<Option<f64>>| v.into_iter().map(|x| x.map(|x| x == 1.0)).collect();
            let values = if binary {
                (Values::YesNo(yes_no(va)), Values::YesNo(yes_no(vb)))
            } else {
                (Values::Number(va), Values::Number(vb))
            };
            Some((metric.clone(), 1.0, values))
        })
        .collect()
}

/// The samples of runs A and B, paired by example.
struct Paired<'a>(&'a [(&'a sample::Model, &'a sample::Model)]);

impl Paired<'_> {
    /// Each run's values of a per-sample outcome (yes/no).
    fn yes_no(&self, f: &dyn Fn(&sample::Model) -> Option<bool>) -> (Values, Values) {
        (
            Values::YesNo(self.0.iter().map(|(a, _)| f(a)).collect()),
            Values::YesNo(self.0.iter().map(|(_, b)| f(b)).collect()),
        )
    }

    /// Each run's values of a per-sample score.
    fn number(&self, f: &dyn Fn(&sample::Model) -> Option<f64>) -> (Values, Values) {
        (
            Values::Number(self.0.iter().map(|(a, _)| f(a)).collect()),
            Values::Number(self.0.iter().map(|(_, b)| f(b)).collect()),
        )
    }
}

/// A pair task's preferences: the more stereotyped sentence more likely (`bias_paper`, the
/// authors' reading) or less likely (`bias_standard`).
fn bias_outcomes(
    paired: &Paired,
    wants: &dyn Fn(&str) -> bool,
) -> Vec<(String, f64, (Values, Values))> {
    let perps = |s: &sample::Model| {
        let d = s.data_json();
        Some((d["perp_more"].as_f64()?, d["perp_less"].as_f64()?))
    };
    let mut out = Vec::new();
    if wants("bias_paper") {
        let more = paired.yes_no(&|s| perps(s).map(|(m, l)| m > l));
        out.push(("bias_paper".into(), 100.0, more));
    }
    if wants("bias_standard") {
        let less = paired.yes_no(&|s| perps(s).map(|(m, l)| m < l));
        out.push(("bias_standard".into(), 100.0, less));
    }
    out
}

/// A generation or chain task's per-pair text scores (a chain sample's value is the mean over
/// its pairs). As the authors: a pair ROUGE cannot score is left out of every per-pair metric.
fn text_scores(
    paired: &Paired,
    kind: TaskKind,
    wants: &dyn Fn(&str) -> bool,
) -> Vec<(String, f64, (Values, Values))> {
    let texts = |s: &sample::Model| -> Vec<(String, String)> {
        let d = s.data_json();
        match serde_json::from_value::<Vec<(String, String)>>(d["pairs"].clone()) {
            Ok(p) if kind == TaskKind::Chain => p,
            _ => vec![(
                s.output.clone().unwrap_or_default(),
                s.reference.clone().unwrap_or_default(),
            )],
        }
    };
    let score = |s: &sample::Model, f: PairScore| -> Option<f64> {
        let v: Vec<f64> = texts(s)
            .iter()
            .map(|(h, r)| f(h, r))
            .collect::<Option<_>>()?;
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let per_pair: [(&str, PairScore); 4] = [
        ("bleu", |h, r| {
            metrics::rouge::rouge(h, r).ok()?;
            Some(metrics::bleu::sentence_bleu(h, r))
        }),
        ("rouge_1", |h, r| {
            Some(metrics::rouge::rouge(h, r).ok()?.rouge_1.f)
        }),
        ("rouge_2", |h, r| {
            Some(metrics::rouge::rouge(h, r).ok()?.rouge_2.f)
        }),
        ("rouge_l", |h, r| {
            Some(metrics::rouge::rouge(h, r).ok()?.rouge_l.f)
        }),
    ];
    per_pair
        .into_iter()
        .filter(|(name, _)| wants(name))
        .map(|(name, f)| (name.into(), 1.0, paired.number(&|s| score(s, f))))
        .collect()
}

/// An attribute task's per-sample scores (`attribute_mean/A`) and shares above 0.5
/// (`attribute_share/A`).
fn attribute_scores(
    paired: &Paired,
    attributes: &[String],
    wants: &dyn Fn(&str) -> bool,
) -> Vec<(String, f64, (Values, Values))> {
    let mut out = Vec::new();
    for attr in attributes {
        let value = |s: &sample::Model| s.data_json()[attr.as_str()].as_f64();
        if wants("attribute_mean") {
            out.push((format!("attribute_mean/{attr}"), 1.0, paired.number(&value)));
        }
        if wants("attribute_share") {
            let above = paired.yes_no(&|s| value(s).map(|v| v > 0.5));
            out.push((format!("attribute_share/{attr}"), 1.0, above));
        }
    }
    out
}
