//! Every environment variable nlebench reads outside its flags' `NLEBENCH_*` variables (which
//! clap reads with the flags): the Hugging Face cache and Hub, NLTK's data, MLflow's
//! credentials, the dashboard password, the author of notes and the terminal width. The
//! libraries read no environment; they get these values from here.

use std::path::{Path, PathBuf};

use trackers::mlflow::Credentials;
use types::HubSettings;

/// A variable's value, when set and not empty.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `$HOME`, when set.
fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// The Hugging Face cache and Hub as `huggingface_hub` finds them: `HF_HUB_CACHE`, else
/// `HF_HOME/hub`, else `~/.cache/huggingface/hub`; `HF_HUB_OFFLINE=1` (or `true`) never
/// downloads; `HF_ENDPOINT` names another Hub.
pub fn hub() -> HubSettings {
    let cache = var("HF_HUB_CACHE")
        .map(PathBuf::from)
        .or_else(|| var("HF_HOME").map(|h| Path::new(&h).join("hub")))
        .or_else(|| home().map(|h| h.join(".cache/huggingface/hub")))
        .unwrap_or_else(|| PathBuf::from(".cache/huggingface/hub"));
    HubSettings {
        cache,
        offline: var("HF_HUB_OFFLINE").is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")),
        endpoint: var("HF_ENDPOINT"),
    }
}

/// Where NLTK data is looked for before the system directories: `$NLTK_DATA` (a path list),
/// then `~/nltk_data`, as NLTK looks.
pub fn nltk_data() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("NLTK_DATA")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    dirs.extend(home().map(|h| h.join("nltk_data")));
    dirs
}

/// MLflow's credentials as its clients take them: `MLFLOW_TRACKING_TOKEN`, else
/// `MLFLOW_TRACKING_USERNAME` with `MLFLOW_TRACKING_PASSWORD`.
pub fn mlflow_credentials() -> Credentials {
    match (
        var("MLFLOW_TRACKING_TOKEN"),
        var("MLFLOW_TRACKING_USERNAME"),
        var("MLFLOW_TRACKING_PASSWORD"),
    ) {
        (Some(token), _, _) => Credentials::Token(token),
        (None, Some(user), Some(password)) => Credentials::Basic { user, password },
        _ => Credentials::None,
    }
}

/// `NLEBENCH_PASSWORD`: a dashboard user's password, for `users add` without a terminal.
pub fn password() -> Option<String> {
    std::env::var("NLEBENCH_PASSWORD").ok()
}

/// Who writes from the command line: `$USER`, when set.
pub fn author() -> Option<String> {
    var("USER")
}

/// `$COLUMNS`: the width tables wrap to when stdout is not a terminal.
pub fn columns() -> Option<u16> {
    var("COLUMNS").and_then(|c| c.parse().ok())
}

/// The names of the environment's variables (for the warnings on unknown `NLEBENCH_*`).
pub fn names() -> impl Iterator<Item = String> {
    std::env::vars_os().filter_map(|(k, _)| k.into_string().ok())
}
