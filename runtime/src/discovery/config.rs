//! The `[discovery]` section: what every backend reads, and the keys of each backend.

use serde::Deserialize;

use super::Policy;

/// Service discovery settings (`[discovery]`).
///
/// One type for every backend: a project reads the keys of the backend it was generated
/// with, and a file may keep the keys of another (a `gen` can switch backends) without being
/// refused. Keys a backend does not read keep their defaults.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscoveryConfig {
    /// Name the instances register under and the client resolves; empty: the crate's name.
    pub service: String,
    /// `host` or `host:port` other machines reach this instance at; empty: see
    /// [`advertise_address`](super::advertise_address).
    pub advertise_address: String,
    /// How the client spreads calls over the instances.
    pub balancer: Policy,
    /// How often the client reads the instances again, in milliseconds.
    pub refresh_ms: u64,
    /// After SIGTERM, how long a deregistered instance keeps serving before it drains.
    pub drain_delay_ms: u64,
    /// Registries (Redis, etcd): how long a registration outlives its last heartbeat, in
    /// milliseconds.
    pub ttl_ms: u64,
    /// Registries: milliseconds between heartbeats; 0: a third of `ttl_ms`.
    pub heartbeat_ms: u64,
    /// Static: comma-separated addresses of the instances; empty: this machine's gRPC port.
    pub endpoints: String,
    /// DNS: the name whose A/AAAA records are the instances.
    pub dns_name: String,
    /// DNS: the instances' gRPC port; 0: this service's own.
    pub dns_port: u16,
    /// DNS: `ip:port` of the server to ask; empty: the system's.
    pub dns_server: String,
    /// Redis: the server (`redis://[:password@]host:port[/db]`).
    pub redis_url: String,
    /// Redis: prefix of the keys (`PREFIX:SERVICE` is the index, `PREFIX:SERVICE:ID` an
    /// instance).
    pub redis_prefix: String,
    /// etcd: comma-separated client URLs.
    pub etcd_endpoints: String,
    /// etcd: prefix of the keys (`PREFIX/SERVICE/ID` holds an instance's address).
    pub etcd_prefix: String,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        Self {
            service: String::new(),
            advertise_address: String::new(),
            balancer: Policy::LeastLoaded,
            refresh_ms: 1000,
            drain_delay_ms: 2000,
            ttl_ms: 10_000,
            heartbeat_ms: 0,
            endpoints: String::new(),
            dns_name: "localhost".to_owned(),
            dns_port: 0,
            dns_server: String::new(),
            redis_url: "redis://127.0.0.1:6379".to_owned(),
            redis_prefix: "services".to_owned(),
            etcd_endpoints: "http://127.0.0.1:2379".to_owned(),
            etcd_prefix: "/services".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_every_backend_are_read_and_others_refused() {
        let text = "balancer = \"round_robin\"\nredis_prefix = \"svc\"\ndns_port = 7000\n";
        let config: DiscoveryConfig = toml::from_str(text).expect("valid");
        assert_eq!(config.balancer, Policy::RoundRobin);
        assert_eq!(config.redis_prefix, "svc");
        assert_eq!(config.dns_port, 7000);
        assert_eq!(config.etcd_prefix, "/services", "a default");
        let typo = toml::from_str::<DiscoveryConfig>("redis_ulr = \"redis://x\"\n");
        assert!(typo.expect_err("a typo").to_string().contains("redis_ulr"));
    }
}
