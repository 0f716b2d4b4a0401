//! Credentials: agents' bearer tokens and visitors' signed resume tokens.
//!
//! An agent token is 256 random bits; the store keeps only its SHA-256, so a
//! leaked database does not let anyone in. A visitor token carries its
//! visitor id and an HMAC over it with the relay's secret: the relay can
//! recognise a returning visitor without having written anything when the
//! visitor first opened the page.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

const AGENT_TOKEN_PREFIX: &str = "kefu_";
const VISITOR_TOKEN_VERSION: &str = "v1";

/// A fresh agent token, shown once to the admin who made it.
pub fn new_agent_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{AGENT_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// What the store keeps of an agent token.
pub fn hash_agent_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// 256 random bits for signing visitor tokens, made once per database.
pub fn new_secret() -> Vec<u8> {
    rand::random::<[u8; 32]>().to_vec()
}

/// Signs and checks visitor resume tokens.
#[derive(Clone)]
pub struct VisitorTokens {
    secret: Vec<u8>,
}

impl std::fmt::Debug for VisitorTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VisitorTokens(..)")
    }
}

impl VisitorTokens {
    pub fn new(secret: Vec<u8>) -> Self {
        VisitorTokens { secret }
    }

    /// `v1.<visitor id>.<base64url HMAC-SHA256>`.
    pub fn issue(&self, visitor_id: &str) -> String {
        let body = format!("{VISITOR_TOKEN_VERSION}.{visitor_id}");
        let tag = self.mac(&body).finalize().into_bytes();
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The visitor id a token was issued for, or `None` if it is forged,
    /// damaged or from another relay secret.
    pub fn verify(&self, token: &str) -> Option<String> {
        let (body, tag) = token.rsplit_once('.')?;
        let (version, visitor_id) = body.split_once('.')?;
        if version != VISITOR_TOKEN_VERSION || visitor_id.is_empty() {
            return None;
        }
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        // verify_slice compares in constant time.
        self.mac(body).verify_slice(&tag).ok()?;
        Some(visitor_id.to_owned())
    }

    /// `<body>.<base64url HMAC-SHA256>`: the relay's other signed, short
    /// texts (assist links), whose body starts with a version of its own
    /// so that no kind passes for another.
    pub fn sign(&self, body: &str) -> String {
        let tag = self.mac(body).finalize().into_bytes();
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The body of a text made by [`VisitorTokens::sign`], if untouched.
    pub fn open<'a>(&self, signed: &'a str) -> Option<&'a str> {
        let (body, tag) = signed.rsplit_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.mac(body).verify_slice(&tag).ok()?;
        Some(body)
    }

    fn mac(&self, body: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC accepts keys of any length");
        mac.update(body.as_bytes());
        mac
    }
}

/// Signs and checks download links of files: `/files/ID?expires=T&sig=S`
/// lets whoever holds it fetch file ID until T (unix seconds). The key is
/// derived from the relay's secret, apart from visitor tokens', so a token
/// can never pass for a link or the other way round.
#[derive(Clone)]
pub struct FileLinks {
    key: Vec<u8>,
}

impl std::fmt::Debug for FileLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileLinks(..)")
    }
}

impl FileLinks {
    pub fn new(secret: &[u8]) -> Self {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
        mac.update(b"kefu file links v1");
        FileLinks {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    /// The signature of a link to `file_id` valid until `expires`.
    pub fn sign(&self, file_id: &str, expires: u64) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(file_id, expires).finalize().into_bytes())
    }

    /// Whether `signature` is this relay's for `file_id` and `expires`, and
    /// `expires` is not past `now` (unix seconds).
    pub fn verify(&self, file_id: &str, expires: u64, signature: &str, now: u64) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        // verify_slice compares in constant time.
        now <= expires && self.mac(file_id, expires).verify_slice(&tag).is_ok()
    }

    fn mac(&self, file_id: &str, expires: u64) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC accepts keys of any length");
        mac.update(format!("{file_id}\n{expires}").as_bytes());
        mac
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visitor_token_round_trips_and_rejects_tampering() {
        let tokens = VisitorTokens::new(new_secret());
        let token = tokens.issue("abc");
        assert_eq!(tokens.verify(&token).as_deref(), Some("abc"));

        let forged = token.replacen("abc", "abd", 1);
        assert_eq!(tokens.verify(&forged), None);

        let other_relay = VisitorTokens::new(new_secret());
        assert_eq!(other_relay.verify(&token), None);

        for garbage in ["", "v1", "v1.abc", "v2.abc.xyz", "v1..AAAA", "v1.abc.!!!"] {
            assert_eq!(tokens.verify(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn file_links_expire_and_reject_tampering() {
        let links = FileLinks::new(&new_secret());
        let sig = links.sign("file1", 100);
        assert!(links.verify("file1", 100, &sig, 100));
        assert!(!links.verify("file1", 100, &sig, 101), "expired");
        assert!(!links.verify("file2", 100, &sig, 50), "another file");
        assert!(!links.verify("file1", 200, &sig, 50), "a later expiry");
        assert!(!links.verify("file1", 100, "!!", 50));
        let other = FileLinks::new(&new_secret());
        assert!(!other.verify("file1", 100, &sig, 50), "another relay");
    }

    #[test]
    fn agent_tokens_are_random_and_hash_stably() {
        let a = new_agent_token();
        let b = new_agent_token();
        assert_ne!(a, b);
        assert!(
            a.len() >= AGENT_TOKEN_PREFIX.len() + 43,
            "at least 256 bits"
        );
        assert_eq!(hash_agent_token(&a), hash_agent_token(&a));
        assert_ne!(hash_agent_token(&a), hash_agent_token(&b));
        assert_eq!(hash_agent_token(&a).len(), 64);
    }
}
