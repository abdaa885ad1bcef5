//! The dashboard serves the sweeps of the embedded store, escaping what users wrote.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Env, Proc, mini_pairs, sweep_toml};

fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    let status = body[9..12].parse().unwrap();
    (status, body)
}

#[test]
fn sweeps_and_a_sweep_page_render_with_escaped_names() {
    let env = Env::embedded();
    let sweep = env.write(
        "s.toml",
        &sweep_toml(
            "web",
            &[("<script>alert(1)</script>", "random:norgpt-tiny@1")],
            &[("ten", 10)],
            5,
            &mini_pairs(),
        ),
    );
    env.ok(&["run", sweep.to_str().unwrap()]);
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let _server = Proc {
        child: env
            .cmd(&["serve", "--addr", &addr])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    };
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "dashboard did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, page) = get(port, "/");
    assert_eq!(status, 200);
    assert!(page.contains("href=\"/sweeps/web\""), "{page}");
    let (status, page) = get(port, "/sweeps/web");
    assert_eq!(status, 200);
    assert!(page.contains("bias_paper = "), "{page}");
    assert!(
        page.contains("10/10") && page.contains("random weights"),
        "{page}"
    );
    assert!(
        !page.contains("<script>alert(1)</script>"),
        "unescaped: {page}"
    );
    assert!(
        page.contains("&#60;script&#62;") || page.contains("&lt;script&gt;"),
        "{page}"
    );
    let (status, page) = get(port, "/sweeps/nope");
    assert_eq!(status, 404);
    assert!(page.contains("no sweep named nope"));
}
