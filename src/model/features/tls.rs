//! `--tls`: whether the gRPC port speaks TLS (rustls; mTLS with a client CA).

use super::{Dependency, Kind, Part};
use crate::model::settings::{SectionSpec, Setting, Value};

/// `--tls`: whether the gRPC port speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsKind {
    /// TLS through rustls, mutual TLS when the config names a client CA.
    Rustls,
    /// Plaintext.
    None,
}

impl Kind for TlsKind {
    const FEATURE: &'static str = "tls";
    const KINDS: &'static [(Self, &'static str, &'static str)] = &[
        (
            Self::Rustls,
            "rustls",
            "TLS through rustls; mTLS when a client CA is configured",
        ),
        (Self::None, "none", "plaintext"),
    ];
    const NONE: Option<Self> = Some(Self::None);

    fn part(self) -> Option<&'static Part> {
        match self {
            Self::Rustls => Some(&RUSTLS),
            Self::None => None,
        }
    }
}

impl TlsKind {
    /// The kind `--tls[=BOOL]` asks for.
    pub fn from_flag(on: bool) -> Self {
        if on {
            Self::Rustls
        } else {
            Self::None
        }
    }
}

/// The recorded value: a kind name, or the boolean earlier versions wrote.
pub(super) fn from_recorded(value: &toml::Value) -> anyhow::Result<TlsKind> {
    match value {
        toml::Value::Boolean(on) => Ok(TlsKind::from_flag(*on)),
        other => super::recorded(TlsKind::FEATURE, other),
    }
}

/// What `rustls` adds to the project.
pub const RUSTLS: Part = Part {
    modules: &[],
    dependencies: &[
        Dependency::runtime(&["tls"]),
        Dependency::with_features("tonic", "0.14", &["tls-ring"]),
    ],
    dev_dependencies: &[Dependency::plain("rcgen", "0.14")],
    cargo_features: &[],
    sections: &[
        SectionSpec {
            key: "tls",
            rust_type: "microframework_runtime::tls::TlsConfig",
            doc: "TLS of the gRPC port, with client certificates (mTLS) when `client_ca_file` is set.",
            settings: &[
                Setting {
                    key: "enabled",
                    env: Some("TLS_ENABLED"),
                    rust_type: "bool",
                    default: Value::Bool(true),
                    doc: "Whether the gRPC port speaks TLS; see README.md for making certificates",
                },
                Setting {
                    key: "cert_file",
                    env: Some("TLS_CERT_FILE"),
                    rust_type: "String",
                    default: Value::Str("certs/server.crt"),
                    doc: "PEM certificate chain of the server",
                },
                Setting {
                    key: "key_file",
                    env: Some("TLS_KEY_FILE"),
                    rust_type: "String",
                    default: Value::Str("certs/server.key"),
                    doc: "PEM private key of the server",
                },
                Setting {
                    key: "client_ca_file",
                    env: Some("TLS_CLIENT_CA_FILE"),
                    rust_type: "String",
                    default: Value::Str(""),
                    doc: "PEM CA client certificates must chain to; set it to require them (mTLS)",
                },
            ],
        },
        SectionSpec {
            key: "client.tls",
            rust_type: "microframework_runtime::tls::ClientTls",
            doc: "TLS of the client, used for `https://` endpoints.",
            settings: &[
                Setting {
                    key: "ca_file",
                    env: Some("CLIENT_TLS_CA_FILE"),
                    rust_type: "String",
                    default: Value::Str(""),
                    doc: "PEM CA certificate(s) the server's certificate must chain to",
                },
                Setting {
                    key: "cert_file",
                    env: Some("CLIENT_TLS_CERT_FILE"),
                    rust_type: "String",
                    default: Value::Str(""),
                    doc: "PEM client certificate, for servers that require one (mTLS)",
                },
                Setting {
                    key: "key_file",
                    env: Some("CLIENT_TLS_KEY_FILE"),
                    rust_type: "String",
                    default: Value::Str(""),
                    doc: "PEM private key of the client certificate",
                },
                Setting {
                    key: "domain",
                    env: Some("CLIENT_TLS_DOMAIN"),
                    rust_type: "String",
                    default: Value::Str(""),
                    doc: "Name the server's certificate must carry (default: the endpoint's host)",
                },
            ],
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::settings::declared;
    use microframework_runtime::tls::{ClientTls, TlsConfig};

    #[test]
    fn the_tls_sections_declare_the_runtime_defaults() {
        let server = declared::<TlsConfig>(RUSTLS.sections, "tls");
        assert_eq!(server, TlsConfig::default());
        let client = declared::<ClientTls>(RUSTLS.sections, "client.tls");
        assert_eq!(client, ClientTls::default());
    }
}
