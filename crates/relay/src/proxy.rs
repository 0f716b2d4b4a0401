//! The client's real address behind trusted reverse proxies.
//!
//! Behind nginx or Caddy every connection comes from the proxy; the client
//! is named in `Forwarded` (RFC 7239) or `X-Forwarded-For`, which anybody
//! can also send. So they are read only from a peer in `trusted_proxies`,
//! and then walked from the right — each proxy appends the address it got
//! the request from — to the first address that is not a trusted proxy
//! itself: the rightmost untrusted hop. Hops left of it were written by
//! the client and mean nothing. `Forwarded` wins over `X-Forwarded-For`
//! when a request has both. A hop that is not an address (`unknown`, an
//! obfuscated name, garbage) ends the walk at the last trusted hop, so the
//! request counts against that proxy: a wrong guess must cost the sender,
//! never someone else.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::http::{HeaderMap, HeaderName};
use ipnet::IpNet;

static FORWARDED: HeaderName = HeaderName::from_static("forwarded");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(ranges: Vec<IpNet>) -> Self {
        TrustedProxies(ranges)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn ranges(&self) -> &[IpNet] {
        &self.0
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|range| range.contains(&ip))
    }

    /// The address `peer`'s request comes from: the rightmost untrusted
    /// hop of its forwarding headers if `peer` is a trusted proxy, else
    /// `peer` itself. The port is the peer's: a proxy's port for the
    /// client means nothing to the relay.
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> SocketAddr {
        if !self.contains(peer.ip()) {
            return peer;
        }
        let hops: Vec<&str> = if headers.contains_key(&FORWARDED) {
            values(headers, &FORWARDED)
                .filter_map(forwarded_for)
                .collect()
        } else {
            values(headers, &X_FORWARDED_FOR).collect()
        };
        let mut client = peer.ip();
        for hop in hops.iter().rev() {
            let Some(hop) = parse_hop(hop) else { break };
            client = hop;
            if !self.contains(hop) {
                break;
            }
        }
        SocketAddr::new(client, peer.port())
    }
}

/// Every comma-separated element of every `name` header, in order.
fn values<'a>(headers: &'a HeaderMap, name: &HeaderName) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|value| value.to_str().unwrap_or("unknown").split(','))
        .map(str::trim)
}

/// The `for=` of one `Forwarded` element; `unknown` where it has none, so
/// that the walk stops there.
fn forwarded_for(element: &str) -> Option<&str> {
    let found = element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("for")
            .then(|| value.trim().trim_matches('"'))
    });
    Some(found.unwrap_or("unknown"))
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1` or `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = IpAddr::from_str(hop) {
        return Some(canonical(ip));
    }
    SocketAddr::from_str(hop)
        .ok()
        .map(|addr| canonical(addr.ip()))
        .or_else(|| {
            let bracketed = hop.strip_prefix('[')?.strip_suffix(']')?;
            IpAddr::from_str(bracketed).ok().map(canonical)
        })
}

/// An IPv4 client on a dual-stack socket arrives as `::ffff:a.b.c.d`; it
/// is the same client as `a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(ranges: &[&str]) -> TrustedProxies {
        TrustedProxies::new(ranges.iter().map(|r| r.parse().expect("cidr")).collect())
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_str(name).expect("name"),
                value.parse().expect("value"),
            );
        }
        map
    }

    fn client(proxies: &TrustedProxies, peer: &str, pairs: &[(&str, &str)]) -> String {
        let peer: SocketAddr = peer.parse().expect("peer");
        proxies.client(peer, &headers(pairs)).ip().to_string()
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let forged = [("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")];
        assert_eq!(client(&proxies, "203.0.113.9:5000", &forged), "203.0.113.9");
        assert_eq!(
            client(&TrustedProxies::default(), "10.0.0.1:1", &forged),
            "10.0.0.1",
            "nothing is trusted by default"
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let proxies = trusted(&["10.0.0.0/8", "2001:db8::/32"]);
        let xff = [("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.1.1.1")];
        assert_eq!(
            client(&proxies, "10.0.0.1:1", &xff),
            "198.51.100.7",
            "the forged 6.6.6.6 on the left is not believed"
        );
        let split = [
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.7:5555"),
        ];
        assert_eq!(client(&proxies, "10.0.0.1:1", &split), "198.51.100.7");
        let forwarded = [(
            "forwarded",
            r#"for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https, For=192.0.2.60;by=10.0.0.1"#,
        )];
        assert_eq!(client(&proxies, "10.0.0.1:1", &forwarded), "192.0.2.60");
        let both = [
            ("forwarded", "for=192.0.2.60"),
            ("x-forwarded-for", "1.1.1.1"),
        ];
        assert_eq!(client(&proxies, "10.0.0.1:1", &both), "192.0.2.60");
        let all_trusted = [("x-forwarded-for", "10.9.9.9, 10.8.8.8")];
        assert_eq!(client(&proxies, "10.0.0.1:1", &all_trusted), "10.9.9.9");
        let mapped = [("x-forwarded-for", "::ffff:198.51.100.7")];
        assert_eq!(
            client(&proxies, "[::ffff:10.0.0.1]:1", &mapped),
            "198.51.100.7"
        );
    }

    #[test]
    fn what_is_not_an_address_counts_against_the_proxy() {
        let proxies = trusted(&["10.0.0.0/8"]);
        for value in ["unknown", "_hidden", "not an ip", ""] {
            let garbage = [("x-forwarded-for", value)];
            assert_eq!(
                client(&proxies, "10.0.0.1:1", &garbage),
                "10.0.0.1",
                "{value:?}"
            );
        }
        let hidden = [("forwarded", "for=_hidden, for=10.2.2.2")];
        assert_eq!(client(&proxies, "10.0.0.1:1", &hidden), "10.2.2.2");
        assert_eq!(client(&proxies, "10.0.0.1:1", &[]), "10.0.0.1");
        let no_for = [("forwarded", "proto=https")];
        assert_eq!(client(&proxies, "10.0.0.1:1", &no_for), "10.0.0.1");
    }
}
