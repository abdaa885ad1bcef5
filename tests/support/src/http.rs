//! A scripted HTTP/1.1 server on loopback for tests of HTTP clients: every request is
//! recorded (method, target, body, arrival time) and answered by the test's function, each
//! connection on its own thread (so an answer may be delayed past a client's timeout).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A request as received.
#[derive(Debug, Clone)]
pub struct Request {
    /// `POST`, `GET`, …
    pub method: String,
    /// Path and query.
    pub target: String,
    /// The body.
    pub body: String,
    /// When it arrived.
    pub at: Instant,
    /// Its position among all requests (0-based).
    pub n: usize,
}

/// An answer: status, body, and a delay before sending it.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The body (sent as JSON).
    pub body: String,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Response {
    /// `status` with `body`, at once.
    pub fn new(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
}

/// A running server; requests are in `requests`.
pub struct Server {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Every request so far, in arrival order.
    pub requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    /// Start answering with `answer` (on a background thread; stops with the process).
    pub fn start(answer: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let (log, answer) = (requests.clone(), Arc::new(answer));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, answer) = (log.clone(), answer.clone());
                std::thread::spawn(move || serve(stream, &log, answer.as_ref()));
            }
        });
        Server { port, requests }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The requests so far.
    pub fn log(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(
    stream: TcpStream,
    log: &Mutex<Vec<Request>>,
    answer: &(dyn Fn(&Request) -> Response + Send + Sync),
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (
            parts.next().unwrap_or_default().to_string(),
            parts.next().unwrap_or_default().to_string(),
        );
        let mut length = 0;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let req = {
            let mut log = log.lock().unwrap();
            let req = Request {
                method,
                target,
                body: String::from_utf8_lossy(&body).into_owned(),
                at: Instant::now(),
                n: log.len(),
            };
            log.push(req.clone());
            req
        };
        let resp = answer(&req);
        std::thread::sleep(resp.delay);
        let mut out = &stream;
        let head = format!(
            "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            resp.status,
            resp.body.len()
        );
        if out.write_all(head.as_bytes()).is_err() || out.write_all(resp.body.as_bytes()).is_err() {
            return;
        }
    }
}
