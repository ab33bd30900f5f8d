//! The proto fixtures under `fixtures/protos/`, shared by the formatting and end-to-end tests.

#![allow(dead_code)]

pub mod postgres;
pub mod steps;
pub mod workspace;

use std::path::{Path, PathBuf};

use microframework::model::features::{
    AuthKind, DatabaseKind, DeployKind, DiscoveryKind, Features, KubernetesLayout, MonitoringKind,
    TlsKind, TracingKind,
};

/// A project generated from proto fixtures.
pub struct ProtoFixture {
    /// Project name.
    pub name: &'static str,
    /// Root files, relative to `fixtures/protos/`.
    pub roots: &'static [&'static str],
    /// Include directories, relative to `fixtures/protos/`.
    pub includes: &'static [&'static str],
    /// The services the project must serve: exactly those of the root files.
    pub services: &'static [&'static str],
}

impl ProtoFixture {
    /// Root files as paths.
    pub fn root_paths(&self) -> Vec<PathBuf> {
        self.roots
            .iter()
            .map(|root| fixtures_dir().join(root))
            .collect()
    }

    /// Include directories as paths.
    pub fn include_paths(&self) -> Vec<PathBuf> {
        self.includes
            .iter()
            .map(|dir| fixtures_dir().join(dir))
            .collect()
    }

    /// `new` arguments after the project name.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec!["--proto".to_owned()];
        args.extend(self.root_paths().iter().map(|p| p.display().to_string()));
        for dir in self.include_paths() {
            args.push("-I".to_owned());
            args.push(dir.display().to_string());
        }
        args
    }
}

/// `fixtures/protos/`.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/protos")
}

/// Every proto fixture: one or more per kind of proto users bring.
pub const PROTO_FIXTURES: &[ProtoFixture] = &[
    ProtoFixture {
        name: "multi",
        roots: &["multi/streaming.proto"],
        includes: &[],
        services: &[
            "acme.chat.v1.ChatService",
            "acme.chat.v1.PresenceService",
            "acme.chat.v1.AdminService",
        ],
    },
    ProtoFixture {
        name: "imports",
        roots: &["imports/api/shop/v1/shop.proto"],
        includes: &["imports/api", "imports/common"],
        services: &["acme.shop.v1.PricingService"],
    },
    ProtoFixture {
        name: "wkt",
        roots: &["wkt/catalog.proto"],
        includes: &[],
        services: &["acme.catalog.v1.CatalogService"],
    },
    ProtoFixture {
        name: "keywords",
        roots: &["keywords/keywords.proto"],
        includes: &[],
        services: &[
            "acme.match.v1.Config",
            "acme.match.v1.Client",
            "acme.match.v1.snake_case_service",
        ],
    },
    ProtoFixture {
        name: "legacy",
        roots: &["proto2/legacy.proto"],
        includes: &[],
        services: &["acme.legacy.v1.LegacyOrders"],
    },
    ProtoFixture {
        name: "bare",
        roots: &["nopackage/bare.proto"],
        includes: &[],
        services: &["Pinger"],
    },
    ProtoFixture {
        name: "ledger",
        roots: &["deep/ledger.proto"],
        includes: &[],
        services: &["acme.platform.billing.v1beta1.LedgerService"],
    },
    ProtoFixture {
        name: "multiroot",
        roots: &[
            "multiroot/alpha/v1/alpha.proto",
            "multiroot/beta/v1/beta.proto",
        ],
        includes: &["multiroot"],
        services: &["alpha.v1.Greeter", "beta.v1.Greeter"],
    },
    ProtoFixture {
        name: "keyword-paths",
        roots: &["keywordpaths/type.proto"],
        includes: &[],
        services: &[
            "async.super.gen.v1.Type",
            "async.super.gen.v1.Self",
            "async.super.gen.v1.Crate",
            "async.super.gen.v1.Fn",
            "async.super.gen.v1.mod",
            "async.super.gen.v1.Abstract",
            "async.super.gen.v1.Middleware",
            "async.super.gen.v1.Wrappers",
        ],
    },
    ProtoFixture {
        name: "ownhealth",
        roots: &[
            "ownhealth/echo.proto",
            "ownhealth/grpc/health/v1/health.proto",
            "ownhealth/grpc/reflection/v1/reflection.proto",
        ],
        includes: &["ownhealth"],
        services: &["acme.echo.v1.Echo", "grpc.health.v1.Health"],
    },
    ProtoFixture {
        name: "statusimport",
        roots: &["healthimport/status.proto"],
        includes: &[],
        services: &["acme.status.v1.StatusService"],
    },
];

/// A project generated from a service spec under `fixtures/specs/`.
pub struct SpecFixture {
    /// Project name.
    pub name: &'static str,
    /// The spec file, relative to `fixtures/specs/`.
    pub spec: &'static str,
    /// The service the spec describes.
    pub service: &'static str,
}

impl SpecFixture {
    /// The spec's path.
    pub fn path(&self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/specs")
            .join(self.spec)
    }
}

/// Every spec fixture.
pub const SPEC_FIXTURES: &[SpecFixture] = &[
    SpecFixture {
        name: "library",
        spec: "library.toml",
        service: "acme.library.v1.LibraryService",
    },
    SpecFixture {
        name: "telemetry",
        spec: "telemetry.toml",
        service: "telemetry.v1.TelemetryService",
    },
];

/// Feature sets the formatting tests render every project with: the defaults, everything on,
/// everything off.
pub const FEATURE_SETS: &[(&str, Features)] = &[
    (
        "default features",
        Features {
            auth: AuthKind::Jwt,
            tls: TlsKind::None,
            monitoring: MonitoringKind::Prometheus,
            tracing: TracingKind::None,
            discovery: DiscoveryKind::Static,
            deploy: DeployKind::All,
            database: DatabaseKind::Memory,
            kubernetes_layout: KubernetesLayout::V2,
        },
    ),
    (
        "every feature",
        Features {
            auth: AuthKind::Jwt,
            tls: TlsKind::Rustls,
            monitoring: MonitoringKind::Prometheus,
            tracing: TracingKind::Otlp,
            discovery: DiscoveryKind::Etcd,
            deploy: DeployKind::All,
            database: DatabaseKind::Memory,
            kubernetes_layout: KubernetesLayout::V2,
        },
    ),
    (
        "redis discovery",
        Features {
            auth: AuthKind::Jwt,
            tls: TlsKind::None,
            monitoring: MonitoringKind::Prometheus,
            tracing: TracingKind::None,
            discovery: DiscoveryKind::Redis,
            deploy: DeployKind::All,
            database: DatabaseKind::Memory,
            kubernetes_layout: KubernetesLayout::V2,
        },
    ),
    (
        "dns discovery",
        Features {
            auth: AuthKind::Jwt,
            tls: TlsKind::None,
            monitoring: MonitoringKind::Prometheus,
            tracing: TracingKind::None,
            discovery: DiscoveryKind::Dns,
            deploy: DeployKind::All,
            database: DatabaseKind::Memory,
            kubernetes_layout: KubernetesLayout::V2,
        },
    ),
    (
        "no feature",
        Features {
            auth: AuthKind::None,
            tls: TlsKind::None,
            monitoring: MonitoringKind::None,
            tracing: TracingKind::None,
            discovery: DiscoveryKind::Static,
            deploy: DeployKind::None,
            database: DatabaseKind::Memory,
            kubernetes_layout: KubernetesLayout::V2,
        },
    ),
    (
        "postgres",
        Features {
            auth: AuthKind::Jwt,
            tls: TlsKind::None,
            monitoring: MonitoringKind::Prometheus,
            tracing: TracingKind::None,
            discovery: DiscoveryKind::Static,
            deploy: DeployKind::All,
            database: DatabaseKind::Postgres,
            kubernetes_layout: KubernetesLayout::V2,
        },
    ),
    (
        "sqlite",
        Features {
            auth: AuthKind::Jwt,
            tls: TlsKind::None,
            monitoring: MonitoringKind::Prometheus,
            tracing: TracingKind::None,
            discovery: DiscoveryKind::Static,
            deploy: DeployKind::All,
            database: DatabaseKind::Sqlite,
            kubernetes_layout: KubernetesLayout::V2,
        },
    ),
];
