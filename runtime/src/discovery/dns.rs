//! Discovery by DNS (feature `dns`): the instances are the A/AAAA records of a name, such as
//! a Kubernetes headless Service, resolved again at every refresh; nothing registers (the
//! platform keeps the records).

use std::net::SocketAddr;

use anyhow::Context;
use hickory_resolver::{
    config::{NameServerConfig, ResolverConfig},
    net::runtime::TokioRuntimeProvider,
    TokioResolver,
};

use super::{DiscoveryConfig, Registry, Resolved};

/// A DNS name and the port its instances serve on.
#[derive(Debug, Clone)]
pub struct DnsRegistry {
    resolver: TokioResolver,
    name: String,
    port: u16,
    scheme: &'static str,
}

impl DnsRegistry {
    /// The registry `discovery` names: `dns_name`, `dns_server` (empty: the system's
    /// resolver) and `dns_port` (0: `default_port`, the service's own); the instances are
    /// reached with `scheme` (`http` or `https`).
    pub fn new(
        discovery: &DiscoveryConfig,
        default_port: u16,
        scheme: &'static str,
    ) -> anyhow::Result<Self> {
        let server = discovery.dns_server.trim();
        let mut builder = if server.is_empty() {
            TokioResolver::builder_tokio().context("cannot read the system's DNS settings")?
        } else {
            let address: SocketAddr = server
                .parse()
                .with_context(|| format!("discovery.dns_server `{server}` is not `ip:port`"))?;
            let mut name_server = NameServerConfig::udp_and_tcp(address.ip());
            for connection in &mut name_server.connections {
                connection.port = address.port();
            }
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![name_server]),
                TokioRuntimeProvider::default(),
            )
        };
        // Every refresh asks again: the answer is the current set of instances.
        builder.options_mut().cache_size = 0;
        let resolver = builder.build().context("cannot build the DNS resolver")?;
        Ok(Self {
            resolver,
            name: discovery.dns_name.clone(),
            port: match discovery.dns_port {
                0 => default_port,
                port => port,
            },
            scheme,
        })
    }
}

impl Registry for DnsRegistry {
    const REGISTERS: bool = false;

    async fn resolve(&self, _service: &str) -> anyhow::Result<Resolved> {
        let found = self
            .resolver
            .lookup_ip(self.name.as_str())
            .await
            .with_context(|| format!("cannot resolve {}", self.name))?;
        let mut addresses: Vec<String> = found
            .iter()
            .map(|ip| format!("{}://{}", self.scheme, SocketAddr::new(ip, self.port)))
            .collect();
        addresses.sort();
        addresses.dedup();
        Ok(Resolved {
            addresses,
            revision: 0,
        })
    }
}
