//! `nlebench serve`: the dashboard.

use std::process::ExitCode;

use crate::args::{Global, ServeArgs};
use crate::context;

pub async fn serve(g: &Global, a: ServeArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let store = context::store_migrated(&s).await?;
    eprintln!("dashboard on http://{}/ (store {})", a.addr, store.url());
    let app = web::AppState {
        store,
        stale: |name, version| worker::metrics::current_version(name).is_some_and(|v| version < v),
    };
    web::serve(app, a.addr).await?;
    Ok(ExitCode::SUCCESS)
}
