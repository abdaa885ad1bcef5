//! What nlebench concludes from stored runs: whether two runs of a task differ beyond chance
//! ([`compare`], paired tests on the examples both scored), and how a sweep's values stand
//! against the paper's baselines ([`reproduction`]).

pub mod compare;
pub mod reproduction;
