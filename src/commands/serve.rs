//! `nlebench serve` (the dashboard) and `nlebench users add`.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::anyhow;
use orchestrator::store::users::Role;

use crate::args::{Global, RoleArg, ServeArgs, UsersAddArgs};
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
    // A store without accounts served on loopback is one person's local tool: viewable.
    let no_users = !a.public && !store.has_users().await?;
    let local = no_users && a.addr.ip().is_loopback();
    if local {
        eprintln!(
            "note: no dashboard users yet, so the pages are viewable without signing in on this loopback address; add accounts with `nlebench users add NAME --role editor`"
        );
    } else if no_users {
        eprintln!(
            "note: no dashboard users yet: add one with `nlebench users add NAME --role editor`, or serve with --public to let anyone view"
        );
    }
    let public = a.public || local;
    eprintln!(
        "dashboard on http://{}/ (store {}{})",
        a.addr,
        store.url(),
        if public { ", public" } else { "" }
    );
    let app = web::AppState {
        store,
        stale: metrics::is_stale_metric,
        public,
        secure_cookies: a.secure_cookies,
        queue,
        caches: std::sync::Arc::new(web::cache::Caches::new(std::time::Duration::from_millis(
            a.cache_ms,
        ))),
    };
    web::serve(app, a.addr, worker::lifecycle::wait_for_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn add_user(g: &Global, a: UsersAddArgs) -> anyhow::Result<ExitCode> {
    let password = if a.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        std::env::var("NLEBENCH_PASSWORD").map_err(|_| {
            anyhow!(
                "no password given\n  fix: pass --password-stdin and type it, or set NLEBENCH_PASSWORD"
            )
        })?
    };
    if password.chars().count() < 8 {
        return Err(anyhow!(
            "the password is shorter than 8 characters\n  fix: choose a longer one"
        ));
    }
    let role = match a.role {
        RoleArg::Viewer => Role::Viewer,
        RoleArg::Editor => Role::Editor,
    };
    let s = context::settings(g)?;
    let store = context::store_migrated(&s).await?;
    let created = store
        .upsert_user(
            &a.name,
            &web::auth::hash_password(&password)
                .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?,
            role,
        )
        .await?;
    outln!(
        "{} {} ({})",
        if created { "added" } else { "updated" },
        a.name,
        role.as_str()
    );
    Ok(ExitCode::SUCCESS)
}
