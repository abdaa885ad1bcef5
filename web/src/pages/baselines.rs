//! `/baselines`: the reference values runs are compared with (the paper's and others').

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use crate::AppState;
use crate::auth::{MaybeSession, Nav};
use crate::error::PageError;
use crate::format::num;

/// A baseline row.
pub struct Row {
    task: String,
    model: String,
    setting: String,
    metric: String,
    value: String,
    source: String,
    note: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "baselines.html")]
pub struct BaselinesPage {
    nav: Nav,
    rows: Vec<Row>,
}

pub async fn page(
    State(app): State<AppState>,
    session: MaybeSession,
) -> Result<BaselinesPage, PageError> {
    let rows = app
        .store
        .baselines()
        .await?
        .into_iter()
        .map(|b| Row {
            task: b.task,
            model: b.model,
            setting: b.setting,
            metric: b.metric,
            value: num(b.value),
            source: b.source,
            note: b.note.unwrap_or_default(),
        })
        .collect();
    Ok(BaselinesPage {
        nav: Nav::of(&session),
        rows,
    })
}
