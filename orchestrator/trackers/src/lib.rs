//! Exports of a sweep's runs to the experiment trackers teams already run. MLflow
//! (`mlflow`): one MLflow run per nlebench run, through the tracking server's REST API.

pub mod mlflow;
