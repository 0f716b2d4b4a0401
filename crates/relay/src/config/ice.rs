//! The ICE servers (STUN and TURN) the call pages are given, and TURN
//! credentials that expire, made from a secret shared with the TURN server
//! the way coturn's `use-auth-secret` (the "TURN REST API") checks them:
//! the username is `EXPIRY:NAME` (a Unix time), the password the base64 of
//! HMAC-SHA1 over the username with the secret. Nothing is stored; the TURN
//! server refuses the pair once the time has passed.

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use kefu_protocol::call::IceServer;
use sha1::Sha1;

/// STUN/TURN servers for the call pages; none by default, when peers on
/// one network still connect over host candidates.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct IceServers {
    /// `stun:`, `turn:` and `turns:` URLs.
    pub urls: Vec<String>,
    /// coturn's `static-auth-secret`: TURN URLs get credentials made with
    /// it. Without it they are given bare (a TURN server open to anyone
    /// who knows it, or one with its own long-term users).
    pub turn_secret: Option<String>,
    /// How long a TURN credential lasts.
    pub credential_ttl: Duration,
}

impl std::fmt::Debug for IceServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceServers")
            .field("urls", &self.urls)
            .field("turn_secret", &self.turn_secret.as_ref().map(|_| "…"))
            .field("credential_ttl", &self.credential_ttl)
            .finish()
    }
}

impl IceServers {
    /// `RTCConfiguration.iceServers` for a participant called `name`, with
    /// TURN credentials valid for [`IceServers::credential_ttl`] from now.
    pub fn servers_for(&self, name: &str) -> Vec<IceServer> {
        let expiry = time::OffsetDateTime::now_utc().unix_timestamp()
            + i64::try_from(self.credential_ttl.as_secs()).unwrap_or(i64::MAX / 2);
        self.servers_at(name, expiry)
    }

    fn servers_at(&self, name: &str, expiry: i64) -> Vec<IceServer> {
        let (turn, stun): (Vec<String>, Vec<String>) =
            (self.urls.iter().cloned()).partition(|url| is_turn(url));
        let mut servers = Vec::new();
        if !stun.is_empty() {
            servers.push(IceServer {
                urls: stun,
                username: None,
                credential: None,
            });
        }
        if !turn.is_empty() {
            let (username, credential) = match &self.turn_secret {
                Some(secret) => {
                    let username = turn_username(expiry, name);
                    let credential = turn_credential(secret, &username);
                    (Some(username), Some(credential))
                }
                None => (None, None),
            };
            servers.push(IceServer {
                urls: turn,
                username,
                credential,
            });
        }
        servers
    }
}

/// Whether a URL names a TURN server (which needs credentials).
pub(super) fn is_turn(url: &str) -> bool {
    url.starts_with("turn:") || url.starts_with("turns:")
}

/// `EXPIRY:NAME`, the name kept to what a username may hold (no `:`).
fn turn_username(expiry: i64, name: &str) -> String {
    let name: String = (name.chars())
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(32)
        .collect();
    format!("{expiry}:{name}")
}

/// base64(HMAC-SHA1(secret, username)), coturn's `use-auth-secret`.
fn turn_credential(secret: &str, username: &str) -> String {
    let mut mac =
        Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_credentials_are_coturns_hmac_sha1_over_the_expiring_username() {
        let servers = IceServers {
            urls: vec![
                "stun:stun.example:3478".into(),
                "turn:turn.example:3478?transport=udp".into(),
                "turns:turn.example:5349".into(),
            ],
            turn_secret: Some("north".into()),
            credential_ttl: Duration::from_secs(3600),
        };
        let got = servers.servers_at("alice:evil name", 1_700_000_000);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].urls, vec!["stun:stun.example:3478".to_owned()]);
        assert_eq!(got[0].username, None);
        assert_eq!(got[1].urls.len(), 2);
        assert_eq!(got[1].username.as_deref(), Some("1700000000:aliceevilname"));
        // `echo -n 1700000000:aliceevilname | openssl dgst -sha1 -hmac north -binary | base64`
        assert_eq!(
            got[1].credential.as_deref(),
            Some("lXI1lGV039LFeCXukJggiSvmjaY=")
        );
    }

    #[test]
    fn without_servers_peers_use_host_candidates() {
        assert!(IceServers::default().servers_for("bob").is_empty());
    }
}
