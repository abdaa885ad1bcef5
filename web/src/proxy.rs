//! The client's address behind reverse proxies: `X-Forwarded-For` is honoured only from the
//! proxies the operator trusts (`--trusted-proxies`), so that a client cannot pick the address
//! its sign-in attempts are counted under, and a proxy's clients are not all counted as one.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The addresses and networks whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Proxies given as addresses (`10.0.0.5`) or networks (`10.0.0.0/8`).
    pub fn new(nets: Vec<IpNet>) -> TrustedProxies {
        TrustedProxies(nets)
    }

    /// Parse one address or network, as a flag gives it.
    pub fn parse_one(s: &str) -> Result<IpNet, String> {
        let s = s.trim();
        s.parse::<IpNet>()
            .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| format!("`{s}` is neither an IP address nor a network like 10.0.0.0/8"))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client of a request from `peer`: the peer itself, unless it is a trusted proxy;
    /// then the nearest address of its `X-Forwarded-For` chain that is not a trusted proxy (the
    /// chain read from the right, as each proxy appends the address it saw).
    pub fn client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer.map(canonical)?;
        if !self.trusts(peer) {
            return Some(peer);
        }
        let mut chain: Vec<IpAddr> = Vec::new();
        for value in headers.get_all("x-forwarded-for") {
            let Ok(text) = value.to_str() else {
                return Some(peer);
            };
            for part in text.split(',') {
                match part.trim().parse::<IpAddr>() {
                    Ok(ip) => chain.push(canonical(ip)),
                    // A chain that cannot be read names nobody: count the proxy.
                    Err(_) => return Some(peer),
                }
            }
        }
        let mut client = peer;
        for ip in chain.into_iter().rev() {
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        Some(client)
    }
}

/// IPv4 addresses mapped into IPv6 (`::ffff:1.2.3.4`, as a dual-stack socket reports them) as
/// IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let trusted = TrustedProxies::new(vec![
            TrustedProxies::parse_one("10.0.0.0/8").unwrap(),
            TrustedProxies::parse_one("192.168.1.1").unwrap(),
        ]);
        // A client that is no proxy cannot choose its address.
        assert_eq!(
            trusted.client(ip("203.0.113.9"), &headers(&["1.2.3.4"])),
            ip("203.0.113.9")
        );
        // Behind a trusted proxy: the address it saw.
        assert_eq!(
            trusted.client(ip("10.1.2.3"), &headers(&["198.51.100.7"])),
            ip("198.51.100.7")
        );
        // A spoofed beginning of the chain is ignored: the nearest untrusted hop counts.
        assert_eq!(
            trusted.client(
                ip("10.1.2.3"),
                &headers(&["6.6.6.6, 198.51.100.7", "192.168.1.1"])
            ),
            ip("198.51.100.7")
        );
        // Mapped IPv4 peers, no header, and an unreadable chain.
        assert_eq!(
            trusted.client(ip("::ffff:10.1.2.3"), &headers(&["198.51.100.7"])),
            ip("198.51.100.7")
        );
        assert_eq!(
            trusted.client(ip("10.1.2.3"), &headers(&[])),
            ip("10.1.2.3")
        );
        assert_eq!(
            trusted.client(ip("10.1.2.3"), &headers(&["not-an-ip"])),
            ip("10.1.2.3")
        );
        // Nobody trusted (the default): the header is never read.
        assert_eq!(
            TrustedProxies::default().client(ip("10.1.2.3"), &headers(&["198.51.100.7"])),
            ip("10.1.2.3")
        );
        assert!(TrustedProxies::parse_one("10.0.0.0/33").is_err());
    }
}
