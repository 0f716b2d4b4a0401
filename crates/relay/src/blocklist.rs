//! The client address ranges an operator has blocked (`kefu-relay block`),
//! as this relay knows them now: refused at accept ([`crate::admission`]),
//! and, for clients behind a trusted proxy, as soon as the proxy names them
//! (the transport). The transport re-reads the store's list twice a
//! second, so a block made by another process takes effect within a
//! second on every relay.

use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use ipnet::IpNet;

/// Cheap to clone; every clone sees the same list.
#[derive(Clone, Default)]
pub struct Blocklist(Arc<RwLock<Arc<[IpNet]>>>);

impl Blocklist {
    /// Whether `ip` is in a blocked range. A read lock held for a scan of
    /// a short list, never across an `.await`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ranges = self.0.read().unwrap_or_else(|e| e.into_inner());
        !ranges.is_empty() && ranges.iter().any(|range| range.contains(&ip))
    }

    /// Puts `ranges` in force; whether that changed anything.
    pub fn replace(&self, ranges: Vec<IpNet>) -> bool {
        let mut known = self.0.write().unwrap_or_else(|e| e.into_inner());
        if **known == *ranges {
            return false;
        }
        *known = ranges.into();
        true
    }
}

/// `10.0.0.1` (one address) or `10.0.0.0/8`, made canonical
/// (`10.1.2.3/8` is `10.0.0.0/8`): how ranges are written in settings, on
/// the command line and in the store.
pub fn parse_range(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map(|range| range.trunc())
        .map_err(|_| format!("{text:?} is not an address or a CIDR like 10.0.0.0/8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_matched_and_replaced() {
        let list = Blocklist::default();
        let ip: IpAddr = "203.0.113.7".parse().expect("ip");
        assert!(!list.contains(ip));
        let range = parse_range("203.0.113.9/24").expect("range");
        assert_eq!(range.to_string(), "203.0.113.0/24");
        assert!(list.replace(vec![range]));
        assert!(!list.replace(vec![range]), "the same list changes nothing");
        assert!(list.clone().contains(ip), "clones share the list");
        assert!(!list.contains("203.0.114.1".parse().expect("ip")));
        assert!(list.replace(Vec::new()));
        assert!(!list.contains(ip));
        assert_eq!(parse_range("::1").expect("v6").to_string(), "::1/128");
        assert!(parse_range("10.0.0.0/33").is_err());
    }
}
