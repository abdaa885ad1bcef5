//! `nlebench note SWEEP|run:ID TEXT`: a note (with `$USER` and the time) on a sweep or a
//! run.

use std::process::ExitCode;

use store::annotations::Target;

use crate::args::{Global, NoteArgs};
use crate::context;

/// `nlebench note TARGET TEXT`.
pub async fn note(g: &Global, a: NoteArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let store = context::store_migrated(&s).await?;
    store
        .add_note(
            &Target::parse(&a.target),
            &a.text,
            crate::environment::author().as_deref(),
        )
        .await?;
    outln!("{}: note added", a.target);
    Ok(ExitCode::SUCCESS)
}
