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
    /// Redis: the server (`redis://[user:password@]host:port[/db]`, or `rediss://` for
    /// TLS).
    pub redis_url: String,
    /// Redis: a file holding the URL (a mounted secret); wins over `redis_url`.
    pub redis_url_file: String,
    /// Redis: prefix of the keys (`PREFIX:SERVICE` is the index, `PREFIX:SERVICE:ID` an
    /// instance).
    pub redis_prefix: String,
    /// etcd: comma-separated client URLs.
    pub etcd_endpoints: String,
    /// etcd: prefix of the keys (`PREFIX/SERVICE/ID` holds an instance's address).
    pub etcd_prefix: String,
    /// etcd: the user to authenticate as; empty: no authentication.
    pub etcd_username: String,
    /// etcd: the user's password.
    pub etcd_password: String,
    /// etcd: a file holding the password (a mounted secret); wins over `etcd_password`.
    pub etcd_password_file: String,
    /// Registries over TLS (`rediss://`, `https://`): PEM file of the CA that signed the
    /// registry's certificate; empty: the system's roots (Redis) or required (etcd).
    pub registry_ca_file: String,
    /// Registries over TLS: PEM certificate this instance presents (mutual TLS).
    pub registry_cert_file: String,
    /// Registries over TLS: PEM private key of `registry_cert_file`.
    pub registry_key_file: String,
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
            redis_url_file: String::new(),
            redis_prefix: "services".to_owned(),
            etcd_endpoints: "http://127.0.0.1:2379".to_owned(),
            etcd_prefix: "/services".to_owned(),
            etcd_username: String::new(),
            etcd_password: String::new(),
            etcd_password_file: String::new(),
            registry_ca_file: String::new(),
            registry_cert_file: String::new(),
            registry_key_file: String::new(),
        }
    }
}

impl DiscoveryConfig {
    /// The PEM files of `registry_ca_file`, and of `registry_cert_file` with
    /// `registry_key_file` (both or neither), read.
    pub fn registry_tls(&self) -> anyhow::Result<RegistryTls> {
        let read = |key: &str, path: &str| -> anyhow::Result<Option<Vec<u8>>> {
            if path.is_empty() {
                return Ok(None);
            }
            let bytes = std::fs::read(path);
            let bytes = bytes.map_err(|err| anyhow::anyhow!("discovery.{key} `{path}`: {err}"))?;
            Ok(Some(bytes))
        };
        let ca = read("registry_ca_file", &self.registry_ca_file)?;
        let cert = read("registry_cert_file", &self.registry_cert_file)?;
        let key = read("registry_key_file", &self.registry_key_file)?;
        let identity = match (cert, key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => anyhow::bail!(
                "discovery.registry_cert_file and registry_key_file go together: set both or neither"
            ),
        };
        Ok(RegistryTls { ca, identity })
    }
}

/// What a registry client presents and trusts over TLS.
#[derive(Debug, Clone, Default)]
pub struct RegistryTls {
    /// PEM of the CA the registry's certificate must be signed by.
    pub ca: Option<Vec<u8>>,
    /// PEM certificate and key for mutual TLS.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl RegistryTls {
    /// Whether any TLS setting is made.
    pub fn is_set(&self) -> bool {
        self.ca.is_some() || self.identity.is_some()
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
