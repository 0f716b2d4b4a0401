//! The relay's certificate and key, read from PEM files, and swapped for
//! new ones on [`Certificate::reload`] while handshakes go on: each
//! handshake asks [`ResolvesServerCert::resolve`] for the current pair.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a certificate could not be loaded. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("cannot read the certificate chain from {}", path.display())]
    Chain {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("{} holds no certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("cannot read the private key from {}", path.display())]
    Key {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("the key in {} does not fit the certificate in {}", key.display(), cert.display())]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
}

/// The files a certificate comes from, and what was last read from them.
#[derive(Debug)]
pub struct Certificate {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    /// Held only to clone or replace the `Arc`, never across an `.await`.
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificate {
    /// Reads `cert_path` (the chain, leaf first) and `key_path`.
    pub fn load(
        cert_path: &Path,
        key_path: &Path,
        provider: Arc<CryptoProvider>,
    ) -> Result<Certificate, CertificateError> {
        let current = read(cert_path, key_path, &provider)?;
        Ok(Certificate {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            provider,
            current: RwLock::new(Arc::new(current)),
        })
    }

    /// Reads the files again. On success new handshakes use the new pair
    /// (connections already open keep theirs); on error nothing changes.
    pub fn reload(&self) -> Result<(), CertificateError> {
        let fresh = Arc::new(read(&self.cert_path, &self.key_path, &self.provider)?);
        // A poisoned lock only means a panic elsewhere while swapping an
        // `Arc`: the value inside is whole.
        *self
            .current
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = fresh;
        Ok(())
    }

    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = self
            .current
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        Some(current.clone())
    }
}

fn read(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, CertificateError> {
    let chain = CertificateDer::pem_file_iter(cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|source| CertificateError::Chain {
            path: cert_path.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(CertificateError::NoCertificate {
            path: cert_path.to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|source| CertificateError::Key {
        path: key_path.to_owned(),
        source,
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|source| CertificateError::Mismatch {
        cert: cert_path.to_owned(),
        key: key_path.to_owned(),
        source,
    })
}
