//! `/`: the sweeps, with progress and an ETA from the observed throughput; `/archive`: the
//! archived ones.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use chrono::Utc;
use store::RunStatus;
use store::dashboard::{Shelf, SweepSort};

use crate::AppState;
use crate::auth::MaybeSession;
use crate::error::PageError;
use crate::format::{duration, time};
use crate::list::{ListQuery, Pager};
use crate::nav::Nav;

/// One row of the sweeps page.
pub struct SweepRow {
    name: String,
    owner: String,
    created: String,
    counts: Vec<i64>,
    eta: String,
    tags: Vec<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "sweeps.html")]
pub struct SweepsPage {
    nav: Nav,
    sweeps: Vec<SweepRow>,
    statuses: Vec<&'static str>,
    pager: Pager,
    active: bool,
    sort_links: Vec<(&'static str, String)>,
    archived: bool,
    tag: String,
}

/// Statuses shown as columns, then `stale` (metrics from an older implementation).
const STALE: &str = "stale";

pub async fn page(
    State(app): State<AppState>,
    Query(q): Query<ListQuery>,
    session: MaybeSession,
) -> Result<SweepsPage, PageError> {
    list(app, q, session, Shelf::Active).await
}

/// `/archive`.
pub async fn archive(
    State(app): State<AppState>,
    Query(q): Query<ListQuery>,
    session: MaybeSession,
) -> Result<SweepsPage, PageError> {
    list(app, q, session, Shelf::Archived).await
}

async fn list(
    app: AppState,
    q: ListQuery,
    session: MaybeSession,
    shelf: Shelf,
) -> Result<SweepsPage, PageError> {
    let base = match shelf {
        Shelf::Active => "/",
        Shelf::Archived => "/archive",
    };
    let tag = q.tag.clone().filter(|t| !t.is_empty());
    let sort = match q.sort.as_deref() {
        Some("name") => SweepSort::Name,
        Some("created") => SweepSort::Created,
        None | Some("updated") => SweepSort::Updated,
        Some(other) => {
            return Err(PageError::bad_request(format!(
                "unknown sort `{other}`; use name, created or updated"
            )));
        }
    };
    let desc = q.descending(sort != SweepSort::Name);
    let w = q.window();
    let data = app
        .caches
        .sweeps
        .get_or(
            (shelf, tag.clone(), sort as u8, desc, w.offset, w.limit),
            || {
                app.store
                    .sweep_overviews(shelf, tag.as_deref(), sort, desc, w, app.stale)
            },
        )
        .await?;
    let (rows, total) = (&data.0, data.1);
    let ids: Vec<i64> = rows.iter().map(|o| o.sweep.id).collect();
    let mut tags = app.store.sweep_tags(&ids).await?;
    let now = Utc::now();
    let active = rows.iter().any(|o| o.active() > 0);
    let sweeps = rows
        .iter()
        .map(|o| SweepRow {
            name: o.sweep.name.clone(),
            owner: o.sweep.owner.clone().unwrap_or_default(),
            created: time(&o.sweep.created_at),
            counts: RunStatus::ALL
                .iter()
                .map(|s| o.count(*s))
                .chain([o.stale])
                .collect(),
            eta: o.eta_seconds(now).map(duration).unwrap_or_default(),
            tags: tags.remove(&o.sweep.id).unwrap_or_default(),
        })
        .collect();
    let sort_links = ["name", "created", "updated"]
        .into_iter()
        .map(|k| {
            let dir = if q.sort.as_deref() == Some(k) && desc {
                "asc"
            } else {
                "desc"
            };
            (k, format!("{base}?sort={k}&dir={dir}"))
        })
        .collect();
    Ok(SweepsPage {
        nav: session.nav(),
        sweeps,
        statuses: RunStatus::ALL
            .iter()
            .map(|s| s.as_str())
            .chain([STALE])
            .collect(),
        pager: Pager::new(base, &q, total),
        active,
        sort_links,
        archived: shelf == Shelf::Archived,
        tag: tag.unwrap_or_default(),
    })
}
