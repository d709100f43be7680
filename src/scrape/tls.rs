//! The TLS side of https scrapes: turns a job's `tls_config` into a rustls client
//! configuration (ring provider) — CA from `ca`/`ca_file` or the Mozilla roots of
//! `webpki-roots`, client certificate from `cert[_file]`/`key[_file]`, `server_name`,
//! `insecure_skip_verify`, `min_version`/`max_version` — and wraps a TCP stream in a TLS
//! session. Files are read again before every scrape (`files_changed`) and at every new
//! connection, so rotated CA files, certificates and keys take effect at the next scrape, as
//! in Prometheus; the parsed configuration is cached until their bytes change. This module
//! never speaks HTTP and never touches storage.

use std::fmt;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::TlsConnector;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::scrape::TlsConfig;

/// The ALPN protocol offered: the scraper speaks HTTP/1.1 only.
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Configuration name of TLS 1.2.
pub const TLS12: &str = "TLS12";
/// Configuration name of TLS 1.3.
pub const TLS13: &str = "TLS13";

/// The bytes a configuration was built from; a change in any of them rebuilds it.
#[derive(Clone, PartialEq, Eq)]
struct Material {
    ca: Option<Vec<u8>>,
    cert: Option<Vec<u8>>,
    key: Option<Vec<u8>>,
}

/// The TLS client of one scrape loop.
pub struct TlsClient {
    cfg: TlsConfig,
    cached: Option<(Material, Arc<ClientConfig>)>,
}

impl TlsClient {
    /// A client for `cfg` (the job's `tls_config`, or the default when it has none).
    pub fn new(cfg: TlsConfig) -> TlsClient {
        TlsClient { cfg, cached: None }
    }

    /// The rustls configuration for a new connection, rebuilt when a file changed.
    pub fn client_config(&mut self) -> Result<Arc<ClientConfig>, String> {
        let material = self.read_material()?;
        if let Some((m, c)) = &self.cached {
            if *m == material {
                return Ok(c.clone());
            }
        }
        let config = Arc::new(build_client_config(&self.cfg, &material)?);
        self.cached = Some((material, config.clone()));
        Ok(config)
    }

    /// Whether a CA, certificate or key file changed since the cached configuration was
    /// built (or cannot be read any more): the caller then drops its kept-alive connection
    /// so the next one uses the new files, as Prometheus does at every round trip.
    /// Without files (inline PEM or roots only) nothing can change and nothing is read.
    pub fn files_changed(&self) -> bool {
        let c = &self.cfg;
        if c.ca_file.is_empty() && c.cert_file.is_empty() && c.key_file.is_empty() {
            return false;
        }
        match (&self.cached, self.read_material()) {
            (Some((m, _)), Ok(now)) => *m != now,
            _ => true,
        }
    }

    /// The name the server certificate is checked against (and sent as SNI when it is a
    /// DNS name): `server_name` when set, else the host of `address` (`host[:port]`).
    pub fn server_name(&self, address: &str) -> Result<ServerName<'static>, String> {
        let name = if self.cfg.server_name.is_empty() {
            host_of(address).to_owned()
        } else {
            self.cfg.server_name.clone()
        };
        ServerName::try_from(name.clone()).map_err(|e| format!("invalid server name {name:?}: {e}"))
    }

    /// Runs the TLS handshake over `stream` for the target at `address`.
    pub async fn connect(
        &mut self,
        address: &str,
        stream: TcpStream,
    ) -> Result<TlsStream<TcpStream>, String> {
        let config = self.client_config()?;
        let name = self.server_name(address)?;
        TlsConnector::from(config)
            .connect(name, stream)
            .await
            .map_err(|e| format!("tls handshake with {address}: {e}"))
    }

    fn read_material(&self) -> Result<Material, String> {
        let c = &self.cfg;
        Ok(Material {
            ca: read_pem(&c.ca, &c.ca_file, "CA cert")?,
            cert: read_pem(&c.cert, &c.cert_file, "client cert")?,
            key: read_pem(&c.key, &c.key_file, "client key")?,
        })
    }
}

/// The inline PEM, or the file's contents, or `None` when neither is configured.
fn read_pem(inline: &str, file: &str, what: &str) -> Result<Option<Vec<u8>>, String> {
    if !inline.is_empty() {
        return Ok(Some(inline.as_bytes().to_vec()));
    }
    if file.is_empty() {
        return Ok(None);
    }
    std::fs::read(file)
        .map(Some)
        .map_err(|e| format!("unable to read specified {what} {file}: {e}"))
}

/// The host part of `host[:port]`, without IPv6 brackets.
fn host_of(address: &str) -> &str {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match address.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => h,
        _ => address,
    }
}

/// The protocol versions allowed by `min_version`/`max_version` (default minimum TLS 1.2,
/// as in Prometheus). rustls has no TLS 1.0/1.1, so a lower minimum means TLS 1.2.
pub fn protocol_versions(
    cfg: &TlsConfig,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let rank = |v: &str| match v {
        "" => None,
        "TLS10" => Some(10),
        "TLS11" => Some(11),
        TLS12 => Some(12),
        _ => Some(13),
    };
    let min = rank(&cfg.min_version).unwrap_or(12);
    let max = rank(&cfg.max_version).unwrap_or(13);
    let mut out = Vec::new();
    if min <= 12 && max >= 12 {
        out.push(&rustls::version::TLS12);
    }
    if max >= 13 {
        out.push(&rustls::version::TLS13);
    }
    if out.is_empty() {
        return Err(format!(
            "no supported TLS version between min_version {:?} and max_version {:?} (Vigil supports TLS12 and TLS13)",
            cfg.min_version, cfg.max_version
        ));
    }
    Ok(out)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn build_client_config(cfg: &TlsConfig, m: &Material) -> Result<ClientConfig, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&protocol_versions(cfg)?)
        .map_err(|e| format!("configuring TLS versions: {e}"))?;
    let builder = if cfg.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SkipServerVerification { provider }))
    } else {
        builder.with_root_certificates(root_store(cfg, m.ca.as_deref())?)
    };
    let mut config = match (&m.cert, &m.key) {
        (Some(cert), Some(key)) => {
            let (cert_src, key_src) = (source(&cfg.cert_file), source(&cfg.key_file));
            let certs = parse_certs(cert).map_err(|e| {
                format!("unable to use specified client cert ({cert_src}) & key ({key_src}): {e}")
            })?;
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| {
                format!("unable to use specified client cert ({cert_src}) & key ({key_src}): no private key: {e}")
            })?;
            builder.with_client_auth_cert(certs, key).map_err(|e| {
                format!("unable to use specified client cert ({cert_src}) & key ({key_src}): {e}")
            })?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(config)
}

/// Names where a PEM came from in error messages.
fn source(file: &str) -> &str {
    if file.is_empty() {
        "inline"
    } else {
        file
    }
}

fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate found".into());
    }
    Ok(certs)
}

/// The trust anchors: the configured CA certificates, or webpki-roots when none is given.
fn root_store(cfg: &TlsConfig, ca: Option<&[u8]>) -> Result<RootCertStore, String> {
    let Some(ca) = ca else {
        return Ok(RootCertStore::from_iter(
            webpki_roots::TLS_SERVER_ROOTS.iter().cloned(),
        ));
    };
    let err = |e: String| {
        format!(
            "unable to load specified CA cert {}: {e}",
            source(&cfg.ca_file)
        )
    };
    let mut store = RootCertStore::empty();
    for cert in parse_certs(ca).map_err(err)? {
        store.add(cert).map_err(|e| err(e.to_string()))?;
    }
    Ok(store)
}

/// The verifier behind `insecure_skip_verify: true`: it accepts any server certificate for
/// any name, so the connection is encrypted but NOT authenticated — anyone able to intercept
/// the traffic can impersonate the target and read any credentials sent. Only the
/// handshake signatures are still checked (against the presented certificate's key), as Go
/// does. Use it only for testing or on trusted networks.
struct SkipServerVerification {
    provider: Arc<CryptoProvider>,
}

impl fmt::Debug for SkipServerVerification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SkipServerVerification")
    }
}

impl ServerCertVerifier for SkipServerVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
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
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        format!("{}/tests/data/tls/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn host_of_strips_port_and_brackets() {
        assert_eq!(host_of("localhost:9100"), "localhost");
        assert_eq!(host_of("example.com"), "example.com");
        assert_eq!(host_of("[::1]:443"), "::1");
        assert_eq!(host_of("127.0.0.1:8443"), "127.0.0.1");
    }

    #[test]
    fn server_name_override_and_ip_addresses() {
        let c = TlsClient::new(TlsConfig::default());
        assert!(matches!(
            c.server_name("127.0.0.1:1").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert_eq!(
            c.server_name("host.example:1").unwrap(),
            ServerName::try_from("host.example").unwrap()
        );
        let c = TlsClient::new(TlsConfig {
            server_name: "vigil.test".into(),
            ..Default::default()
        });
        assert_eq!(
            c.server_name("127.0.0.1:1").unwrap(),
            ServerName::try_from("vigil.test").unwrap()
        );
    }

    #[test]
    fn versions_follow_min_and_max() {
        let v = |min: &str, max: &str| {
            protocol_versions(&TlsConfig {
                min_version: min.into(),
                max_version: max.into(),
                ..Default::default()
            })
            .map(|v| v.iter().map(|p| p.version).collect::<Vec<_>>())
        };
        use rustls::ProtocolVersion::{TLSv1_2, TLSv1_3};
        assert_eq!(v("", "").unwrap(), vec![TLSv1_2, TLSv1_3]);
        assert_eq!(v("TLS13", "").unwrap(), vec![TLSv1_3]);
        assert_eq!(v("", "TLS12").unwrap(), vec![TLSv1_2]);
        assert_eq!(v("TLS10", "").unwrap(), vec![TLSv1_2, TLSv1_3]);
        assert!(v("", "TLS11").is_err());
    }

    #[test]
    fn missing_and_bad_files_give_errors_naming_them() {
        let mut c = TlsClient::new(TlsConfig {
            ca_file: "/nonexistent/ca.pem".into(),
            ..Default::default()
        });
        let e = c.client_config().unwrap_err();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let mut c = TlsClient::new(TlsConfig {
            ca: "not a pem".into(),
            ..Default::default()
        });
        let e = c.client_config().unwrap_err();
        assert!(e.contains("unable to load specified CA cert"), "{e}");
        let mut c = TlsClient::new(TlsConfig {
            cert_file: fixture("client.crt"),
            key_file: fixture("ca.crt"),
            ..Default::default()
        });
        let e = c.client_config().unwrap_err();
        assert!(e.contains("unable to use specified client cert"), "{e}");
    }

    #[test]
    fn config_is_cached_until_a_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::copy(fixture("ca.crt"), &ca).unwrap();
        let mut c = TlsClient::new(TlsConfig {
            ca_file: ca.to_string_lossy().into_owned(),
            cert_file: fixture("client.crt"),
            key_file: fixture("client.key"),
            ..Default::default()
        });
        assert!(c.files_changed(), "nothing built yet");
        let a = c.client_config().unwrap();
        assert!(!c.files_changed());
        let b = c.client_config().unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(a.client_auth_cert_resolver.has_certs());
        std::fs::copy(fixture("other-ca.crt"), &ca).unwrap();
        assert!(c.files_changed());
        let d = c.client_config().unwrap();
        assert!(!Arc::ptr_eq(&a, &d));
        assert!(!TlsClient::new(TlsConfig::default()).files_changed());
    }
}
