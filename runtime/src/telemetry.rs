//! Structured logging with tracing, and the W3C trace context of incoming calls. A service's
//! optional parts (span export) add a [`TelemetryPart`] each.

use std::{fmt, io::IsTerminal, str::FromStr};

use serde::Deserialize;
use tracing_subscriber::{
    layer::SubscriberExt, util::SubscriberInitExt, EnvFilter, Layer as _, Registry,
};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("expected `text` or `json`, found `{other}`")),
        }
    }
}

/// Logging settings (`[log]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// tracing filter directives, such as `info` or `my_service=debug,tower=warn`.
    pub filter: String,
    /// `text` for people, `json` for log collectors.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

/// Request spans and their export (`[tracing]`): read with or without the `otlp` feature,
/// which does the exporting ([`crate::otlp`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracingConfig {
    /// OTLP/gRPC collector such as `http://localhost:4317`; empty: no export.
    pub otlp_endpoint: String,
    /// `service.name` of the exported spans; empty: the package name.
    pub service_name: String,
    /// tracing filter directives choosing the exported spans, apart from `[log]`'s.
    pub filter: String,
}

impl Default for TracingConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: String::new(),
            service_name: String::new(),
            filter: "info".to_owned(),
        }
    }
}

/// A layer of the global subscriber.
pub type BoxedLayer = Box<dyn tracing_subscriber::Layer<Registry> + Send + Sync>;

/// What an optional part adds to telemetry: a layer, and what has to live as long as it
/// does.
pub struct TelemetryPart {
    /// The part's layer, if it has one with this configuration.
    pub layer: Option<BoxedLayer>,
    /// Kept until the [`TelemetryGuard`] is dropped (to flush pending spans, say).
    pub keep: Box<dyn Send>,
}

/// What continues the caller's trace in a call's span (span export's hook).
pub type TraceContinuer = fn(&tracing::Span, &http::HeaderMap);

/// Keeps the parts' telemetry running; dropping it flushes what they have pending.
#[must_use = "dropping the guard stops span export"]
pub struct TelemetryGuard {
    kept: Vec<Box<dyn Send>>,
}

impl fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryGuard")
            .field("parts", &self.kept.len())
            .finish()
    }
}

/// Installs the global tracing subscriber: logs to stdout as `log` says, coloured only on a
/// terminal and when `NO_COLOR` is unset, filtered by `log.filter`; then each part's layer
/// with its own filter, so quiet logs do not silence exported spans.
pub fn init(
    log: &LogConfig,
    parts: impl IntoIterator<Item = anyhow::Result<TelemetryPart>>,
) -> anyhow::Result<TelemetryGuard> {
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let logs = match log.format {
        LogFormat::Text => tracing_subscriber::fmt::layer().with_ansi(colour).boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer().json().boxed(),
    };
    let mut layers = vec![logs.with_filter(filter("log.filter", &log.filter)?).boxed()];
    let mut kept = Vec::new();
    for part in parts {
        let part = part?;
        layers.extend(part.layer);
        kept.push(part.keep);
    }
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|err| anyhow::anyhow!("cannot install the log subscriber: {err}"))?;
    Ok(TelemetryGuard { kept })
}

/// The filter `directives` describe; `key` names the setting in the error.
pub fn filter(key: &str, directives: &str) -> anyhow::Result<EnvFilter> {
    EnvFilter::try_new(directives)
        .map_err(|err| anyhow::anyhow!("invalid {key} `{directives}`: {err}"))
}

/// The trace id of a W3C `traceparent` header (`00-<trace id>-<parent id>-<flags>`).
pub fn trace_id(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get("traceparent")?.to_str().ok()?;
    let mut parts = value.split('-');
    let (_version, trace_id, parent_id) = (parts.next()?, parts.next()?, parts.next()?);
    let hex =
        |text: &str, len: usize| text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(trace_id, 32) && hex(parent_id, 16)).then_some(trace_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_id_comes_from_a_valid_traceparent_only() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(trace_id(&headers), None);
        headers.insert(
            "traceparent",
            http::HeaderValue::from_static(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        );
        assert_eq!(trace_id(&headers), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        headers.insert("traceparent", http::HeaderValue::from_static("00-xyz-01"));
        assert_eq!(trace_id(&headers), None);
        let short_parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067-01";
        headers.insert("traceparent", http::HeaderValue::from_static(short_parent));
        assert_eq!(trace_id(&headers), None);
    }

    #[test]
    fn a_bad_filter_names_its_setting() {
        assert!(filter("log.filter", "info,my_service=debug").is_ok());
        let err = filter("log.filter", "info,[").expect_err("invalid");
        assert!(
            err.to_string().starts_with("invalid log.filter `info,[`"),
            "{err}"
        );
    }

    #[test]
    fn log_formats_parse_from_the_environment_and_files() {
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert!("JSON".parse::<LogFormat>().is_err());
        let map = serde::de::value::MapDeserializer::<_, serde::de::value::Error>::new(
            [("format", "json")].into_iter(),
        );
        let log = LogConfig::deserialize(map).expect("valid");
        assert_eq!(log.format, LogFormat::Json);
        assert_eq!(log.filter, "info");
    }

    #[test]
    fn a_failing_part_fails_init_and_the_parts_are_kept() {
        let failing = init(&LogConfig::default(), [Err(anyhow::anyhow!("no exporter"))]);
        assert_eq!(failing.expect_err("refused").to_string(), "no exporter");
        let part = TelemetryPart {
            layer: None,
            keep: Box::new(()),
        };
        // The first successful init in this process installs the subscriber.
        let guard = init(&LogConfig::default(), [Ok(part)]).expect("installed");
        assert_eq!(format!("{guard:?}"), "TelemetryGuard { parts: 1 }");
        let again = init(&LogConfig::default(), []);
        assert!(again.is_err(), "a second global subscriber is refused");
    }
}
