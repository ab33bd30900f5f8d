//! `--tls`: whether the gRPC port speaks TLS (rustls; mTLS with a client CA).

use super::Kind;

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
