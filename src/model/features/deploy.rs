//! `--deploy`: the files that build, run and ship the service (Dockerfile, compose,
//! Kubernetes, systemd, CI), derived from the project's settings so that every port and
//! variable in them is the one `config/default.toml` declares.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{DatabaseKind, DiscoveryKind, Features, Kind, Part};
use crate::model::settings::ConfigSection;

/// `--deploy`: whether the project gets deployment files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployKind {
    /// Dockerfile, docker-compose.yml, Kubernetes (kustomize), a systemd unit, a CI workflow.
    All,
    /// None of them.
    None,
}

impl Kind for DeployKind {
    const FEATURE: &'static str = "deploy";
    const KINDS: &'static [(Self, &'static str, &'static str)] = &[
        (
            Self::All,
            "all",
            "Dockerfile, docker-compose.yml, Kubernetes (kustomize), a systemd unit and a GitHub Actions workflow",
        ),
        (Self::None, "none", "no deployment files"),
    ];
    const NONE: Option<Self> = Some(Self::None);

    fn part(self) -> Option<&'static Part> {
        match self {
            Self::All => Some(&DEPLOY),
            Self::None => None,
        }
    }
}

/// The layout of `deploy/k8s`, recorded as `deploy_layout` in `microframework.toml`. The
/// overlays are the user's, so a project keeps the layout it was made with until
/// `gen --upgrade-deploy` rewrites them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KubernetesLayout {
    /// Before `deploy_layout` was recorded: the base holds placeholder Secrets, which every
    /// `kubectl apply -k` wrote back over the real ones, and a `replicas` count that reset the
    /// autoscaler's; the overlays patch both.
    V1,
    /// The dev overlay makes its Secrets (`secretGenerator`, development values), the prod
    /// overlay references Secrets made outside it and never owns them, and an autoscaled
    /// Deployment has no `replicas`.
    #[default]
    V2,
}

impl KubernetesLayout {
    /// The overlays whose `kustomization.yaml` differs between layouts: the user's files
    /// that `gen --upgrade-deploy` rewrites.
    pub const OVERLAYS: [&'static str; 2] = [
        "deploy/k8s/overlays/dev/kustomization.yaml",
        "deploy/k8s/overlays/prod/kustomization.yaml",
    ];

    /// The number `microframework.toml` records.
    pub fn number(self) -> u32 {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
        }
    }

    /// The layout of a recorded number.
    pub fn from_number(number: u32) -> anyhow::Result<Self> {
        match number {
            1 => Ok(Self::V1),
            2 => Ok(Self::V2),
            other => anyhow::bail!(
                "microframework.toml: deploy_layout = {other} is not one this version of microframework knows (1, 2); a newer one wrote the project"
            ),
        }
    }
}

/// What `all` adds besides its templates: nothing the crate compiles.
pub const DEPLOY: Part = Part {
    modules: &[],
    dependencies: &[],
    dev_dependencies: &[],
    cargo_features: &[],
    sections: &[],
};

/// The Rust image the Dockerfile builds in: the toolchain this version of the tool is tested
/// with, on the Debian release of the runtime image (same glibc).
pub const BUILDER_IMAGE: &str = "rust:1.95-slim-bookworm";
/// cargo-chef, which caches the dependency layer of the image build.
pub const CARGO_CHEF_VERSION: &str = "0.1.78";
/// The runtime image: glibc and CA certificates, no shell, UID 65532. Distroless publishes
/// no version tags, only digests: see the Dockerfile's comment.
pub const RUNTIME_IMAGE: &str = "gcr.io/distroless/cc-debian12:nonroot";
/// The UID (and GID) of `nonroot` in the runtime image; the Kubernetes securityContext and
/// the compose file use the same.
pub const RUNTIME_UID: &str = "65532";
/// Images of what a project's options need in docker-compose.yml.
const REDIS_IMAGE: &str = "redis:7.4.1-alpine";
const ETCD_IMAGE: &str = "quay.io/coreos/etcd:v3.5.17";
const PROMETHEUS_IMAGE: &str = "prom/prometheus:v3.0.1";
const POSTGRES_IMAGE: &str = "postgres:17.2-alpine";

/// Most replicas the base autoscaler and the prod overlay's allow, before the database's
/// connections are counted.
const BASE_MAX_REPLICAS: u32 = 10;
const PROD_MAX_REPLICAS: u32 = 20;
/// The prod overlay's fewest replicas.
pub const PROD_MIN_REPLICAS: u32 = 3;
/// Connections every replica of a PostgreSQL project may hold: its pool, its health check's
/// own connection, and one for migrations (the init container's, or the server's own).
fn connections_per_replica(pool_size: u32) -> u32 {
    pool_size + 2
}
/// PostgreSQL's default `max_connections` (100), less its 3 reserved for superusers and
/// some room for migrations, backups and people.
pub const DATABASE_CONNECTION_BUDGET: u32 = 90;

/// The deployment files' view of the project.
#[derive(Debug, Clone, Serialize)]
pub struct Deployment {
    /// Pinned images and tools.
    pub builder_image: &'static str,
    /// cargo-chef's version.
    pub cargo_chef_version: &'static str,
    /// The runtime image.
    pub runtime_image: &'static str,
    /// Its non-root UID.
    pub uid: &'static str,
    /// The gRPC port, from `grpc.port`.
    pub grpc_port: String,
    /// The metrics port, from `metrics.port`, when metrics are served.
    pub metrics_port: Option<String>,
    /// Settings every deployment sets (ConfigMap, compose, systemd), with their values there.
    pub env: Vec<EnvValue>,
    /// The registry instances register in, when discovery has one (a compose service).
    pub registry: Option<Registry>,
    /// Prometheus's image, when metrics are served.
    pub prometheus_image: Option<&'static str>,
    /// Variables that hold secrets, read from a git-ignored env file by compose.
    pub secrets: Vec<&'static str>,
    /// The JWT secret the server accepts only in development, for the dev overlay.
    pub development_secret: String,
    /// Whether the gRPC port speaks TLS: Kubernetes' native gRPC probes are plaintext only,
    /// so probes run `<binary> healthcheck` then.
    pub tls: bool,
    /// The database compose runs beside the service, when the project keeps its records in one.
    pub database: Option<DatabaseService>,
    /// Most replicas of the base autoscaler.
    pub max_replicas: u32,
    /// Most replicas of the prod overlay's autoscaler.
    pub prod_max_replicas: u32,
    /// The SQLite file, when the project keeps its records in one: on a volume of its own,
    /// which one instance at a time can use.
    pub sqlite: Option<SqliteFile>,
    /// The layout of `deploy/k8s` ([`KubernetesLayout::number`]).
    pub layout: u32,
}

/// Where a deployment keeps the SQLite file.
#[derive(Debug, Clone, Serialize)]
pub struct SqliteFile {
    /// The directory in the container, a volume (`/data`).
    pub dir: &'static str,
    /// The file in it (`records.db`); systemd keeps it in the unit's state directory.
    pub file: &'static str,
    /// The size the Kubernetes volume claims.
    pub size: &'static str,
}

/// A database that compose runs beside the service, and that the cluster's URL names.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseService {
    /// Compose service and host name: `postgres`.
    pub name: &'static str,
    /// Its image.
    pub image: &'static str,
    /// Its port.
    pub port: &'static str,
    /// The database: the crate's name (`user_service`).
    pub database: String,
    /// The role the service connects as.
    pub user: &'static str,
}

/// A setting's environment variable and its value in a deployment.
#[derive(Debug, Clone, Serialize)]
pub struct EnvValue {
    /// The variable, as the setting declares it.
    pub name: &'static str,
    /// Its value.
    pub value: String,
    /// Whether the value names a host of the compose or Kubernetes network (`redis`), so that
    /// a machine's own service (systemd) keeps the configuration's value instead.
    pub networked: bool,
}

/// A registry that compose runs beside the service.
#[derive(Debug, Clone, Serialize)]
pub struct Registry {
    /// Compose service and Kubernetes host name: `redis`, `etcd`.
    pub name: &'static str,
    /// Its image.
    pub image: &'static str,
    /// Its client port.
    pub port: &'static str,
}

impl Deployment {
    /// The deployment of a project with these features, settings and listening ports (by
    /// section: `grpc`, `metrics`); `name` is the binary.
    pub fn new(
        name: &str,
        features: &Features,
        sections: &[ConfigSection],
        ports: &BTreeMap<String, String>,
    ) -> Self {
        let default_of = |path: &str| -> String {
            sections
                .iter()
                .flat_map(|section| &section.settings)
                .find(|setting| setting.path == path)
                .map(|setting| setting.toml_default.trim_matches('"').to_owned())
                .unwrap_or_default()
        };
        let grpc_port = ports.get("grpc").cloned().unwrap_or_default();
        let metrics_port = ports.get("metrics").cloned();
        let mut env = vec![
            value("APP_ENV", "production"),
            value("LOG_FORMAT", "json"),
            value("RUST_LOG", "info"),
            value("GRPC_HOST", "0.0.0.0"),
            value("GRPC_PORT", &grpc_port),
        ];
        if let Some(port) = &metrics_port {
            env.push(value("METRICS_HOST", "0.0.0.0"));
            env.push(value("METRICS_PORT", port));
        }
        if features.tracing.is_chosen() {
            env.push(value("OTEL_SERVICE_NAME", name));
        }
        let registry = match features.discovery {
            DiscoveryKind::Static => None,
            DiscoveryKind::Dns => {
                env.push(networked("DISCOVERY_DNS_NAME", &format!("{name}-headless")));
                None
            }
            DiscoveryKind::Redis => {
                env.push(networked("REDIS_URL", "redis://redis:6379"));
                Some(Registry {
                    name: "redis",
                    image: REDIS_IMAGE,
                    port: "6379",
                })
            }
            DiscoveryKind::Etcd => {
                env.push(networked("ETCD_ENDPOINTS", "http://etcd:2379"));
                Some(Registry {
                    name: "etcd",
                    image: ETCD_IMAGE,
                    port: "2379",
                })
            }
        };
        // With PostgreSQL, every replica's pool counts against the server's connections: the
        // autoscalers stop where the pools would exceed them.
        let fitting = match features.database {
            DatabaseKind::Postgres => {
                let pool = default_of("database.pool_size").parse().unwrap_or(10);
                DATABASE_CONNECTION_BUDGET / connections_per_replica(pool)
            }
            DatabaseKind::Memory | DatabaseKind::Sqlite => u32::MAX,
        };
        Self {
            max_replicas: BASE_MAX_REPLICAS.min(fitting),
            prod_max_replicas: PROD_MAX_REPLICAS.min(fitting),
            builder_image: BUILDER_IMAGE,
            cargo_chef_version: CARGO_CHEF_VERSION,
            runtime_image: RUNTIME_IMAGE,
            uid: RUNTIME_UID,
            prometheus_image: metrics_port.is_some().then_some(PROMETHEUS_IMAGE),
            grpc_port,
            metrics_port,
            env,
            registry,
            secrets: if features.auth.is_chosen() {
                vec!["JWT_SECRET"]
            } else {
                Vec::new()
            },
            development_secret: default_of("auth.secret"),
            tls: features.tls.is_chosen(),
            database: match features.database {
                DatabaseKind::Memory | DatabaseKind::Sqlite => None,
                DatabaseKind::Postgres => Some(DatabaseService {
                    name: "postgres",
                    image: POSTGRES_IMAGE,
                    port: "5432",
                    database: crate::naming::crate_name(name),
                    user: "app",
                }),
            },
            sqlite: (features.database == DatabaseKind::Sqlite).then_some(SqliteFile {
                dir: "/data",
                file: "records.db",
                size: "1Gi",
            }),
            layout: features.kubernetes_layout.number(),
        }
    }

    /// Every variable the deployment files set, to check against the settings.
    pub fn variables(&self) -> Vec<&'static str> {
        let mut names: Vec<&str> = self.env.iter().map(|entry| entry.name).collect();
        names.extend(&self.secrets);
        if !self.secrets.is_empty() {
            names.push("JWT_SECRET_FILE");
        }
        if self.tls {
            names.extend([
                "TLS_CERT_FILE",
                "TLS_KEY_FILE",
                "CLIENT_TLS_CA_FILE",
                "CLIENT_TLS_DOMAIN",
            ]);
        }
        if self.registry.is_some() {
            names.push("ADVERTISE_ADDRESS");
        }
        if self.database.is_some() {
            names.extend([
                "DATABASE_URL",
                "DATABASE_URL_FILE",
                "DATABASE_MIGRATE_ON_START",
            ]);
        }
        if self.sqlite.is_some() {
            names.push("DATABASE_URL");
        }
        names
    }
}

fn value(name: &'static str, value: &str) -> EnvValue {
    EnvValue {
        name,
        value: value.to_owned(),
        networked: false,
    }
}

fn networked(name: &'static str, value: &str) -> EnvValue {
    EnvValue {
        networked: true,
        ..self::value(name, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::settings::{build_sections, ProjectDefaults};

    #[test]
    fn every_variable_the_deployment_sets_is_a_setting_of_the_project() {
        for features in Features::all_combinations() {
            let sections: Vec<_> = std::iter::once(&crate::model::base::BASE)
                .chain(features.parts())
                .flat_map(|part| part.sections)
                .copied()
                .collect();
            let sections = build_sections(
                &sections,
                ProjectDefaults {
                    services: &[],
                    role_rules: &[],
                    read_methods: &[],
                },
            );
            let declared: Vec<String> = sections
                .iter()
                .flat_map(|section| &section.settings)
                .filter_map(|setting| setting.env.clone())
                .collect();
            let ports = crate::model::listening_ports(&sections);
            let deployment = Deployment::new("svc", &features, &sections, &ports);
            for name in deployment.variables() {
                assert!(
                    declared.iter().any(|env| env == name),
                    "{name} with {}",
                    features.label()
                );
            }
            assert_eq!(deployment.grpc_port, "50051");
            if features.database == DatabaseKind::Postgres {
                let pool: u32 = sections
                    .iter()
                    .flat_map(|section| &section.settings)
                    .find(|setting| setting.path == "database.pool_size")
                    .map(|setting| setting.toml_default.parse().unwrap())
                    .unwrap();
                let most = deployment.max_replicas.max(deployment.prod_max_replicas);
                assert!(
                    most * connections_per_replica(pool) <= DATABASE_CONNECTION_BUDGET,
                    "{most} replicas x {pool} connections exceed PostgreSQL's default max_connections"
                );
                assert!(deployment.prod_max_replicas >= PROD_MIN_REPLICAS);
            } else {
                assert_eq!(deployment.max_replicas, BASE_MAX_REPLICAS);
                assert_eq!(deployment.prod_max_replicas, PROD_MAX_REPLICAS);
            }
            assert_eq!(
                deployment.metrics_port.is_some(),
                features.monitoring.is_chosen()
            );
        }
    }
}
