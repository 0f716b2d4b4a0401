//! The PROXY protocol header (v1 text or v2 binary) that a TCP load
//! balancer — HAProxy's `send-proxy` / `send-proxy-v2`, an AWS NLB — writes
//! at the start of a connection, before TLS or HTTP, to name the client it
//! carries. The parsing is `ppp`'s; this module reads the bytes for it,
//! within a time and a size limit, and hands back whatever came after it,
//! which belongs to the TLS handshake or the first request.
//!
//! Whether to read a header at all is not decided here but by the peer's
//! address (see `admission`): the spec forbids guessing from the bytes.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use ppp::{HeaderResult, PartialResult as _, v1, v2};
use tokio::io::{AsyncRead, AsyncReadExt as _};

/// The most a header may take. A v1 header is at most 107 bytes; a v2 one
/// is 16 bytes, the addresses (at most 216, for UNIX sockets) and whatever
/// TLVs the balancer adds (ALPN, SNI, TLS details: a few hundred bytes).
/// Its length field allows 64 KiB, which no balancer needs to send.
pub const MAX_HEADER_BYTES: usize = 4096;

/// Whom a header says the connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A client's TCP connection, from this address.
    Client(SocketAddr),
    /// The balancer itself: a v2 `LOCAL` header (its health checks), a v1
    /// `UNKNOWN`, or addresses that are not IP (UNIX sockets, unspecified).
    /// The spec says to use the connection's own addresses then.
    Balancer,
}

#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("no complete PROXY header within {0:?}")]
    TimedOut(Duration),
    #[error("the connection ended before its PROXY header did")]
    Closed,
    #[error("the PROXY header is longer than {MAX_HEADER_BYTES} bytes")]
    TooLong,
    #[error("not a PROXY header: {0}")]
    Invalid(String),
    #[error("cannot read the PROXY header")]
    Read(#[source] io::Error),
}

/// Reads the PROXY header that must open `io`, for at most `timeout`.
/// Returns whom it names, and the bytes read past it, which the caller
/// must serve before `io`'s own.
pub async fn read<Io: AsyncRead + Unpin>(
    io: &mut Io,
    timeout: Duration,
) -> Result<(Source, Vec<u8>), HeaderError> {
    let mut buffer = Vec::with_capacity(256);
    let reading = async {
        loop {
            let mut chunk = [0u8; 512];
            let room = MAX_HEADER_BYTES - buffer.len();
            let read = io
                .read(&mut chunk[..room.min(512)])
                .await
                .map_err(HeaderError::Read)?;
            if read == 0 {
                return Err(HeaderError::Closed);
            }
            buffer.extend_from_slice(&chunk[..read]);
            if let Some(parsed) = parse(&buffer)? {
                return Ok(parsed);
            }
            if buffer.len() >= MAX_HEADER_BYTES {
                return Err(HeaderError::TooLong);
            }
        }
    };
    let (source, length) = tokio::time::timeout(timeout, reading)
        .await
        .map_err(|_| HeaderError::TimedOut(timeout))??;
    buffer.drain(..length);
    Ok((source, buffer))
}

/// The header at the start of `bytes` and its length, or `None` if more
/// bytes could still make one.
fn parse(bytes: &[u8]) -> Result<Option<(Source, usize)>, HeaderError> {
    let result = HeaderResult::parse(bytes);
    if result.is_incomplete() {
        // `ppp` calls a v1 line that lacks a field incomplete even once it
        // has ended; no more bytes can mend it, and waiting for them would
        // hold the socket until the timeout.
        if bytes.starts_with(v1::PROTOCOL_PREFIX.as_bytes()) && bytes.contains(&b'\n') {
            return Err(HeaderError::Invalid("a v1 line with fields missing".into()));
        }
        return Ok(None);
    }
    let invalid = |error: &dyn std::error::Error| HeaderError::Invalid(error.to_string());
    match result {
        HeaderResult::V1(Ok(header)) => {
            let source = match header.addresses {
                v1::Addresses::Tcp4(ip) => {
                    Source::Client((ip.source_address, ip.source_port).into())
                }
                v1::Addresses::Tcp6(ip) => {
                    Source::Client((ip.source_address, ip.source_port).into())
                }
                v1::Addresses::Unknown => Source::Balancer,
            };
            Ok(Some((source, header.header.len())))
        }
        HeaderResult::V2(Ok(header)) => {
            let source = match (header.command, header.addresses) {
                (v2::Command::Proxy, v2::Addresses::IPv4(ip)) => {
                    Source::Client((ip.source_address, ip.source_port).into())
                }
                (v2::Command::Proxy, v2::Addresses::IPv6(ip)) => {
                    Source::Client((ip.source_address, ip.source_port).into())
                }
                _ => Source::Balancer,
            };
            Ok(Some((source, header.len())))
        }
        HeaderResult::V1(Err(error)) => Err(invalid(&error)),
        HeaderResult::V2(Err(error)) => Err(invalid(&error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whom the header at the start of `bytes` names, and all that follows
    /// it: what was read past it, then the rest.
    async fn read_all(mut bytes: &[u8]) -> Result<(Source, Vec<u8>), HeaderError> {
        let (source, mut after) = read(&mut bytes, Duration::from_secs(5)).await?;
        after.extend_from_slice(bytes);
        Ok((source, after))
    }

    fn v2(command: v2::Command, addresses: v2::Addresses) -> Vec<u8> {
        let protocol = v2::Version::Two | command;
        v2::Builder::with_addresses(protocol, v2::Protocol::Stream, addresses)
            .write_tlv(v2::Type::Authority, b"support.example")
            .expect("a TLV")
            .build()
            .expect("a header")
    }

    #[tokio::test]
    async fn both_versions_name_the_client_and_keep_what_follows() {
        let client: SocketAddr = "198.51.100.7:40000".parse().expect("addr");
        let relay: SocketAddr = "10.0.0.2:443".parse().expect("addr");
        let mut v1 = b"PROXY TCP4 198.51.100.7 10.0.0.2 40000 443\r\n".to_vec();
        v1.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(
            read_all(&v1).await.expect("v1"),
            (Source::Client(client), b"GET / HTTP/1.1\r\n".to_vec())
        );
        let mut binary = v2(v2::Command::Proxy, (client, relay).into());
        binary.extend_from_slice(b"\x16\x03\x01");
        assert_eq!(
            read_all(&binary).await.expect("v2"),
            (Source::Client(client), b"\x16\x03\x01".to_vec())
        );
        let six: SocketAddr = "[2001:db8::7]:40000".parse().expect("addr");
        let relay6: SocketAddr = "[2001:db8::2]:443".parse().expect("addr");
        let binary = v2(v2::Command::Proxy, (six, relay6).into());
        assert_eq!(
            read_all(&binary).await.expect("v2 v6").0,
            Source::Client(six)
        );
    }

    #[tokio::test]
    async fn local_and_unknown_mean_the_balancer_itself() {
        let local = v2(v2::Command::Local, v2::Addresses::Unspecified);
        assert_eq!(read_all(&local).await.expect("local").0, Source::Balancer);
        let unknown = b"PROXY UNKNOWN\r\n";
        assert_eq!(
            read_all(unknown).await.expect("unknown").0,
            Source::Balancer
        );
    }

    #[tokio::test]
    async fn what_is_not_a_whole_header_is_refused() {
        for garbage in [
            &b"GET / HTTP/1.1\r\nHost: kefu\r\n\r\n"[..],
            b"PROXY TCP4 not-an-address 10.0.0.2 1 2\r\n",
            b"PROXY TCP9 198.51.100.7 10.0.0.2 1 2\r\n",
            b"PROXY TCP4 198.51.100.7\r\nGET / HTTP/1.1\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        ] {
            assert!(
                matches!(read_all(garbage).await, Err(HeaderError::Invalid(_))),
                "{garbage:?}"
            );
        }
        let cut = b"PROXY TCP4 198.51.100.7 10.0.0.2 40";
        assert!(matches!(read_all(cut).await, Err(HeaderError::Closed)));
        let mut endless = b"PROXY TCP4 198.51.100.7 ".to_vec();
        endless.resize(MAX_HEADER_BYTES * 2, b'1');
        assert!(read_all(&endless).await.is_err(), "no line end in sight");
        let mut huge = v2::PROTOCOL_PREFIX.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        huge.resize(MAX_HEADER_BYTES * 2, 0);
        assert!(matches!(read_all(&huge).await, Err(HeaderError::TooLong)));
    }

    #[tokio::test]
    async fn a_header_that_trickles_in_is_cut_off_at_its_deadline() {
        let (mut balancer, mut relay) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut balancer, b"PROXY TCP4 198.51")
            .await
            .expect("write");
        // `balancer` stays open: the header is not cut, only late.
        let result = read(&mut relay, Duration::from_millis(50)).await;
        assert!(matches!(result, Err(HeaderError::TimedOut(_))));
    }
}
