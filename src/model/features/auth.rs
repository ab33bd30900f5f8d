//! `--auth`: how incoming calls are authenticated.

use super::Kind;

/// `--auth`: how incoming calls are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// JWT bearer tokens (HS256, RS256, ES256, JWKS), roles per method.
    Jwt,
    /// No authentication.
    None,
}

impl Kind for AuthKind {
    const FEATURE: &'static str = "auth";
    const KINDS: &'static [(Self, &'static str, &'static str)] = &[
        (
            Self::Jwt,
            "jwt",
            "JWT bearer tokens (HS256, RS256, ES256, JWKS), roles per method",
        ),
        (Self::None, "none", "no authentication"),
    ];
    const NONE: Option<Self> = Some(Self::None);
}
