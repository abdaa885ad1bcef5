//! `/leaderboard?metric=NAME`: for one metric, a ranking per task, setting and examples (like
//! with like): by default the newest run with trained weights on its whole dataset of each
//! model (and adapter), ranked by the metric's direction (a bias share by its distance from
//! 50), beside the baselines computed on the same examples. Random-weight and partial runs
//! only when asked, and marked; filters for setting, examples, n and tag.

use std::collections::BTreeMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use serde::Deserialize;
use store::dashboard::{LeaderboardData, LeaderboardFilter};
use store::entities::run;

use crate::AppState;
use crate::auth::MaybeSession;
use crate::error::PageError;
use crate::format::value_ci;
use crate::nav::Nav;

/// `?metric=NAME&setting=…&examples=…&n=…&tag=…&random=true&partial=true` (empty values
/// count as absent, as a filter form sends them).
#[derive(Debug, Deserialize)]
pub struct LeaderboardQuery {
    metric: Option<String>,
    setting: Option<String>,
    examples: Option<String>,
    n: Option<String>,
    tag: Option<String>,
    random: Option<String>,
    partial: Option<String>,
}

impl LeaderboardQuery {
    /// The filter asked for.
    fn filter(&self) -> Result<LeaderboardFilter, PageError> {
        let given = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
        let yes = |v: &Option<String>| {
            given(v).is_some_and(|v| matches!(v.as_str(), "true" | "on" | "1" | "yes"))
        };
        Ok(LeaderboardFilter {
            setting: given(&self.setting),
            examples: given(&self.examples),
            n: given(&self.n)
                .map(|n| {
                    n.trim().parse::<i64>().map_err(|_| {
                        PageError::bad_request(format!("`n` must be a whole number, not `{n}`"))
                    })
                })
                .transpose()?,
            tag: given(&self.tag),
            random: yes(&self.random),
            partial: yes(&self.partial),
        })
    }
}

/// A ranked row: a run's value, a baseline's, or the maximum or mean over a model's prompt
/// variants.
pub struct Row {
    /// 1 for the best run of its section; none for a baseline.
    rank: Option<usize>,
    /// A baseline (not ranked, shown in italics).
    baseline: bool,
    model: String,
    value: String,
    n: String,
    date: String,
    run_id: Option<i64>,
    /// The section's best run, to compare this one with.
    compare_with: Option<i64>,
    /// `random weights`, `partial: 32 of 1677`, or a baseline's source.
    marks: Vec<String>,
    /// How the value stands by the metric's direction: `best`, `worse` (shading), or empty.
    tone: &'static str,
    sort: f64,
}

/// The runs of one task, setting and set of examples.
pub struct Section {
    task: String,
    setting: String,
    dataset: String,
    examples: String,
    examples_short: String,
    rows: Vec<Row>,
    /// Its runs measured one task, so a row can be compared with the best (not so across a
    /// model's prompt variants).
    comparable: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "leaderboard.html")]
pub struct LeaderboardPage {
    nav: Nav,
    metric: String,
    metrics: Vec<String>,
    direction: String,
    sections: Vec<Section>,
    filter: LeaderboardFilter,
    n: String,
}

/// What a run's dataset is called: the task file's source, or the file of a `path:` source.
fn dataset_name(r: &run::Model) -> String {
    let Ok(m) = r.manifest() else {
        return "?".into();
    };
    match &m.task.dataset.source {
        spec::Source::Path { path } => path.file_name().map_or_else(
            || path.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        ),
        other => other.to_string(),
    }
}

/// Sections of the best value (by the metric's direction) and of the mean over each model's
/// lm-eval prompt variants (tasks named as NorEval names its prompts, `_p0` … `_pN`), per
/// family, setting and examples.
fn variant_sections(data: &LeaderboardData) -> Vec<Section> {
    let direction = metrics::direction(&data.metric);
    // (family, setting, examples) → model → each variant's (task, value, n, run).
    type Variants<'a> = BTreeMap<String, Vec<(&'a str, f64, i64, &'a run::Model)>>;
    let mut groups: BTreeMap<(String, String, String), Variants> = BTreeMap::new();
    for (r, m) in &data.rows {
        let Some(family) = analysis::variants::family(
            r.task_name
                .strip_prefix(spec::LmEvalTask::PREFIX)
                .unwrap_or_default(),
        ) else {
            continue;
        };
        let model = match &r.adapter_name {
            Some(a) => format!("{} + {a}", r.model_name),
            None => r.model_name.clone(),
        };
        let key = (
            family,
            r.setting_name.clone(),
            r.examples_id.clone().unwrap_or_default(),
        );
        groups
            .entry(key)
            .or_default()
            .entry(model)
            .or_default()
            .push((r.task_name.as_str(), m.value, m.n, r));
    }
    let mut out = Vec::new();
    for ((family, setting, examples), models) in groups {
        let section = |how: &str| Section {
            task: format!("{}{family} · {how} over prompts", spec::LmEvalTask::PREFIX),
            setting: setting.clone(),
            dataset: models
                .values()
                .next()
                .and_then(|v| v.first())
                .map(|v| dataset_name(v.3))
                .unwrap_or_default(),
            examples_short: spec::examples::short(&examples).to_string(),
            examples: examples.clone(),
            rows: Vec::new(),
            comparable: false,
        };
        let (mut best_of, mut mean) = (section("best"), section("mean"));
        for (model, variants) in &models {
            let k = variants.len();
            let Some(best) = variants
                .iter()
                .max_by(|a, b| direction.distance(b.1).total_cmp(&direction.distance(a.1)))
            else {
                continue;
            };
            let n = variants.iter().map(|v| v.2).min().unwrap_or(0);
            let marks = |first: String| {
                let mut m = vec![first];
                if variants.iter().any(|v| v.3.random_weights) {
                    m.push("random weights".into());
                }
                m
            };
            let row = |value: f64, run_id: Option<i64>, marks: Vec<String>| Row {
                rank: None,
                baseline: false,
                model: model.clone(),
                value: metrics::format_value(&data.metric, value),
                n: n.to_string(),
                date: String::new(),
                run_id,
                compare_with: None,
                marks,
                tone: "",
                sort: direction.distance(value),
            };
            best_of.rows.push(row(
                best.1,
                Some(best.3.id),
                marks(format!("best of {k} prompts: {}", best.0)),
            ));
            let average = variants.iter().map(|v| v.1).sum::<f64>() / k as f64;
            mean.rows
                .push(row(average, None, marks(format!("mean of {k} prompts"))));
        }
        out.push(best_of);
        out.push(mean);
    }
    out
}

fn sections(data: &LeaderboardData) -> Vec<Section> {
    let direction = metrics::direction(&data.metric);
    let mut out: Vec<Section> = variant_sections(data);
    for (r, m) in &data.rows {
        let examples = r.examples_id.clone().unwrap_or_default();
        let at = match out.iter().position(|s| {
            s.task == r.task_name && s.setting == r.setting_name && s.examples == examples
        }) {
            Some(i) => i,
            None => {
                out.push(Section {
                    task: r.task_name.clone(),
                    setting: r.setting_name.clone(),
                    dataset: dataset_name(r),
                    examples_short: spec::examples::short(&examples).to_string(),
                    examples: examples.clone(),
                    rows: Vec::new(),
                    comparable: true,
                });
                out.len() - 1
            }
        };
        let mut marks = Vec::new();
        if r.random_weights {
            marks.push("random weights".to_string());
        }
        if let Some(rows) = r.dataset_rows.filter(|_| r.partial()) {
            marks.push(format!("partial: {} of {rows}", r.n_expected));
        }
        out[at].rows.push(Row {
            rank: None,
            baseline: false,
            model: match &r.adapter_name {
                Some(a) => format!("{} + {a}", r.model_name),
                None => r.model_name.clone(),
            },
            value: value_ci(m),
            n: m.n.to_string(),
            date: r
                .finished_at
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
            run_id: Some(r.id),
            compare_with: None,
            marks,
            tone: "",
            sort: direction.distance(m.value),
        });
    }
    for s in &mut out {
        // Baselines measured on the same examples stand beside the runs.
        for b in data.baselines.iter().filter(|b| {
            b.metric == data.metric
                && b.task == s.task
                && !s.examples.is_empty()
                && b.examples.as_deref() == Some(s.examples.as_str())
        }) {
            s.rows.push(Row {
                rank: None,
                baseline: true,
                model: b.model.clone(),
                value: metrics::format_value(&b.metric, b.value),
                n: b.n.map_or_else(|| "?".into(), |n| n.to_string()),
                date: String::new(),
                run_id: None,
                compare_with: None,
                marks: vec![format!("baseline: {}", b.source)],
                tone: "",
                sort: direction.distance(b.value),
            });
        }
        s.rows.sort_by(|a, b| a.sort.total_cmp(&b.sort));
        let best = s.rows.iter().find(|r| !r.baseline).and_then(|r| r.run_id);
        let (lo, hi) = s
            .rows
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| {
                (lo.min(r.sort), hi.max(r.sort))
            });
        let mut rank = 0;
        for r in &mut s.rows {
            if !r.baseline {
                rank += 1;
                r.rank = Some(rank);
                r.compare_with = best.filter(|b| s.comparable && Some(*b) != r.run_id);
            }
            // Shading only where values differ: the best, and the clearly worse half.
            r.tone = if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
                ""
            } else if r.sort == lo {
                "best"
            } else if r.sort >= lo + (hi - lo) / 2.0 {
                "worse"
            } else {
                ""
            };
        }
    }
    out.sort_by(|a, b| {
        (a.task.as_str(), b.rows.len(), a.setting.as_str()).cmp(&(
            b.task.as_str(),
            a.rows.len(),
            b.setting.as_str(),
        ))
    });
    out
}

pub async fn page(
    State(app): State<AppState>,
    Query(q): Query<LeaderboardQuery>,
    session: MaybeSession,
) -> Result<LeaderboardPage, PageError> {
    let filter = q.filter()?;
    let key = (q.metric.clone().unwrap_or_default(), filter.clone());
    let data = app
        .caches
        .leaderboard
        .get_or(key, || {
            app.store.leaderboard_data(q.metric.clone(), &filter)
        })
        .await?;
    Ok(LeaderboardPage {
        nav: session.nav(),
        metric: data.metric.clone(),
        metrics: data.metrics.clone(),
        direction: metrics::direction(&data.metric).describe(),
        sections: sections(&data),
        n: filter.n.map(|n| n.to_string()).unwrap_or_default(),
        filter,
    })
}
