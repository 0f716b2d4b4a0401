//! Test certificates made with rcgen: a [`TestCa`] issues certificates for
//! `127.0.0.1` and `localhost` and makes TLS clients that trust it, and
//! [`connect`] opens a raw TLS connection whose peer certificate a test can
//! look at.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http_body_util::Empty;
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use kefu_relay::config::TlsFiles;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::PATIENCE;

/// A certificate authority made for one test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// A new CA named `name` (its common name, to tell CAs apart).
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("CA key");
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    /// Writes a new certificate for `127.0.0.1` and `localhost`, signed by
    /// this CA, and its key, as `NAME.pem` and `NAME.key` in `dir`.
    pub fn issue(&self, dir: &Path, name: &str) -> TlsFiles {
        let files = TlsFiles {
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        };
        self.issue_to(&files);
        files
    }

    /// Writes a new certificate and key over `files`; the certificate's
    /// DER, to tell it from the one it replaces.
    pub fn issue_to(&self, files: &TlsFiles) -> CertificateDer<'static> {
        let mut params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("certificate parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, "kefu test relay");
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("certificate");
        std::fs::write(&files.cert, cert.pem()).expect("write the certificate");
        std::fs::write(&files.key, key.serialize_pem()).expect("write the key");
        cert.der().clone()
    }

    /// Writes the CA's certificate to `path`, as `--ca-file` takes it.
    pub fn write_pem(&self, path: &Path) -> PathBuf {
        std::fs::write(path, self.issuer.pem()).expect("write the CA certificate");
        path.to_owned()
    }

    /// A TLS client that trusts this CA alone.
    pub fn client(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.issuer.der().clone()).expect("a valid CA");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }
}

/// A TLS connection to `addr` (as `127.0.0.1`), checked by `client`.
pub async fn connect(
    addr: SocketAddr,
    client: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::IpAddress(addr.ip().into());
    let handshake = TlsConnector::from(client).connect(name, tcp);
    tokio::time::timeout(PATIENCE, handshake)
        .await
        .map_err(|_| std::io::Error::other("the TLS handshake timed out"))?
}

/// The certificate the server showed on `stream`.
pub fn peer_certificate(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    let (_, session) = stream.get_ref();
    let chain = session.peer_certificates().expect("a certificate");
    chain[0].clone().into_owned()
}

/// The status of `GET path` over a fresh TLS connection, or why none came.
pub async fn get_status(
    addr: SocketAddr,
    client: Arc<ClientConfig>,
    path: &str,
) -> Result<u16, String> {
    let stream = connect(addr, client).await.map_err(|e| e.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let request = Request::get(path)
        .header("host", addr.to_string())
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(PATIENCE, sender.send_request(request))
        .await
        .map_err(|_| "no response in time".to_owned())?
        .map_err(|e| e.to_string())?;
    Ok(response.status().as_u16())
}
