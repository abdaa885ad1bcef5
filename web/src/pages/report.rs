//! `/sweeps/NAME/report`: the sweep's reproduction report (every value with a baseline, the
//! baseline's provenance, the difference and the verdict; summary lines per task and overall).

use analysis::reproduction::{self, Report, Rules, Verdict};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};

use crate::AppState;
use crate::auth::MaybeSession;
use crate::error::PageError;
use crate::format::metric_delta;
use crate::nav::Nav;

/// A value of metric `name` in its decimals.
fn num(name: &str, v: f64) -> String {
    metrics::format_value(name, v)
}

/// A report row, formatted.
pub struct Line {
    metric: String,
    value: String,
    n: String,
    baseline: String,
    delta: String,
    verdict: &'static str,
    reason: String,
    class: &'static str,
}

/// The rows of one (task, model, run): a heading, where the baselines come from, the rows.
pub struct Group {
    task: String,
    model: String,
    run: Option<i64>,
    setting: String,
    /// The baselines' sources, each once.
    provenance: Vec<String>,
    lines: Vec<Line>,
}

#[derive(Template, WebTemplate)]
#[template(path = "report.html")]
pub struct ReportPage {
    nav: Nav,
    sweep: String,
    rule: &'static str,
    tolerance: String,
    summaries: Vec<String>,
    overall: String,
    groups: Vec<Group>,
    variants: Vec<super::sweep::VariantRow>,
}

fn line(r: &reproduction::Row) -> Line {
    Line {
        metric: r.metric.clone(),
        value: match (r.value, r.ci_low, r.ci_high) {
            (Some(v), Some(lo), Some(hi)) => format!(
                "{} [{}, {}]",
                num(&r.metric, v),
                num(&r.metric, lo),
                num(&r.metric, hi)
            ),
            (Some(v), _, _) => num(&r.metric, v),
            (None, _, _) => "none".into(),
        },
        n: match (r.n, r.baseline_n) {
            (Some(n), Some(b)) => format!("{n} / {b}"),
            (Some(n), None) => format!("{n} / ?"),
            (None, Some(b)) => format!("– / {b}"),
            (None, None) => "–".into(),
        },
        baseline: num(&r.metric, r.baseline),
        delta: r
            .delta
            .map_or_else(|| "none".into(), |d| metric_delta(&r.metric, d)),
        verdict: r.verdict.as_str(),
        reason: r.reason.clone(),
        class: match r.verdict {
            Verdict::Reproduced => "ok",
            Verdict::Differs => "bad",
            Verdict::Inconclusive => "warn",
            Verdict::NotMeasured | Verdict::NoRun => "muted",
        },
    }
}

impl ReportPage {
    /// The page of `report` (also written by `nlebench report --format html`).
    pub fn new(report: &Report, nav: Nav) -> ReportPage {
        let mut groups: Vec<Group> = Vec::new();
        for r in &report.rows {
            let model = if r.adapter.is_empty() {
                r.model.clone()
            } else {
                format!("{}+{}", r.model, r.adapter)
            };
            let provenance = format!(
                "{} · {} ({}; examples {})",
                r.source,
                r.provenance,
                r.baseline_setting,
                r.baseline_examples
                    .as_deref()
                    .map_or("not recorded", spec::examples::short)
            );
            let same = groups
                .last()
                .is_some_and(|g| g.task == r.task && g.model == model && g.run == r.run_id);
            if !same {
                groups.push(Group {
                    task: r.task.clone(),
                    model,
                    run: r.run_id,
                    setting: r.setting.clone(),
                    provenance: Vec::new(),
                    lines: Vec::new(),
                });
            }
            let Some(g) = groups.last_mut() else {
                continue;
            };
            if !g.provenance.contains(&provenance) {
                g.provenance.push(provenance);
            }
            g.lines.push(line(r));
        }
        ReportPage {
            nav,
            sweep: report.sweep.clone(),
            rule: reproduction::RULE,
            tolerance: format!("{}", report.tolerance),
            summaries: report.per_task.iter().map(|s| s.line()).collect(),
            overall: report.overall.line(),
            groups,
            variants: report
                .variants
                .iter()
                .map(super::sweep::VariantRow::of)
                .collect(),
        }
    }
}

/// The report as a standalone HTML page (without a signed-in user's navigation).
pub fn render_html(report: &Report) -> Result<String, askama::Error> {
    ReportPage::new(report, Nav::default()).render()
}

pub async fn page(
    State(app): State<AppState>,
    Path(name): Path<String>,
    session: MaybeSession,
) -> Result<ReportPage, PageError> {
    let data = app.store.sweep_data(&name).await?;
    let report = reproduction::build(&data, Rules::default());
    Ok(ReportPage::new(&report, session.nav()))
}
