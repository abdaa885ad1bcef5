//! One module per command.

pub mod baselines;
pub mod compare;
pub mod eval;
pub mod export;
pub mod import;
pub mod infer;
pub mod models;
pub mod reconcile;
pub mod report;
pub mod rescore;
pub mod run;
pub mod score;
pub mod serve;
pub mod status;
pub mod submit;
pub mod tasks;
pub mod worker;
