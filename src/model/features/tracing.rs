//! `--with-tracing`: how request spans are exported (they are always logged).

use super::{CargoFeature, Dependency, Kind, Part};
use crate::model::settings::{SectionSpec, Setting, Value};

/// `--with-tracing`: how request spans are exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TracingKind {
    /// OTLP/gRPC export behind the `otlp` cargo feature.
    Otlp,
    /// Spans in the logs only.
    None,
}

impl Kind for TracingKind {
    const FEATURE: &'static str = "tracing";
    const KINDS: &'static [(Self, &'static str, &'static str)] = &[
        (
            Self::Otlp,
            "otlp",
            "OTLP/gRPC span export behind the `otlp` cargo feature",
        ),
        (Self::None, "none", "spans in the logs only"),
    ];
    const NONE: Option<Self> = Some(Self::None);

    fn part(self) -> Option<&'static Part> {
        match self {
            Self::Otlp => Some(&OTLP),
            Self::None => None,
        }
    }
}

/// What `otlp` adds to the project.
pub const OTLP: Part = Part {
    modules: &["otlp"],
    dependencies: &[],
    dev_dependencies: &[Dependency::with_features(
        "opentelemetry-proto",
        "0.33",
        &["gen-tonic", "trace"],
    )],
    cargo_features: &[CargoFeature {
        name: "otlp",
        doc: "OpenTelemetry export of request spans over OTLP/gRPC (see README.md).",
        enables: &["microframework-runtime/otlp"],
        default: true,
    }],
    sections: &[SectionSpec {
        key: "tracing",
        rust_type: "microframework_runtime::telemetry::TracingConfig",
        doc: "Request spans and their export.",
        settings: &[
            Setting {
                key: "otlp_endpoint",
                env: Some("OTEL_EXPORTER_OTLP_ENDPOINT"),
                rust_type: "String",
                default: Value::Str(""),
                doc: "OTLP/gRPC collector such as `http://localhost:4317`; empty: no export (`otlp` cargo feature)",
            },
            Setting {
                key: "service_name",
                env: Some("OTEL_SERVICE_NAME"),
                rust_type: "String",
                default: Value::Str(""),
                doc: "`service.name` of the exported spans; empty: the package name",
            },
            Setting {
                key: "filter",
                env: Some("TRACING_FILTER"),
                rust_type: "String",
                default: Value::Str("info"),
                doc: "tracing filter directives choosing the exported spans, apart from `log.filter`",
            },
        ],
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::settings::declared;
    use microframework_runtime::telemetry::TracingConfig;

    #[test]
    fn the_tracing_section_declares_the_runtime_defaults() {
        let declared = declared::<TracingConfig>(OTLP.sections, "tracing");
        assert_eq!(declared, TracingConfig::default());
    }
}
