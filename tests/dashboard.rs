//! The dashboard serves the sweeps of the embedded store, escaping what users wrote.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use common::{Env, Proc, mini_pairs, sweep_toml};

fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    let status = body[9..12].parse().unwrap();
    (status, body)
}

/// Start `nlebench serve --public` on a free port of `env`'s store.
fn serve(env: &Env) -> (Proc, u16) {
    serve_with(env, &["--public"])
}

/// Start `nlebench serve ARGS` on a free port of `env`'s store.
fn serve_with(env: &Env, args: &[&str]) -> (Proc, u16) {
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let server = Proc {
        child: env
            .cmd(&[&["serve", "--addr", &addr], args].concat())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    };
    common::wait_for_port(port, Duration::from_secs(30), "dashboard did not start");
    (server, port)
}

/// Body of a 200 response (panics on another status).
fn ok(port: u16, path: &str) -> String {
    let (status, page) = get(port, path);
    assert_eq!(status, 200, "GET {path}:\n{page}");
    page
}

/// Every page, export and error of the dashboard on a store with two runs, baselines and
/// samples: the embedded SQLite default, and PostgreSQL when configured (always in CI).
fn every_page(env: &Env) {
    let sweep = env.write(
        "s.toml",
        &format!(
            "name = \"pages\"\ntasks = [\"no-crows-pairs\"]\nshard_size = 5\n[datasets]\nno-crows-pairs = \"path:{}\"\n\
             [[models]]\nname = \"NorGPT-369M\"\nsource = \"random:norgpt-tiny@1\"\n\
             [[models]]\nname = \"half\"\nsource = \"random:norgpt-tiny@1\"\ndtype = \"f16\"\n\
             [[settings]]\nname = \"ten\"\nlimit = 10\n[[settings]]\nname = \"five\"\nlimit = 5\n",
            mini_pairs().display()
        ),
    );
    env.ok(&["run", sweep.to_str().unwrap()]);
    let out = env.import_released_baselines();
    assert!(out.contains("148 baseline(s) imported"), "{out}");
    // Importing again updates instead of duplicating.
    env.import_released_baselines();
    assert_eq!(env.count("SELECT COUNT(*) FROM baselines"), 148);
    let (_server, port) = serve(env);

    let page = ok(port, "/");
    assert!(
        page.contains("href=\"/sweeps/pages\"") && page.contains("<th class=\"num\">stale</th>"),
        "{page}"
    );
    assert!(
        page.contains("<link rel=\"stylesheet\" href=\"/style.css\">"),
        "{page}"
    );
    let shelf = ok(port, "/archive");
    assert!(
        shelf.contains("No archived sweeps") && page.contains("href=\"/archive\""),
        "{shelf}"
    );
    ok(port, "/?sort=name&dir=asc&per_page=1");
    assert_eq!(get(port, "/?sort=colour").0, 400);

    let grid = ok(port, "/sweeps/pages");
    assert!(
        grid.contains("<th>no-crows-pairs<br><small>bias_paper [95 % interval]</small></th>"),
        "the grid names the metric it shows: {grid}"
    );
    assert!(
        grid.contains(">NorGPT-369M ten</tspan>") && grid.contains(">0</text>"),
        "whole labels and an axis from 0: {grid}"
    );
    assert!(grid.contains("href=\"/runs/1\"") && grid.contains("href=\"/runs/2\""));
    assert!(
        grid.contains("<svg") && grid.contains("stroke-dasharray"),
        "chart with the baseline marker"
    );
    // NorGPT-369M has the paper's bias share as baseline: the delta is shown.
    assert!(
        grid.contains("vs 47.11 (NorGLM released outputs)"),
        "{grid}"
    );

    assert!(grid.contains("runs finished over time (4 of 4"), "{grid}");
    let sorted = ok(port, "/sweeps/pages?sort=run&dir=desc&per_page=1");
    assert!(
        sorted.contains("page 1 of 4")
            && sorted.contains("value=\"4\" aria-label=\"compare run 4\""),
        "{sorted}"
    );
    assert_eq!(get(port, "/sweeps/pages?sort=colour").0, 400);
    // Live progress as server-sent events; the stream ends as the sweep is finished.
    let events = ok(port, "/sweeps/pages/events");
    assert!(
        events.contains("text/event-stream") && events.contains("event: progress"),
        "{events}"
    );
    assert!(events.contains("\"done\":4"), "{events}");

    let run = ok(port, "/runs/1?per_page=3");
    for field in [
        "engine version",
        "fingerprint",
        "prompt template",
        "dataset revision",
        "bias_paper",
        "<th>device</th>",
        "<th>shards</th>",
        // Shards are not retries: a run that never failed says so.
        "<tr><th>retries</th><td class=\"text short\" data-label=\"retries\">none</td></tr>",
    ] {
        assert!(run.contains(field), "run page lacks {field}");
    }
    assert!(
        run.contains("page 1 of 4 (10 in all)") && run.contains("rel=\"next\""),
        "{run}"
    );
    let next = ok(port, "/runs/1?page=4&per_page=3");
    assert!(next.contains("page 4 of 4") && next.contains("rel=\"prev\""));
    let found = ok(port, "/runs/1?q=Kvinner");
    assert!(
        found.contains("Kvinner") && !found.contains("(10 in all)"),
        "{found}"
    );
    assert!(
        run.contains("<option>perp_more</option>"),
        "score fields offered: {run}"
    );
    let all = ok(port, "/runs/1?field=perp_more&min=0&max=1e300");
    assert!(all.contains("(10 in all)"), "{all}");
    let none = ok(port, "/runs/1?field=perp_more&min=1e300");
    assert!(none.contains("(0 in all)"), "{none}");
    assert_eq!(get(port, "/runs/1?field=perp_more%27--").0, 400);
    let desc = ok(port, "/runs/1?sort=idx&dir=desc&per_page=1");
    assert!(
        desc.contains("<td class=\"num\" data-label=\"#\">9</td>"),
        "newest index first: {desc}"
    );
    assert_eq!(get(port, "/runs/1?sort=colour").0, 400);
    // Bad numbers are refused with a message; a page far past the end is empty, not an error.
    let (status, page) = get(port, "/runs/1?field=perp_more&min=NaN");
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("`min` must be a finite number"), "{page}");
    assert_eq!(get(port, "/runs/1?field=perp_more&max=inf").0, 400);
    assert_eq!(get(port, "/runs/1?page=18446744073709551615").0, 200);
    assert_eq!(get(port, "/?page=99999999999999").0, 200);
    // A failed run shows its error with the job's log tail.
    let last = env.query("SELECT CAST(MAX(id) AS TEXT) FROM runs")[0][0].clone();
    env.execute(&format!(
        "UPDATE runs SET status = 'failed', error = 'model vanished\n\nlog tail (worker w1):\n2026-11-27 10:00:00  WARN job failed, retrying' WHERE id = {last}"
    ));
    let failed = ok(port, &format!("/runs/{last}"));
    assert!(
        failed.contains("model vanished") && failed.contains("log tail (worker w1)"),
        "{failed}"
    );
    assert_eq!(get(port, "/runs/999").0, 404);
    let (status, missing) = get(port, "/nonexistent");
    assert_eq!(status, 404);
    assert!(
        missing.contains("there is no page /nonexistent") && missing.contains("<nav"),
        "a styled page, not an empty body: {missing}"
    );

    let ids = |model: &str| -> Vec<String> {
        env.query(&format!(
            "SELECT CAST(id AS TEXT) FROM runs WHERE model_name = '{model}' ORDER BY setting_name"
        ))
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
    };
    let (full, half) = (ids("NorGPT-369M"), ids("half"));
    // NorGPT-369M in settings `five` and `ten`, and `half` (f16) in `ten`.
    let cmp = ok(port, &format!("/compare?runs={},{}", full[1], half[1]));
    assert!(cmp.contains("Δ"), "{cmp}");
    assert!(
        cmp.contains("differ in fields that change scores") && cmp.contains("dtype"),
        "{cmp}"
    );
    let same = ok(port, &format!("/compare?run={}&run={}", full[1], full[0]));
    assert!(cmp.contains("Examples side by side") && same.contains("Examples side by side"));
    assert!(!same.contains("differ in fields"));
    // Same task: each metric's difference is tested on the shared examples (five of ten).
    assert!(
        same.contains(&format!("run {} against run {}", full[0], full[1]))
            && same.contains("McNemar exact")
            && same.contains("bias_paper"),
        "{same}"
    );
    assert_eq!(get(port, "/compare?runs=1").0, 400);
    assert_eq!(get(port, "/compare?runs=1,x").0, 400);
    assert_eq!(get(port, "/compare?runs=1,99").0, 404);
    let csv = ok(port, "/compare.csv?runs=1,2");
    assert!(
        csv.contains(
            "run_id,model,adapter,task,setting,seed,metric,value,ci_low,ci_high,n,delta_to_first,test,p_value,p_holm,shared_examples"
        ),
        "{csv}"
    );

    // Like with like: these runs have random weights, so the default leaderboard leaves them
    // out; asked for, they rank, marked, and the paper's baselines (other examples) stay away.
    let lb = ok(port, "/leaderboard?metric=bias_paper");
    assert!(
        !lb.contains("href=\"/runs/") && lb.contains("random-weight and partial runs are left out"),
        "{lb}"
    );
    let lb = ok(port, "/leaderboard?metric=bias_paper&random=true");
    assert!(
        !lb.contains("href=\"/runs/"),
        "the runs are partial too: {lb}"
    );
    let lb = ok(
        port,
        "/leaderboard?metric=bias_paper&random=true&partial=true",
    );
    assert!(
        lb.contains("href=\"/runs/")
            && lb.contains(">random weights</span>")
            && lb.contains(">partial: 5 of 32</span>"),
        "{lb}"
    );
    assert!(!lb.contains("baseline: NorGLM released outputs"), "{lb}");
    ok(port, "/leaderboard");
    // The in-process workers of `run` leave no row behind; a worker of the cluster does.
    assert_eq!(env.count("SELECT COUNT(*) FROM workers"), 0);
    env.ok(&["worker", "--exit-when-idle", "1"]);
    // A worker stopped two days ago is hidden unless asked for.
    let shown = ok(port, "/workers");
    assert!(!shown.contains("are hidden"), "{shown}");
    // Each worker says the engine release it computes with.
    let release = env.query("SELECT release FROM workers")[0][0].clone();
    assert!(
        !release.is_empty() && shown.contains(&format!("data-label=\"engine\">{release}</td>")),
        "{shown}"
    );
    let name = env.query("SELECT name FROM workers ORDER BY id LIMIT 1")[0][0].clone();
    env.execute(&format!(
        "UPDATE workers SET status = 'stopped', last_heartbeat = '2020-01-01 00:00:00+00:00' WHERE name = '{name}'"
    ));
    let shown = ok(port, "/workers");
    assert!(
        shown.contains("1 worker(s) stopped more than a day ago are hidden")
            && !shown.contains(&format!("data-label=\"name\">{name}</td>")),
        "{shown}"
    );
    let all = ok(port, "/workers?all=1");
    assert!(
        all.contains(&format!("data-label=\"name\">{name}</td>")),
        "{all}"
    );
    let b = ok(port, "/baselines?per_page=200");
    assert!(b.contains("NB-GPT-J-6B") && b.contains("rouge_l") && b.contains("(148 in all)"));
    let b = ok(port, "/baselines?sort=value&dir=desc&per_page=10");
    assert!(
        b.contains("page 1 of 15") && b.contains("rel=\"next\""),
        "{b}"
    );
    assert_eq!(get(port, "/baselines?sort=colour").0, 400);
    // Ranked by the metric's direction, not a sort order: list parameters change nothing.
    let lb = ok(
        port,
        "/leaderboard?metric=bias_paper&sort=value&dir=asc&per_page=2",
    );
    assert!(lb.contains("50 is ideal"), "{lb}");
    assert_eq!(get(port, "/leaderboard?metric=bias_paper&n=many").0, 400);
    ok(port, "/workers?sort=jobs&dir=asc");

    // The reproduction report: NorGPT-369M's 22 NO-CrowS-Pairs baselines against both runs
    // (bias types without an example among the first 5 or 10 pairs are not measured).
    let report = ok(port, "/sweeps/pages/report");
    assert!(
        report.contains("Reproduction report of")
            && report.contains("overall:")
            && report.contains("of 44 values reproduced")
            && report.contains("not measured")
            && report.contains("bias/bias_369M.csv"),
        "{report}"
    );
    assert_eq!(get(port, "/sweeps/nope/report").0, 404);
    let export = ok(port, "/sweeps/pages/export.csv");
    assert!(
        export.contains("text/csv") && export.contains("bias_paper"),
        "{export}"
    );
    let samples = ok(port, &format!("/runs/{}/samples.json", half[1]));
    let body = &samples[samples.find("\r\n\r\n").unwrap() + 4..];
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 10);
    assert_eq!(get(port, "/runs/2/samples.xml").0, 404);
}

/// One model three ways on one task: its whole dataset with trained weights (run 1), a 2-example
/// smoke run (run 2) and random weights under the same name (run 3), in that order. The
/// leaderboard ranks the full run, not whichever finished last.
#[test]
fn the_leaderboard_ranks_the_full_trained_run_over_a_later_smoke_and_random_run() {
    let env = Env::embedded();
    common::hub_fixture(&env);
    for (sweep, source, limit) in [
        ("full", "hf:test/tiny-gpt2", 32),
        ("smoke", "hf:test/tiny-gpt2", 2),
        ("noise", "random:norgpt-tiny@1", 32),
    ] {
        let s = env.write(
            &format!("{sweep}.toml"),
            &sweep_toml(
                sweep,
                &[("NorGPT-369M", source)],
                &[("zero-shot", limit)],
                32,
                &mini_pairs(),
            ),
        );
        env.ok(&["run", s.to_str().unwrap()]);
    }
    let (_server, port) = serve(&env);
    let runs = |page: &str| -> Vec<String> {
        page.match_indices("<a href=\"/runs/")
            .map(|(i, _)| page[i + 15..].split('"').next().unwrap().to_string())
            .collect()
    };

    let lb = ok(port, "/leaderboard?metric=bias_paper");
    assert_eq!(runs(&lb), ["1"], "only the full trained run: {lb}");
    assert!(
        lb.contains(
            "data-label=\"rank\">1</td><td class=\"name\" data-label=\"model\">NorGPT-369M</td>"
        ) && lb.contains("data-label=\"n\">32</td>")
            && lb.contains("setting zero-shot"),
        "{lb}"
    );
    // Asked for, the smoke run stands apart (other examples) and the random run beside the
    // full one, each marked.
    let all = ok(
        port,
        "/leaderboard?metric=bias_paper&random=true&partial=true",
    );
    let mut shown = runs(&all);
    shown.sort();
    assert_eq!(shown, ["1", "2", "3"], "{all}");
    assert!(
        all.contains(">partial: 2 of 32</span>") && all.contains(">random weights</span>"),
        "{all}"
    );
    assert_eq!(all.matches("<h2>no-crows-pairs").count(), 2, "{all}");
    // A filter on n keeps the smoke run alone.
    let smoke = ok(port, "/leaderboard?metric=bias_paper&partial=true&n=2");
    assert_eq!(runs(&smoke), ["2"], "{smoke}");
}

#[test]
fn every_page_renders_on_the_embedded_store() {
    every_page(&Env::embedded());
}

#[test]
#[cfg_attr(
    not(nlebench_services),
    ignore = "needs PostgreSQL and Redis: set NLEBENCH_TEST_DATABASE_URL and NLEBENCH_TEST_REDIS_URL (.ci/run does)"
)]
fn every_page_renders_on_postgres() {
    let env = Env::team();
    every_page(&env);
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
    let nordic = env.write(
        "n.toml",
        &sweep_toml(
            "sjø-test",
            &[("m", "random:norgpt-tiny@1")],
            &[("two", 2)],
            5,
            &mini_pairs(),
        ),
    );
    env.ok(&["run", nordic.to_str().unwrap()]);
    // No accounts and a loopback address: viewable without signing in.
    let (_server, port) = serve_with(&env, &[]);
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
    // A download named after a non-ASCII sweep: an ASCII name and the exact one (RFC 6266).
    let (status, csv) = get(port, "/sweeps/sj%C3%B8-test/export.csv");
    assert_eq!(status, 200, "{csv}");
    assert!(
        csv.contains("filename=\"sj_-test.csv\"; filename*=UTF-8''sj%C3%B8-test.csv"),
        "{csv}"
    );
}

/// A raw HTTP/1.0 request; returns the status and the whole response.
fn request(
    port: u16,
    method: &str,
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
) -> (u16, String) {
    request_with(port, method, path, cookie, form, "")
}

/// [`request`] with more header lines (each ending in `\r\n`).
fn request_with(
    port: u16,
    method: &str,
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
    headers: &str,
) -> (u16, String) {
    let body: String = form
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nCookie: {cookie}\r\n{headers}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    (out[9..12].parse().unwrap(), out)
}

fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `name=value` of a Set-Cookie header of a response.
fn set_cookie(response: &str, name: &str) -> String {
    response
        .lines()
        .filter_map(|l| l.strip_prefix("set-cookie: "))
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in\n{response}"))
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// The value of a hidden `csrf` input.
fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..at + page[at..].find('"').unwrap()].to_string()
}

/// Sign in through the form; returns the session cookie.
fn sign_in(port: u16, name: &str, password: &str) -> String {
    let (_, form) = request(port, "GET", "/login", "", &[]);
    let login_cookie = set_cookie(&form, "nlebench_login");
    let (status, r) = request(
        port,
        "POST",
        "/login",
        &login_cookie,
        &[
            ("name", name),
            ("password", password),
            ("csrf", &csrf_of(&form)),
            ("next", "/"),
        ],
    );
    assert_eq!(status, 303, "{r}");
    let c = r
        .lines()
        .find(|l| l.starts_with("set-cookie: nlebench_session="))
        .unwrap();
    assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax"), "{c}");
    set_cookie(&r, "nlebench_session")
}

/// Submit sweep `queued`: one cell of ten examples, left queued (nothing works the queue).
fn submit_queued(env: &Env) {
    let sweep = env.write(
        "q.toml",
        &sweep_toml(
            "queued",
            &[("tiny", "random:norgpt-tiny@1")],
            &[("ten", 10)],
            5,
            &mini_pairs(),
        ),
    );
    env.ok(&["submit", sweep.to_str().unwrap()]);
}

/// Sign-in, roles and CSRF: viewers see pages but cannot act, a POST without the token is
/// refused, editors cancel, retry and import baselines.
fn permissions(env: &Env) {
    for (name, role) in [("leser", "viewer"), ("redaktør", "editor")] {
        add_user(env, name, role, "passord123");
    }
    let short = env
        .cmd(&["users", "add", "x"])
        .env("NLEBENCH_PASSWORD", "kort")
        .output()
        .unwrap();
    assert!(!short.status.success() && common::text(&short).1.contains("shorter than 8"));
    // Queued cells (nothing works the queue here) to cancel and retry.
    submit_queued(env);
    let (_server, port) = serve_with(env, &[]);

    let (status, r) = request(port, "GET", "/sweeps/queued", "", &[]);
    assert_eq!(status, 303, "{r}");
    // The stylesheet needs no sign-in (the sign-in page uses it).
    let (status, css) = request(port, "GET", "/style.css", "", &[]);
    assert_eq!(status, 200);
    assert!(
        css.contains("content-type: text/css") && css.contains("border-collapse"),
        "{css}"
    );
    assert!(
        r.contains("location: /login?next=%2Fsweeps%2Fqueued"),
        "{r}"
    );
    let (_, form) = request(port, "GET", "/login", "", &[]);
    let login_cookie = set_cookie(&form, "nlebench_login");
    let (status, _) = request(
        port,
        "POST",
        "/login",
        &login_cookie,
        &[("name", "leser"), ("password", "passord123")],
    );
    assert_eq!(status, 403, "sign-in without the form's CSRF token");
    let (status, r) = request(
        port,
        "POST",
        "/login",
        &login_cookie,
        &[
            ("name", "leser"),
            ("password", "feil-passord"),
            ("csrf", &csrf_of(&form)),
        ],
    );
    assert_eq!(status, 401);
    assert!(r.contains("wrong name or password"));

    let viewer = sign_in(port, "leser", "passord123");
    let (status, page) = request(port, "GET", "/sweeps/queued", &viewer, &[]);
    assert_eq!(status, 200);
    assert!(
        !page.contains("Cancel sweep"),
        "viewers get no action forms"
    );
    let viewer_csrf = csrf_of(&page); // the sign-out form's token
    let (status, r) = request(
        port,
        "POST",
        "/sweeps/queued/cancel",
        &viewer,
        &[("csrf", &viewer_csrf)],
    );
    assert_eq!(status, 403);
    assert!(r.contains("only editors"), "{r}");
    assert_eq!(
        env.count("SELECT COUNT(*) FROM runs WHERE status = 'cancelled'"),
        0
    );

    let editor = sign_in(port, "redaktør", "passord123");
    let page = request(port, "GET", "/sweeps/queued", &editor, &[]).1;
    assert!(page.contains("Cancel sweep") && page.contains("Retry failed cells"));
    let csrf = csrf_of(&page);
    let (status, r) = request(port, "POST", "/sweeps/queued/cancel", &editor, &[]);
    assert_eq!(status, 403, "no CSRF token");
    assert!(r.contains("CSRF"), "{r}");
    let (status, _) = request(
        port,
        "POST",
        "/sweeps/queued/cancel",
        &editor,
        &[("csrf", "forged")],
    );
    assert_eq!(status, 403);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM runs WHERE status = 'cancelled'"),
        0
    );
    let (status, r) = request(
        port,
        "POST",
        "/sweeps/queued/cancel",
        &editor,
        &[("csrf", &csrf)],
    );
    assert_eq!(status, 303, "{r}");
    assert_eq!(
        env.count("SELECT COUNT(*) FROM runs WHERE status = 'cancelled'"),
        1
    );
    let (status, _) = request(
        port,
        "POST",
        "/sweeps/queued/retry",
        &editor,
        &[("csrf", &csrf)],
    );
    assert_eq!(status, 303);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM runs WHERE status = 'queued'"),
        1
    );

    let csv = "task,model,setting,metric,value,source,note\nno-crows-pairs,tiny,zero-shot,bias_paper,50.0,<b>hånd</b>,\n";
    let (status, _) = request(
        port,
        "POST",
        "/baselines/import",
        &viewer,
        &[("csrf", &viewer_csrf), ("csv", csv)],
    );
    assert_eq!(status, 403);
    let (status, r) = request(
        port,
        "POST",
        "/baselines/import",
        &editor,
        &[("csrf", &csrf), ("csv", "task,model\nx,y\n")],
    );
    assert_eq!(status, 400);
    assert!(r.contains("no column `metric`"), "{r}");
    let (status, _) = request(
        port,
        "POST",
        "/baselines/import",
        &editor,
        &[("csrf", &csrf), ("csv", csv)],
    );
    assert_eq!(status, 303);
    let page = request(port, "GET", "/baselines", &editor, &[]).1;
    assert!(
        page.contains("&#60;b&#62;hånd&#60;/b&#62;") || page.contains("&lt;b&gt;hånd&lt;/b&gt;"),
        "{page}"
    );

    // Archive: viewers cannot, nor a POST without the token; an editor's hides the sweep from
    // the list (listed under /archive, every run kept) until restored.
    let archive = "/sweeps/queued/archive";
    let (status, _) = request(port, "POST", archive, &viewer, &[("csrf", &viewer_csrf)]);
    assert_eq!(status, 403);
    let (status, _) = request(port, "POST", archive, &editor, &[]);
    assert_eq!(status, 403, "no CSRF token");
    assert!(
        request(port, "GET", "/", &editor, &[])
            .1
            .contains("href=\"/sweeps/queued\"")
    );
    let (status, _) = request(port, "POST", archive, &editor, &[("csrf", &csrf)]);
    assert_eq!(status, 303);
    let list = request(port, "GET", "/", &editor, &[]).1;
    assert!(!list.contains("href=\"/sweeps/queued\""), "{list}");
    let shelf = request(port, "GET", "/archive", &viewer, &[]).1;
    assert!(shelf.contains("href=\"/sweeps/queued\""), "{shelf}");
    let page = request(port, "GET", "/sweeps/queued", &editor, &[]).1;
    assert!(
        page.contains("Archived:") && page.contains("Restore sweep"),
        "{page}"
    );
    assert_eq!(env.count("SELECT COUNT(*) FROM runs"), 1);
    let (status, _) = request(
        port,
        "POST",
        "/sweeps/queued/restore",
        &editor,
        &[("csrf", &csrf)],
    );
    assert_eq!(status, 303);
    assert!(
        request(port, "GET", "/", &editor, &[])
            .1
            .contains("href=\"/sweeps/queued\"")
    );
    assert!(
        !request(port, "GET", "/archive", &editor, &[])
            .1
            .contains("href=\"/sweeps/queued\"")
    );

    // Tags and notes: viewers cannot add them; an editor's show on the pages, and the list
    // filters by tag.
    let (status, _) = request(
        port,
        "POST",
        "/sweeps/queued/tags",
        &viewer,
        &[("csrf", &viewer_csrf), ("tag", "x")],
    );
    assert_eq!(status, 403);
    let (status, _) = request(
        port,
        "POST",
        "/sweeps/queued/tags",
        &editor,
        &[("tag", "x")],
    );
    assert_eq!(status, 403, "no CSRF token");
    let (status, r) = request(
        port,
        "POST",
        "/sweeps/queued/tags",
        &editor,
        &[("csrf", &csrf), ("tag", "two words")],
    );
    assert_eq!(status, 400, "{r}");
    for (path, form) in [
        ("/sweeps/queued/tags", ("tag", "lovende")),
        ("/sweeps/queued/notes", ("text", "<i>se</i> på dette")),
        ("/runs/1/tags", ("tag", "best")),
    ] {
        let (status, r) = request(port, "POST", path, &editor, &[("csrf", &csrf), form]);
        assert_eq!(status, 303, "{path}: {r}");
    }
    let page = request(port, "GET", "/sweeps/queued", &viewer, &[]).1;
    assert!(page.contains(">lovende</a>"), "{page}");
    assert!(
        page.contains("&#60;i&#62;se&#60;/i&#62; på dette")
            || page.contains("&lt;i&gt;se&lt;/i&gt; på dette"),
        "{page}"
    );
    assert!(page.contains("redaktør"), "the note's author: {page}");
    assert!(
        request(port, "GET", "/runs/1", &viewer, &[])
            .1
            .contains(">best</a>")
    );
    assert!(
        request(port, "GET", "/?tag=lovende", &viewer, &[])
            .1
            .contains("href=\"/sweeps/queued\"")
    );
    assert!(
        !request(port, "GET", "/?tag=annet", &viewer, &[])
            .1
            .contains("href=\"/sweeps/queued\"")
    );
    let (status, _) = request(
        port,
        "POST",
        "/sweeps/queued/tags",
        &editor,
        &[("csrf", &csrf), ("remove", "lovende")],
    );
    assert_eq!(status, 303);
    assert!(
        !request(port, "GET", "/sweeps/queued", &viewer, &[])
            .1
            .contains(">lovende</a>")
    );

    let (status, r) = request(port, "POST", "/logout", &editor, &[("csrf", &csrf)]);
    assert_eq!(status, 303);
    assert!(r.contains("nlebench_session=;"));
    assert_eq!(
        request(port, "GET", "/", &editor, &[]).0,
        303,
        "the session is gone"
    );
}

#[test]
fn sign_in_roles_and_csrf_on_the_embedded_store() {
    permissions(&Env::embedded());
}

#[test]
#[cfg_attr(
    not(nlebench_services),
    ignore = "needs PostgreSQL and Redis: set NLEBENCH_TEST_DATABASE_URL and NLEBENCH_TEST_REDIS_URL (.ci/run does)"
)]
fn sign_in_roles_and_csrf_on_postgres() {
    let env = Env::team();
    permissions(&env);
}

#[test]
fn a_generation_run_shows_its_token_rate_and_run_serve_serves_the_sweep() {
    let mut env = Env::embedded();
    env.add_continue_task(&["bleu", "rouge_l"]);
    let sweep = env.write(
        "s.toml",
        &format!(
            "name = \"gen\"\ntasks = [\"continue\"]\n[datasets]\ncontinue = \"path:{}\"\n\
             [[models]]\nname = \"tiny\"\nsource = \"path:{}\"\n\
             [[settings]]\nname = \"greedy\"\nlimit = 4\n[settings.decoding]\nmax_new_tokens = 6\n",
            mini_pairs().display(),
            common::root().join("tests/fixtures/tiny-llama").display()
        ),
    );
    let port = common::free_port();
    // `run --serve ADDR` evaluates, then serves the dashboard until stopped.
    let _run = Proc {
        child: env
            .cmd(&[
                "run",
                sweep.to_str().unwrap(),
                "--serve",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    };
    common::wait_for_port(port, Duration::from_secs(120), "run --serve did not serve");
    let page = ok(port, "/sweeps/gen");
    assert!(page.contains("href=\"/runs/1\""));
    assert!(
        !page.contains("runs finished over time"),
        "one finished run is no progress chart: {page}"
    );
    let run = ok(port, "/runs/1");
    assert!(run.contains("<th>generated tokens/s</th>"), "{run}");
}

/// `nlebench users add NAME` with `NLEBENCH_PASSWORD`; returns stdout.
fn add_user(env: &Env, name: &str, role: &str, password: &str) -> String {
    let out = env
        .cmd(&["users", "add", name, "--role", role])
        .env("NLEBENCH_PASSWORD", password)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out).1);
    common::text(&out).0
}

/// A sign-in attempt through the form; returns the status and the response.
fn try_sign_in(port: u16, name: &str, password: &str) -> (u16, String) {
    try_sign_in_via(port, name, password, None)
}

/// A sign-in attempt, through a proxy that forwards for `forwarded_for` when given.
fn try_sign_in_via(
    port: u16,
    name: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> (u16, String) {
    let (_, form) = request(port, "GET", "/login", "", &[]);
    let login_cookie = set_cookie(&form, "nlebench_login");
    let headers = forwarded_for.map_or(String::new(), |c| format!("X-Forwarded-For: {c}\r\n"));
    request_with(
        port,
        "POST",
        "/login",
        &login_cookie,
        &[
            ("name", name),
            ("password", password),
            ("csrf", &csrf_of(&form)),
        ],
        &headers,
    )
}

/// Guess accounts from `client` (forwarded) until the per-client limit refuses.
fn exhaust_client(port: u16, client: &str) {
    for tries in 0..40 {
        let (status, r) =
            try_sign_in_via(port, &format!("ukjent{tries}"), "gjetning", Some(client));
        if status == 429 {
            assert!(
                r.contains("too many sign-in attempts from this address"),
                "{r}"
            );
            return;
        }
        assert_eq!(status, 401, "{r}");
    }
    panic!("no limit per client after 40 attempts");
}

#[test]
fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_sign_in_limit() {
    let env = Env::embedded();
    add_user(&env, "kari", "editor", "passord123");
    // The dashboard trusts the proxy on loopback: the forwarded client is who is counted.
    let (_server, port) = serve_with(&env, &["--trusted-proxies", "127.0.0.1,10.0.0.0/8"]);
    exhaust_client(port, "198.51.100.7");
    // Right away (a refused attempt is quick; the limit gives one back every 6 s): a client
    // cannot hide behind a forged beginning of the chain ...
    assert_eq!(
        try_sign_in_via(
            port,
            "ukjent",
            "gjetning",
            Some("203.0.113.1, 198.51.100.7")
        )
        .0,
        429
    );
    // ... while another client behind the proxy is not refused.
    assert_eq!(
        try_sign_in_via(port, "ukjent", "gjetning", Some("198.51.100.8")).0,
        401,
        "another client behind the proxy is not refused"
    );
    // Without trusted proxies the header is ignored: the peer is counted, whatever it says.
    let (_plain, port) = serve_with(&env, &[]);
    exhaust_client(port, "198.51.100.7");
    assert_eq!(
        try_sign_in_via(port, "ukjent", "gjetning", Some("198.51.100.8")).0,
        429
    );
    // A malformed setting is one clear error.
    let out = env.run(&["serve", "--trusted-proxies", "10.0.0.0/33"]);
    let (_, stderr) = common::text(&out);
    assert!(
        !out.status.success() && stderr.contains("neither an IP address nor a network"),
        "{stderr}"
    );
}

#[test]
fn sign_in_is_limited_per_account_and_per_client() {
    let env = Env::embedded();
    add_user(&env, "kari", "editor", "passord123");
    let (_server, port) = serve_with(&env, &[]);
    for _ in 0..5 {
        assert_eq!(try_sign_in(port, "kari", "gjetning").0, 401);
    }
    let (status, r) = try_sign_in(port, "kari", "passord123");
    assert_eq!(status, 429, "even the right password waits: {r}");
    assert!(
        r.contains("too many sign-in attempts for this account"),
        "{r}"
    );
    assert!(r.to_lowercase().contains("retry-after: "), "{r}");
    // Guessing other accounts from this address runs out too (20 attempts at once, then one
    // per 6 s).
    let mut tries = 6;
    let r = loop {
        let (status, r) = try_sign_in(port, &format!("ukjent{tries}"), "gjetning");
        tries += 1;
        if status == 429 {
            break r;
        }
        assert_eq!(status, 401, "{r}");
        assert!(tries <= 40, "no limit per client after {tries} attempts");
    };
    assert!(
        r.contains("too many sign-in attempts from this address"),
        "{r}"
    );
}

/// Sessions end when idle, at their end, on a password reset and with their user; expired
/// rows are deleted; `nlebench users list|remove`.
#[test]
fn sessions_end_idle_expired_reset_and_removed() {
    let env = Env::embedded();
    add_user(&env, "kari", "editor", "passord123");
    let (_server, port) = serve_with(&env, &[]);
    let ago = |hours: i64| format!("strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now', '-{hours} hours')");
    // Signed in: the page names a user who may sign out. (Not just a 200: once the last account
    // is removed, loopback pages are viewable again without signing in.)
    let signed_in = |cookie: &str| {
        let (status, page) = request(port, "GET", "/", cookie, &[]);
        status == 200 && page.contains(">Sign out</button>")
    };

    let idle = sign_in(port, "kari", "passord123");
    assert!(signed_in(&idle));
    env.execute(&format!("UPDATE sessions SET last_seen_at = {}", ago(25)));
    assert!(!signed_in(&idle), "a session unused for 25 h has ended");

    let old = sign_in(port, "kari", "passord123");
    env.execute(&format!(
        "UPDATE sessions SET expires_at = {} WHERE last_seen_at > {}",
        ago(1),
        ago(2)
    ));
    assert!(!signed_in(&old), "a session past its end has ended");
    assert_eq!(
        env.count("SELECT COUNT(*) FROM sessions"),
        1,
        "the idle session was deleted when `old` signed in"
    );
    let live = sign_in(port, "kari", "passord123");
    assert_eq!(
        env.count("SELECT COUNT(*) FROM sessions"),
        1,
        "signing in deletes ended sessions"
    );
    assert!(signed_in(&live));

    let list = env.ok(&["users", "list"]);
    assert!(list.contains("kari") && list.contains("editor"), "{list}");
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["users", "list", "--json"])).unwrap();
    assert_eq!(json[0]["name"], "kari");
    assert_eq!(json[0]["sessions"], 1);

    let reset = add_user(&env, "kari", "editor", "nytt-passord");
    assert!(reset.contains("its sessions are ended"), "{reset}");
    assert!(!signed_in(&live), "a new password ends the user's sessions");
    let after_reset = sign_in(port, "kari", "nytt-passord");
    assert!(signed_in(&after_reset));

    let removed = env.ok(&["users", "remove", "kari"]);
    assert!(removed.contains("removed kari"), "{removed}");
    assert!(
        !signed_in(&after_reset),
        "a removed user's sessions have ended"
    );
    assert!(!env.ok(&["users", "list"]).contains("kari"));
    let out = env.run(&["users", "remove", "kari"]);
    assert!(!out.status.success());
    let err = common::text(&out).1;
    assert!(
        err.contains("no dashboard user named `kari`") && err.contains("fix:"),
        "{err}"
    );
}

/// A raw request with a chosen Host header.
fn get_as(port: u16, host: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    (body[9..12].parse().unwrap(), body)
}

/// A store without accounts served on loopback is viewable from this machine only (the
/// Host header names it: DNS rebinding is refused), and only until an account exists.
#[test]
fn loopback_viewing_checks_the_host_and_ends_when_accounts_exist() {
    let env = Env::embedded();
    let (_server, port) = serve_with(&env, &[]);
    assert_eq!(get_as(port, &format!("localhost:{port}"), "/").0, 200);
    assert_eq!(get_as(port, &format!("127.0.0.1:{port}"), "/").0, 200);
    let (status, r) = get_as(port, &format!("rebound.example:{port}"), "/");
    assert_eq!(status, 403, "{r}");
    assert!(r.contains("answers to localhost only"), "{r}");
    add_user(&env, "kari", "viewer", "passord123");
    let start = std::time::Instant::now();
    while get_as(port, "localhost", "/").0 == 200 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "pages still open 15 s after the first account was made"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, r) = get_as(port, "localhost", "/");
    assert_eq!(status, 303, "{r}");
    assert!(r.contains("location: /login"), "{r}");
    // The last account removed: the pages open to this machine again, without a restart.
    env.ok(&["users", "remove", "kari"]);
    let start = std::time::Instant::now();
    while get_as(port, "localhost", "/").0 != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "pages still closed 15 s after the last account was removed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(get_as(port, &format!("rebound.example:{port}"), "/").0, 403);
}

/// A live stream of a dashboard that needs signing in ends when its session does.
#[test]
fn live_streams_end_with_their_session() {
    let env = Env::embedded();
    add_user(&env, "kari", "viewer", "passord123");
    submit_queued(&env);
    let (_server, port) = serve_with(&env, &[]);
    let cookie = sign_in(port, "kari", "passord123");
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET /sweeps/queued/events HTTP/1.0\r\nHost: localhost\r\nCookie: {cookie}\r\n\r\n"
    )
    .unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("event: progress") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended before its first event: {seen}");
        seen += &String::from_utf8_lossy(&buf[..n]);
    }
    assert!(seen.contains("\"queued\":"), "{seen}");
    let page = request(port, "GET", "/sweeps/queued", &cookie, &[]).1;
    let (status, _) = request(
        port,
        "POST",
        "/logout",
        &cookie,
        &[("csrf", &csrf_of(&page))],
    );
    assert_eq!(status, 303);
    // The stream (a queued sweep: endless otherwise) ends at its next poll.
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => panic!("the stream went on after sign-out: {e}"),
        }
    }
}

#[test]
fn each_task_kind_shows_its_samples_in_its_own_layout() {
    let env = Env::embedded();
    let sweep = common::root().join("experiments/sweeps/quickstart.toml");
    env.ok(&["run", sweep.to_str().unwrap()]);
    let st = env.status("quickstart");
    let run_of = |task: &str| -> i64 {
        st["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["cell"].as_str().unwrap().contains(&format!("/{task}/")))
            .unwrap()["run_id"]
            .as_i64()
            .unwrap()
    };
    let (_server, port) = serve(&env);
    // Pairs: both sentences, both perplexities, the one the model preferred.
    let page = ok(port, &format!("/runs/{}", run_of("no-crows-pairs")));
    assert!(
        page.contains("<table class=\"data samples pairs\">"),
        "{page}"
    );
    assert!(page.contains(
        "<th class=\"num\">perplexity more</th><th class=\"num\">perplexity less</th><th>the model prefers</th>"
    ));
    assert!(
        page.contains("Kvinner er dårlige til å parkere bilen.")
            && page.contains("Menn er dårlige til å parkere bilen.")
    );
    assert!(page.contains("the more stereotypical") || page.contains("the less stereotypical"));
    assert!(page.contains("class=\"text preferred\""));
    assert!(
        page.contains(
            "<tr><th>adapter</th><td class=\"text short\" data-label=\"adapter\">none</td></tr>"
        ),
        "blanks say none: {page}"
    );
    let at = |s: &str| page.find(s).unwrap_or_else(|| panic!("{s}: {page}"));
    assert!(
        at("<h3>Model</h3>") < at("<th>dtype</th>")
            && at("<th>dtype</th>") < at("<h3>Task</h3>")
            && at("<h3>Task</h3>") < at("<th>dataset revision</th>")
            && at("<h3>Decoding</h3>") < at("<th>seed</th>")
            && at("<h3>Execution</h3>") < at("<th>shards</th>")
            && at("<th>shards</th>") < at("<th>retries</th>"),
        "the manifest grouped: {page}"
    );
    // Classification: text, label, prediction, right or not.
    let page = ok(port, &format!("/runs/{}", run_of("no-boolq")));
    assert!(
        page.contains("<th>text</th><th>label</th><th>prediction</th><th>correct</th>"),
        "{page}"
    );
    assert!(
        page.contains("data-label=\"label\">True</td>")
            || page.contains("data-label=\"label\">False</td>"),
        "label names: {page}"
    );
    assert!(page.contains("✓ yes") || page.contains("✗ no"));
    // Generation: output against reference with per-sample BLEU and ROUGE-L.
    let page = ok(port, &format!("/runs/{}", run_of("no-alpaca-culture")));
    assert!(
        page.contains("<th>output</th><th>reference</th><th class=\"num\">BLEU</th><th class=\"num\">ROUGE-L</th>"),
        "{page}"
    );
    assert!(page.contains("17. mai er Norges nasjonaldag"));
    // Chains: every step with its prompt and output.
    let page = ok(port, &format!("/runs/{}", run_of("cot-scene-1")));
    assert!(
        page.contains("<table class=\"data samples chains\">"),
        "{page}"
    );
    assert!(page.contains("<summary>answers #1</summary>"), "{page}");
    // Every row's raw JSON is behind a toggle.
    assert!(page.contains("<details><summary>data</summary>"));
}
