//! `--auth`: how incoming calls are authenticated.

use super::{Dependency, Kind, Part};
use crate::model::settings::{SectionSpec, Setting, Value};

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

    fn part(self) -> Option<&'static Part> {
        match self {
            Self::Jwt => Some(&JWT),
            Self::None => None,
        }
    }
}

/// What `jwt` adds to the project.
pub const JWT: Part = Part {
    modules: &["auth"],
    dependencies: &[Dependency::runtime(&["jwt"])],
    dev_dependencies: &[],
    cargo_features: &[],
    sections: &[SectionSpec {
        key: "auth",
        rust_type: "microframework_runtime::auth::AuthConfig",
        doc: "JWT authentication of incoming calls.",
        settings: &[
            Setting {
                key: "enabled",
                env: Some("AUTH_ENABLED"),
                rust_type: "bool",
                default: Value::Bool(true),
                doc: "Whether calls need a JWT bearer token; health and reflection never do",
            },
            Setting {
                key: "allow_disabled",
                env: Some("AUTH_ALLOW_DISABLED"),
                rust_type: "bool",
                default: Value::Bool(false),
                doc: "Lets `enabled = false` start outside development, when a mesh or gateway authenticates calls",
            },
            Setting {
                key: "algorithm",
                env: Some("JWT_ALGORITHM"),
                rust_type: "String",
                default: Value::Str("HS256"),
                doc: "`HS256` (shared secret), `RS256` or `ES256` (public key or JWKS)",
            },
            Setting {
                key: "secret",
                env: Some("JWT_SECRET"),
                rust_type: "String",
                default: Value::Expression(
                    "crate::auth::DEVELOPMENT_SECRET.to_owned()",
                    "\"development-only-secret-never-use-in-production\"",
                    "development secret",
                ),
                doc: "The HS256 secret, at least 32 bytes; the development one works only in development",
            },
            Setting {
                key: "secret_file",
                env: Some("JWT_SECRET_FILE"),
                rust_type: "String",
                default: Value::Str(""),
                doc: "A file holding the HS256 secret; wins over `secret`",
            },
            Setting {
                key: "public_key_file",
                env: Some("JWT_PUBLIC_KEY_FILE"),
                rust_type: "String",
                default: Value::Str(""),
                doc: "PEM public key for RS256 or ES256",
            },
            Setting {
                key: "jwks_file",
                env: Some("JWT_JWKS_FILE"),
                rust_type: "String",
                default: Value::Str(""),
                doc: "A JWKS document (JSON) with the verification keys, chosen by `kid`",
            },
            Setting {
                key: "private_key_file",
                env: Some("JWT_PRIVATE_KEY_FILE"),
                rust_type: "String",
                default: Value::Str(""),
                doc: "PEM private key the `token` command signs with (RS256 or ES256)",
            },
            Setting {
                key: "issuer",
                env: Some("JWT_ISSUER"),
                rust_type: "String",
                default: Value::Str(""),
                doc: "Required `iss` claim; must be set outside development with a public key or JWKS",
            },
            Setting {
                key: "audience",
                env: Some("JWT_AUDIENCE"),
                rust_type: "String",
                default: Value::Str(""),
                doc: "Required `aud` claim; must be set outside development with a public key or JWKS",
            },
            Setting {
                key: "leeway_secs",
                env: None,
                rust_type: "u64",
                default: Value::Number("30"),
                doc: "Clock skew allowed on `exp` and `nbf`, in seconds",
            },
            Setting {
                key: "public_methods",
                env: None,
                rust_type: "Vec<String>",
                default: Value::Strings(&["/grpc.health.v1.Health/", "/grpc.reflection."]),
                doc: "Path prefixes (`/package.Service/Method`) callable without a token",
            },
            Setting {
                key: "methods",
                env: None,
                rust_type: "Option<std::collections::BTreeMap<String, Vec<String>>>",
                default: Value::RoleTable,
                doc: "Roles or scopes (one needed) per method (`/package.Service/Method`) or service (`/package.Service/`); left out: the `<resource>:write` role for write methods",
            },
        ],
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::settings::declared;

    #[test]
    fn the_declared_defaults_are_the_runtime_defaults() {
        use microframework_runtime::auth::AuthConfig;
        let declared: AuthConfig = declared(JWT.sections, "auth");
        // The role table is the project's (none here); the runtime takes the generated
        // default roles when the setting is left out.
        let expected = AuthConfig {
            methods: Some(Default::default()),
            ..AuthConfig::default()
        };
        assert_eq!(declared, expected);
    }
}
