//! One module per page.

pub mod baselines;
pub mod compare;
pub mod leaderboard;
pub mod report;
pub mod run;
pub mod said;
pub mod samples;
pub mod sweep;
pub mod sweeps;
pub mod workers;
