//! How a client calls a service: the `[client]` section of a configuration.

use std::time::Duration;

use serde::Deserialize;

use super::{BreakerPolicy, Dial, RetryPolicy, Stack, StateObserver};
use crate::{methods::Methods, tls::ClientTls};

/// How a client calls a service (`[client]`): connection, deadline, token, retries, circuit
/// breaker and TLS.
///
/// ```
/// use microframework_runtime::client::ClientOptions;
///
/// let options: ClientOptions = toml::from_str("deadline_ms = 250\n[retry]\nmax_attempts = 1")
///     .expect("valid settings");
/// assert_eq!(options.dial().connect_timeout.as_millis(), 5_000);
/// assert_eq!(options.retry.max_attempts, 1);
/// assert!(toml::from_str::<ClientOptions>("deadline = 1").is_err(), "unknown keys are refused");
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientOptions {
    /// Longest time to establish the connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Deadline of every call (sent as `grpc-timeout`), in milliseconds.
    pub deadline_ms: u64,
    /// Seconds between HTTP/2 keepalive PINGs, idle or not.
    pub keepalive_interval_secs: u64,
    /// Seconds to wait for a PING acknowledgement before the connection is dropped.
    pub keepalive_timeout_secs: u64,
    /// Whether requests are gzip-compressed (responses in gzip are always accepted).
    pub gzip: bool,
    /// Bearer token sent with every call (empty: none).
    pub token: String,
    /// When and how often a failed call is tried again.
    pub retry: RetryPolicy,
    /// When the circuit breaker opens and how long it stays open.
    pub circuit_breaker: BreakerPolicy,
    /// TLS for `https://` endpoints (applied with feature `tls`).
    pub tls: ClientTls,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 5_000,
            deadline_ms: 10_000,
            keepalive_interval_secs: 30,
            keepalive_timeout_secs: 10,
            gzip: false,
            token: String::new(),
            retry: RetryPolicy::default(),
            circuit_breaker: BreakerPolicy::default(),
            tls: ClientTls::default(),
        }
    }
}

impl ClientOptions {
    /// The deadline of every call.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }

    /// The connection's timeouts and keepalives.
    pub fn dial(&self) -> Dial {
        Dial {
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            keepalive_interval: Duration::from_secs(self.keepalive_interval_secs),
            keepalive_timeout: Duration::from_secs(self.keepalive_timeout_secs),
        }
    }

    /// The middleware stack these options ask for, over the service's `methods`, telling
    /// `observers` each state the breaker enters.
    pub fn stack(&self, methods: Methods, observers: &'static [StateObserver]) -> Stack<'_> {
        Stack {
            token: &self.token,
            retry: self.retry.clone(),
            breaker: self.circuit_breaker.clone(),
            observers,
            methods,
            deadline: self.deadline(),
            gzip: self.gzip,
        }
    }
}
