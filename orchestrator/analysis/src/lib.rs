//! What nlebench concludes from stored runs: whether two runs of a task differ beyond chance
//! ([`compare`], paired tests on the examples both scored), and how a sweep's values stand
//! against the paper's baselines ([`reproduction`]), and lm-eval prompt variants as NorEval
//! reports them ([`variants`]: the maximum and mean over a group's variants).

pub mod compare;
pub mod reproduction;
pub mod variants;
