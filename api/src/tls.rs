//! Optional TLS for the API (rustls with the ring provider): a PEM certificate chain and key from
//! `api.tls_cert` / `api.tls_key`.

use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("api.tls_cert and api.tls_key must be set together")]
    Incomplete,
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: String },
    #[error("{path} holds no PEM private key")]
    NoKey { path: String },
    #[error("the certificate and key are not usable together: {0}")]
    Rustls(#[from] rustls::Error),
}

/// `None` when TLS is not configured (both paths empty).
pub fn server_config(cert: &str, key: &str) -> Result<Option<rustls::ServerConfig>, TlsError> {
    match (cert.is_empty(), key.is_empty()) {
        (true, true) => return Ok(None),
        (false, false) => {}
        _ => return Err(TlsError::Incomplete),
    }
    let read = |p: &str| std::fs::read(Path::new(p)).map_err(|source| TlsError::Read { path: p.to_string(), source });
    let cert_pem = read(cert)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice()).filter_map(Result::ok).collect();
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: cert.to_string() });
    }
    let key_pem = read(key)?;
    let key_der = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .ok()
        .flatten()
        .ok_or_else(|| TlsError::NoKey { path: key.to_string() })?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)?;
    Ok(Some(config))
}
