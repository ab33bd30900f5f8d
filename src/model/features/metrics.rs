//! `--with-monitoring`: how metrics are exported.

use super::{Dependency, Kind, Part};
use crate::model::settings::{SectionSpec, Setting, Value};

/// `--with-monitoring`: how metrics are exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitoringKind {
    /// Prometheus text at /metrics on METRICS_PORT, go-grpc-prometheus names.
    Prometheus,
    /// No metrics.
    None,
}

impl Kind for MonitoringKind {
    const FEATURE: &'static str = "monitoring";
    const KINDS: &'static [(Self, &'static str, &'static str)] = &[
        (
            Self::Prometheus,
            "prometheus",
            "Prometheus text at /metrics on METRICS_PORT, go-grpc-prometheus names",
        ),
        (Self::None, "none", "no metrics"),
    ];
    const NONE: Option<Self> = Some(Self::None);

    fn part(self) -> Option<&'static Part> {
        match self {
            Self::Prometheus => Some(&PROMETHEUS),
            Self::None => None,
        }
    }
}

/// What `prometheus` adds to the project.
pub const PROMETHEUS: Part = Part {
    modules: &[],
    dependencies: &[Dependency::runtime(&["prometheus"])],
    dev_dependencies: &[],
    cargo_features: &[],
    sections: &[SectionSpec {
        key: "metrics",
        rust_type: "microframework_runtime::metrics::MetricsConfig",
        doc: "The Prometheus endpoint.",
        settings: &[
            Setting {
                key: "enabled",
                env: Some("METRICS_ENABLED"),
                rust_type: "bool",
                default: Value::Bool(true),
                doc: "Whether Prometheus text is served at `http://HOST:PORT/metrics`",
            },
            Setting {
                key: "host",
                env: Some("METRICS_HOST"),
                rust_type: "String",
                default: Value::Str("0.0.0.0"),
                doc: "Address `/metrics` listens on",
            },
            Setting {
                key: "port",
                env: Some("METRICS_PORT"),
                rust_type: "u16",
                default: Value::Number("9090"),
                doc: "Port `/metrics` listens on; 0 picks a free port",
            },
            Setting {
                key: "header_timeout_ms",
                env: Some("METRICS_HEADER_TIMEOUT_MS"),
                rust_type: "u64",
                default: Value::Number("5000"),
                doc: "A connection that has not sent a whole request head in this many milliseconds is closed (slowloris)",
            },
            Setting {
                key: "max_connections",
                env: Some("METRICS_MAX_CONNECTIONS"),
                rust_type: "usize",
                default: Value::Number("16"),
                doc: "Most `/metrics` connections served at once; more wait in the listen queue",
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
        use microframework_runtime::metrics::MetricsConfig;
        let declared: MetricsConfig = declared(PROMETHEUS.sections, "metrics");
        assert_eq!(declared, MetricsConfig::default());
    }
}
