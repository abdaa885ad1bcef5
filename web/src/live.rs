//! Live progress with a small script: `/sweeps/{name}/events` streams the sweep's run counts
//! as server-sent events every two seconds; pages without JavaScript refresh themselves
//! instead.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;

use crate::AppState;

/// `GET /sweeps/{name}/events`: `progress` events with `{"queued": n, "running": n, …}`; the
/// stream ends once no run is queued or running.
pub async fn sweep_events(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures::stream::unfold(Some((app, name, true)), |state| async move {
        let (app, name, first) = state?;
        if !first {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let counts = app.store.sweep_counts(&name).await.ok()?;
        let active = counts
            .iter()
            .any(|(status, n)| status.is_active() && *n > 0);
        let event = Event::default()
            .event("progress")
            .data(serde_json::to_string(&counts).unwrap_or_default());
        Some((Ok(event), active.then_some((app, name, false))))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
