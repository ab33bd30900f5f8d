//! What every service `microframework` generates shares, as ordinary Rust: tested here once,
//! written verbatim into each project as the tool-owned `runtime/` crate.
//!
//! The generated code hands the runtime data (configuration, tables of its methods) and
//! composes its tower layers; a service extends it with layers and modules of its own.

#![warn(missing_docs)]

#[cfg(feature = "jwt")]
pub mod auth;
pub mod client;
pub mod config;
pub mod deadline;
pub mod discovery;
pub mod methods;
#[cfg(feature = "prometheus")]
pub mod metrics;
pub mod middleware;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod server;
pub mod store;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;

use std::{
    collections::hash_map::RandomState,
    hash::{BuildHasher, Hasher},
    net::SocketAddr,
    time::Instant,
};

use anyhow::Context;

/// The error type of transports and middleware (tonic's and tower's).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A number in [0, 1) that differs between calls, for jitter (backoff, probes, picks).
///
/// ```
/// let fraction = microframework_runtime::random_fraction();
/// assert!((0.0..1.0).contains(&fraction));
/// ```
pub fn random_fraction() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Whether `environment` (`APP_ENV`) is `development` or `test`, the only environments where
/// development settings (such as the shipped JWT secret) are accepted. Any other name
/// (`production`, `staging`, a typo) is treated as production.
///
/// ```
/// use microframework_runtime::is_development;
///
/// assert!(is_development("test"));
/// assert!(!is_development("Development"));
/// ```
pub fn is_development(environment: &str) -> bool {
    matches!(environment, "development" | "test")
}

/// `host:port` as a socket address (`[host]:port` for IPv6); `section` names the setting in
/// the error.
///
/// ```
/// use microframework_runtime::socket_addr;
///
/// assert_eq!(socket_addr("grpc", "::1", 50051).unwrap().to_string(), "[::1]:50051");
/// let err = socket_addr("grpc", "localhost", 1).unwrap_err();
/// assert_eq!(err.to_string(), "grpc.host `localhost` is not an IP address");
/// ```
pub fn socket_addr(section: &str, host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    let text = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    text.parse()
        .with_context(|| format!("{section}.host `{host}` is not an IP address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_stay_in_range_and_vary() {
        let drawn: Vec<f64> = (0..1000).map(|_| random_fraction()).collect();
        assert!(drawn.iter().all(|f| (0.0..1.0).contains(f)));
        let low = drawn.iter().filter(|f| **f < 0.5).count();
        // A fair source puts about half below 0.5; 1000 draws stray far from 500 rarely.
        assert!((350..650).contains(&low), "{low} of 1000 below 0.5");
    }
}
