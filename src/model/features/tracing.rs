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
    dependencies: &[
        Dependency {
            optional: true,
            ..Dependency::plain("opentelemetry", "0.33")
        },
        Dependency {
            default_features: false,
            optional: true,
            ..Dependency::with_features("opentelemetry-otlp", "0.33", &["grpc-tonic", "trace"])
        },
        Dependency {
            optional: true,
            ..Dependency::with_features("opentelemetry_sdk", "0.33", &["rt-tokio"])
        },
        Dependency {
            optional: true,
            ..Dependency::plain("tracing-opentelemetry", "0.34")
        },
    ],
    dev_dependencies: &[Dependency::with_features(
        "opentelemetry-proto",
        "0.33",
        &["gen-tonic", "trace"],
    )],
    cargo_features: &[CargoFeature {
        name: "otlp",
        doc: "OpenTelemetry export of request spans over OTLP/gRPC (see README.md).",
        enables: &[
            "dep:opentelemetry",
            "dep:opentelemetry_sdk",
            "dep:opentelemetry-otlp",
            "dep:tracing-opentelemetry",
        ],
        default: true,
    }],
    sections: &[SectionSpec {
        key: "tracing",
        rust_type: "TracingConfig",
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
