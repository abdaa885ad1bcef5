//! A Perspective API client (`comments:analyze`) for the toxicity attributes of generated
//! outputs: one request per text, at most `qps` requests per second (retries included),
//! retried after the delays of a [`Backoff`] on 429, 5xx, timeouts and connection errors. The
//! API key
//! travels only in the request URL and never appears in an error, a log line or a stored
//! field.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use types::Backoff;

/// The public endpoint.
pub const DEFAULT_ENDPOINT: &str =
    "https://commentanalyzer.googleapis.com/v1alpha1/comments:analyze";

/// How the client talks to the API.
#[derive(Clone)]
pub struct Config {
    /// `…/v1alpha1/comments:analyze`.
    pub endpoint: String,
    /// The API key (sent as `?key=`).
    pub key: String,
    /// Most requests per second (the API's default quota is 1).
    pub qps: f64,
    /// Attempts per text before it is given up.
    pub max_attempts: u32,
    /// Delays before the retries.
    pub backoff: Backoff,
    /// Time one request may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("endpoint", &self.endpoint)
            .field("key", &"<hidden>")
            .field("qps", &self.qps)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

/// Why a text got no scores (never contains the key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScoreError {
    /// The API refused the request (a 4xx other than 429), e.g. an unsupported language.
    #[error("Perspective refused the request (HTTP {status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The API's message.
        message: String,
    },
    /// The answer is not the documented JSON, or lacks an attribute.
    #[error("Perspective answered something unreadable: {0}")]
    Malformed(String),
    /// Every attempt was rate-limited, failed on the server, or timed out.
    #[error("Perspective gave no answer after {attempts} attempt(s); last: {last}")]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
}

/// A Perspective client, shared by the threads of a worker (the rate limit is per client).
#[derive(Debug)]
pub struct Perspective {
    cfg: Config,
    agent: ureq::Agent,
    slots: RateLimit,
}

/// Request slots at most `1 / qps` apart, shared by a client's threads.
#[derive(Debug)]
struct RateLimit {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimit {
    fn new(qps: f64) -> RateLimit {
        RateLimit {
            interval: Duration::from_secs_f64(1.0 / qps.max(1e-3)),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Take the next free slot as of `now`: the time a request may be sent.
    fn reserve(&self, now: Instant) -> Instant {
        let mut next = self
            .next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let at = (*next).max(now);
        *next = at + self.interval;
        at
    }
}

impl Perspective {
    /// A client with `cfg`.
    pub fn new(cfg: Config) -> Perspective {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(cfg.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Perspective {
            slots: RateLimit::new(cfg.qps),
            cfg,
            agent,
        }
    }

    /// Wait for the next request slot of the rate limit.
    fn wait_for_slot(&self) {
        let now = Instant::now();
        std::thread::sleep(self.slots.reserve(now) - now);
    }

    /// The scores of `text` for `attributes` (summary scores, 0–1), in `language` when given.
    pub fn score(
        &self,
        text: &str,
        attributes: &[String],
        language: Option<&str>,
    ) -> Result<BTreeMap<String, f64>, ScoreError> {
        let mut body = json!({
            "comment": { "text": text },
            "requestedAttributes": attributes.iter().map(|a| (a.clone(), json!({}))).collect::<serde_json::Map<_, _>>(),
            "doNotStore": true,
        });
        if let Some(l) = language {
            body["languages"] = json!([l]);
        }
        let body = body.to_string();
        let url = format!("{}?key={}", self.cfg.endpoint, self.cfg.key);
        let mut last = String::new();
        let mut delays = self.cfg.backoff.delays();
        for attempt in 1..=self.cfg.max_attempts.max(1) {
            if attempt > 1 {
                std::thread::sleep(delays.next().unwrap_or(self.cfg.backoff.cap));
            }
            self.wait_for_slot();
            let sent = self
                .agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body.as_str());
            let mut resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    last = transport_error(&e);
                    continue;
                }
            };
            let status = resp.status().as_u16();
            let text = resp.body_mut().read_to_string().unwrap_or_default();
            match status {
                200 => return parse(&text, attributes),
                429 => last = "HTTP 429 (rate limited)".into(),
                500..=599 => last = format!("HTTP {status}"),
                _ => {
                    return Err(ScoreError::Refused {
                        status,
                        message: api_message(&text),
                    });
                }
            }
        }
        Err(ScoreError::GaveUp {
            attempts: self.cfg.max_attempts.max(1),
            last,
        })
    }
}

/// A transport error without the URL (which holds the key).
fn transport_error(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => "timed out".into(),
        ureq::Error::Io(io) => format!("connection failed: {}", io.kind()),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        _ => "request failed".into(),
    }
}

/// `error.message` of an API error body, else the start of the body.
fn api_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect())
}

/// `attributeScores.ATTR.summaryScore.value` for every attribute asked for.
fn parse(body: &str, attributes: &[String]) -> Result<BTreeMap<String, f64>, ScoreError> {
    let v: Value =
        serde_json::from_str(body).map_err(|e| ScoreError::Malformed(format!("not JSON ({e})")))?;
    attributes
        .iter()
        .map(|a| {
            v["attributeScores"][a]["summaryScore"]["value"]
                .as_f64()
                .filter(|x| (0.0..=1.0).contains(x))
                .map(|x| (a.clone(), x))
                .ok_or_else(|| {
                    ScoreError::Malformed(format!(
                        "no score in 0..1 at attributeScores.{a}.summaryScore.value"
                    ))
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_slots_are_one_interval_apart_retries_included() {
        let limit = RateLimit::new(20.0);
        let now = Instant::now();
        // Seven requests asked for at once (three texts, four retries) go 50 ms apart.
        let slots: Vec<Instant> = (0..7).map(|_| limit.reserve(now)).collect();
        assert_eq!(slots[0], now);
        for w in slots.windows(2) {
            assert_eq!(w[1] - w[0], Duration::from_millis(50));
        }
        // After a quiet while, the next request goes at once.
        let later = now + Duration::from_secs(10);
        assert_eq!(limit.reserve(later), later);
    }

    #[test]
    fn reads_the_documented_answer_and_rejects_others() {
        let attrs = vec!["TOXICITY".to_string(), "INSULT".to_string()];
        let ok = r#"{"attributeScores":{"TOXICITY":{"spanScores":[],"summaryScore":{"value":0.25,"type":"PROBABILITY"}},"INSULT":{"summaryScore":{"value":0.5,"type":"PROBABILITY"}}},"languages":["sv"]}"#;
        let s = parse(ok, &attrs).unwrap();
        assert_eq!(s["TOXICITY"], 0.25);
        assert_eq!(s["INSULT"], 0.5);
        let e = parse(r#"{"attributeScores":{"TOXICITY":{}}}"#, &attrs).unwrap_err();
        assert!(e.to_string().contains("attributeScores.TOXICITY"), "{e}");
        assert!(matches!(
            parse("{oops", &attrs),
            Err(ScoreError::Malformed(_))
        ));
        let cfg = Config {
            endpoint: DEFAULT_ENDPOINT.into(),
            key: "SECRET".into(),
            qps: 1.0,
            max_attempts: 1,
            backoff: Backoff::new(Duration::ZERO, Duration::ZERO),
            timeout: Duration::from_secs(1),
        };
        assert!(!format!("{cfg:?}").contains("SECRET"));
    }
}
