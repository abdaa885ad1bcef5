//! `nlebench tag|untag SWEEP|run:ID TAG…`: tags on a sweep or a run.

use std::process::ExitCode;

use store::annotations::Target;

use crate::args::{Global, TagArgs};
use crate::context;

/// `nlebench tag|untag TARGET TAG...`.
pub async fn tag(g: &Global, a: TagArgs, add: bool) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let store = context::store_migrated(&s).await?;
    let target = Target::parse(&a.target);
    if add {
        let n = store
            .add_tags(&target, &a.tags, crate::environment::author().as_deref())
            .await?;
        outln!("{}: {n} tag(s) added", a.target);
    } else {
        let n = store.remove_tags(&target, &a.tags).await?;
        outln!("{}: {n} tag(s) removed", a.target);
    }
    let now = store.annotations(&target).await?;
    outln!(
        "tags: {}",
        if now.tags.is_empty() {
            "none".into()
        } else {
            now.tags.join(" ")
        }
    );
    Ok(ExitCode::SUCCESS)
}
