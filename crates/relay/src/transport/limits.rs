//! Connections per IP address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts open connections per IP. The lock is held only to bump a counter,
/// never across an `.await`.
#[derive(Clone)]
pub struct IpLimiter {
    max_per_ip: u32,
    open: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

/// One counted connection; dropping it frees the slot.
pub struct IpPermit {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

impl IpLimiter {
    pub fn new(max_per_ip: u32) -> Self {
        IpLimiter {
            max_per_ip,
            open: Arc::default(),
        }
    }

    pub fn acquire(&self, ip: IpAddr) -> Option<IpPermit> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            return None;
        }
        *count += 1;
        Some(IpPermit {
            ip,
            open: self.open.clone(),
        })
    }
}

impl Drop for IpPermit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_counted_per_ip_and_released_on_drop() {
        let limiter = IpLimiter::new(2);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let first = limiter.acquire(a).expect("first");
        let _second = limiter.acquire(a).expect("second");
        assert!(limiter.acquire(a).is_none(), "third from the same IP");
        assert!(limiter.acquire(b).is_some(), "another IP is not affected");
        drop(first);
        assert!(limiter.acquire(a).is_some(), "a freed slot can be reused");
    }
}
