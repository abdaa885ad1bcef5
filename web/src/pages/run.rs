//! `/runs/{id}`: a run's manifest, timings, metrics with intervals and baseline deltas, its
//! error, and a paginated, searchable samples browser (prompt, output, reference side by
//! side).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use spec::TaskKind;
use spec::manifest::RunManifest;
use store::entities::{baseline, metric, run, sample};

use crate::AppState;
use crate::auth::MaybeSession;
use crate::error::PageError;
use crate::format::{baseline_for, duration, metric_delta, num, time, value_ci};
use crate::list::{ListQuery, Pager, sort_key, sort_links};
use crate::nav::Nav;
use crate::pages::said::Said;
use crate::pages::samples::SampleView;
use store::annotations::Target;

/// A metric row.
pub struct MetricRow {
    name: String,
    value: String,
    n: i64,
    version: i32,
    stale: bool,
    baseline: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "run.html")]
pub struct RunPage {
    nav: Nav,
    id: i64,
    title: String,
    fields: Vec<(&'static str, Vec<(&'static str, String)>)>,
    sweeps: Vec<String>,
    metrics: Vec<MetricRow>,
    error: String,
    notes: Vec<String>,
    samples: SampleView,
    pager: Pager,
    search: String,
    sort_links: Vec<(&'static str, String)>,
    score_fields: Vec<String>,
    field: String,
    min: String,
    max: String,
    manifest: String,
    active: bool,
    failed: bool,
    status: String,
    status_class: &'static str,
    random: bool,
    /// The error's first line, and whether there is more of it.
    error_head: String,
    error_more: bool,
    /// The leaderboard of the run's primary metric, filtered to its examples.
    leaderboard: Option<String>,
    said: Said,
}

pub async fn page(
    State(app): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<ListQuery>,
    session: MaybeSession,
) -> Result<RunPage, PageError> {
    let run = app
        .store
        .runs_by_id(&[id])
        .await?
        .pop()
        .ok_or_else(|| PageError::not_found(format!("no run {id}")))?;
    let metrics: Vec<metric::Model> = app.store.metrics_of(&[id]).await?;
    let baselines = app.store.baselines().await?;
    let sweeps = app.store.sweeps_of_run(id).await?;
    let search = q.q.clone().unwrap_or_default();
    let range = q.range().map_err(PageError::bad_request)?;
    let (samples, total) = app
        .store
        .samples_filtered(id, Some(&search), range, q.descending(false), q.window())
        .await?;
    let score_fields = numeric_fields(samples.first());
    let stored = if search.is_empty() && range.is_none() {
        total
    } else {
        app.store.sample_count(id).await?
    };
    sort_key(&q, &["idx"], "idx").map_err(PageError::bad_request)?;
    let device = match &run.worker {
        Some(w) => app.store.worker_named(w).await?,
        None => None,
    }
    .map(|w| format!("{} on {}", w.device, w.host))
    .unwrap_or_default();
    // A manifest this version cannot read still shows, raw, below the fields.
    let manifest = run.manifest().ok();
    let attempts = app.store.job_attempts(id).await?;
    let mut fields = fields(&run, manifest.as_ref(), device, stored, &attempts);
    let seconds = run
        .started_at
        .zip(run.finished_at)
        .map(|(a, b)| (b - a).num_milliseconds() as f64 / 1000.0);
    if let Some(s) = seconds {
        fields.push(("duration", duration(s as i64)));
        if s > 0.0 {
            fields.push(("samples/s", num(stored as f64 / s)));
            if manifest.as_ref().is_some_and(|m| {
                matches!(
                    m.task.kind,
                    TaskKind::Generation | TaskKind::AttributeScores
                )
            }) && let Some(t) = app.store.generated_tokens(id).await?
            {
                fields.push(("generated tokens/s", num(t as f64 / s)));
            }
        }
    }
    if run.random_weights {
        fields.push(("weights", "RANDOM (the outputs are noise)".into()));
    }
    // A blank says so: no adapter, no template, the task's default decoding.
    for (_, v) in fields.iter_mut().filter(|(_, v)| v.trim().is_empty()) {
        *v = "none".into();
    }
    let fields = grouped(fields);
    let metrics = metric_rows(&app, &run, &metrics, &baselines);
    let task = manifest.as_ref().map(|m| &m.task);
    let steps = match (task.map(|t| t.kind), samples.first(), samples.last()) {
        (Some(TaskKind::Chain), Some(a), Some(b)) => {
            let (lo, hi) = (a.idx.min(b.idx), a.idx.max(b.idx));
            app.store.steps(id, lo, hi + 1).await?
        }
        _ => Vec::new(),
    };
    let samples = SampleView::new(task, samples, &steps);
    Ok(RunPage {
        nav: session.nav(),
        id,
        title: format!("{} · {}", run.model_name, run.task_name),
        fields,
        sweeps,
        metrics,
        error: run.error.clone().unwrap_or_default(),
        error_head: run
            .error
            .as_deref()
            .and_then(|e| e.lines().next())
            .unwrap_or_default()
            .to_string(),
        error_more: run
            .error
            .as_deref()
            .is_some_and(|e| e.lines().nth(1).is_some()),
        failed: run.status == store::RunStatus::Failed,
        status: run.status.to_string(),
        status_class: match run.status {
            store::RunStatus::Done => "ok",
            store::RunStatus::Failed => "bad",
            store::RunStatus::Running => "info",
            _ => "",
        },
        random: run.random_weights,
        leaderboard: task.map(|t| {
            let mut link = format!(
                "/leaderboard?metric={}",
                crate::list::encode(&t.primary_metric)
            );
            if let Some(e) = &run.examples_id {
                link += &format!("&examples={}", spec::examples::short(e));
            }
            if run.random_weights {
                link += "&random=true";
            }
            if run.partial() {
                link += "&partial=true";
            }
            link
        }),
        notes: run
            .notes
            .as_deref()
            .map(|n| n.lines().map(str::to_string).collect())
            .unwrap_or_default(),
        samples,
        pager: Pager::new(&format!("/runs/{id}"), &q, total),
        sort_links: sort_links(&format!("/runs/{id}"), &q, &["idx"], false),
        search,
        score_fields,
        field: q.field.clone().unwrap_or_default(),
        min: q.min.map(|v| v.to_string()).unwrap_or_default(),
        max: q.max.map(|v| v.to_string()).unwrap_or_default(),
        manifest: serde_json::from_str::<serde_json::Value>(&run.manifest)
            .and_then(|v| serde_json::to_string_pretty(&v))
            .unwrap_or_else(|_| run.manifest.clone()),
        active: run.status.is_active(),
        said: Said::new(
            app.store.annotations(&Target::Run(id)).await?,
            format!("/runs/{id}"),
        ),
    })
}

/// The run's fields under headings: the model, the task, the decoding, and how it ran.
fn grouped(
    fields: Vec<(&'static str, String)>,
) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    const GROUPS: [(&str, &[&str]); 3] = [
        (
            "Model",
            &["model", "model revision", "dtype", "adapter", "weights"],
        ),
        (
            "Task",
            &[
                "task",
                "prompt template",
                "prompting",
                "dataset revision",
                "setting",
            ],
        ),
        ("Decoding", &["decoding", "seed"]),
    ];
    let mut out: Vec<(&'static str, Vec<(&'static str, String)>)> = GROUPS
        .iter()
        .map(|(title, _)| (*title, Vec::new()))
        .collect();
    let mut execution = Vec::new();
    for (k, v) in fields {
        match GROUPS.iter().position(|(_, keys)| keys.contains(&k)) {
            Some(g) => out[g].1.push((k, v)),
            None => execution.push((k, v)),
        }
    }
    out.push(("Execution", execution));
    out.retain(|(_, rows)| !rows.is_empty());
    out
}

/// The run's fields: what ran (manifest), where, when and how far.
fn fields(
    run: &run::Model,
    manifest: Option<&RunManifest>,
    device: String,
    stored: u64,
    attempts: &[i32],
) -> Vec<(&'static str, String)> {
    let from_manifest = |f: fn(&RunManifest) -> String| manifest.map(f).unwrap_or_default();
    vec![
        ("status", run.status.to_string()),
        (
            "model",
            format!("{} ({})", run.model_name, run.model_source),
        ),
        (
            "model revision",
            run.model_revision.clone().unwrap_or_default(),
        ),
        ("dtype", from_manifest(|m| m.model.dtype.as_str().into())),
        (
            "adapter",
            match (&run.adapter_name, &run.adapter_source) {
                (Some(n), Some(s)) => format!("{n} ({s})"),
                _ => String::new(),
            },
        ),
        ("task", format!("{} v{}", run.task_name, run.task_version)),
        (
            "prompt template",
            from_manifest(|m| m.task.template.clone().unwrap_or_default()),
        ),
        ("prompting", from_manifest(prompting_text)),
        (
            "dataset revision",
            from_manifest(|m| m.dataset.revision.clone()),
        ),
        ("setting", run.setting_name.clone()),
        ("decoding", from_manifest(decoding_text)),
        ("seed", run.seed.to_string()),
        (
            "engine version",
            from_manifest(|m| m.engine_version.clone()),
        ),
        ("source", run.source.clone()),
        ("worker", run.worker.clone().unwrap_or_default()),
        ("device", device),
        ("shards", attempts.len().to_string()),
        (
            // Deliveries beyond each shard's first (a worker failed or died).
            "retries",
            match attempts.iter().map(|a| (a - 1).max(0)).sum::<i32>() {
                0 => "none".to_string(),
                n => n.to_string(),
            },
        ),
        ("fingerprint", run.fingerprint.clone()),
        ("created", time(&run.created_at)),
        (
            "started",
            run.started_at.as_ref().map(time).unwrap_or_default(),
        ),
        (
            "finished",
            run.finished_at.as_ref().map(time).unwrap_or_default(),
        ),
        (
            "samples",
            format!("{stored} of {} expected", run.n_expected),
        ),
    ]
}

/// How a run's prompts were built: few-shot examples, and the chat template with its system
/// turn (the template by the start of its SHA-256).
fn prompting_text(m: &RunManifest) -> String {
    let shots = match &m.fewshot {
        Some(f) => format!("{}-shot", f.k),
        None => "zero-shot".into(),
    };
    if !m.setting.chat_template {
        return format!("{shots}, plain text");
    }
    let template = m.model.resolved.chat_template.as_deref().unwrap_or("?");
    let mut out = format!(
        "{shots}, the model's chat template (sha256 {})",
        &template[..template.len().min(12)]
    );
    if m.setting.fewshot_as_multiturn {
        out.push_str(", examples as turns");
    }
    if let Some(p) = &m.setting.system_prompt {
        out.push_str(&format!(", system prompt “{p}”"));
    }
    out
}

/// A run's decoding as people read it: the settings it gives, none of the unset ones
/// (`max_new_tokens 200 · num_beams 1`), or the task's default.
fn decoding_text(m: &RunManifest) -> String {
    let json: serde_json::Value =
        serde_json::from_str(&m.decoding_json()).unwrap_or(serde_json::Value::Null);
    let set: Vec<String> = json
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => format!("{k} {s}"),
                    v => format!("{k} {v}"),
                })
                .collect()
        })
        .unwrap_or_default();
    if !m.task.kind.uses_decoding() {
        "none (the task scores, it does not generate)".into()
    } else if set.is_empty() {
        "the task's default (greedy)".into()
    } else {
        set.join(" · ")
    }
}

/// The run's metrics with versions, staleness and the delta to the matching baseline.
fn metric_rows(
    app: &AppState,
    run: &run::Model,
    metrics: &[metric::Model],
    baselines: &[baseline::Model],
) -> Vec<MetricRow> {
    metrics
        .iter()
        .map(|m| MetricRow {
            name: m.name.clone(),
            value: value_ci(m),
            n: m.n,
            version: m.version,
            stale: (app.stale)(&m.name, m.version),
            baseline: baseline_for(baselines, &run.task_name, &run.model_name, &m.name)
                .map(|b| {
                    format!(
                        "Δ {} to {} ({}, n {}); see the sweep's report for the verdict",
                        metric_delta(&m.name, m.value - b.value),
                        metrics::format_value(&m.name, b.value),
                        b.source,
                        b.n.map_or_else(|| "?".into(), |n| n.to_string())
                    )
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// Numeric fields of a sample's data, offered for the range filter.
fn numeric_fields(sample: Option<&sample::Model>) -> Vec<String> {
    sample
        .and_then(|s| {
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&s.data).ok()
        })
        .map(|m| {
            m.into_iter()
                .filter(|(_, v)| v.is_number())
                .map(|(k, _)| k)
                .collect()
        })
        .unwrap_or_default()
}
