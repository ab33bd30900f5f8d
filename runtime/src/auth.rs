//! JWT authentication and per-method authorization of incoming calls ([`AuthLayer`]), and
//! minting of tokens ([`mint`], [`token`]). Cargo feature `jwt`.
//!
//! Secure by default: the development secret works only in the environments `development`
//! and `test`, an HS256 secret is at least 32 bytes, tokens checked by a public key or JWKS
//! must name the configured issuer and audience outside development, and turning auth off
//! outside development needs `allow_disabled`.

use std::{
    cell::RefCell,
    collections::{BTreeMap, HashMap},
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Context;
use jsonwebtoken::{
    errors::ErrorKind, jwk::JwkSet, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use pin_project_lite::pin_project;
use serde::{Deserialize, Serialize};
use tonic::{body::Body, Status};
use tower::{Layer, Service};

use crate::is_development;

/// The HS256 secret used when none is configured; the server accepts it only when
/// `environment` is `development` or `test`.
pub const DEVELOPMENT_SECRET: &str = "development-only-secret-never-use-in-production";

/// The shortest HS256 secret accepted, in bytes: the hash's output size (RFC 7518, 3.2).
pub const MIN_SECRET_BYTES: usize = 32;

/// The roles or scopes (one needed) each method needs when the configuration names none
/// (`auth.methods` left out): `(route, role)` pairs, which the generated code lists for the
/// write methods of the resources it implements.
pub type DefaultRoles = &'static [(&'static str, &'static str)];

/// JWT authentication of incoming calls (`[auth]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Whether calls need a JWT bearer token; health and reflection never do.
    pub enabled: bool,
    /// Lets `enabled = false` start outside development, when a mesh or gateway
    /// authenticates calls.
    pub allow_disabled: bool,
    /// `HS256` (shared secret), `RS256` or `ES256` (public key or JWKS).
    pub algorithm: String,
    /// The HS256 secret, at least 32 bytes; the development one works only in development.
    pub secret: String,
    /// A file holding the HS256 secret; wins over `secret`.
    pub secret_file: String,
    /// PEM public key for RS256 or ES256.
    pub public_key_file: String,
    /// A JWKS document (JSON) with the verification keys, chosen by `kid`.
    pub jwks_file: String,
    /// PEM private key [`mint`] signs with (RS256 or ES256).
    pub private_key_file: String,
    /// Required `iss` claim; must be set outside development with a public key or JWKS.
    pub issuer: String,
    /// Required `aud` claim; must be set outside development with a public key or JWKS.
    pub audience: String,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// Path prefixes (`/package.Service/Method`) callable without a token.
    pub public_methods: Vec<String>,
    /// Roles or scopes (one needed) per method (`/package.Service/Method`) or service
    /// (`/package.Service/`). `None`: the service's [`DefaultRoles`].
    pub methods: Option<BTreeMap<String, Vec<String>>>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            allow_disabled: false,
            algorithm: "HS256".to_owned(),
            secret: DEVELOPMENT_SECRET.to_owned(),
            secret_file: String::new(),
            public_key_file: String::new(),
            jwks_file: String::new(),
            private_key_file: String::new(),
            issuer: String::new(),
            audience: String::new(),
            leeway_secs: 30,
            public_methods: vec![
                "/grpc.health.v1.Health/".to_owned(),
                "/grpc.reflection.".to_owned(),
            ],
            methods: None,
        }
    }
}

impl AuthConfig {
    /// The roles or scopes each method or service needs: `methods` when configured, else
    /// `default_roles`.
    pub fn method_roles(&self, default_roles: DefaultRoles) -> BTreeMap<String, Vec<String>> {
        self.methods.clone().unwrap_or_else(|| {
            default_roles
                .iter()
                .map(|(path, role)| ((*path).to_owned(), vec![(*role).to_owned()]))
                .collect()
        })
    }

    /// The signing algorithm.
    pub fn algorithm(&self) -> anyhow::Result<jsonwebtoken::Algorithm> {
        match self.algorithm.as_str() {
            "HS256" => Ok(jsonwebtoken::Algorithm::HS256),
            "RS256" => Ok(jsonwebtoken::Algorithm::RS256),
            "ES256" => Ok(jsonwebtoken::Algorithm::ES256),
            other => anyhow::bail!("auth.algorithm `{other}`: expected HS256, RS256 or ES256"),
        }
    }

    /// The HS256 secret, from `secret_file` when set.
    pub fn secret(&self) -> anyhow::Result<String> {
        crate::config::secret(&self.secret, &self.secret_file, "auth.secret_file")
    }
}

/// Most verified tokens remembered per thread; the memory is cleared when it is full.
const REMEMBERED_TOKENS: usize = 4096;

thread_local! {
    /// Tokens verified on this thread, by authenticator. Per thread, so that the calls of
    /// the runtime's workers share no lock.
    static VERIFIED: RefCell<HashMap<u64, HashMap<String, Claims>>> = RefCell::default();
}

/// Tells authenticators apart in `VERIFIED` (tests run several servers in one process).
static NEXT_AUTHENTICATOR: AtomicU64 = AtomicU64::new(0);

/// The claims of a verified token; handlers find them in the request extensions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who the token was issued to.
    pub sub: String,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: u64,
    /// Issue time, in seconds since the Unix epoch.
    #[serde(default)]
    pub iat: u64,
    /// Not valid before this time, in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience: one name or several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// Roles granted to the subject.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// OAuth scopes, separated by spaces.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
}

/// The `aud` claim, which JWT allows as a string or a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Claims {
    /// Claims for `subject` valid from now for `ttl`, with the configured issuer and audience.
    pub fn new(config: &AuthConfig, subject: &str, roles: Vec<String>, ttl: Duration) -> Self {
        let now = unix_now();
        Self {
            sub: subject.to_owned(),
            exp: now + ttl.as_secs(),
            iat: now,
            nbf: None,
            iss: non_empty(&config.issuer).map(str::to_owned),
            aud: non_empty(&config.audience).map(|aud| Audience::One(aud.to_owned())),
            roles,
            scope: String::new(),
        }
    }

    /// Whether the claims grant `grant`, as a role or as a scope.
    pub fn grants(&self, grant: &str) -> bool {
        self.roles.iter().any(|role| role == grant)
            || self.scope.split_whitespace().any(|scope| scope == grant)
    }
}

/// Verifies bearer tokens and checks each method's required roles or scopes.
pub struct Authenticator {
    keys: Keys,
    validation: Validation,
    public_methods: Vec<String>,
    required: BTreeMap<String, Vec<String>>,
    id: u64,
}

enum Keys {
    Single(DecodingKey),
    Set(Vec<(Option<String>, DecodingKey)>),
}

impl Authenticator {
    /// Loads the verification key(s) that `config` names; `default_roles` apply when it
    /// names no `methods`. Outside development (when `development` is false) the development
    /// secret is refused, and tokens verified by a public key or JWKS must name the
    /// configured issuer and audience.
    pub fn from_config(
        config: &AuthConfig,
        development: bool,
        default_roles: DefaultRoles,
    ) -> anyhow::Result<Self> {
        let algorithm = config.algorithm()?;
        let keys = if !config.jwks_file.is_empty() {
            let text = read(&config.jwks_file)?;
            let set: JwkSet = serde_json::from_str(&text)
                .with_context(|| format!("invalid JWKS file {}", config.jwks_file))?;
            let keys = set
                .keys
                .iter()
                .map(|jwk| Ok((jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk)?)))
                .collect::<Result<Vec<_>, jsonwebtoken::errors::Error>>()
                .with_context(|| format!("unusable key in {}", config.jwks_file))?;
            Keys::Set(keys)
        } else if algorithm == Algorithm::HS256 {
            let secret = config.secret()?;
            check_secret(&secret, development)?;
            Keys::Single(DecodingKey::from_secret(secret.as_bytes()))
        } else {
            anyhow::ensure!(
                !config.public_key_file.is_empty(),
                "auth.algorithm {} needs auth.public_key_file or auth.jwks_file",
                config.algorithm
            );
            let pem = read(&config.public_key_file)?;
            let key = match algorithm {
                Algorithm::RS256 => DecodingKey::from_rsa_pem(pem.as_bytes()),
                _ => DecodingKey::from_ec_pem(pem.as_bytes()),
            };
            Keys::Single(key.with_context(|| format!("invalid key {}", config.public_key_file))?)
        };
        if algorithm != Algorithm::HS256 || !config.jwks_file.is_empty() {
            // A key pair usually belongs to an identity provider that issues tokens for other
            // services too: only `iss` and `aud` tell this service's tokens apart.
            anyhow::ensure!(
                development || (!config.issuer.is_empty() && !config.audience.is_empty()),
                "tokens verified by a public key or JWKS must be checked for their issuer and audience outside development: set auth.issuer (JWT_ISSUER) and auth.audience (JWT_AUDIENCE)"
            );
        }
        let mut validation = Validation::new(algorithm);
        validation.leeway = config.leeway_secs;
        validation.validate_nbf = true;
        if let Some(issuer) = non_empty(&config.issuer) {
            validation.set_issuer(&[issuer]);
        }
        match non_empty(&config.audience) {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        Ok(Self {
            keys,
            validation,
            public_methods: config.public_methods.clone(),
            required: config.method_roles(default_roles),
            id: NEXT_AUTHENTICATOR.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Checks the call to `path` (`/package.Service/Method`): `Ok(None)` for a public method,
    /// the verified claims otherwise, or the status to answer with.
    pub fn authorize(
        &self,
        path: &str,
        headers: &http::HeaderMap,
    ) -> Result<Option<Claims>, Status> {
        if self
            .public_methods
            .iter()
            .any(|prefix| path.starts_with(prefix.as_str()))
        {
            return Ok(None);
        }
        let token = bearer_token(headers)?;
        let claims = self.verify(token)?;
        if let Some(required) = self.required_for(path) {
            if !required.iter().any(|grant| claims.grants(grant)) {
                return Err(Status::permission_denied(format!(
                    "{path} requires one of these roles or scopes: {}",
                    required.join(", ")
                )));
            }
        }
        Ok(Some(claims))
    }

    /// Verifies a token's signature and its `exp`, `nbf`, `iss` and `aud` claims. A client
    /// sends the same token with every call, so a verified token is remembered and only its
    /// `exp` is checked again (the rest cannot change for the same bytes).
    pub fn verify(&self, token: &str) -> Result<Claims, Status> {
        if let Some(claims) = self.remembered(token) {
            return Ok(claims);
        }
        let claims = self.verify_signed(token)?;
        VERIFIED.with_borrow_mut(|verified| {
            let verified = verified.entry(self.id).or_default();
            if verified.len() >= REMEMBERED_TOKENS {
                verified.clear();
            }
            verified.insert(token.to_owned(), claims.clone());
        });
        Ok(claims)
    }

    fn remembered(&self, token: &str) -> Option<Claims> {
        VERIFIED.with_borrow(|verified| {
            let claims = verified.get(&self.id)?.get(token)?;
            let expired = claims.exp.saturating_add(self.validation.leeway) < unix_now();
            (!expired).then(|| claims.clone())
        })
    }

    fn verify_signed(&self, token: &str) -> Result<Claims, Status> {
        let key = match &self.keys {
            Keys::Single(key) => key,
            Keys::Set(keys) => {
                let header = jsonwebtoken::decode_header(token).map_err(rejection)?;
                keys.iter()
                    .find(|(id, _)| header.kid.is_none() || *id == header.kid)
                    .map(|(_, key)| key)
                    .ok_or_else(|| {
                        Status::unauthenticated("invalid token: no key in the JWKS matches its kid")
                    })?
            }
        };
        jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(rejection)
    }

    /// The grants a method needs: its own entry, else its service's (`/package.Service/`).
    fn required_for(&self, path: &str) -> Option<&Vec<String>> {
        self.required.get(path).or_else(|| {
            let service = &path[..path.rfind('/').map_or(path.len(), |at| at + 1)];
            self.required.get(service)
        })
    }
}

/// Signs `claims` with the configured key: the HS256 secret, or `private_key_file` for RS256
/// and ES256.
pub fn mint(config: &AuthConfig, claims: &Claims) -> anyhow::Result<String> {
    let algorithm = config.algorithm()?;
    let key = if algorithm == Algorithm::HS256 {
        EncodingKey::from_secret(config.secret()?.as_bytes())
    } else {
        anyhow::ensure!(
            !config.private_key_file.is_empty(),
            "minting {} tokens needs auth.private_key_file (JWT_PRIVATE_KEY_FILE)",
            config.algorithm
        );
        let pem = read(&config.private_key_file)?;
        let key = match algorithm {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(pem.as_bytes()),
            _ => EncodingKey::from_ec_pem(pem.as_bytes()),
        };
        key.with_context(|| format!("invalid key {}", config.private_key_file))?
    };
    jsonwebtoken::encode(&Header::new(algorithm), claims, &key).context("cannot sign the token")
}

/// The development secrets of earlier versions, still in the config files they wrote: known
/// to everyone, so they too work only in development.
const EARLIER_DEVELOPMENT_SECRETS: &[&str] = &["development-secret-change-me"];

/// Refuses a development secret outside development, and any other HS256 secret shorter
/// than [`MIN_SECRET_BYTES`].
pub fn check_secret(secret: &str, development: bool) -> anyhow::Result<()> {
    let shipped = secret == DEVELOPMENT_SECRET || EARLIER_DEVELOPMENT_SECRETS.contains(&secret);
    if shipped {
        anyhow::ensure!(
            development,
            "the JWT secret is a development one, which works only with APP_ENV=development or test: set JWT_SECRET or JWT_SECRET_FILE"
        );
        return Ok(());
    }
    anyhow::ensure!(
        secret.len() >= MIN_SECRET_BYTES,
        "the HS256 secret (JWT_SECRET or JWT_SECRET_FILE) is {} bytes long: it must be at least {MIN_SECRET_BYTES} (RFC 7518, section 3.2)",
        secret.len()
    );
    Ok(())
}

fn bearer_token(headers: &http::HeaderMap) -> Result<&str, Status> {
    let value = headers.get(http::header::AUTHORIZATION).ok_or_else(|| {
        Status::unauthenticated("missing token: send `authorization: Bearer <JWT>` metadata")
    })?;
    value
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            Status::unauthenticated("bad authorization metadata: expected `Bearer <JWT>`")
        })
}

fn rejection(err: jsonwebtoken::errors::Error) -> Status {
    let reason = match err.kind() {
        ErrorKind::ExpiredSignature => "token expired".to_owned(),
        ErrorKind::ImmatureSignature => "token not valid yet (nbf)".to_owned(),
        ErrorKind::InvalidIssuer => "token from the wrong issuer".to_owned(),
        ErrorKind::InvalidAudience => "token for another audience".to_owned(),
        ErrorKind::InvalidSignature => "invalid token: bad signature".to_owned(),
        _ => format!("invalid token: {err}"),
    };
    Status::unauthenticated(reason)
}

fn read(path: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(Path::new(path)).with_context(|| format!("cannot read {path}"))
}

fn non_empty(value: &str) -> Option<&str> {
    (!value.is_empty()).then_some(value)
}

/// Refuses calls without a valid token (UNAUTHENTICATED) or without a role the method needs
/// (PERMISSION_DENIED), and puts the verified [`Claims`] into the request's extensions.
#[derive(Clone)]
pub struct AuthLayer {
    authenticator: Option<Arc<Authenticator>>,
}

impl AuthLayer {
    /// The layer `config` describes in `environment` (`APP_ENV`), with the service's
    /// `default_roles`: a pass-through when `enabled` is off, which outside development needs
    /// `allow_disabled` too.
    pub fn new(
        config: &AuthConfig,
        environment: &str,
        default_roles: DefaultRoles,
    ) -> anyhow::Result<Self> {
        let development = is_development(environment);
        let authenticator = if config.enabled {
            let authenticator = Authenticator::from_config(config, development, default_roles)
                .context("invalid auth settings")?;
            Some(Arc::new(authenticator))
        } else {
            anyhow::ensure!(
                development || config.allow_disabled,
                "auth.enabled (AUTH_ENABLED) is false with APP_ENV={environment:?}: every caller would be let in; if a mesh or gateway authenticates calls in front of this service, also set auth.allow_disabled (AUTH_ALLOW_DISABLED) to true"
            );
            None
        };
        Ok(Self { authenticator })
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated {
            inner,
            authenticator: self.authenticator.clone(),
        }
    }
}

/// A service behind [`AuthLayer`].
#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    authenticator: Option<Arc<Authenticator>>,
}

impl<S> Service<http::Request<Body>> for Authenticated<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = AuthFuture<S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        if let Some(authenticator) = &self.authenticator {
            match authenticator.authorize(request.uri().path(), request.headers()) {
                Ok(Some(claims)) => {
                    request.extensions_mut().insert(claims);
                }
                Ok(None) => {}
                Err(status) => {
                    return AuthFuture::Refused {
                        status: Some(status),
                    }
                }
            }
        }
        AuthFuture::Called {
            call: self.inner.call(request),
        }
    }
}

// pin-project-lite takes no doc comments on the fields of an enum's variants.
pin_project! {
    /// The response of a call behind [`AuthLayer`]: the service's, or the refusal.
    #[allow(missing_docs)]
    #[project = AuthFutureProjection]
    pub enum AuthFuture<F> {
        /// The call was let through.
        Called {
            #[pin]
            call: F,
        },
        /// The call was refused with this status.
        Refused {
            status: Option<Status>,
        },
    }
}

impl<F, E> std::future::Future for AuthFuture<F>
where
    F: std::future::Future<Output = Result<http::Response<Body>, E>>,
{
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.project() {
            AuthFutureProjection::Called { call } => call.poll(cx),
            AuthFutureProjection::Refused { status } => {
                let status = status
                    .take()
                    .unwrap_or_else(|| Status::internal("polled twice"));
                std::task::Poll::Ready(Ok(status.into_http()))
            }
        }
    }
}

/// A token for `subject` with `roles` and `scopes`, valid for `ttl`, signed with the
/// configured key, as a service's `token` command prints it. Outside development (in
/// `environment`) it refuses the development secret, as the server does.
pub fn token(
    config: &AuthConfig,
    environment: &str,
    subject: &str,
    roles: Vec<String>,
    scopes: &[String],
    ttl: Duration,
) -> anyhow::Result<String> {
    if config.algorithm()? == Algorithm::HS256 {
        check_secret(&config.secret()?, is_development(environment))?;
    }
    let mut claims = Claims::new(config, subject, roles, ttl);
    claims.scope = scopes.join(" ");
    mint(config, &claims)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authenticator(config: &AuthConfig) -> Authenticator {
        Authenticator::from_config(config, true, &[]).expect("valid auth config")
    }

    fn headers(token: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        let value = format!("Bearer {token}").parse().expect("header value");
        headers.insert(http::header::AUTHORIZATION, value);
        headers
    }

    #[test]
    fn a_minted_token_verifies_and_carries_its_claims() {
        let config = AuthConfig::default();
        let claims = Claims::new(
            &config,
            "alice",
            vec!["admin".into()],
            Duration::from_secs(60),
        );
        let token = mint(&config, &claims).expect("mint");
        let verified = authenticator(&config).verify(&token).expect("valid token");
        assert_eq!(verified, claims);
    }

    #[test]
    fn a_remembered_token_is_refused_once_it_expires() {
        let config = AuthConfig {
            leeway_secs: 0,
            ..AuthConfig::default()
        };
        let auth = authenticator(&config);
        let claims = Claims::new(&config, "alice", Vec::new(), Duration::from_secs(1));
        let token = mint(&config, &claims).expect("mint");
        assert_eq!(auth.verify(&token).expect("valid"), claims);
        assert_eq!(auth.verify(&token).expect("remembered"), claims);
        std::thread::sleep(Duration::from_millis(2100));
        let status = auth.verify(&token).expect_err("expired since");
        assert!(status.message().contains("expired"), "{status:?}");
    }

    /// A P-256 key pair for these tests only (`openssl genpkey -algorithm EC`).
    const TEST_EC_PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgx1WbUAEynKk08YIq
ehJWa1dzRu6hYqkfXuEQEBqVG4ihRANCAASdd9G+R8jSd6LDsEb2zWsjoSBTc649
Y46BFyr76NKCHIykLp8P6Zi1LrRG2z4hUI5REzRLTK1O6+v+0vf5SAug
-----END PRIVATE KEY-----
";
    const TEST_EC_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEnXfRvkfI0neiw7BG9s1rI6EgU3Ou
PWOOgRcq++jSghyMpC6fD+mYtS60Rts+IVCOURM0S0ytTuvr/tL3+UgLoA==
-----END PUBLIC KEY-----
";

    /// An RSA-2048 key pair for these tests only (`openssl genpkey -algorithm RSA`).
    const TEST_RSA_PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDljYngV0F+xY9A
Tnqk3tWj4M8QDwgINNPS6JhLfJja2T1z2WRPqDdajAcETetUQt8mv1mYHVlJe2/x
3oV2z+eUdxi50NVJaobL5QJzJj9pilw6a1aPFVd/TWu4Ri5D4W7jLh+DthNmKQlX
hYDcM64RjmZXjLahFVtmooIPLSuZ+ZcV7AhzR+7ys43hCAAq9rytx3MS4aOF+0KN
HMw1Ecdf6BuLcSTEpTCOf+68gx0yZJtzpslKoq2Nb+P3j8AC39zZlO6uhmHwQEo/
lwIUh8fsRbgg3tGHG4i6xcog8mK6XYxphYejk1gKpnEDmw07bAW7FBVVlV9tRb2X
7EKEPYjJAgMBAAECggEADb/B164M6OBBtEL/FYuYlY2MLr9iZnDDlIkEliuK/Dtc
HZQ9GIhQHcbv+fywxls7Amxzm/4mBZYJyR2K4Og9oVGA1EsDJg07WvsHKokf7d0G
U87Etc08Gw6ID9bO7pc8t7QLhIK4prsj1Boq8wV6vOfKjsk0Jxx1slq0GjSaZ/PD
YBFz80nEObjRL8Vfxd7eN29CvX3UmQwVSCJT4BJzXg+oKYurgh2+jKe0p1oSZNUP
9xyY5q/Lc6i3OQa4PXfRbHw3dTTcS8A5BalerlKpr8p4TuBwXRi1EZvUvQHXkLP3
1a+dtGpLCQOtB0N4N+mq3+aAGyPv1w/y/V4+7BggAQKBgQD6jrdSVF0oc6U4KOYj
jq+fdE2ixhXNCWKOoKfHiDf0GpKvUTz3YbQC32CqvRy9JvKeg1HOfjwDpm1DyxFF
uz98GAF1Crva/BBds1ptr1AFpAvclVLSNI47IwTY7fmJoCBmsWy5IlCP0uO8wKUe
HsqYuk1nsh+pcWiKfrTJihZ4JQKBgQDqigV+KM4ch5jA/DnkOZV00D/CQDy+u9s/
IHuKFXtXEERSPGN/9zVPF8H2fnCFrm/vn4M9Xeu92d5wD2ktfCT40sYAJ9t5AD2G
mUxL5MhHr/R1t9iRkfXbh1jgRl52gHF1yQCV5OnGQ1Koau2et6NUuhPlLwWwvqkQ
1rOKY8eq1QKBgEFmEu+IWbB/Tvazpi5NxgVmxATikzorYvA7es+X/JLYhMUB/VnM
xMGjMIYgSmoMynMZb7boOB3zyL1TObTrxQxM78RvAs2L0XHDqKzMf6SZRwdSaoW3
dhB1eYRtyR5lD0/+q5Q/IqwHra3M0sxj2Rm4NxAD7EO7+D9+Bw473tWJAoGAOGpC
r/n4ufwTzjfdZPxE6vg8nej9s5NURXb2wFwyctrC1FUaSemYtRGt4jC/uCghXK4t
z1EMJ3qEesf6MKqv6fopDliH/i8EnZ+6Lnc1hajZUIeMXFeTn96Kjkfe6Po0UHSs
42FQqhP/ietOhOL/Mp4fsv0AjWcPG7HJNfySRpECgYEA4NuJnMeD7L41O/a8UPNB
NgiZcpwX3yGZ9eWjK3BJhePYXvxf3FHZ8XITIKuwiEUFDOOORiVPgQHg5vlLcVJO
VYP3pCkyOJWK6f7aW7MdwSjvN7CoUUE1NhUgZ3rWprYEQXTOEjUnTJWj0QqE3yDC
rFU0/Gks/OzUYT07JSbZRKc=
-----END PRIVATE KEY-----
";
    const TEST_RSA_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA5Y2J4FdBfsWPQE56pN7V
o+DPEA8ICDTT0uiYS3yY2tk9c9lkT6g3WowHBE3rVELfJr9ZmB1ZSXtv8d6Fds/n
lHcYudDVSWqGy+UCcyY/aYpcOmtWjxVXf01ruEYuQ+Fu4y4fg7YTZikJV4WA3DOu
EY5mV4y2oRVbZqKCDy0rmfmXFewIc0fu8rON4QgAKva8rcdzEuGjhftCjRzMNRHH
X+gbi3EkxKUwjn/uvIMdMmSbc6bJSqKtjW/j94/AAt/c2ZTuroZh8EBKP5cCFIfH
7EW4IN7RhxuIusXKIPJiul2MaYWHo5NYCqZxA5sNO2wFuxQVVZVfbUW9l+xChD2I
yQIDAQAB
-----END PUBLIC KEY-----
";

    #[test]
    fn es256_tokens_verify_with_a_public_key_or_a_jwks() {
        key_pair_tokens_verify("ES256", TEST_EC_PRIVATE_KEY, TEST_EC_PUBLIC_KEY);
    }

    #[test]
    fn rs256_tokens_verify_with_a_public_key_or_a_jwks() {
        key_pair_tokens_verify("RS256", TEST_RSA_PRIVATE_KEY, TEST_RSA_PUBLIC_KEY);
    }

    /// Tokens minted with `private_key` verify with `public_key` and with a JWKS of it, and an
    /// HS256 token is refused.
    fn key_pair_tokens_verify(algorithm: &str, private_key: &str, public_key: &str) {
        let dir =
            std::env::temp_dir().join(format!("auth-test-{algorithm}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let path = |name: &str| dir.join(name).display().to_string();
        std::fs::write(path("private.pem"), private_key).expect("write");
        std::fs::write(path("public.pem"), public_key).expect("write");
        let parsed: Algorithm = algorithm.parse().expect("an algorithm");
        let key = match parsed {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(private_key.as_bytes()),
            _ => EncodingKey::from_ec_pem(private_key.as_bytes()),
        }
        .expect("a key");
        let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, parsed).expect("a JWK");
        jwk.common.key_id = Some("test-key".to_owned());
        let jwks = serde_json::to_string(&JwkSet { keys: vec![jwk] }).expect("JSON");
        std::fs::write(path("jwks.json"), jwks).expect("write");

        let by_key = AuthConfig {
            algorithm: algorithm.to_owned(),
            private_key_file: path("private.pem"),
            public_key_file: path("public.pem"),
            ..AuthConfig::default()
        };
        let by_jwks = AuthConfig {
            algorithm: algorithm.to_owned(),
            jwks_file: path("jwks.json"),
            ..AuthConfig::default()
        };
        let claims = Claims::new(&by_key, "alice", Vec::new(), Duration::from_secs(60));
        let token = mint(&by_key, &claims).expect("mint");
        let hs256 = mint(&AuthConfig::default(), &claims).expect("mint");
        let verified_by_key = authenticator(&by_key).verify(&token);
        let verified_by_jwks = authenticator(&by_jwks).verify(&token);
        let refused = authenticator(&by_key).verify(&hs256);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(verified_by_key.expect("public key"), claims);
        assert_eq!(verified_by_jwks.expect("JWKS"), claims);
        let status = refused.expect_err("an HS256 token for a key pair");
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let other = AuthConfig {
            secret: "another-secret-of-at-least-32-bytes".into(),
            ..AuthConfig::default()
        };
        let claims = Claims::new(&other, "mallory", Vec::new(), Duration::from_secs(60));
        let token = mint(&other, &claims).expect("mint");
        let status = authenticator(&AuthConfig::default())
            .verify(&token)
            .expect_err("wrong key");
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert!(status.message().contains("signature"), "{status:?}");
    }

    #[test]
    fn issuer_and_audience_are_checked() {
        let config = AuthConfig {
            issuer: "https://issuer.example".into(),
            audience: "orders".into(),
            ..AuthConfig::default()
        };
        let mut claims = Claims::new(&config, "alice", Vec::new(), Duration::from_secs(60));
        let good = mint(&config, &claims).expect("mint");
        authenticator(&config).verify(&good).expect("right issuer");
        claims.aud = Some(Audience::One("billing".into()));
        let wrong = mint(&config, &claims).expect("mint");
        let status = authenticator(&config).verify(&wrong).expect_err("audience");
        assert!(status.message().contains("audience"), "{status:?}");
    }

    #[test]
    fn public_methods_need_no_token_and_others_do() {
        let auth = authenticator(&AuthConfig::default());
        let empty = http::HeaderMap::new();
        assert!(matches!(
            auth.authorize("/grpc.health.v1.Health/Check", &empty),
            Ok(None)
        ));
        let status = auth
            .authorize("/some.v1.Service/Call", &empty)
            .expect_err("no token");
        assert!(status.message().contains("missing token"), "{status:?}");
    }

    #[test]
    fn required_roles_apply_per_method_then_per_service() {
        let config = AuthConfig {
            methods: Some(BTreeMap::from([
                ("/shop.v1.Shop/".into(), vec!["clerk".into()]),
                ("/shop.v1.Shop/Refund".into(), vec!["admin".into()]),
            ])),
            ..AuthConfig::default()
        };
        let auth = authenticator(&config);
        let clerk = Claims::new(
            &config,
            "bob",
            vec!["clerk".into()],
            Duration::from_secs(60),
        );
        let token = mint(&config, &clerk).expect("mint");
        assert!(auth
            .authorize("/shop.v1.Shop/Sell", &headers(&token))
            .is_ok());
        let status = auth
            .authorize("/shop.v1.Shop/Refund", &headers(&token))
            .expect_err("clerk cannot refund");
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
    }

    #[test]
    fn default_roles_apply_unless_the_configuration_names_methods() {
        const DEFAULTS: DefaultRoles = &[("/shop.v1.Shop/Refund", "shop:write")];
        let config = AuthConfig::default();
        let auth = Authenticator::from_config(&config, true, DEFAULTS).expect("valid");
        let reader = Claims::new(&config, "eve", Vec::new(), Duration::from_secs(60));
        let token = mint(&config, &reader).expect("mint");
        let status = auth
            .authorize("/shop.v1.Shop/Refund", &headers(&token))
            .expect_err("the default role is needed");
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        let configured = AuthConfig {
            methods: Some(BTreeMap::new()),
            ..AuthConfig::default()
        };
        let open = Authenticator::from_config(&configured, true, DEFAULTS).expect("valid");
        assert!(open
            .authorize("/shop.v1.Shop/Refund", &headers(&token))
            .is_ok());
    }

    #[test]
    fn the_development_secret_works_only_in_development_and_test() {
        let config = AuthConfig::default();
        for environment in ["development", "test"] {
            assert!(AuthLayer::new(&config, environment, &[]).is_ok());
            assert!(token(
                &config,
                environment,
                "a",
                Vec::new(),
                &[],
                Duration::from_secs(9)
            )
            .is_ok());
        }
        for environment in ["production", "staging", "", "Production"] {
            let err = AuthLayer::new(&config, environment, &[])
                .err()
                .expect("refused");
            assert!(format!("{err:#}").contains("JWT_SECRET"), "{err:#}");
            let minted = token(
                &config,
                environment,
                "a",
                Vec::new(),
                &[],
                Duration::from_secs(9),
            );
            assert!(minted.is_err(), "the token command refuses it too");
        }
        // The shorter one earlier versions wrote into config/default.toml: development only.
        let earlier = "development-secret-change-me";
        assert!(check_secret(earlier, true).is_ok());
        assert!(check_secret(earlier, false).is_err());
    }

    #[test]
    fn short_hs256_secrets_are_refused_everywhere() {
        for secret in ["", "short", &"x".repeat(MIN_SECRET_BYTES - 1)] {
            let config = AuthConfig {
                secret: secret.to_owned(),
                ..AuthConfig::default()
            };
            let err = Authenticator::from_config(&config, true, &[])
                .err()
                .expect("too short");
            assert!(err.to_string().contains("at least 32"), "{err}");
        }
        let long_enough = AuthConfig {
            secret: "x".repeat(MIN_SECRET_BYTES),
            ..AuthConfig::default()
        };
        assert!(Authenticator::from_config(&long_enough, false, &[]).is_ok());
    }

    #[test]
    fn auth_off_outside_development_needs_allow_disabled() {
        let mut config = AuthConfig {
            enabled: false,
            ..AuthConfig::default()
        };
        let err = AuthLayer::new(&config, "production", &[])
            .err()
            .expect("refused");
        assert!(err.to_string().contains("AUTH_ALLOW_DISABLED"), "{err}");
        config.allow_disabled = true;
        assert!(AuthLayer::new(&config, "production", &[]).is_ok());
        config.allow_disabled = false;
        assert!(AuthLayer::new(&config, "development", &[]).is_ok());
    }

    #[test]
    fn public_keys_need_issuer_and_audience_outside_development() {
        let dir = std::env::temp_dir().join(format!("auth-test-iss-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let key = dir.join("public.pem");
        std::fs::write(&key, TEST_EC_PUBLIC_KEY).expect("write");
        let mut config = AuthConfig {
            algorithm: "ES256".to_owned(),
            public_key_file: key.display().to_string(),
            ..AuthConfig::default()
        };
        let development = Authenticator::from_config(&config, true, &[]).is_ok();
        let without = Authenticator::from_config(&config, false, &[]).err();
        config.issuer = "https://issuer.example".to_owned();
        let issuer_only = Authenticator::from_config(&config, false, &[]).err();
        config.audience = "orders".to_owned();
        let both = Authenticator::from_config(&config, false, &[]).is_ok();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(development);
        let err = without.expect("no issuer or audience");
        assert!(err.to_string().contains("JWT_AUDIENCE"), "{err}");
        assert!(issuer_only.is_some(), "audience still missing");
        assert!(both);
    }
}
