//! `--with-monitoring`: how metrics are exported.

use super::Kind;

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
}
