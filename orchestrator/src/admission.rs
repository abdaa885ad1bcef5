//! Admission: the memory a job needs ([`spec::memory`]) against what a worker offers
//! (`--memory-gb`, or its device's memory), and the release (engine version) a run was planned
//! for against the one a worker computes with. A worker never claims a job that does not fit or
//! that another release planned; `status` names the runs no live worker can take.

use std::collections::BTreeMap;

use store::entities::worker;

/// A note for `status` naming the runs (id, MiB needed) that no live worker can fit.
pub fn unfit_note(needs: &[(i64, u64)], live: &[worker::Model]) -> Option<String> {
    let largest = live.iter().filter_map(|w| w.memory_mb).max()?.max(0) as u64;
    let unfit: Vec<String> = needs
        .iter()
        .filter(|(_, need)| *need > largest)
        .map(|(id, need)| format!("run {id} ({need} MiB)"))
        .collect();
    (!unfit.is_empty()).then(|| {
        format!(
            "{} need more memory than any live worker offers (the largest: {largest} MiB): {}; start a worker with more memory (`--memory-gb` sets what a worker offers)",
            unfit.len(),
            unfit.join(", ")
        )
    })
}

/// A note for `status` naming the runs (id, engine version planned for) that no live worker of
/// their release can compute, by release.
pub fn release_note(planned: &[(i64, String)], live: &[worker::Model]) -> Option<String> {
    let known: Vec<&str> = live.iter().filter_map(|w| w.release.as_deref()).collect();
    if known.len() < live.len() {
        // A worker of a release before migration 13 does not say which it is.
        return None;
    }
    let mut waiting: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (id, release) in planned {
        if !known.contains(&release.as_str()) {
            waiting
                .entry(release.as_str())
                .or_default()
                .push(format!("run {id}"));
        }
    }
    if waiting.is_empty() {
        return None;
    }
    let mut have: Vec<&str> = known.clone();
    have.sort_unstable();
    have.dedup();
    let parts: Vec<String> = waiting
        .iter()
        .map(|(release, runs)| format!("{} wait for a worker of engine {release}", runs.join(", ")))
        .collect();
    Some(format!(
        "{} (live workers compute with engine {}): start a worker of that release, or submit the sweep again with this one to plan those cells anew",
        parts.join("; "),
        have.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(name: &str, release: Option<&str>) -> worker::Model {
        worker::Model {
            id: 0,
            name: name.into(),
            host: "h".into(),
            pid: 1,
            device: "cpu".into(),
            queue: "q".into(),
            status: "running".into(),
            current_job: None,
            jobs_done: 0,
            started_at: chrono::Utc::now(),
            last_heartbeat: chrono::Utc::now(),
            memory_mb: None,
            release: release.map(str::to_string),
        }
    }

    #[test]
    fn runs_of_a_release_no_live_worker_runs_are_named_by_release() {
        let live = [worker("a", Some("0.3.0")), worker("b", Some("0.3.0"))];
        let planned = [
            (1, "0.3.0".to_string()),
            (2, "0.2.0".to_string()),
            (3, "0.2.0".to_string()),
        ];
        assert_eq!(
            release_note(&planned, &live).unwrap(),
            "run 2, run 3 wait for a worker of engine 0.2.0 (live workers compute with engine 0.3.0): start a worker of that release, or submit the sweep again with this one to plan those cells anew"
        );
        assert!(release_note(&planned[..1], &live).is_none());
        // A worker too old to say its release: no claim about what nobody runs.
        assert!(release_note(&planned, &[worker("old", None)]).is_none());
    }
}
