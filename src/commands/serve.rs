//! `nlebench serve`: the dashboard.

use std::process::ExitCode;

use crate::args::{Global, ServeArgs};
use crate::context;

pub async fn serve(g: &Global, a: ServeArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let store = context::store_migrated(&s).await?;
    let queue = match context::queue(&s).await {
        Ok(q) => Some(q),
        Err(e) => {
            eprintln!("note: no queue ({e}); retrying from the dashboard is off");
            None
        }
    };
    // Served on loopback, a store without accounts is one person's local tool: viewable (and
    // again if its last account is removed).
    let no_users = !a.public && !store.has_users().await?;
    let local = !a.public && a.addr.ip().is_loopback();
    if no_users && local {
        eprintln!(
            "note: no dashboard users yet, so the pages are viewable without signing in on this loopback address; add accounts with `nlebench users add NAME --role editor`"
        );
    } else if no_users {
        eprintln!(
            "note: no dashboard users yet: add one with `nlebench users add NAME --role editor`, or serve with --public to let anyone view"
        );
    }
    let access = if a.public {
        web::access::Access::Public
    } else if local {
        web::access::Access::loopback(!no_users)
    } else {
        web::access::Access::SignIn
    };
    let ended = store
        .delete_expired_sessions(web::auth::SESSION_IDLE)
        .await?;
    if ended > 0 {
        eprintln!("note: deleted {ended} expired session(s)");
    }
    eprintln!(
        "dashboard on http://{}/ (store {}{})",
        a.addr,
        store.url(),
        match access {
            web::access::Access::Public => ", public",
            web::access::Access::Loopback(_) if no_users =>
                ", viewable from this machine while no accounts exist",
            web::access::Access::Loopback(_) => "",
            web::access::Access::SignIn => "",
        }
    );
    let app = web::AppState {
        store,
        stale: metrics::is_stale_metric,
        access,
        secure_cookies: a.secure_cookies,
        queue,
        caches: std::sync::Arc::new(web::cache::Caches::new(std::time::Duration::from_millis(
            a.cache_ms,
        ))),
        limits: Default::default(),
        polls: Default::default(),
        queue_name: s.queue.name.clone(),
        trusted_proxies: web::proxy::TrustedProxies::new(a.trusted_proxies.clone()),
    };
    web::serve(app, a.addr, worker::lifecycle::wait_for_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
