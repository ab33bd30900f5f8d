//! `--with-tracing`: how request spans are exported (they are always logged).

use super::Kind;

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
}
