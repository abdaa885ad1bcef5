//! One module per command, as the README's CLI table names them.

pub mod baselines;
pub mod cancel;
pub mod compare;
pub mod eval;
pub mod export;
pub mod generate;
pub mod import;
pub mod migrate;
pub mod models;
pub mod note;
pub mod perplexity;
pub mod reconcile;
pub mod report;
pub mod rescore;
pub mod retry;
pub mod run;
pub mod score;
pub mod serve;
pub mod status;
pub mod submit;
pub mod sweeps;
pub mod tag;
pub mod tasks;
pub mod users;
pub mod worker;
