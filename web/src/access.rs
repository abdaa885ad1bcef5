//! Who may view the pages: signed-in users, everyone (`--public`), or, served on a loopback
//! address, this machine while the store has no accounts (again when the last one is removed).
//! Actions always need a signed-in editor.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use store::{Store, StoreError};

/// Who may view the pages.
#[derive(Debug, Clone)]
pub enum Access {
    /// Pages need a signed-in user.
    SignIn,
    /// Anyone may view (`nlebench serve --public`).
    Public,
    /// Served on loopback: while the store has no accounts, viewable by requests naming this
    /// machine in their `Host` header (a site whose name resolves to 127.0.0.1 — DNS
    /// rebinding — is refused); while it has accounts, pages need a signed-in user. Removing
    /// the last account opens the pages to this machine again: nobody is locked out.
    Loopback(Arc<Accounts>),
}

impl Access {
    /// The loopback mode, for a store that has accounts now or not.
    pub fn loopback(accounts_exist: bool) -> Access {
        Access::Loopback(Arc::new(Accounts {
            exist: AtomicBool::new(accounts_exist),
            checked: AtomicU64::new(0),
            start: Instant::now(),
        }))
    }

    /// Whether viewing needs a signed-in user now.
    pub async fn needs_session(&self, store: &Store) -> Result<bool, StoreError> {
        match self {
            Access::SignIn => Ok(true),
            Access::Public => Ok(false),
            Access::Loopback(a) => a.exist(store).await,
        }
    }

    /// Whether a request may reach the dashboard at all (the `Host` check of loopback mode
    /// while pages are viewable without signing in).
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        match self {
            Access::Loopback(a) if !a.exist.load(Ordering::Relaxed) => headers
                .get(header::HOST)
                .is_none_or(|h| h.to_str().is_ok_and(names_this_machine)),
            _ => true,
        }
    }
}

/// Whether the store has accounts now; asked of the store at most once per [`RECHECK`].
#[derive(Debug)]
pub struct Accounts {
    /// The last answer.
    exist: AtomicBool,
    /// Milliseconds after `start` of the last look.
    checked: AtomicU64,
    start: Instant,
}

/// How often loopback mode asks whether accounts exist.
const RECHECK: Duration = Duration::from_secs(1);

impl Accounts {
    async fn exist(&self, store: &Store) -> Result<bool, StoreError> {
        let now = self.start.elapsed().as_millis() as u64;
        let last = self.checked.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < RECHECK.as_millis() as u64 {
            return Ok(self.exist.load(Ordering::Relaxed));
        }
        self.checked.store(now.max(1), Ordering::Relaxed);
        let exist = store.has_users().await?;
        if self.exist.swap(exist, Ordering::Relaxed) != exist {
            if exist {
                tracing::info!("accounts exist now: pages need signing in");
            } else {
                tracing::info!("no accounts left: pages are viewable from this machine again");
            }
        }
        Ok(exist)
    }
}

/// `localhost`, a 127.x address or `[::1]`, with or without a port.
fn names_this_machine(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        }),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hosts_naming_this_machine_are_admitted_in_loopback_mode() {
        let table = [
            ("localhost", true),
            ("localhost:8080", true),
            ("LOCALHOST:8080", true),
            ("127.0.0.1:8080", true),
            ("127.1.2.3", true),
            ("[::1]:8080", true),
            ("[::1]", true),
            ("evil.example", false),
            ("evil.example:8080", false),
            ("localhost.evil.example", false),
            ("127.0.0.1.evil.example", false),
            ("192.168.1.5:8080", false),
            ("[::2]:8080", false),
            ("", false),
        ];
        for (host, admitted) in table {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, host.parse().unwrap());
            assert_eq!(Access::loopback(false).admits(&h), admitted, "{host:?}");
            assert!(Access::SignIn.admits(&h) && Access::Public.admits(&h));
            assert!(
                Access::loopback(true).admits(&h),
                "with accounts, sign-in guards the pages: {host:?}"
            );
        }
        assert!(
            Access::loopback(false).admits(&HeaderMap::new()),
            "no Host: no browser"
        );
    }
}
