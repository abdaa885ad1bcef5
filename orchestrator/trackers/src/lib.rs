//! Exports of a sweep's runs to the tools teams already run. MLflow (`mlflow`): one MLflow run
//! per nlebench run, through the tracking server's REST API. lm-evaluation-harness (`lmeval`):
//! results and samples files in the layout `lm_eval --log_samples` writes.

pub mod lmeval;
pub mod mlflow;
