//! TLS to PostgreSQL with rustls (ring), with libpq's `sslmode` semantics:
//! - `disable`: plain TCP; `prefer` (the default): TLS when the server offers it, else plain, the
//!   certificate not checked;
//! - `require`: TLS or nothing; the certificate is checked against `sslrootcert` when one is given
//!   (or `~/.postgresql/root.crt` exists), as `verify-ca`, and not checked otherwise;
//! - `verify-ca`: the chain must lead to a CA of `sslrootcert`; the host name is not checked;
//! - `verify-full`: the chain and the host name (or IP address) the client connected by.
//!
//! A refused handshake names the host and the reason (unknown CA, a name the certificate lacks).

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode`, less `allow` (plain first, TLS on refusal), which tokio-postgres cannot do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// What tokio-postgres is told: it negotiates TLS, the verifier here checks the certificate.
    pub(crate) fn negotiation(self) -> tokio_postgres::config::SslMode {
        match self {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
        }
    }
}

impl std::str::FromStr for SslMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            "allow" => return Err("sslmode=allow is not supported: use prefer (or disable)".into()),
            other => {
                return Err(format!(
                    "sslmode must be disable, prefer, require, verify-ca or verify-full, not {other:?}"
                ))
            }
        })
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        })
    }
}

/// Why the TLS settings of a database URL cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("sslmode={mode} needs the CA certificate: set sslrootcert in the database URL (libpq's default, {}, does not exist)", default.display())]
    NoRootCert { mode: SslMode, default: PathBuf },
    #[error("cannot read sslrootcert {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("sslrootcert {} holds no usable PEM certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("the TLS client configuration cannot be built")]
    Rustls(#[source] rustls::Error),
}

/// How the server's certificate is checked.
#[derive(Clone, Debug)]
enum Check {
    /// Encryption only (prefer, and require without a CA).
    Nothing,
    /// The chain up to a CA of this file; the name is not checked.
    Chain(PathBuf),
    /// Chain and host name.
    ChainAndName(PathBuf),
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::Nothing => f.write_str("certificate not verified"),
            Check::Chain(p) => write!(f, "chain checked against sslrootcert {}, host name not checked", p.display()),
            Check::ChainAndName(p) => write!(f, "chain checked against sslrootcert {} and host name", p.display()),
        }
    }
}

/// The connector every database connection of Panoptes goes through (`MakeTlsConnect`).
#[derive(Clone)]
pub struct DatabaseTls {
    inner: MakeRustlsConnect,
    mode: SslMode,
    check: Arc<Check>,
}

impl DatabaseTls {
    /// `root_cert`: the URL's `sslrootcert`; libpq's `~/.postgresql/root.crt` when absent.
    pub fn new(mode: SslMode, root_cert: Option<&Path>) -> Result<DatabaseTls, TlsSetupError> {
        Self::with_default_root(mode, root_cert, default_root_cert())
    }

    fn with_default_root(
        mode: SslMode,
        root_cert: Option<&Path>,
        default: Option<PathBuf>,
    ) -> Result<DatabaseTls, TlsSetupError> {
        // A CA named in the URL must be usable whatever the mode (a typo must not quietly turn
        // checking off); libpq's default file only counts where a CA is used, and when it exists.
        if let Some(p) = root_cert {
            load_roots(p)?;
        }
        let ca = match root_cert {
            Some(p) => Some(p.to_path_buf()),
            None => default.clone().filter(|p| p.is_file()),
        };
        let check = match (mode, ca) {
            (SslMode::Disable | SslMode::Prefer, _) | (SslMode::Require, None) => Check::Nothing,
            (SslMode::Require | SslMode::VerifyCa, Some(ca)) => Check::Chain(ca),
            (SslMode::VerifyFull, Some(ca)) => Check::ChainAndName(ca),
            (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
                return Err(TlsSetupError::NoRootCert { mode, default: default.unwrap_or_default() })
            }
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsSetupError::Rustls)?;
        let algorithms = provider.signature_verification_algorithms;
        let config = match &check {
            Check::Nothing => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(EncryptionOnly { algorithms }))
                .with_no_client_auth(),
            Check::Chain(ca) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly { roots: Arc::new(load_roots(ca)?), algorithms }))
                .with_no_client_auth(),
            Check::ChainAndName(ca) => builder.with_root_certificates(load_roots(ca)?).with_no_client_auth(),
        };
        Ok(DatabaseTls { inner: MakeRustlsConnect::new(config), mode, check: Arc::new(check) })
    }
}

fn default_root_cert() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".postgresql/root.crt"))
}

fn load_roots(path: &Path) -> Result<RootCertStore, TlsSetupError> {
    let pem = std::fs::read(path).map_err(|source| TlsSetupError::Read { path: path.to_path_buf(), source })?;
    let mut roots = RootCertStore::empty();
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice()).filter_map(Result::ok).collect();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(TlsSetupError::NoCertificate { path: path.to_path_buf() });
    }
    Ok(roots)
}

/// Checks the handshake's signatures (so the session key belongs to the certificate presented) and
/// nothing about the certificate: libpq's `prefer` and `require` without a CA.
#[derive(Debug)]
struct EncryptionOnly {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for EncryptionOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must end at one of the roots; the names in the certificate are ignored.
#[derive(Debug)]
struct ChainOnly {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A refused TLS handshake, naming the host and why.
#[derive(Debug, thiserror::Error)]
#[error("TLS with {host} failed (sslmode={mode}, {check}): {reason}")]
pub struct HandshakeError {
    host: String,
    mode: SslMode,
    check: Arc<Check>,
    reason: String,
    #[source]
    source: std::io::Error,
}

impl HandshakeError {
    fn new(host: String, mode: SslMode, check: Arc<Check>, source: std::io::Error) -> HandshakeError {
        let rustls_error = source.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
        let reason = match rustls_error {
            Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
                "the server's certificate is not signed by a CA of sslrootcert (unknown issuer)".to_string()
            }
            Some(rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { presented, .. })) => {
                format!(
                    "the server's certificate is not valid for the name {host:?} (it names {}); connect by a \
                     name it holds, or use sslmode=verify-ca to check the chain only",
                    if presented.is_empty() { "no name".to_string() } else { plain_names(presented) }
                )
            }
            Some(rustls::Error::InvalidCertificate(CertificateError::NotValidForName)) => format!(
                "the server's certificate is not valid for the name {host:?}; connect by a name it holds, or \
                 use sslmode=verify-ca to check the chain only"
            ),
            Some(rustls::Error::InvalidCertificate(e)) => format!("the server's certificate is refused: {e}"),
            Some(e) => e.to_string(),
            None => source.to_string(),
        };
        HandshakeError { host, mode, check, reason, source }
    }
}

/// rustls writes the names a certificate holds as `IpAddress(10.0.0.5)` and `DnsName("db")`.
fn plain_names(presented: &[String]) -> String {
    let plain = |name: &str| {
        let inner = name.strip_prefix("IpAddress(").or_else(|| name.strip_prefix("DnsName("));
        inner.and_then(|n| n.strip_suffix(')')).map_or(name, |n| n.trim_matches('"')).to_string()
    };
    presented.iter().map(|n| plain(n)).collect::<Vec<_>>().join(", ")
}

impl<S> MakeTlsConnect<S> for DatabaseTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = <MakeRustlsConnect as MakeTlsConnect<S>>::Stream;
    type TlsConnect = Handshake<<MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect>;
    type Error = std::convert::Infallible;

    fn make_tls_connect(&mut self, host: &str) -> Result<Self::TlsConnect, Self::Error> {
        let inner = match <MakeRustlsConnect as MakeTlsConnect<S>>::make_tls_connect(&mut self.inner, host) {
            Ok(inner) => inner,
            Err(never) => match never {},
        };
        Ok(Handshake { inner, host: host.to_string(), mode: self.mode, check: self.check.clone() })
    }
}

/// One handshake, its error naming the host.
pub struct Handshake<T> {
    inner: T,
    host: String,
    mode: SslMode,
    check: Arc<Check>,
}

impl<S, T> TlsConnect<S> for Handshake<T>
where
    T: TlsConnect<S, Error = std::io::Error>,
    T::Future: Send + 'static,
{
    type Stream = T::Stream;
    type Error = HandshakeError;
    type Future = Pin<Box<dyn Future<Output = Result<T::Stream, HandshakeError>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let Handshake { inner, host, mode, check } = self;
        let handshake = inner.connect(stream);
        Box::pin(async move { handshake.await.map_err(|e| HandshakeError::new(host, mode, check, e)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_names_read_plainly() {
        let names = ["IpAddress(127.0.0.1)".to_string(), "DnsName(\"db.example\")".to_string(), "odd".to_string()];
        assert_eq!(plain_names(&names), "127.0.0.1, db.example, odd");
    }

    #[test]
    fn verify_modes_need_a_ca_and_a_named_one_must_exist() {
        let home = Some(PathBuf::from("/nonexistent-home/.postgresql/root.crt"));
        let err = DatabaseTls::with_default_root(SslMode::VerifyFull, None, home.clone()).err().expect("no CA");
        assert!(err.to_string().contains("sslmode=verify-full needs the CA certificate"), "{err}");
        assert!(err.to_string().contains("/nonexistent-home/.postgresql/root.crt"), "{err}");
        let require = DatabaseTls::with_default_root(SslMode::Require, None, home).expect("require without a CA");
        assert!(matches!(*require.check, Check::Nothing), "only encrypts");
        for mode in [SslMode::Prefer, SslMode::Require] {
            let err = DatabaseTls::new(mode, Some(Path::new("/nonexistent/ca.pem"))).err().expect("missing");
            assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        }
    }
}
