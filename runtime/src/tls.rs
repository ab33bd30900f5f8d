//! TLS of the gRPC port (mTLS when a client CA is set) and of the client for `https://`
//! endpoints, from certificates and keys in PEM files. The settings are always here; the
//! functions that apply them need feature `tls` (tonic with rustls and ring).

#[cfg(feature = "tls")]
use anyhow::Context;
use serde::Deserialize;
#[cfg(feature = "tls")]
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig};

/// TLS of the gRPC port (`[tls]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Whether the gRPC port speaks TLS.
    pub enabled: bool,
    /// PEM certificate chain of the server.
    pub cert_file: String,
    /// PEM private key of the server.
    pub key_file: String,
    /// PEM CA that client certificates must chain to; set, it requires them (mTLS).
    pub client_ca_file: String,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            cert_file: "certs/server.crt".to_owned(),
            key_file: "certs/server.key".to_owned(),
            client_ca_file: String::new(),
        }
    }
}

/// TLS of a client, used for `https://` endpoints (`[client.tls]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientTls {
    /// PEM CA certificate(s) the server's certificate must chain to; empty: the system's.
    pub ca_file: String,
    /// PEM client certificate, for servers that require one (mTLS).
    pub cert_file: String,
    /// PEM private key of the client certificate.
    pub key_file: String,
    /// Name the server's certificate must carry; empty: the endpoint's host.
    pub domain: String,
}

#[cfg(feature = "tls")]
/// `builder` serving TLS as `tls` says, when `tls.enabled` is on; an error names a file
/// that cannot be read.
pub fn configure_server<L>(builder: Server<L>, tls: &TlsConfig) -> anyhow::Result<Server<L>> {
    if !tls.enabled {
        return Ok(builder);
    }
    let read = |path: &str| {
        std::fs::read(path).with_context(|| {
            format!("TLS is on (tls.enabled) but {path} cannot be read; see README.md for making certificates, or set TLS_ENABLED=false")
        })
    };
    let identity = Identity::from_pem(read(&tls.cert_file)?, read(&tls.key_file)?);
    let mut server_tls = ServerTlsConfig::new().identity(identity);
    if !tls.client_ca_file.is_empty() {
        server_tls = server_tls.client_ca_root(Certificate::from_pem(read(&tls.client_ca_file)?));
    }
    builder
        .tls_config(server_tls)
        .context("invalid TLS settings")
}

#[cfg(feature = "tls")]
/// `builder` for `endpoint`, speaking TLS with `tls` when the endpoint is `https://...`.
pub fn configure_client(
    builder: Endpoint,
    endpoint: &str,
    tls: &ClientTls,
) -> anyhow::Result<Endpoint> {
    if !endpoint.starts_with("https://") {
        return Ok(builder);
    }
    let mut config = ClientTlsConfig::new();
    if !tls.ca_file.is_empty() {
        config = config.ca_certificate(Certificate::from_pem(read(&tls.ca_file)?));
    }
    if !tls.cert_file.is_empty() {
        let identity = Identity::from_pem(read(&tls.cert_file)?, read(&tls.key_file)?);
        config = config.identity(identity);
    }
    if !tls.domain.is_empty() {
        config = config.domain_name(&tls.domain);
    }
    builder
        .tls_config(config)
        .context("invalid client TLS settings")
}

#[cfg(feature = "tls")]
fn read(path: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {path}"))
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    use super::*;

    fn endpoint(address: &str) -> Endpoint {
        Endpoint::from_shared(address.to_owned()).expect("an endpoint")
    }

    #[test]
    fn plaintext_endpoints_and_a_server_with_tls_off_are_left_alone() {
        let missing = ClientTls {
            ca_file: "/nonexistent/ca.pem".to_owned(),
            ..ClientTls::default()
        };
        configure_client(
            endpoint("http://127.0.0.1:1"),
            "http://127.0.0.1:1",
            &missing,
        )
        .expect("no TLS for http://");
        let off = TlsConfig {
            enabled: false,
            cert_file: "/nonexistent/server.crt".to_owned(),
            ..TlsConfig::default()
        };
        configure_server(Server::builder(), &off).expect("TLS off reads nothing");
    }

    #[test]
    fn unreadable_files_are_named() {
        let missing = ClientTls {
            ca_file: "/nonexistent/ca.pem".to_owned(),
            ..ClientTls::default()
        };
        let address = "https://127.0.0.1:1";
        let err = configure_client(endpoint(address), address, &missing).unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent/ca.pem"),
            "{err:#}"
        );
        let on = TlsConfig {
            cert_file: "/nonexistent/server.crt".to_owned(),
            ..TlsConfig::default()
        };
        let err = configure_server(Server::builder(), &on).unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("/nonexistent/server.crt"), "{message}");
        assert!(message.contains("TLS_ENABLED=false"), "{message}");
    }
}
