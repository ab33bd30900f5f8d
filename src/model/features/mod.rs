//! The production features of a generated service, one module each. A feature is chosen as
//! one of its kinds (`--auth jwt|none`), recorded in `microframework.toml` under its name,
//! and brings the templates of `templates/features/<feature>/<kind>/` into the project.

pub mod auth;
pub mod database;
pub mod deploy;
pub mod discovery;
pub mod metrics;
pub mod tls;
pub mod tracing;

use std::collections::BTreeMap;

use anyhow::bail;
use serde::Serialize;

use crate::model::settings::SectionSpec;

pub use auth::AuthKind;
pub use database::DatabaseKind;
pub use deploy::{DeployKind, KubernetesLayout};
pub use discovery::DiscoveryKind;
pub use metrics::MonitoringKind;
pub use tls::TlsKind;
pub use tracing::TracingKind;

/// The folder under `templates/` holding one folder per feature, one per kind in it.
pub const FEATURES_DIR: &str = "features/";

/// One kind of a feature, as the command line and `microframework.toml` name it.
pub trait Kind: Copy + Eq + 'static {
    /// The feature's name: its key in `microframework.toml` and its folder under
    /// `templates/features/`.
    const FEATURE: &'static str;
    /// Every kind: its value, its name and a one-line description.
    const KINDS: &'static [(Self, &'static str, &'static str)];
    /// The kind that leaves the feature out, if it can be left out.
    const NONE: Option<Self>;

    /// The kind's name (`jwt`).
    fn name(self) -> &'static str {
        Self::KINDS
            .iter()
            .find(|(kind, _, _)| *kind == self)
            .map_or("", |(_, name, _)| name)
    }

    /// The kind of this name.
    fn from_name(name: &str) -> Option<Self> {
        Self::KINDS
            .iter()
            .find(|(_, kind_name, _)| *kind_name == name)
            .map(|(kind, _, _)| *kind)
    }

    /// Whether the feature is part of the project.
    fn is_chosen(self) -> bool {
        Self::NONE != Some(self)
    }

    /// What the kind adds to the project; `None` for the kind that leaves the feature out.
    fn part(self) -> Option<&'static Part>;

    /// The folder of its templates under `templates/features/<feature>/`: its name, unless
    /// kinds share one.
    fn folder(self) -> &'static str {
        self.name()
    }
}

/// What the base project or a feature's kind adds to the project, besides its templates.
#[derive(Debug, Clone, Copy)]
pub struct Part {
    /// Library modules (`src/<module>.rs`), declared in `src/lib.rs`.
    pub modules: &'static [&'static str],
    /// Dependencies; the same crate from two parts gets the union of their features.
    pub dependencies: &'static [Dependency],
    /// Dev-dependencies, likewise.
    pub dev_dependencies: &'static [Dependency],
    /// Cargo features of the generated crate.
    pub cargo_features: &'static [CargoFeature],
    /// Configuration sections, each setting declared once.
    pub sections: &'static [SectionSpec],
}

/// A dependency of the generated crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dependency {
    /// Crate name.
    pub name: &'static str,
    /// Version requirement.
    pub version: &'static str,
    /// Features to enable.
    pub features: &'static [&'static str],
    /// Whether the crate's default features stay on.
    pub default_features: bool,
    /// Whether a cargo feature of the generated crate enables it.
    pub optional: bool,
    /// A crate of the project's own, by its directory (the runtime crate: `runtime`).
    pub path: Option<&'static str>,
}

impl Dependency {
    /// `name = "version"`.
    pub const fn plain(name: &'static str, version: &'static str) -> Self {
        Self::with_features(name, version, &[])
    }

    /// `name = { version = "version", features = [...] }`.
    pub const fn with_features(
        name: &'static str,
        version: &'static str,
        features: &'static [&'static str],
    ) -> Self {
        Self {
            name,
            version,
            features,
            default_features: true,
            optional: false,
            path: None,
        }
    }

    /// `name = { path = "dir" }`: a crate the project holds (the runtime crate).
    pub const fn local(name: &'static str, path: &'static str) -> Self {
        Self {
            path: Some(path),
            ..Self::plain(name, "")
        }
    }

    /// The runtime crate with `features` on: each part asks for the features it uses, and
    /// the project's dependency gets their union.
    pub const fn runtime(features: &'static [&'static str]) -> Self {
        Self {
            features,
            ..Self::local("microframework-runtime", "runtime")
        }
    }
}

/// A cargo feature of the generated crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CargoFeature {
    /// Its name.
    pub name: &'static str,
    /// A comment line saying what it does.
    pub doc: &'static str,
    /// What it enables (`microframework-runtime/otlp`, `dep:some-crate`).
    pub enables: &'static [&'static str],
    /// Whether it is on by default.
    pub default: bool,
}

/// The kind chosen of every feature, recorded in `microframework.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// Authentication of incoming calls (`--auth`).
    pub auth: AuthKind,
    /// TLS of the gRPC port (`--tls`).
    pub tls: TlsKind,
    /// Metrics export (`--with-monitoring`).
    pub monitoring: MonitoringKind,
    /// Span export (`--with-tracing`).
    pub tracing: TracingKind,
    /// Where instances register and clients find them (`--discovery`).
    pub discovery: DiscoveryKind,
    /// Deployment files (`--deploy`).
    pub deploy: DeployKind,
    /// Where the resources' records are kept (`--with-database`).
    pub database: DatabaseKind,
    /// The layout of `deploy/k8s`: not a choice of the user's but the project's age
    /// (`microframework.toml`'s `deploy_layout`).
    pub kubernetes_layout: KubernetesLayout,
}

impl Default for Features {
    fn default() -> Self {
        Self {
            auth: AuthKind::Jwt,
            tls: TlsKind::None,
            monitoring: MonitoringKind::Prometheus,
            tracing: TracingKind::None,
            discovery: DiscoveryKind::Static,
            deploy: DeployKind::All,
            database: DatabaseKind::Memory,
            kubernetes_layout: KubernetesLayout::default(),
        }
    }
}

/// A feature chosen for a project, as the plan and the templates see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChosenFeature {
    /// The feature's name (`auth`).
    pub feature: &'static str,
    /// The kind chosen (`jwt`).
    pub kind: &'static str,
    /// The folder of its templates (the kind's, unless kinds share one).
    pub folder: &'static str,
}

impl ChosenFeature {
    fn of<K: Kind>(kind: K) -> Option<Self> {
        kind.is_chosen().then(|| Self {
            feature: K::FEATURE,
            kind: kind.name(),
            folder: kind.folder(),
        })
    }

    /// The folder under `templates/` whose templates this feature brings.
    pub fn template_dir(&self) -> String {
        format!("{FEATURES_DIR}{}/{}/", self.feature, self.folder)
    }
}

impl Features {
    /// What each chosen feature adds, in the order of [`Features::chosen`].
    pub fn parts(&self) -> Vec<&'static Part> {
        [
            self.monitoring.part(),
            self.auth.part(),
            self.tls.part(),
            self.tracing.part(),
            self.discovery.part(),
            self.database.part(),
            self.deploy.part(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// What every kind of every feature can add, for what a project may lack.
    pub fn all_parts() -> Vec<&'static Part> {
        Self::all_combinations()
            .iter()
            .flat_map(Self::parts)
            .fold(Vec::new(), |mut all, part| {
                if !all.iter().any(|known| std::ptr::eq(*known, part)) {
                    all.push(part);
                }
                all
            })
    }

    /// The features that are part of the project, in a fixed order (the order their layers
    /// wrap the server and their parts appear in shared files).
    pub fn chosen(&self) -> Vec<ChosenFeature> {
        [
            ChosenFeature::of(self.monitoring),
            ChosenFeature::of(self.auth),
            ChosenFeature::of(self.tls),
            ChosenFeature::of(self.tracing),
            ChosenFeature::of(self.discovery),
            ChosenFeature::of(self.database),
            ChosenFeature::of(self.deploy),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Every feature's name with the names of its kinds.
    pub fn catalogue() -> Vec<(&'static str, Vec<&'static str>)> {
        fn names<K: Kind>() -> (&'static str, Vec<&'static str>) {
            (
                K::FEATURE,
                K::KINDS.iter().map(|(_, name, _)| *name).collect(),
            )
        }
        vec![
            names::<AuthKind>(),
            names::<TlsKind>(),
            names::<MonitoringKind>(),
            names::<TracingKind>(),
            names::<DiscoveryKind>(),
            names::<DatabaseKind>(),
            names::<DeployKind>(),
        ]
    }

    /// Every combination of every feature's kinds.
    pub fn all_combinations() -> Vec<Self> {
        let mut all = Vec::new();
        for &(auth, _, _) in AuthKind::KINDS {
            for &(tls, _, _) in TlsKind::KINDS {
                for &(monitoring, _, _) in MonitoringKind::KINDS {
                    for &(tracing, _, _) in TracingKind::KINDS {
                        for &(discovery, _, _) in DiscoveryKind::KINDS {
                            for &(deploy, _, _) in DeployKind::KINDS {
                                for &(database, _, _) in DatabaseKind::KINDS {
                                    all.push(Self {
                                        auth,
                                        tls,
                                        monitoring,
                                        tracing,
                                        discovery,
                                        deploy,
                                        database,
                                        kubernetes_layout: KubernetesLayout::default(),
                                    });
                                }
                            }
                        }
                    }
                }
            }
        }
        all
    }

    /// A short label such as `auth=jwt tls=none monitoring=prometheus tracing=none`.
    pub fn label(&self) -> String {
        self.kinds()
            .iter()
            .map(|(feature, kind)| format!("{feature}={kind}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The kind chosen of every feature, by feature name.
    pub fn kinds(&self) -> BTreeMap<&'static str, &'static str> {
        BTreeMap::from([
            (AuthKind::FEATURE, self.auth.name()),
            (TlsKind::FEATURE, self.tls.name()),
            (MonitoringKind::FEATURE, self.monitoring.name()),
            (TracingKind::FEATURE, self.tracing.name()),
            (DiscoveryKind::FEATURE, self.discovery.name()),
            (DeployKind::FEATURE, self.deploy.name()),
            (DatabaseKind::FEATURE, self.database.name()),
        ])
    }

    /// The choice as `microframework.toml` records it: feature name -> kind name.
    pub fn to_record(&self) -> BTreeMap<String, toml::Value> {
        self.kinds()
            .into_iter()
            .map(|(feature, kind)| (feature.to_owned(), toml::Value::from(kind)))
            .collect()
    }

    /// Reads the choice `microframework.toml` records; a feature it does not name keeps its
    /// default (it came with a later version of the tool).
    pub fn from_record(record: &BTreeMap<String, toml::Value>) -> anyhow::Result<Self> {
        let mut features = Self::default();
        for (feature, value) in record {
            match feature.as_str() {
                AuthKind::FEATURE => features.auth = recorded(feature, value)?,
                TlsKind::FEATURE => features.tls = tls::from_recorded(value)?,
                MonitoringKind::FEATURE => features.monitoring = recorded(feature, value)?,
                TracingKind::FEATURE => features.tracing = recorded(feature, value)?,
                DiscoveryKind::FEATURE => features.discovery = recorded(feature, value)?,
                DeployKind::FEATURE => features.deploy = recorded(feature, value)?,
                DatabaseKind::FEATURE => features.database = recorded(feature, value)?,
                other => bail!(
                    "microframework.toml: unknown feature `{other}` in [features]; known: {}",
                    Self::catalogue()
                        .iter()
                        .map(|(feature, _)| *feature)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
        Ok(features)
    }
}

/// The kind a recorded value names.
fn recorded<K: Kind>(feature: &str, value: &toml::Value) -> anyhow::Result<K> {
    value
        .as_str()
        .and_then(K::from_name)
        .ok_or_else(|| unknown_kind::<K>(feature, value))
}

fn unknown_kind<K: Kind>(feature: &str, value: &toml::Value) -> anyhow::Error {
    let names: Vec<&str> = K::KINDS.iter().map(|(_, name, _)| *name).collect();
    anyhow::anyhow!(
        "microframework.toml: [features] {feature} = {value} is not one of {}",
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_round_trips_every_combination() {
        let all = Features::all_combinations();
        assert_eq!(all.len(), 384);
        for features in all {
            assert_eq!(
                Features::from_record(&features.to_record()).unwrap(),
                features
            );
        }
    }

    #[test]
    fn records_of_earlier_versions_are_read() {
        let record: BTreeMap<String, toml::Value> =
            toml::from_str("auth = \"none\"\ntls = true\n").unwrap();
        let features = Features::from_record(&record).unwrap();
        assert_eq!(features.auth, AuthKind::None);
        assert_eq!(features.tls, TlsKind::Rustls);
        assert_eq!(features.monitoring, MonitoringKind::Prometheus);
    }

    #[test]
    fn an_unknown_kind_is_named_with_the_known_ones() {
        let record: BTreeMap<String, toml::Value> = toml::from_str("auth = \"saml\"\n").unwrap();
        let err = Features::from_record(&record).unwrap_err().to_string();
        assert!(
            err.contains("auth = \"saml\" is not one of jwt, none"),
            "{err}"
        );
    }

    #[test]
    fn chosen_features_bring_their_kind_folders() {
        let chosen = Features::default().chosen();
        let names: Vec<_> = chosen.iter().map(|c| (c.feature, c.kind)).collect();
        assert_eq!(
            names,
            [
                ("monitoring", "prometheus"),
                ("auth", "jwt"),
                ("discovery", "static"),
                ("deploy", "all")
            ]
        );
        assert_eq!(chosen[1].template_dir(), "features/auth/jwt/");
    }

    #[test]
    fn both_sql_databases_share_one_folder() {
        for database in [DatabaseKind::Postgres, DatabaseKind::Sqlite] {
            let features = Features {
                database,
                ..Features::default()
            };
            let chosen = features.chosen();
            let dirs: Vec<String> = chosen.iter().map(ChosenFeature::template_dir).collect();
            assert!(
                dirs.contains(&"features/database/sql/".to_owned()),
                "{dirs:?}"
            );
        }
    }
}
