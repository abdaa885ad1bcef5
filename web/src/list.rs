//! Server-side pagination and sorting shared by the list pages: query parameters in,
//! page links out. URLs stay stable and shareable (`?page=3&sort=name&dir=asc`).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use store::dashboard::Window;

/// Rows per page unless `per_page` says otherwise (at most [`MAX_PER_PAGE`]).
pub const PER_PAGE: u64 = 50;
/// The largest page.
pub const MAX_PER_PAGE: u64 = 500;

/// `?page=N&per_page=M&sort=KEY&dir=asc|desc&q=TEXT`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListQuery {
    /// 1-based page.
    pub page: Option<u64>,
    /// Rows per page.
    pub per_page: Option<u64>,
    /// Sort key.
    pub sort: Option<String>,
    /// `asc` or `desc`.
    pub dir: Option<String>,
    /// Search text.
    pub q: Option<String>,
    /// Numeric field of the samples' data to filter on.
    pub field: Option<String>,
    /// Lowest value of `field` shown.
    pub min: Option<f64>,
    /// Highest value of `field` shown.
    pub max: Option<f64>,
    /// Only what carries this tag.
    pub tag: Option<String>,
}

impl ListQuery {
    /// The rows to show.
    pub fn window(&self) -> Window {
        let limit = self.per_page.unwrap_or(PER_PAGE).clamp(1, MAX_PER_PAGE);
        // A page far past the end is an empty page, never an overflow.
        let offset = (self.page.unwrap_or(1).max(1) - 1)
            .saturating_mul(limit)
            .min(i64::MAX as u64 / 2);
        Window { offset, limit }
    }

    /// The samples' range filter, when a field is chosen; a bound that is not a finite
    /// number (`?min=NaN`) is refused with the reason.
    pub fn range(&self) -> Result<Option<(&str, f64, f64)>, String> {
        for (name, v) in [("min", self.min), ("max", self.max)] {
            if v.is_some_and(|v| !v.is_finite()) {
                return Err(format!("`{name}` must be a finite number"));
            }
        }
        Ok(self.field.as_deref().filter(|f| !f.is_empty()).map(|f| {
            (
                f,
                self.min.unwrap_or(f64::MIN),
                self.max.unwrap_or(f64::MAX),
            )
        }))
    }

    /// Descending unless `dir=asc`.
    pub fn descending(&self, default_desc: bool) -> bool {
        match self.dir.as_deref() {
            Some("asc") => false,
            Some("desc") => true,
            _ => default_desc,
        }
    }
}

/// Links of a paginated list.
#[derive(Debug, Clone)]
pub struct Pager {
    /// Current page (1-based).
    pub page: u64,
    /// Number of pages.
    pub pages: u64,
    /// Total rows.
    pub total: u64,
    /// Link to the previous page, if any.
    pub prev: Option<String>,
    /// Link to the next page, if any.
    pub next: Option<String>,
}

impl Pager {
    /// Pager for `total` rows shown through `q`; `base` is the path and the fixed parameters
    /// (`/runs/3?q=hei`).
    pub fn new(base: &str, q: &ListQuery, total: u64) -> Pager {
        let w = q.window();
        let page = w.offset / w.limit + 1;
        let pages = total.div_ceil(w.limit).max(1);
        let link = |p: u64| {
            let mut params = vec![format!("page={p}")];
            if let Some(n) = q.per_page {
                params.push(format!("per_page={n}"));
            }
            if let Some(s) = &q.sort {
                params.push(format!("sort={}", encode(s)));
            }
            if let Some(d) = &q.dir {
                params.push(format!("dir={}", encode(d)));
            }
            if let Some(t) = q.tag.as_deref().filter(|t| !t.is_empty()) {
                params.push(format!("tag={}", encode(t)));
            }
            if let Some(t) = q.q.as_deref().filter(|t| !t.is_empty()) {
                params.push(format!("q={}", encode(t)));
            }
            if let Some(f) = q.field.as_deref().filter(|f| !f.is_empty()) {
                params.push(format!("field={}", encode(f)));
            }
            if let Some(v) = q.min {
                params.push(format!("min={v}"));
            }
            if let Some(v) = q.max {
                params.push(format!("max={v}"));
            }
            let sep = if base.contains('?') { '&' } else { '?' };
            format!("{base}{sep}{}", params.join("&"))
        };
        Pager {
            page,
            pages,
            total,
            prev: (page > 1).then(|| link(page - 1)),
            next: (page < pages).then(|| link(page + 1)),
        }
    }
}

/// Links that sort a list by each of `keys`; the current key's link flips the direction.
pub fn sort_links(
    base: &str,
    q: &ListQuery,
    keys: &[&'static str],
    default_desc: bool,
) -> Vec<(&'static str, String)> {
    let sep = if base.contains('?') { '&' } else { '?' };
    keys.iter()
        .map(|k| {
            let dir = if q.sort.as_deref() == Some(*k) && q.descending(default_desc) {
                "asc"
            } else {
                "desc"
            };
            (*k, format!("{base}{sep}sort={k}&dir={dir}"))
        })
        .collect()
}

/// The sort key asked for, if it is one of `keys` (else a clear error), or `default`.
pub fn sort_key<'a>(q: &ListQuery, keys: &[&'a str], default: &'a str) -> Result<&'a str, String> {
    match q.sort.as_deref() {
        None => Ok(default),
        Some(s) => keys
            .iter()
            .find(|k| **k == s)
            .copied()
            .ok_or_else(|| format!("unknown sort `{s}`; use {}", keys.join(", "))),
    }
}

/// The rows of the current page of a list held in memory.
pub fn page_of<T>(rows: Vec<T>, q: &ListQuery) -> Vec<T> {
    let w = q.window();
    rows.into_iter()
        .skip(w.offset as usize)
        .take(w.limit as usize)
        .collect()
}

/// Bytes a query value keeps as they are: RFC 3986's unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encode a query value.
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_links() {
        let q = ListQuery {
            page: Some(2),
            per_page: Some(10),
            q: Some("blå bær".into()),
            ..ListQuery::default()
        };
        assert_eq!(
            q.window(),
            Window {
                offset: 10,
                limit: 10
            }
        );
        let p = Pager::new("/runs/1", &q, 35);
        assert_eq!((p.page, p.pages), (2, 4));
        assert_eq!(
            p.prev.as_deref(),
            Some("/runs/1?page=1&per_page=10&q=bl%C3%A5%20b%C3%A6r")
        );
        assert!(p.next.unwrap().starts_with("/runs/1?page=3"));
        assert_eq!(Pager::new("/", &ListQuery::default(), 0).pages, 1);
    }
}
