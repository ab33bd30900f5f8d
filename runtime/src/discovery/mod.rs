//! Service discovery: what a registry does ([`Registry`]), what it answers ([`Resolved`]),
//! and the client-side balancer that spreads calls over the answer ([`Balancer`]).
//!
//! The backends implement [`Registry`]: [`StaticList`] always, and behind a feature each
//! `dns::DnsRegistry`, `redis::RedisRegistry` and `etcd::EtcdRegistry`; each is built from
//! [`DiscoveryConfig`]. A server keeps itself registered with a [`Registration`].

mod balance;
mod config;
#[cfg(feature = "dns")]
pub mod dns;
#[cfg(feature = "etcd")]
pub mod etcd;
#[cfg(feature = "redis")]
pub mod redis;
mod registration;
mod static_list;

use std::{future::Future, time::Duration};

pub use balance::{
    host_port, Balancer, EndpointStats, Policy, EMPTY_BELIEVED_AFTER, MAX_INSTANCES,
};
pub use config::{DiscoveryConfig, RegistryTls};
pub use registration::{advertise_address, lease_timing, Registration};
pub use static_list::StaticList;

/// One instance of a service, as registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The service's name.
    pub service: String,
    /// A name unique to this process.
    pub id: String,
    /// Where it is reached: `http://10.0.0.5:50051`.
    pub address: String,
}

/// What keeps a registration alive: an etcd lease's id (0 where there is none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease(pub i64);

/// The instances of a service at some point.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// Their addresses (`http://host:port`), sorted.
    pub addresses: Vec<String>,
    /// The registry's revision of this answer, where it has one (etcd); 0 otherwise.
    pub revision: i64,
}

/// Where instances register and clients find them.
pub trait Registry: Send + Sync + Sized + 'static {
    /// Whether instances register themselves (redis, etcd), rather than being listed
    /// elsewhere (static, dns).
    const REGISTERS: bool;

    /// Time between heartbeats.
    fn heartbeat(&self) -> Duration {
        Duration::from_secs(1)
    }

    /// Registers `instance`.
    fn register(&self, instance: &Instance) -> impl Future<Output = anyhow::Result<Lease>> + Send {
        let _ = instance;
        std::future::ready(Ok(Lease(0)))
    }

    /// Refreshes the registration; `Ok(false)` when the registry no longer has it (a
    /// restarted registry, an expired lease): the caller registers again.
    fn keep_alive(
        &self,
        instance: &Instance,
        lease: Lease,
    ) -> impl Future<Output = anyhow::Result<bool>> + Send {
        let _ = (instance, lease);
        std::future::ready(Ok(true))
    }

    /// Removes the registration.
    fn deregister(
        &self,
        instance: &Instance,
        lease: Lease,
    ) -> impl Future<Output = anyhow::Result<()>> + Send {
        let _ = (instance, lease);
        std::future::ready(Ok(()))
    }

    /// The live instances of `service`.
    fn resolve(&self, service: &str) -> impl Future<Output = anyhow::Result<Resolved>> + Send;

    /// Completes when the instances of `service` may differ from `since`: at once on a
    /// watch's event where the registry has watches, after `refresh` at the latest.
    fn changed(
        &self,
        service: &str,
        since: &Resolved,
        refresh: Duration,
    ) -> impl Future<Output = ()> + Send {
        let _ = (service, since);
        tokio::time::sleep(refresh)
    }
}
