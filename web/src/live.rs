//! Live progress with a small script: `/sweeps/{name}/events` streams the sweep's run counts
//! as server-sent events every two seconds; pages without JavaScript refresh themselves
//! instead. Every stream of one sweep shares one store poll ([`Polls`]), and a stream of a
//! dashboard that needs signing in ends when its session does.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use store::{RunStatus, Store};
use tokio::sync::watch;

use crate::AppState;

/// How often a watched sweep is polled.
const EVERY: Duration = Duration::from_secs(2);

/// A sweep's run counts by status.
type Counts = BTreeMap<RunStatus, i64>;

fn active(c: &Counts) -> bool {
    c.iter().any(|(s, n)| s.is_active() && *n > 0)
}

/// One poller per watched sweep, shared by all its streams; a poller stops when its sweep
/// has no active run or nobody watches.
#[derive(Debug, Default)]
pub struct Polls {
    sweeps: Arc<Mutex<HashMap<String, watch::Receiver<Option<Counts>>>>>,
}

impl Polls {
    /// The counts of sweep `name` as its poller sees them (starting one when none runs).
    fn watch(&self, store: &Store, name: &str) -> watch::Receiver<Option<Counts>> {
        let mut sweeps = self.sweeps.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rx) = sweeps.get(name)
            && rx.has_changed().is_ok()
        {
            return rx.clone();
        }
        let (tx, rx) = watch::channel(None);
        sweeps.insert(name.to_string(), rx.clone());
        let (store, name, sweeps) = (store.clone(), name.to_string(), self.sweeps.clone());
        tokio::spawn(async move {
            // The map keeps one receiver; more are streams.
            while let Ok(counts) = store.sweep_counts(&name).await {
                let go_on = active(&counts);
                tx.send_replace(Some(counts));
                if !go_on {
                    break;
                }
                tokio::time::sleep(EVERY).await;
                if tx.receiver_count() <= 1 {
                    break;
                }
            }
            let mut map = sweeps.lock().unwrap_or_else(|e| e.into_inner());
            if map
                .get(&name)
                .is_some_and(|rx| rx.same_channel(&tx.subscribe()))
            {
                map.remove(&name);
            }
        });
        rx
    }
}

/// A stream's state between events.
struct Watcher {
    app: AppState,
    name: String,
    /// The hash of the stream's session token, re-checked before each event.
    session: Option<String>,
    rx: Option<watch::Receiver<Option<Counts>>>,
    first: bool,
}

impl Watcher {
    /// The next counts to send; `None` ends the stream.
    async fn next(&mut self) -> Option<Counts> {
        if !self.first && !self.session_alive().await {
            return None;
        }
        let mut restarts = 0;
        loop {
            let rx = match &mut self.rx {
                Some(rx) => rx,
                None => self
                    .rx
                    .insert(self.app.polls.watch(&self.app.store, &self.name)),
            };
            if std::mem::take(&mut self.first)
                && let Some(c) = rx.borrow_and_update().clone()
            {
                return Some(c);
            }
            if rx.changed().await.is_ok() {
                if let Some(c) = rx.borrow_and_update().clone() {
                    return Some(c);
                }
                continue;
            }
            // The poller stopped (nobody else watched, or the store failed): start another
            // once, then give up.
            restarts += 1;
            if restarts > 1 {
                return None;
            }
            self.rx = None;
        }
    }

    async fn session_alive(&self) -> bool {
        match self.app.access.needs_session(&self.app.store).await {
            Ok(false) => true,
            Ok(true) => match &self.session {
                Some(hash) => matches!(
                    self.app
                        .store
                        .session(hash, crate::auth::SESSION_IDLE)
                        .await,
                    Ok(Some(_))
                ),
                None => false,
            },
            Err(_) => false,
        }
    }
}

/// `GET /sweeps/{name}/events`: `progress` events with `{"queued": n, "running": n, …}`; the
/// stream ends once no run is queued or running.
pub async fn sweep_events(
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let watcher = Watcher {
        session: crate::auth::session_hash(&headers),
        app,
        name,
        rx: None,
        first: true,
    };
    let stream = futures::stream::unfold(Some(watcher), |state| async move {
        let mut w = state?;
        let counts = w.next().await?;
        let go_on = active(&counts);
        let event = Event::default()
            .event("progress")
            .data(serde_json::to_string(&counts).unwrap_or_default());
        Some((Ok(event), go_on.then_some(w)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
