//! Signing in: argon2 password hashes, session cookies (HttpOnly, SameSite=Lax) stored by
//! their SHA-256, a CSRF token per session that every form must carry, and the viewer /
//! editor roles. Pages need a signed-in user unless the dashboard is public.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::Form;
use axum::extract::{ConnectInfo, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use chrono::{Duration, Utc};
use rand::Rng;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use store::users::Role;

use crate::AppState;
use crate::error::PageError;
use crate::nav::Nav;

/// Session cookie name.
pub const COOKIE: &str = "nlebench_session";
/// Cookie of the sign-in form's CSRF token (double submit, before a session exists).
const LOGIN_COOKIE: &str = "nlebench_login";
/// How long a session lasts at most.
const SESSION_DAYS: i64 = 14;
/// A session unused for this long has ended.
pub const SESSION_IDLE: Duration = Duration::hours(24);

/// The hash an unknown user's password is checked against, so a sign-in with an unknown
/// name costs the same argon2 work as one with a wrong password.
static UNKNOWN_USER: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password(&random_token()).unwrap_or_default());

/// Compute what sign-in needs before the first request (the unknown user's hash).
pub fn prepare() {
    std::sync::LazyLock::force(&UNKNOWN_USER);
}

/// An argon2id hash of a password (PHC string with a random salt).
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt_bytes: [u8; 16] = rand::rng().random();
    let salt = SaltString::encode_b64(&salt_bytes)?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Whether `password` matches a stored hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    hex::encode(bytes)
}

fn sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The stored hash of the request's session token, if it carries one.
pub fn session_hash(headers: &HeaderMap) -> Option<String> {
    cookie(headers, COOKIE).map(|token| sha256(&token))
}

/// The value of the request's cookie `name`.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(name)
        .map(|c| c.value().to_string())
}

/// A `Set-Cookie` value: HttpOnly, with `same_site` and `path`.
fn set_cookie(
    name: &'static str,
    value: String,
    same_site: SameSite,
    path: &'static str,
) -> cookie::CookieBuilder<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .same_site(same_site)
        .path(path)
}

/// The signed-in user of a request.
#[derive(Debug, Clone)]
pub struct Session {
    /// User name.
    pub user: String,
    /// Role.
    pub role: Role,
    /// The token forms must carry.
    pub csrf: String,
}

/// The signed-in user, if any.
pub struct MaybeSession(pub Option<Session>);

impl FromRequestParts<AppState> for MaybeSession {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, PageError> {
        let Some(hash) = session_hash(&parts.headers) else {
            return Ok(MaybeSession(None));
        };
        Ok(MaybeSession(
            app.store
                .session(&hash, SESSION_IDLE)
                .await?
                .and_then(|(s, u)| {
                    Some(Session {
                        role: Role::parse(&u.role)?,
                        user: u.name,
                        csrf: s.csrf,
                    })
                }),
        ))
    }
}

impl MaybeSession {
    /// The navigation bar for this request's session.
    pub fn nav(&self) -> Nav {
        match &self.0 {
            Some(s) => Nav {
                user: Some(s.user.clone()),
                editor: s.role == Role::Editor,
                csrf: s.csrf.clone(),
            },
            None => Nav::default(),
        }
    }
}

/// Middleware: pages need a signed-in user unless the dashboard's [`Access`] lets anyone
/// view; the sign-in page itself is always reachable. In loopback mode, requests naming
/// another host are refused.
///
/// [`Access`]: crate::access::Access
pub async fn require_viewer(
    State(app): State<AppState>,
    session: MaybeSession,
    req: Request,
    next: Next,
) -> Result<Response, PageError> {
    if !app.access.admits(req.headers()) {
        return Err(PageError(
            StatusCode::FORBIDDEN,
            "this dashboard of a store without accounts answers to localhost only (the Host header names another site)\n  fix: open it as http://localhost:PORT/, or add accounts with `nlebench users add NAME --role editor` to serve it to others".into(),
        ));
    }
    let path = req.uri().path();
    if session.0.is_some() || path == "/login" || !app.access.needs_session(&app.store).await? {
        return Ok(next.run(req).await);
    }
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    Ok(Redirect::to(&format!("/login?next={}", crate::list::encode(&target))).into_response())
}

/// Check that the request may act: an editor whose form carries the session's CSRF token.
pub fn require_editor<'a>(
    session: &'a MaybeSession,
    csrf: Option<&str>,
) -> Result<&'a Session, PageError> {
    let Some(s) = &session.0 else {
        return Err(PageError(
            StatusCode::FORBIDDEN,
            "sign in as an editor to do this".into(),
        ));
    };
    if csrf != Some(s.csrf.as_str()) {
        return Err(PageError(
            StatusCode::FORBIDDEN,
            "the form's CSRF token is missing or wrong; reload the page and try again".into(),
        ));
    }
    if s.role != Role::Editor {
        return Err(PageError(
            StatusCode::FORBIDDEN,
            format!("{} is a viewer; only editors may do this", s.user),
        ));
    }
    Ok(s)
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub struct LoginPage {
    nav: Nav,
    csrf: String,
    next: String,
    message: String,
}

/// `?next=PATH`.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Where to go after signing in: a path on this site, else `/`. Browsers drop tabs and line
/// breaks from URLs and read `\` as `/`, so `/\t/host` or `/\\host` would leave the site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.chars().any(|c| c.is_control() || c == '\\')
                && !n.starts_with("//") =>
        {
            n.into()
        }
        _ => "/".into(),
    }
}

fn login_page(next: &str, message: &str, status: StatusCode) -> Response {
    let csrf = random_token();
    let cookie = set_cookie(LOGIN_COOKIE, csrf.clone(), SameSite::Strict, "/login");
    (
        status,
        [(header::SET_COOKIE, cookie.to_string())],
        LoginPage {
            nav: Nav::default(),
            csrf,
            next: next.to_string(),
            message: message.to_string(),
        },
    )
        .into_response()
}

/// `GET /login`.
pub async fn login_form(Query(q): Query<NextQuery>) -> Response {
    login_page(&safe_next(q.next.as_deref()), "", StatusCode::OK)
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
    csrf: Option<String>,
    next: Option<String>,
}

/// `POST /login`: limited per client and per account; the password is checked on the
/// blocking pool, against a stand-in hash when the name is unknown.
pub async fn login(
    State(app): State<AppState>,
    peer: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Result<Response, PageError> {
    let expected = cookie(&headers, LOGIN_COOKIE);
    if f.csrf.is_none() || f.csrf != expected {
        return Err(PageError(
            StatusCode::FORBIDDEN,
            "the sign-in form's CSRF token is missing or wrong; reload the page".into(),
        ));
    }
    let next = safe_next(f.next.as_deref());
    let peer = peer.map(|Extension(ConnectInfo(a))| a.ip());
    let client = app.trusted_proxies.client(peer, &headers);
    if let Err(refused) = app.limits.check(client, &f.name) {
        tracing::warn!(client = ?client, account = %f.name, "sign-in refused: too many attempts");
        let mut page = login_page(&next, &refused.message(), StatusCode::TOO_MANY_REQUESTS);
        page.headers_mut()
            .insert(header::RETRY_AFTER, refused.retry_after().into());
        return Ok(page);
    }
    let user = app.store.user(&f.name).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let password = f.password;
    let matches = tokio::task::spawn_blocking(move || {
        verify_password(&password, hash.as_deref().unwrap_or(UNKNOWN_USER.as_str()))
    })
    .await
    .unwrap_or(false);
    let Some(user) = user.filter(|_| matches) else {
        tracing::info!(client = ?client, account = %f.name, "sign-in failed: wrong name or password");
        return Ok(login_page(
            &next,
            "wrong name or password",
            StatusCode::UNAUTHORIZED,
        ));
    };
    app.store.delete_expired_sessions(SESSION_IDLE).await?;
    let token = random_token();
    app.store
        .create_session(
            user.id,
            &sha256(&token),
            &random_token(),
            Utc::now() + Duration::days(SESSION_DAYS),
        )
        .await?;
    let cookie = set_cookie(COOKIE, token, SameSite::Lax, "/")
        .max_age(cookie::time::Duration::days(SESSION_DAYS))
        .secure(app.secure_cookies);
    Ok((
        [(header::SET_COOKIE, cookie.to_string())],
        Redirect::to(&next),
    )
        .into_response())
}

/// A form that only carries the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    /// The token.
    pub csrf: Option<String>,
}

/// `POST /logout`.
pub async fn logout(
    State(app): State<AppState>,
    headers: HeaderMap,
    session: MaybeSession,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    match &session.0 {
        Some(s) if f.csrf.as_deref() == Some(s.csrf.as_str()) => {}
        _ => {
            return Err(PageError(
                StatusCode::FORBIDDEN,
                "the form's CSRF token is missing or wrong".into(),
            ));
        }
    }
    if let Some(token) = cookie(&headers, COOKIE) {
        app.store.delete_session(&sha256(&token)).await?;
    }
    let clear =
        set_cookie(COOKIE, String::new(), SameSite::Lax, "/").max_age(cookie::time::Duration::ZERO);
    Ok((
        [(header::SET_COOKIE, clear.to_string())],
        Redirect::to("/login"),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_against_their_hash_only() {
        let h = hash_password("hemmelig").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("hemmelig", &h));
        assert!(!verify_password("Hemmelig", &h));
        assert!(!verify_password("hemmelig", "not a hash"));
        assert_ne!(h, hash_password("hemmelig").unwrap(), "salted");
    }

    #[test]
    fn unknown_users_are_checked_with_the_same_argon2_work_as_known_ones() {
        let known = hash_password("hemmelig").unwrap();
        let (a, b) = (
            PasswordHash::new(&known).unwrap(),
            PasswordHash::new(&UNKNOWN_USER).unwrap(),
        );
        assert_eq!(a.algorithm, b.algorithm);
        assert_eq!(a.version, b.version);
        assert_eq!(a.params, b.params, "memory, iterations and lanes");
        assert!(!verify_password("", &UNKNOWN_USER));
    }

    #[test]
    fn only_same_site_paths_are_followed() {
        // (asked, followed) — `next` arrives percent-decoded by the query extractor.
        let table = [
            ("/runs/3?page=2", "/runs/3?page=2"),
            ("/sweeps/a%2Fb", "/sweeps/a%2Fb"),
            ("//evil.example", "/"),
            ("https://evil.example", "/"),
            ("/\\evil.example", "/"),
            ("/\tevil.example", "/"),
            ("/\t/evil.example", "/"),
            ("/\n/evil.example", "/"),
            ("\t//evil.example", "/"),
            ("/\\/evil.example", "/"),
            ("evil.example", "/"),
            ("", "/"),
        ];
        for (asked, followed) in table {
            assert_eq!(safe_next(Some(asked)), followed, "{asked:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
