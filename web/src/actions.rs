//! What editors can do from the dashboard: cancel a sweep, retry its failed cells, archive
//! and restore it, tag and annotate sweeps and runs, import baselines. Each action is a POST with the session's CSRF token; viewers are refused.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use store::annotations::{Target, check_tag};
use store::baselines::parse_csv;

use crate::AppState;
use crate::auth::{CsrfForm, MaybeSession, require_editor};
use crate::error::PageError;
use crate::list::encode;

/// `POST /sweeps/{name}/cancel`.
pub async fn cancel(
    State(app): State<AppState>,
    Path(name): Path<String>,
    session: MaybeSession,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    let who = require_editor(&session, f.csrf.as_deref())?;
    let n = app.store.cancel_sweep(&name).await?;
    tracing::info!("{} cancelled {n} run(s) of sweep {name}", who.user);
    app.caches.clear();
    Ok(Redirect::to(&format!("/sweeps/{}", encode(&name))).into_response())
}

/// `POST /sweeps/{name}/retry`: failed and cancelled runs go back on the queue and resume
/// from their stored samples.
pub async fn retry(
    State(app): State<AppState>,
    Path(name): Path<String>,
    session: MaybeSession,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    let who = require_editor(&session, f.csrf.as_deref())?;
    let Some(mut queue) = app.queue.clone() else {
        return Err(PageError(
            StatusCode::SERVICE_UNAVAILABLE,
            "this dashboard has no queue to put jobs on; use `nlebench retry`".into(),
        ));
    };
    let jobs = app.store.retry_sweep(&name).await?;
    queue
        .push(&jobs, 0, None)
        .await
        .map_err(|e| PageError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    app.store.mark_enqueued(&jobs).await?;
    tracing::info!(
        "{} requeued {} job(s) of sweep {name}",
        who.user,
        jobs.len()
    );
    app.caches.clear();
    Ok(Redirect::to(&format!("/sweeps/{}", encode(&name))).into_response())
}

/// `POST /sweeps/{name}/archive`: hidden from the lists, every run kept.
pub async fn archive(
    State(app): State<AppState>,
    Path(name): Path<String>,
    session: MaybeSession,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    shelve(app, name, session, f, true).await
}

/// `POST /sweeps/{name}/restore`: listed again.
pub async fn restore(
    State(app): State<AppState>,
    Path(name): Path<String>,
    session: MaybeSession,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    shelve(app, name, session, f, false).await
}

async fn shelve(
    app: AppState,
    name: String,
    session: MaybeSession,
    f: CsrfForm,
    archive: bool,
) -> Result<Response, PageError> {
    let who = require_editor(&session, f.csrf.as_deref())?;
    if app.store.set_archived(&name, archive).await? {
        let did = if archive { "archived" } else { "restored" };
        tracing::info!("{} {did} sweep {name}", who.user);
    }
    app.caches.clear();
    Ok(Redirect::to(&format!("/sweeps/{}", encode(&name))).into_response())
}

/// The tag form: a tag to add, or one to remove.
#[derive(Debug, Deserialize)]
pub struct TagForm {
    csrf: Option<String>,
    tag: Option<String>,
    remove: Option<String>,
}

/// The note form.
#[derive(Debug, Deserialize)]
pub struct NoteForm {
    csrf: Option<String>,
    text: String,
}

/// `POST /sweeps/{name}/tags`.
pub async fn tag_sweep(
    State(app): State<AppState>,
    Path(name): Path<String>,
    session: MaybeSession,
    Form(f): Form<TagForm>,
) -> Result<Response, PageError> {
    let back = format!("/sweeps/{}", encode(&name));
    tag(app, Target::Sweep(name), session, f, back).await
}

/// `POST /runs/{id}/tags`.
pub async fn tag_run(
    State(app): State<AppState>,
    Path(id): Path<i64>,
    session: MaybeSession,
    Form(f): Form<TagForm>,
) -> Result<Response, PageError> {
    tag(app, Target::Run(id), session, f, format!("/runs/{id}")).await
}

async fn tag(
    app: AppState,
    target: Target,
    session: MaybeSession,
    f: TagForm,
    back: String,
) -> Result<Response, PageError> {
    let who = require_editor(&session, f.csrf.as_deref())?;
    if let Some(t) = f.tag.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        check_tag(t).map_err(|e| PageError::bad_request(e.to_string()))?;
        app.store
            .add_tags(&target, &[t.to_string()], Some(&who.user))
            .await?;
    }
    if let Some(t) = f.remove {
        app.store.remove_tags(&target, &[t]).await?;
    }
    app.caches.clear();
    Ok(Redirect::to(&back).into_response())
}

/// `POST /sweeps/{name}/notes`.
pub async fn note_sweep(
    State(app): State<AppState>,
    Path(name): Path<String>,
    session: MaybeSession,
    Form(f): Form<NoteForm>,
) -> Result<Response, PageError> {
    let back = format!("/sweeps/{}", encode(&name));
    note(app, Target::Sweep(name), session, f, back).await
}

/// `POST /runs/{id}/notes`.
pub async fn note_run(
    State(app): State<AppState>,
    Path(id): Path<i64>,
    session: MaybeSession,
    Form(f): Form<NoteForm>,
) -> Result<Response, PageError> {
    note(app, Target::Run(id), session, f, format!("/runs/{id}")).await
}

async fn note(
    app: AppState,
    target: Target,
    session: MaybeSession,
    f: NoteForm,
    back: String,
) -> Result<Response, PageError> {
    let who = require_editor(&session, f.csrf.as_deref())?;
    if f.text.trim().is_empty() {
        return Err(PageError::bad_request("a note needs some text"));
    }
    app.store
        .add_note(&target, &f.text, Some(&who.user))
        .await?;
    Ok(Redirect::to(&back).into_response())
}

/// The baseline import form: the CSV pasted or uploaded as text.
#[derive(Debug, Deserialize)]
pub struct ImportForm {
    csrf: Option<String>,
    csv: String,
}

/// `POST /baselines/import`.
pub async fn import_baselines(
    State(app): State<AppState>,
    session: MaybeSession,
    Form(f): Form<ImportForm>,
) -> Result<Response, PageError> {
    let who = require_editor(&session, f.csrf.as_deref())?;
    let rows = parse_csv(&f.csv, "the pasted CSV").map_err(PageError::bad_request)?;
    let n = app.store.import_baselines(&rows).await?;
    tracing::info!("{} imported {n} baseline(s)", who.user);
    app.caches.clear();
    Ok(Redirect::to("/baselines").into_response())
}
