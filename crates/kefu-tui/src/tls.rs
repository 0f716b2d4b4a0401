//! How kefu-tui checks a `wss://` relay: against the system's root
//! certificates, or, with `--ca-file`, against the CA certificates in that
//! file instead (a relay with a private or self-made CA).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read CA certificates from {path}: {source}")]
    CaFile {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("{path} holds no usable CA certificate")]
    NoCa { path: PathBuf },
    #[error(
        "no system root certificates found ({0}); pass --ca-file with the CA that signed the relay's certificate"
    )]
    NoSystemRoots(String),
}

/// The TLS settings for a `wss://` relay: trust the certificates in
/// `ca_file`, or the system's roots when there is none.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = match ca_file {
        Some(path) => roots_from(path)?,
        None => system_roots()?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn roots_from(path: &Path) -> Result<RootCertStore, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::CaFile {
            path: path.to_owned(),
            source,
        })?;
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(TlsError::NoCa {
            path: path.to_owned(),
        });
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, "a system root certificate could not be read");
    }
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        let why = if errors.is_empty() {
            "none installed".to_owned()
        } else {
            errors.join("; ")
        };
        return Err(TlsError::NoSystemRoots(why));
    }
    Ok(roots)
}

/// What to tell the agent when a connection failed because the relay's
/// certificate was refused; `None` for any other failure.
pub fn refused_certificate(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(refusal @ rustls::Error::InvalidCertificate(_)) = error.downcast_ref() {
            return Some(format!(
                "untrusted relay certificate ({refusal}); check --ca-file"
            ));
        }
        // An I/O error's `source` skips the error it wraps.
        cause = match error
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(wrapped) => Some(wrapped),
            None => error.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused_naming_it() {
        let dir = std::env::temp_dir().join(format!("kefu-tui-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("empty.pem");
        std::fs::write(&path, "not a certificate\n").expect("write");
        let error = client_config(Some(&path)).expect_err("no CA in the file");
        assert!(error.to_string().contains("empty.pem"), "{error}");
        let missing = dir.join("missing.pem");
        let error = client_config(Some(&missing)).expect_err("no file");
        assert!(error.to_string().contains("missing.pem"), "{error}");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
