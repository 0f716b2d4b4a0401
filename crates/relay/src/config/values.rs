//! The kinds of value a setting holds and the checks each must pass. Pure
//! functions from the value given to the value used, or why it cannot be:
//! the caller adds which setting and which source, so these stay leaves.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::blocklist::parse_range;
use crate::proxy::TrustedProxies;

/// Where `serve` listens unless told otherwise.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);
/// Smallest frame limit that still fits a `hello` with a profile.
pub(super) const MIN_FRAME_BYTES: usize = 1024;
/// Smallest outbox bound: room for a few frames of the default size.
pub(super) const MIN_OUTBOUND_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event; no colours unless stderr is a
    /// terminal, so journald stores plain text.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// How much of a visitor's client address agents see (and the store
/// keeps).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum VisitorAddress {
    /// The address itself.
    Full,
    /// Its network only: IPv4 /24, IPv6 /48 — enough to block, not to
    /// single out a household.
    #[default]
    Truncated,
    /// Nothing.
    Off,
}

impl VisitorAddress {
    /// What agents see of `ip`.
    pub fn show(self, ip: std::net::IpAddr) -> Option<String> {
        let prefix = match (self, ip) {
            (VisitorAddress::Off, _) => return None,
            (VisitorAddress::Full, _) => return Some(ip.to_string()),
            (VisitorAddress::Truncated, std::net::IpAddr::V4(_)) => 24,
            (VisitorAddress::Truncated, std::net::IpAddr::V6(_)) => 48,
        };
        let network = ipnet::IpNet::new(ip, prefix).ok()?.trunc();
        Some(network.to_string())
    }
}

/// A value taken as it is.
pub(super) fn any<T>(value: T) -> Result<T, String> {
    Ok(value)
}

/// A value written back as it is.
pub(super) fn same<T: Clone>(value: &T) -> Option<T> {
    Some(value.clone())
}

/// A duration written back in seconds.
pub(super) fn in_seconds(duration: &Duration) -> Option<f64> {
    Some(duration.as_secs_f64())
}

pub(super) fn at_least<T: PartialOrd + fmt::Display>(value: T, min: T) -> Result<T, String> {
    if value < min {
        return Err(format!("must be at least {min}, not {value}"));
    }
    Ok(value)
}

/// A positive number of seconds.
pub(super) fn seconds(value: f64) -> Result<Duration, String> {
    seconds_from(value, false)
}

/// A number of seconds, zero included.
pub(super) fn seconds_or_zero(value: f64) -> Result<Duration, String> {
    seconds_from(value, true)
}

fn seconds_from(value: f64, zero_allowed: bool) -> Result<Duration, String> {
    match Duration::try_from_secs_f64(value) {
        Ok(duration) if zero_allowed || !duration.is_zero() => Ok(duration),
        _ => {
            let what = if zero_allowed {
                "0 or more"
            } else {
                "more than 0"
            };
            Err(format!("must be {what} seconds, not {value}"))
        }
    }
}

/// `90s`, `30m`, `12h` or `7d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.len().saturating_sub(1);
    let (count, unit) = text.split_at(split);
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "{text:?}: expected a number and s, m, h or d, as 12h"
            ));
        }
    };
    match count.parse::<u64>() {
        Ok(count) if count > 0 => Ok(Duration::from_secs(count.saturating_mul(seconds))),
        _ => Err(format!(
            "{text:?}: expected a positive number before the unit, as 12h"
        )),
    }
}

/// How long resolved conversations are kept: `off` (forever) or a
/// duration as [`parse_duration`] reads it.
pub(super) fn retention(text: String) -> Result<Option<Duration>, String> {
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    parse_duration(&text).map(Some)
}

/// A retention written back as it is read: `off`, or in the largest unit
/// that divides it.
pub(super) fn retention_text(retention: &Option<Duration>) -> Option<String> {
    let Some(retention) = retention else {
        return Some("off".to_owned());
    };
    let seconds = retention.as_secs();
    let (count, unit) = [(86_400, "d"), (3600, "h"), (60, "m")]
        .into_iter()
        .find(|(size, _)| seconds % size == 0)
        .map_or((seconds, "s"), |(size, unit)| (seconds / size, unit));
    Some(format!("{count}{unit}"))
}

pub(super) fn database_url(url: String) -> Result<String, String> {
    let known = ["sqlite:", "postgres://", "postgresql://"];
    if known.iter().any(|scheme| url.starts_with(scheme)) {
        Ok(url)
    } else {
        Err(format!(
            "{:?} is not a database URL: expected sqlite://PATH or postgres://USER@HOST/DB",
            mask_secrets(&url)
        ))
    }
}

pub(super) fn public_url(url: String) -> Result<Option<String>, String> {
    match origin_of(&url) {
        Some(_) => Ok(Some(url.trim().to_owned())),
        None => Err(format!("{url:?} is not a URL like https://support.example")),
    }
}

pub(super) fn origins(origins: Vec<String>) -> Result<Vec<String>, String> {
    origins
        .into_iter()
        .map(|origin| origin.trim().trim_end_matches('/').to_owned())
        .filter(|origin| !origin.is_empty())
        .map(|origin| match origin_of(&origin) {
            Some(parsed) if parsed.eq_ignore_ascii_case(&origin) => Ok(origin),
            _ => Err(format!(
                "{origin:?} is not an origin: expected scheme://host[:port], e.g. https://shop.example"
            )),
        })
        .collect()
}

/// Addresses (`10.0.0.1`, one proxy) and ranges (`10.0.0.0/8`).
pub(super) fn trusted_proxies(ranges: Vec<String>) -> Result<TrustedProxies, String> {
    ranges
        .iter()
        .map(|range| range.trim())
        .filter(|range| !range.is_empty())
        .map(parse_range)
        .collect::<Result<_, _>>()
        .map(TrustedProxies::new)
}

/// STUN and TURN server URLs (`stun:`, `turn:`, `turns:`), for the call
/// pages' `RTCConfiguration`.
pub(super) fn ice_urls(urls: Vec<String>) -> Result<Vec<String>, String> {
    (urls.into_iter())
        .map(|url| url.trim().to_owned())
        .filter(|url| !url.is_empty())
        .map(|url| {
            let known = ["stun:", "turn:", "turns:"];
            let fits = known.iter().any(|scheme| url.starts_with(scheme))
                && url.chars().all(|c| c.is_ascii_graphic());
            if fits {
                Ok(url)
            } else {
                Err(format!(
                    "{url:?} is not an ICE server URL: expected stun:HOST[:PORT] or turn:HOST[:PORT][?transport=udp|tcp] (or turns:)"
                ))
            }
        })
        .collect()
}

/// `scheme://host[:port]` of an http(s) URL, lower-cased, with the scheme's
/// default port left out as browsers do in `Origin`.
pub(crate) fn origin_of(url: &str) -> Option<String> {
    let uri: axum::http::Uri = url.trim().parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = uri.authority()?;
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return None;
    }
    let host = authority.host().to_ascii_lowercase();
    Some(match authority.port_u16() {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// A URL fit to print: the password of `user:password@` and any
/// `password=` query parameter replaced by `***`.
pub fn mask_secrets(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.to_ascii_lowercase().contains("password") => {
                        format!("{key}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_leaves_urls_without_secrets_alone() {
        assert_eq!(mask_secrets("sqlite://kefu.db"), "sqlite://kefu.db");
        assert_eq!(
            mask_secrets("sqlite:///var/lib/kefu/kefu.db"),
            "sqlite:///var/lib/kefu/kefu.db"
        );
        assert_eq!(
            mask_secrets("postgres://kefu@db/kefu"),
            "postgres://kefu@db/kefu"
        );
    }

    #[test]
    fn visitor_addresses_are_kept_as_set() {
        let v4: std::net::IpAddr = "203.0.113.77".parse().expect("ip");
        let v6: std::net::IpAddr = "2001:db8:1:2::7".parse().expect("ip");
        assert_eq!(
            VisitorAddress::Full.show(v4).as_deref(),
            Some("203.0.113.77")
        );
        assert_eq!(
            VisitorAddress::Truncated.show(v4).as_deref(),
            Some("203.0.113.0/24")
        );
        assert_eq!(
            VisitorAddress::Truncated.show(v6).as_deref(),
            Some("2001:db8:1::/48")
        );
        assert_eq!(VisitorAddress::Off.show(v4), None);
    }

    #[test]
    fn origins_drop_default_ports_and_paths() {
        assert_eq!(
            origin_of("https://Support.Example:443/chat").as_deref(),
            Some("https://support.example")
        );
        assert_eq!(
            origin_of("http://support.example:8080").as_deref(),
            Some("http://support.example:8080")
        );
        assert_eq!(origin_of("ftp://support.example"), None);
        assert_eq!(origin_of("support.example"), None);
    }
}
