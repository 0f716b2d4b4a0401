//! The client address ranges an operator has blocked (`kefu-relay block`),
//! as this relay knows them now: refused at accept ([`crate::admission`]),
//! and, for clients behind a trusted proxy, as soon as the proxy names them
//! (the transport); and visitors already connected from a range when it
//! is blocked lose their connections ([`Blocklist::until_blocked`]). The
//! transport re-reads the store's list twice a second, so a block made by
//! another process takes effect within a second on every relay.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use tokio::sync::watch;

/// Cheap to clone; every clone sees the same list.
#[derive(Clone)]
pub struct Blocklist(Arc<watch::Sender<Arc<[IpNet]>>>);

impl Default for Blocklist {
    fn default() -> Self {
        Blocklist(Arc::new(watch::Sender::new(Arc::from([]))))
    }
}

impl Blocklist {
    /// Whether `ip` is in a blocked range. The list's read lock is held for
    /// a scan of a short list, never across an `.await`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        covers(&self.0.borrow(), ip)
    }

    /// Puts `ranges` in force; whether that changed anything. Only a change
    /// wakes [`Blocklist::until_blocked`].
    pub fn replace(&self, ranges: Vec<IpNet>) -> bool {
        self.0.send_if_modified(|known| {
            if **known == *ranges {
                return false;
            }
            *known = ranges.into();
            true
        })
    }

    /// Resolves once `ip` is in a blocked range: what ends the open
    /// long-poll waits of a client blocked after it connected.
    pub fn until_blocked(&self, ip: IpAddr) -> impl Future<Output = ()> + Send + use<> {
        let mut watch = self.watch(ip);
        async move { watch.blocked().await }
    }

    /// A watch on the list for one address: what an open WebSocket holds to
    /// learn that its client was blocked.
    pub fn watch(&self, ip: IpAddr) -> BlockWatch {
        let mut list = self.0.subscribe();
        // The list as it is now is scanned too, by the first wait.
        list.mark_changed();
        BlockWatch { list, ip }
    }
}

/// One connection's watch on the list: a receiver and an address, held in
/// the connection's own state rather than as a boxed future waiting on the
/// list, which took about 400 bytes of every idle visitor connection
/// (docs/benchmarks.md, idle memory).
pub struct BlockWatch {
    list: watch::Receiver<Arc<[IpNet]>>,
    ip: IpAddr,
}

impl BlockWatch {
    /// Resolves once the address is in a blocked range. Made anew each
    /// time a connection wakes, so it scans only a list it has not seen;
    /// dropping it unresolved loses nothing.
    pub async fn blocked(&mut self) {
        while self.list.changed().await.is_ok() {
            if covers(&self.list.borrow_and_update(), self.ip) {
                return;
            }
        }
        // Every sender is gone: nothing is blocked any more.
        std::future::pending::<()>().await;
    }
}

fn covers(ranges: &[IpNet], ip: IpAddr) -> bool {
    ranges.iter().any(|range| range.contains(&ip))
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

    #[test]
    fn a_wait_ends_when_a_range_covering_the_address_is_blocked() {
        use futures_util::FutureExt as _;
        let list = Blocklist::default();
        let ip: IpAddr = "198.51.100.20".parse().expect("ip");
        let mut blocked = Box::pin(list.until_blocked(ip));
        assert!((&mut blocked).now_or_never().is_none());
        list.replace(vec![parse_range("198.51.101.0/24").expect("range")]);
        assert!((&mut blocked).now_or_never().is_none(), "another range");
        list.replace(vec![parse_range("198.51.100.0/24").expect("range")]);
        assert!((&mut blocked).now_or_never().is_some(), "its range");
        assert!(
            list.until_blocked(ip).now_or_never().is_some(),
            "already blocked when the wait begins"
        );
    }
}
