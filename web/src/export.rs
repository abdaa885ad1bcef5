//! Downloads: a sweep's metrics, a run's samples and a comparison, as CSV or JSON.

use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;

use crate::AppState;
use crate::error::PageError;
use crate::pages::compare;

/// `csv` or `json`, from the path's extension.
fn format_of(file: &str) -> Result<(&str, &str), PageError> {
    match file.rsplit_once('.') {
        Some((stem, "csv")) => Ok((stem, "csv")),
        Some((stem, "json")) => Ok((stem, "json")),
        _ => Err(PageError::not_found(format!(
            "{file}: ask for .csv or .json"
        ))),
    }
}

/// Bytes a `filename*` value keeps as they are (RFC 5987's `attr-char`).
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `attachment` with the file name as RFC 6266 wants it: an ASCII `filename` (other
/// characters as `_`, so quotes and line breaks cannot break the header) and the exact
/// name, percent-encoded UTF-8, as `filename*`.
pub fn content_disposition(file: &str) -> String {
    let ascii: String = file
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = utf8_percent_encode(file, ATTR_CHAR);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

fn respond<T: Serialize>(rows: &[T], format: &str, name: &str) -> Result<Response, PageError> {
    let internal = |e: String| PageError(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e);
    let (body, mime) = if format == "csv" {
        let mut w = csv::Writer::from_writer(Vec::new());
        for r in rows {
            w.serialize(r).map_err(|e| internal(e.to_string()))?;
        }
        (
            w.into_inner().map_err(|e| internal(e.to_string()))?,
            "text/csv; charset=utf-8",
        )
    } else {
        (
            serde_json::to_vec_pretty(rows).map_err(|e| internal(e.to_string()))?,
            "application/json",
        )
    };
    Ok((
        [
            (header::CONTENT_TYPE, mime.to_string()),
            (
                header::CONTENT_DISPOSITION,
                content_disposition(&format!("{name}.{format}")),
            ),
        ],
        body,
    )
        .into_response())
}

/// `/sweeps/{name}/export.csv|json`: one row per run and metric.
pub async fn sweep(
    State(app): State<AppState>,
    Path((name, file)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let (stem, format) = format_of(&file)?;
    if stem != "export" {
        return Err(PageError::not_found(format!("no {file} here")));
    }
    let rows = app.store.export_rows(&name).await?;
    respond(&rows, format, &name)
}

/// One sample in a download.
#[derive(Serialize)]
struct SampleOut {
    run_id: i64,
    idx: i64,
    prompt: String,
    output: Option<String>,
    reference: Option<String>,
    data: String,
}

/// `/runs/{id}/samples.csv|json`.
pub async fn samples(
    State(app): State<AppState>,
    Path((id, file)): Path<(i64, String)>,
) -> Result<Response, PageError> {
    let (stem, format) = format_of(&file)?;
    if stem != "samples" {
        return Err(PageError::not_found(format!("no {file} here")));
    }
    if app.store.runs_by_id(&[id]).await?.is_empty() {
        return Err(PageError::not_found(format!("no run {id}")));
    }
    let rows: Vec<SampleOut> = app
        .store
        .samples(id)
        .await?
        .into_iter()
        .map(|s| SampleOut {
            run_id: s.run_id,
            idx: s.idx,
            prompt: s.prompt,
            output: s.output,
            reference: s.reference,
            data: s.data,
        })
        .collect();
    respond(&rows, format, &format!("run-{id}-samples"))
}

/// One metric of a compared run.
#[derive(Serialize)]
struct CompareOut {
    run_id: i64,
    model: String,
    adapter: String,
    task: String,
    setting: String,
    seed: i64,
    metric: String,
    value: f64,
    ci_low: Option<f64>,
    ci_high: Option<f64>,
    n: i64,
    /// The difference to the first run on the examples both scored (matched by their inputs),
    /// when they could be compared: `value` is over all of this run's examples, this is not.
    delta_to_first: Option<f64>,
    /// Test of the difference to the first run on the shared examples, when run.
    test: Option<&'static str>,
    p_value: Option<f64>,
    p_holm: Option<f64>,
    shared_examples: Option<usize>,
}

/// `/compare.csv?runs=1,2`.
pub async fn comparison_csv(
    State(app): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    comparison(app, raw, "csv").await
}

/// `/compare.json?runs=1,2`.
pub async fn comparison_json(
    State(app): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    comparison(app, raw, "json").await
}

async fn comparison(
    app: AppState,
    raw: Option<String>,
    format: &str,
) -> Result<Response, PageError> {
    let (ids, _) = compare::parse(raw.as_deref())?;
    let (runs, metrics) = compare::load(&app, &ids).await?;
    let same_task = runs.iter().all(|r| r.task_name == runs[0].task_name);
    let significance = if same_task {
        compare::significance(&app, &runs).await?
    } else {
        Vec::new()
    };
    let tested = |run: i64, metric: &str| {
        significance
            .iter()
            .filter(|(id, _)| *id == run)
            .find_map(|(_, c)| {
                let c = c.as_ref().ok()?;
                c.tests
                    .iter()
                    .find(|t| t.metric == metric)
                    .map(|t| (t.test.label(), t.p, t.p_holm, c.shared, t.delta))
            })
    };
    let mut rows = Vec::new();
    for r in &runs {
        for m in metrics.iter().filter(|m| m.run_id == r.id) {
            let t = tested(r.id, &m.name);
            rows.push(CompareOut {
                run_id: r.id,
                model: r.model_name.clone(),
                adapter: r.adapter_name.clone().unwrap_or_default(),
                task: r.task_name.clone(),
                setting: r.setting_name.clone(),
                seed: r.seed,
                metric: m.name.clone(),
                value: m.value,
                ci_low: m.ci_low,
                ci_high: m.ci_high,
                n: m.n,
                delta_to_first: t.map(|t| t.4),
                test: t.map(|t| t.0),
                p_value: t.map(|t| t.1),
                p_holm: t.map(|t| t.2),
                shared_examples: t.map(|t| t.3),
            });
        }
    }
    respond(&rows, format, "comparison")
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_names_are_encoded_as_rfc_6266_wants() {
        assert_eq!(
            super::content_disposition("bias-norglm.csv"),
            "attachment; filename=\"bias-norglm.csv\"; filename*=UTF-8''bias-norglm.csv"
        );
        assert_eq!(
            super::content_disposition("sjø \"test\"\r\n.json"),
            "attachment; filename=\"sj___test___.json\"; filename*=UTF-8''sj%C3%B8%20%22test%22%0D%0A.json"
        );
    }
}
