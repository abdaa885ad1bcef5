//! The calls of MLflow's tracking REST API (`/api/2.0/mlflow/…`) an export needs, and the
//! artifact upload of a server that proxies artifacts (`mlflow server`, the default since 2.0).
//! Credentials as MLflow's own clients take them ([`Credentials`]: the binary reads
//! `MLFLOW_TRACKING_TOKEN`, or `MLFLOW_TRACKING_USERNAME` with `MLFLOW_TRACKING_PASSWORD`).

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use super::MlflowError;

/// MLflow's limits per `runs/log-batch` request.
const MAX_PARAMS: usize = 100;
const MAX_METRICS: usize = 1000;
const MAX_TAGS: usize = 100;

/// How requests authenticate, as MLflow's clients do.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// No `Authorization` header.
    #[default]
    None,
    /// `Bearer TOKEN` (`MLFLOW_TRACKING_TOKEN`).
    Token(String),
    /// HTTP basic (`MLFLOW_TRACKING_USERNAME`, `MLFLOW_TRACKING_PASSWORD`).
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::None => "None",
            Credentials::Token(_) => "Token(<hidden>)",
            Credentials::Basic { .. } => "Basic(<hidden>)",
        })
    }
}

impl Credentials {
    /// The `Authorization` header's value.
    fn header(&self) -> Option<String> {
        match self {
            Credentials::None => None,
            Credentials::Token(token) => Some(format!("Bearer {token}")),
            Credentials::Basic { user, password } => Some(format!(
                "Basic {}",
                BASE64.encode(format!("{user}:{password}"))
            )),
        }
    }
}

/// A tracking server at one URL.
pub struct Client {
    base: String,
    shown: String,
    agent: ureq::Agent,
    auth: Option<String>,
}

/// An MLflow run as the export compares it: id, artifact location, and its latest values.
#[derive(Debug, Clone, Default)]
pub struct Remote {
    pub run_id: String,
    pub artifact_uri: String,
    pub status: String,
    pub params: BTreeMap<String, String>,
    pub metrics: BTreeMap<String, f64>,
    pub tags: BTreeMap<String, String>,
}

impl Client {
    /// A client of the server at `url` (`http://HOST:PORT`, optionally with a path prefix).
    pub fn new(url: &str, credentials: &Credentials) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .build()
            .into();
        let auth = credentials.header();
        let base = url.trim_end_matches('/').to_string();
        Client {
            shown: store::redact(&base),
            base,
            agent,
            auth,
        }
    }

    /// The URL as it may be shown (credentials hidden).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The id of experiment `name`, created when missing.
    pub fn experiment_id(&self, name: &str) -> Result<String, MlflowError> {
        let path = "/api/2.0/mlflow/experiments/get-by-name";
        let found = self.request("GET", path, &[("experiment_name", name)], None);
        let id = match found {
            Ok(v) => v["experiment"]["experiment_id"]
                .as_str()
                .map(str::to_string),
            Err(MlflowError::Refused { code, .. }) if code == "RESOURCE_DOES_NOT_EXIST" => {
                let v = self.post("experiments/create", &json!({ "name": name }))?;
                v["experiment_id"].as_str().map(str::to_string)
            }
            Err(e) => return Err(e),
        };
        id.ok_or_else(|| self.protocol("experiments", "no experiment_id"))
    }

    /// Every run of experiment `id` whose tag `key` is set, by that tag's value.
    pub fn runs_by_tag(
        &self,
        id: &str,
        key: &str,
    ) -> Result<BTreeMap<String, Remote>, MlflowError> {
        let mut out = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            let mut body = json!({ "experiment_ids": [id], "max_results": 1000 });
            if let Some(t) = &token {
                body["page_token"] = json!(t);
            }
            let v = self.post("runs/search", &body)?;
            for run in v["runs"].as_array().into_iter().flatten() {
                let remote = remote(run);
                if let Some(value) = remote.tags.get(key) {
                    out.insert(value.clone(), remote);
                }
            }
            token = v["next_page_token"]
                .as_str()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// A new run of experiment `id`; returns it as the server made it.
    pub fn create_run(&self, id: &str, name: &str, start_ms: i64) -> Result<Remote, MlflowError> {
        let v = self.post(
            "runs/create",
            &json!({ "experiment_id": id, "run_name": name, "start_time": start_ms }),
        )?;
        let run = remote(&v["run"]);
        if run.run_id.is_empty() {
            return Err(self.protocol("runs/create", "no run_id"));
        }
        Ok(run)
    }

    /// Log `params`, `metrics` (at `timestamp_ms`, step 0) and `tags` to run `run_id`, in as
    /// many requests as MLflow's limits need.
    pub fn log_batch(
        &self,
        run_id: &str,
        params: &[(&String, &String)],
        metrics: &[(&String, f64)],
        tags: &[(&String, &String)],
        timestamp_ms: i64,
    ) -> Result<(), MlflowError> {
        let kv = |(k, v): &(&String, &String)| json!({ "key": k, "value": v });
        for chunk in params.chunks(MAX_PARAMS) {
            let params: Vec<Value> = chunk.iter().map(kv).collect();
            self.post(
                "runs/log-batch",
                &json!({ "run_id": run_id, "params": params }),
            )?;
        }
        for chunk in metrics.chunks(MAX_METRICS) {
            let metrics: Vec<Value> = chunk
                .iter()
                .map(|(k, v)| json!({ "key": k, "value": v, "timestamp": timestamp_ms, "step": 0 }))
                .collect();
            self.post(
                "runs/log-batch",
                &json!({ "run_id": run_id, "metrics": metrics }),
            )?;
        }
        for chunk in tags.chunks(MAX_TAGS) {
            let tags: Vec<Value> = chunk.iter().map(kv).collect();
            self.post("runs/log-batch", &json!({ "run_id": run_id, "tags": tags }))?;
        }
        Ok(())
    }

    /// Set run `run_id`'s status (`FINISHED`, `FAILED`, `KILLED`, `RUNNING`) and end time.
    pub fn update_run(
        &self,
        run_id: &str,
        status: &str,
        end_ms: Option<i64>,
    ) -> Result<(), MlflowError> {
        let mut body = json!({ "run_id": run_id, "status": status });
        if let Some(end) = end_ms {
            body["end_time"] = json!(end);
        }
        self.post("runs/update", &body).map(drop)
    }

    /// Upload `bytes` as artifact `file` of the run whose artifacts are at `artifact_uri`.
    /// `Ok(false)` when the server does not proxy artifacts (the URI is not
    /// `mlflow-artifacts:`), so nothing can be uploaded through it.
    pub fn upload_artifact(
        &self,
        artifact_uri: &str,
        file: &str,
        bytes: &[u8],
    ) -> Result<bool, MlflowError> {
        let Some(rest) = artifact_uri.strip_prefix("mlflow-artifacts:") else {
            return Ok(false);
        };
        // `mlflow-artifacts:/1/RUN/artifacts` or `mlflow-artifacts://HOST:PORT/1/RUN/artifacts`.
        let path = match rest.strip_prefix("//") {
            Some(host_path) => host_path.find('/').map_or("", |i| &host_path[i..]),
            None => rest,
        };
        let url = format!(
            "{}/api/2.0/mlflow-artifacts/artifacts{}/{file}",
            self.base,
            path.trim_end_matches('/')
        );
        let mut req = self
            .agent
            .put(&url)
            .header("Content-Type", "application/octet-stream");
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        let resp = req.send(bytes).map_err(|e| self.unreachable(&e))?;
        self.answer("artifact upload", resp).map(|_| true)
    }

    fn post(&self, endpoint: &str, body: &Value) -> Result<Value, MlflowError> {
        self.request(
            "POST",
            &format!("/api/2.0/mlflow/{endpoint}"),
            &[],
            Some(body),
        )
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, MlflowError> {
        let url = format!("{}{path}", self.base);
        let sent = match body {
            Some(b) => {
                let mut req = self
                    .agent
                    .post(&url)
                    .header("Content-Type", "application/json");
                if let Some(a) = &self.auth {
                    req = req.header("Authorization", a);
                }
                req.send(b.to_string().as_str())
            }
            None => {
                debug_assert_eq!(method, "GET");
                let mut req = self.agent.get(&url);
                for (k, v) in query {
                    req = req.query(*k, *v);
                }
                if let Some(a) = &self.auth {
                    req = req.header("Authorization", a);
                }
                req.call()
            }
        };
        let resp = sent.map_err(|e| self.unreachable(&e))?;
        self.answer(path.trim_start_matches("/api/2.0/mlflow/"), resp)
    }

    fn answer(
        &self,
        what: &str,
        mut resp: ureq::http::Response<ureq::Body>,
    ) -> Result<Value, MlflowError> {
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let parsed: Option<Value> = serde_json::from_str(&text).ok();
        if (200..300).contains(&status) {
            return match parsed {
                Some(v) => Ok(v),
                None if text.trim().is_empty() => Ok(json!({})),
                None => Err(self.protocol(what, &text.chars().take(200).collect::<String>())),
            };
        }
        let field = |k: &str| {
            parsed
                .as_ref()
                .and_then(|v| v[k].as_str())
                .map(str::to_string)
        };
        Err(MlflowError::Refused {
            url: self.shown.clone(),
            what: what.to_string(),
            status,
            code: field("error_code").unwrap_or_default(),
            message: field("message").unwrap_or_else(|| text.chars().take(200).collect()),
        })
    }

    fn unreachable(&self, e: &ureq::Error) -> MlflowError {
        let message = match e {
            ureq::Error::Timeout(_) => "timed out".to_string(),
            ureq::Error::Io(io) => format!("connection failed: {}", io.kind()),
            ureq::Error::HostNotFound => "host not found".into(),
            ureq::Error::ConnectionFailed => "connection refused".into(),
            other => other.to_string(),
        };
        MlflowError::Unreachable {
            url: self.shown.clone(),
            message,
        }
    }

    fn protocol(&self, what: &str, message: &str) -> MlflowError {
        MlflowError::Protocol {
            url: self.shown.clone(),
            what: what.to_string(),
            message: message.to_string(),
        }
    }
}

/// A run object of the API (`{info, data}`) as a [`Remote`].
fn remote(run: &Value) -> Remote {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let pairs = |list: &Value| -> BTreeMap<String, String> {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|p| (s(&p["key"]), s(&p["value"])))
            .collect()
    };
    Remote {
        run_id: s(&run["info"]["run_id"]),
        artifact_uri: s(&run["info"]["artifact_uri"]),
        status: s(&run["info"]["status"]),
        params: pairs(&run["data"]["params"]),
        tags: pairs(&run["data"]["tags"]),
        metrics: run["data"]["metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| Some((s(&m["key"]), m["value"].as_f64()?)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_object_is_read_with_its_latest_values() {
        let r = remote(&json!({
            "info": {"run_id": "abc", "artifact_uri": "mlflow-artifacts:/1/abc/artifacts", "status": "FINISHED"},
            "data": {
                "params": [{"key": "seed", "value": "0"}],
                "metrics": [{"key": "bleu", "value": 12.5, "timestamp": 1, "step": 0}],
                "tags": [{"key": "nlebench.run", "value": "7"}]
            }
        }));
        assert_eq!(r.run_id, "abc");
        assert_eq!(r.params["seed"], "0");
        assert_eq!(r.metrics["bleu"], 12.5);
        assert_eq!(r.tags["nlebench.run"], "7");
    }
}
