//! What every generated project has, whatever its features: its settings, modules and
//! dependencies. Features add theirs (`model/features/`).

use crate::model::{
    features::{Dependency, Part},
    settings::{SectionSpec, Setting, Value},
};

/// The parts of every project.
pub const BASE: Part = Part {
    modules: &[
        "client",
        "config",
        "extensions",
        "proto",
        "server",
        "services",
        "telemetry",
    ],
    dependencies: &[
        Dependency::plain("anyhow", "1"),
        Dependency::with_features("clap", "4", &["derive"]),
        Dependency::plain("http", "1"),
        Dependency::plain("http-body", "1"),
        Dependency::plain("http-body-util", "0.1"),
        Dependency::runtime(&[]),
        Dependency::plain("pin-project-lite", "0.2"),
        Dependency::plain("prost", "0.14"),
        Dependency::plain("prost-types", "0.14"),
        Dependency::with_features("serde", "1", &["derive"]),
        Dependency::with_features(
            "tokio",
            "1",
            &["macros", "rt-multi-thread", "signal", "net", "sync", "time"],
        ),
        Dependency::with_features("tokio-stream", "0.1", &["net"]),
        Dependency::plain("toml", "0.9"),
        Dependency::with_features("tonic", "0.14.3", &["gzip"]),
        Dependency::plain("tonic-health", "0.14"),
        Dependency::plain("tonic-prost", "0.14"),
        Dependency::plain("tonic-reflection", "0.14"),
        Dependency {
            default_features: false,
            ..Dependency::with_features("tower", "0.5", &["util"])
        },
        Dependency::plain("tracing", "0.1"),
        Dependency::with_features("tracing-subscriber", "0.3", &["env-filter", "json"]),
        Dependency::with_features("uuid", "1", &["v4"]),
    ],
    dev_dependencies: &[Dependency::runtime(&["testing"])],
    cargo_features: &[],
    sections: SECTIONS,
};

const SECTIONS: &[SectionSpec] = &[
    SectionSpec {
        key: "",
        rust_type: "Config",
        doc: "Complete service configuration.",
        settings: &[Setting {
            key: "environment",
            env: Some("APP_ENV"),
            rust_type: "String",
            default: Value::Str("development"),
            doc: "`development` and `test` accept development settings (the shipped JWT secret, auth off); any other name is production",
        }],
    },
    SectionSpec {
        key: "grpc",
        rust_type: "microframework_runtime::server::GrpcConfig",
        doc: "gRPC server settings.",
        settings: &[
            Setting {
                key: "host",
                env: Some("GRPC_HOST"),
                rust_type: "String",
                default: Value::Str("0.0.0.0"),
                doc: "Address to listen on",
            },
            Setting {
                key: "port",
                env: Some("GRPC_PORT"),
                rust_type: "u16",
                default: Value::Number("50051"),
                doc: "Port to listen on; 0 picks a free port",
            },
            Setting {
                key: "concurrency_limit_per_connection",
                env: Some("GRPC_CONCURRENCY_LIMIT"),
                rust_type: "usize",
                default: Value::Number("0"),
                doc: "Most requests processed at once per connection; 0 leaves it to `max_concurrent_streams`",
            },
            Setting {
                key: "max_concurrent_streams",
                env: Some("GRPC_MAX_CONCURRENT_STREAMS"),
                rust_type: "u32",
                default: Value::Number("1024"),
                doc: "Most concurrent HTTP/2 streams a client may open on one connection",
            },
            Setting {
                key: "http2_keepalive_interval_secs",
                env: Some("GRPC_KEEPALIVE_INTERVAL_SECS"),
                rust_type: "u64",
                default: Value::Number("30"),
                doc: "Seconds between HTTP/2 keepalive PINGs",
            },
            Setting {
                key: "http2_keepalive_timeout_secs",
                env: Some("GRPC_KEEPALIVE_TIMEOUT_SECS"),
                rust_type: "u64",
                default: Value::Number("10"),
                doc: "Seconds to wait for a PING acknowledgement before closing the connection",
            },
            Setting {
                key: "tcp_keepalive_secs",
                env: Some("GRPC_TCP_KEEPALIVE_SECS"),
                rust_type: "u64",
                default: Value::Number("60"),
                doc: "Seconds of idle time before TCP keepalive probes start",
            },
            Setting {
                key: "request_timeout_secs",
                env: Some("GRPC_REQUEST_TIMEOUT_SECS"),
                rust_type: "u64",
                default: Value::Number("0"),
                doc: "Longest a request may run whatever its deadline; 0: the client's `grpc-timeout` alone",
            },
            Setting {
                key: "shutdown_grace_secs",
                env: Some("GRPC_SHUTDOWN_GRACE_SECS"),
                rust_type: "u64",
                default: Value::Number("10"),
                doc: "After SIGTERM or Ctrl-C, how long in-flight calls may finish",
            },
            Setting {
                key: "max_message_bytes",
                env: Some("GRPC_MAX_MESSAGE_BYTES"),
                rust_type: "usize",
                default: Value::Expression("4 * 1024 * 1024", "4194304", "`4194304`"),
                doc: "Largest message accepted or sent, in bytes",
            },
            Setting {
                key: "gzip",
                env: Some("GRPC_GZIP"),
                rust_type: "bool",
                default: Value::Bool(true),
                doc: "Whether responses are gzip-compressed for clients that accept it (requests always may be)",
            },
        ],
    },
    SectionSpec {
        key: "reflection",
        rust_type: "microframework_runtime::server::ReflectionConfig",
        doc: "gRPC server reflection (what grpcurl and Postman use to list and call methods).",
        settings: &[Setting {
            key: "enabled",
            env: Some("REFLECTION_ENABLED"),
            rust_type: "bool",
            default: Value::Bool(true),
            doc: "Whether reflection is served; it tells any caller every method and message, so production may turn it off",
        }],
    },
    SectionSpec {
        key: "log",
        rust_type: "microframework_runtime::telemetry::LogConfig",
        doc: "Logging settings.",
        settings: &[
            Setting {
                key: "filter",
                env: Some("RUST_LOG"),
                rust_type: "String",
                default: Value::Str("info"),
                doc: "tracing filter directives, such as `info` or `my_service=debug,tower=warn`",
            },
            Setting {
                key: "format",
                env: Some("LOG_FORMAT"),
                rust_type: "LogFormat",
                default: Value::Variant("Text", "text"),
                doc: "`text` for people, `json` for log collectors",
            },
        ],
    },
    SectionSpec {
        key: "client",
        rust_type: "microframework_runtime::client::ClientOptions",
        doc: "How `client::Client` calls servers of this project.",
        settings: &[
            Setting {
                key: "connect_timeout_ms",
                env: None,
                rust_type: "u64",
                default: Value::Number("5000"),
                doc: "Longest time to establish the connection, in milliseconds",
            },
            Setting {
                key: "deadline_ms",
                env: Some("CLIENT_DEADLINE_MS"),
                rust_type: "u64",
                default: Value::Number("10000"),
                doc: "Deadline of every call (sent as `grpc-timeout`), in milliseconds",
            },
            Setting {
                key: "keepalive_interval_secs",
                env: None,
                rust_type: "u64",
                default: Value::Number("30"),
                doc: "Seconds between HTTP/2 keepalive PINGs, idle or not",
            },
            Setting {
                key: "keepalive_timeout_secs",
                env: None,
                rust_type: "u64",
                default: Value::Number("10"),
                doc: "Seconds to wait for a PING acknowledgement before the connection is dropped",
            },
            Setting {
                key: "gzip",
                env: None,
                rust_type: "bool",
                default: Value::Bool(false),
                doc: "Whether requests are gzip-compressed (responses in gzip are always accepted)",
            },
            Setting {
                key: "token",
                env: Some("CLIENT_TOKEN"),
                rust_type: "String",
                default: Value::Str(""),
                doc: "Bearer token sent with every call (empty: none)",
            },
        ],
    },
    SectionSpec {
        key: "client.retry",
        rust_type: "microframework_runtime::client::RetryPolicy",
        doc: "When and how often a failed call is tried again.",
        settings: &[
            Setting {
                key: "max_attempts",
                env: Some("CLIENT_MAX_ATTEMPTS"),
                rust_type: "u32",
                default: Value::Number("3"),
                doc: "Most attempts per call, the first included; 1 turns retries off",
            },
            Setting {
                key: "initial_backoff_ms",
                env: None,
                rust_type: "u64",
                default: Value::Number("50"),
                doc: "Backoff before the second attempt, in milliseconds",
            },
            Setting {
                key: "max_backoff_ms",
                env: None,
                rust_type: "u64",
                default: Value::Number("2000"),
                doc: "Longest backoff, in milliseconds",
            },
            Setting {
                key: "multiplier",
                env: None,
                rust_type: "f64",
                default: Value::Number("2.0"),
                doc: "Factor applied to the backoff after each attempt",
            },
            Setting {
                key: "idempotent_methods",
                env: None,
                rust_type: "Option<Vec<String>>",
                default: Value::ReadMethods,
                doc: "Methods (`/package.Service/Method`) safe to repeat: retried on UNAVAILABLE and DEADLINE_EXCEEDED; others only when the request was never sent. Left out: the methods that only read",
            },
            Setting {
                key: "throttle_max_tokens",
                env: None,
                rust_type: "f64",
                default: Value::Number("10.0"),
                doc: "Retry throttling (gRPC A6): failed attempts take a token, successes give back `throttle_token_ratio`; retries stop while half or fewer remain; 0 turns it off",
            },
            Setting {
                key: "throttle_token_ratio",
                env: None,
                rust_type: "f64",
                default: Value::Number("0.1"),
                doc: "Tokens a successful call gives back to the retry throttle",
            },
        ],
    },
    SectionSpec {
        key: "client.circuit_breaker",
        rust_type: "microframework_runtime::client::BreakerPolicy",
        doc: "When the circuit breaker opens and how long it stays open.",
        settings: &[
            Setting {
                key: "failure_threshold",
                env: None,
                rust_type: "u32",
                default: Value::Number("5"),
                doc: "Consecutive failed calls that open the circuit; 0 turns the breaker off",
            },
            Setting {
                key: "cooldown_ms",
                env: None,
                rust_type: "u64",
                default: Value::Number("5000"),
                doc: "How long an open circuit fails calls at once before one trial call",
            },
        ],
    },
];

/// What projects with resources the tool implements (the default service, spec resources)
/// add: the `store` module and its limits.
pub const STORE: Part = Part {
    modules: &["store"],
    dependencies: &[],
    dev_dependencies: &[],
    cargo_features: &[],
    sections: &[SectionSpec {
        key: "store",
        rust_type: "microframework_runtime::store::StoreConfig",
        doc: "The stores of the resources: the in-memory ones' size, and the record streams.",
        settings: &[
            Setting {
                key: "max_records",
                env: Some("STORE_MAX_RECORDS"),
                rust_type: "usize",
                default: Value::Number("100000"),
                doc: "Most records each in-memory resource keeps; creating more answers RESOURCE_EXHAUSTED",
            },
            Setting {
                key: "max_streams",
                env: Some("STORE_MAX_STREAMS"),
                rust_type: "usize",
                default: Value::Number("100"),
                doc: "Most record streams open at once; more answer RESOURCE_EXHAUSTED; 0: no limit",
            },
            Setting {
                key: "max_streams_per_caller",
                env: Some("STORE_MAX_STREAMS_PER_CALLER"),
                rust_type: "usize",
                default: Value::Number("10"),
                doc: "Most record streams one caller (a JWT subject) has open at once; 0: no limit",
            },
            Setting {
                key: "stream_idle_secs",
                env: Some("STORE_STREAM_IDLE_SECS"),
                rust_type: "u64",
                default: Value::Number("30"),
                doc: "A stream whose client takes no record for this long is cut off (DEADLINE_EXCEEDED) and its buffers freed; 0: no limit",
            },
            Setting {
                key: "stream_max_secs",
                env: Some("STORE_STREAM_MAX_SECS"),
                rust_type: "u64",
                default: Value::Number("600"),
                doc: "Longest a record stream runs before it is cut off (DEADLINE_EXCEEDED); 0: no limit",
            },
        ],
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::settings::declared;

    #[test]
    fn sections_of_runtime_types_declare_the_runtime_defaults() {
        use microframework_runtime::client::{BreakerPolicy, ClientOptions, RetryPolicy};
        let runtime_typed: Vec<&str> = SECTIONS
            .iter()
            .filter(|section| section.rust_type.contains("::"))
            .map(|section| section.key)
            .collect();
        assert_eq!(
            runtime_typed,
            [
                "grpc",
                "reflection",
                "log",
                "client",
                "client.retry",
                "client.circuit_breaker"
            ]
        );
        use microframework_runtime::store::StoreConfig;
        assert_eq!(
            declared::<StoreConfig>(STORE.sections, "store"),
            StoreConfig::default()
        );
        use microframework_runtime::server::{GrpcConfig, ReflectionConfig};
        assert_eq!(
            declared::<GrpcConfig>(SECTIONS, "grpc"),
            GrpcConfig::default()
        );
        assert_eq!(
            declared::<ReflectionConfig>(SECTIONS, "reflection"),
            ReflectionConfig::default()
        );
        use microframework_runtime::telemetry::LogConfig;
        assert_eq!(declared::<LogConfig>(SECTIONS, "log"), LogConfig::default());
        // The idempotent methods are the project's read methods (none here); the runtime
        // takes them from the method table when the setting is left out.
        let retry = RetryPolicy {
            idempotent_methods: Some(Vec::new()),
            ..RetryPolicy::default()
        };
        assert_eq!(declared::<RetryPolicy>(SECTIONS, "client.retry"), retry);
        assert_eq!(
            declared::<ClientOptions>(SECTIONS, "client"),
            ClientOptions::default()
        );
        assert_eq!(
            declared::<BreakerPolicy>(SECTIONS, "client.circuit_breaker"),
            BreakerPolicy::default()
        );
    }
}
