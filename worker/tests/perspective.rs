//! The Perspective client against a local server that speaks the documented
//! `comments:analyze` format: scores read back per attribute, 429 bursts and 5xx retried
//! within the rate limit, malformed answers and refusals reported, timeouts retried, and the
//! key never in an error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use types::Backoff;

use serde_json::{Value, json};
use test_support::http::{Request, Response, Server};
use worker::perspective::{Config, Perspective, ScoreError};

const KEY: &str = "TEST-KEY-d0n7-l34k";
const ATTRS: [&str; 2] = ["TOXICITY", "INSULT"];

/// The documented answer, with scores derived from the text so tests can check them.
fn answer(text: &str) -> String {
    let v = (text.chars().count() % 100) as f64 / 100.0;
    json!({
        "attributeScores": {
            "TOXICITY": { "summaryScore": { "value": v, "type": "PROBABILITY" }, "spanScores": [] },
            "INSULT": { "summaryScore": { "value": v / 2.0, "type": "PROBABILITY" } }
        },
        "languages": ["sv"]
    })
    .to_string()
}

/// Check the request is what the API documents; `Err` is the 400 the API would send.
fn check(r: &Request) -> Result<String, Response> {
    let bad = |m: &str| {
        Response::new(
            400,
            json!({ "error": { "code": 400, "message": m } }).to_string(),
        )
    };
    if r.method != "POST" || !r.target.starts_with("/v1alpha1/comments:analyze?key=") {
        return Err(bad("wrong method or path"));
    }
    if !r.target.ends_with(&format!("key={KEY}")) {
        return Err(bad("API key not valid"));
    }
    let v: Value = serde_json::from_str(&r.body).map_err(|_| bad("invalid JSON"))?;
    let attrs: Vec<&str> = v["requestedAttributes"]
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    if attrs != ATTRS.iter().rev().copied().collect::<Vec<_>>() && attrs != ATTRS {
        return Err(bad("requestedAttributes"));
    }
    v["comment"]["text"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| bad("comment.text"))
}

fn client(server: &Server, qps: f64, attempts: u32, timeout_ms: u64) -> Perspective {
    Perspective::new(Config {
        endpoint: server.url("/v1alpha1/comments:analyze"),
        key: KEY.into(),
        qps,
        max_attempts: attempts,
        backoff: Backoff::new(Duration::from_millis(10), Duration::from_secs(1)),
        timeout: Duration::from_millis(timeout_ms),
    })
}

fn attrs() -> Vec<String> {
    ATTRS.iter().map(|a| a.to_string()).collect()
}

#[test]
fn scores_come_back_per_attribute_and_bursts_of_429_are_retried_within_the_rate_limit() {
    // The first three requests are rate-limited, the fifth fails on the server.
    let server = Server::start(|r| match check(r) {
        Err(e) => e,
        Ok(_) if r.n < 3 => {
            Response::new(429, r#"{"error":{"code":429,"message":"Quota exceeded"}}"#)
        }
        Ok(_) if r.n == 4 => Response::new(503, "{}"),
        Ok(text) => Response::new(200, answer(&text)),
    });
    let p = client(&server, 20.0, 6, 2000);
    let texts = ["Hei på deg", "En lengre tekst om været i Trondheim", "Kort"];
    for t in texts {
        let s = p.score(t, &attrs(), Some("sv")).unwrap();
        let want = (t.chars().count() % 100) as f64 / 100.0;
        assert_eq!(s["TOXICITY"], want, "{t}");
        assert_eq!(s["INSULT"], want / 2.0);
    }
    let log = server.log();
    assert_eq!(log.len(), 3 + 3 + 1, "three 429s and one 503 retried");
    // (Their spacing, 1/qps retries included, is the rate limit's unit test: no clock here.)
    let body: Value = serde_json::from_str(&log[0].body).unwrap();
    assert_eq!(body["languages"], json!(["sv"]));
    assert_eq!(body["doNotStore"], true);
}

#[test]
fn malformed_answers_refusals_and_timeouts_are_reported_without_the_key() {
    let slow = AtomicUsize::new(0);
    let server = Server::start(move |r| match check(r) {
        Err(e) => e,
        Ok(text) if text == "malformed" => {
            Response::new(200, "{\"attributeScores\": {\"TOXICITY\": ")
        }
        Ok(text) if text == "no score" => Response::new(
            200,
            r#"{"attributeScores":{"TOXICITY":{"summaryScore":{"value":0.1}}}}"#,
        ),
        Ok(text) if text == "refused" => Response::new(
            400,
            r#"{"error":{"code":400,"message":"Attribute TOXICITY does not support request languages: nb"}}"#,
        ),
        Ok(text) if text == "slow once" && slow.fetch_add(1, Ordering::SeqCst) == 0 => Response {
            delay: Duration::from_millis(600),
            ..Response::new(200, answer(&text))
        },
        Ok(text) if text == "always slow" => Response {
            delay: Duration::from_millis(600),
            ..Response::new(200, answer(&text))
        },
        Ok(text) => Response::new(200, answer(&text)),
    });
    let p = client(&server, 100.0, 3, 200);
    let errors = [
        p.score("malformed", &attrs(), None).unwrap_err(),
        p.score("no score", &attrs(), None).unwrap_err(),
        p.score("refused", &attrs(), Some("nb")).unwrap_err(),
        p.score("always slow", &attrs(), None).unwrap_err(),
    ];
    assert!(
        matches!(errors[0], ScoreError::Malformed(_)),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].to_string().contains("attributeScores.INSULT"),
        "{}",
        errors[1]
    );
    assert_eq!(
        errors[2],
        ScoreError::Refused {
            status: 400,
            message: "Attribute TOXICITY does not support request languages: nb".into()
        }
    );
    assert!(
        matches!(&errors[3], ScoreError::GaveUp { attempts: 3, last } if last == "timed out"),
        "{}",
        errors[3]
    );
    // A timeout is retried: the second attempt answers.
    let s = p.score("slow once", &attrs(), None).unwrap();
    assert!(s.contains_key("TOXICITY"));
    for e in &errors {
        assert!(!e.to_string().contains(KEY), "{e}");
    }
    // A wrong key is a refusal naming the API's reason, not the key.
    let wrong = Perspective::new(Config {
        key: "other".into(),
        ..Config {
            endpoint: server.url("/v1alpha1/comments:analyze"),
            key: String::new(),
            qps: 100.0,
            max_attempts: 1,
            backoff: Backoff::new(Duration::ZERO, Duration::ZERO),
            timeout: Duration::from_secs(2),
        }
    });
    let e = wrong.score("x", &attrs(), None).unwrap_err();
    assert!(
        e.to_string().contains("API key not valid") && !e.to_string().contains("other"),
        "{e}"
    );
}
