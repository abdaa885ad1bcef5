//! GPU-memory admission: the memory a job needs ([`spec::memory`]) against what a worker
//! offers (`--memory-gb`, or its device's memory). A worker never claims a job that does not
//! fit; `status` names the runs no live worker can fit.

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
