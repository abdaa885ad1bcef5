//! `/baselines`: the reference values runs are compared with (the paper's and others').

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};

use crate::AppState;
use crate::auth::MaybeSession;
use crate::error::PageError;
use crate::list::{ListQuery, Pager, sort_key, sort_links};
use crate::nav::Nav;

/// A baseline row.
pub struct Row {
    task: String,
    model: String,
    setting: String,
    metric: String,
    value: String,
    n: String,
    examples: String,
    source: String,
    note: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "baselines.html")]
pub struct BaselinesPage {
    nav: Nav,
    rows: Vec<Row>,
    pager: Pager,
    sort_links: Vec<(&'static str, String)>,
}

pub async fn page(
    State(app): State<AppState>,
    Query(q): Query<ListQuery>,
    session: MaybeSession,
) -> Result<BaselinesPage, PageError> {
    const KEYS: [&str; 5] = ["task", "model", "metric", "value", "source"];
    let sort = sort_key(&q, &KEYS, "task").map_err(PageError::bad_request)?;
    let desc = q.descending(sort == "value");
    let (rows, total) = app.store.baselines_page(sort, desc, q.window()).await?;
    let rows = rows
        .into_iter()
        .map(|b| Row {
            task: b.task,
            model: b.model,
            setting: b.setting,
            value: metrics::format_value(&b.metric, b.value),
            n: b.n.map_or_else(|| "?".into(), |n| n.to_string()),
            examples: b.examples.as_deref().map_or_else(
                || "not recorded".into(),
                |e| spec::examples::short(e).to_string(),
            ),
            metric: b.metric,
            source: b.source,
            note: b.note.unwrap_or_default(),
        })
        .collect();
    Ok(BaselinesPage {
        nav: session.nav(),
        rows,
        pager: Pager::new("/baselines", &q, total),
        sort_links: sort_links("/baselines", &q, &KEYS, false),
    })
}
