//! Error pages with their status codes.

use askama::Template;
use askama_web::WebTemplate;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use store::StoreError;

use crate::nav::Nav;

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage {
    nav: Nav,
    message: String,
}

/// An error shown as a page with a status code.
#[derive(Debug)]
pub struct PageError(pub StatusCode, pub String);

impl PageError {
    /// 404 with a message.
    pub fn not_found(message: impl Into<String>) -> PageError {
        PageError(StatusCode::NOT_FOUND, message.into())
    }

    /// 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> PageError {
        PageError(StatusCode::BAD_REQUEST, message.into())
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoSweep(name) => PageError::not_found(format!("no sweep named {name}")),
            StoreError::Filter(message) => PageError::bad_request(message),
            other => PageError(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        (
            self.0,
            ErrorPage {
                nav: Nav::default(),
                message: self.1,
            },
        )
            .into_response()
    }
}
