//! What nlebench concludes from stored runs: whether two runs of a task differ beyond chance
//! ([`compare`], paired tests on the examples both scored), and how a sweep's values stand
//! against the paper's baselines ([`reproduction`]), and lm-eval prompt variants as NorEval
//! reports them ([`variants`]: the best value, the maximum where higher is better, and the mean
//! over a group's variants).

pub mod compare;
pub mod reproduction;
pub mod variants;
