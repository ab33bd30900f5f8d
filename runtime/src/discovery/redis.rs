//! Discovery in Redis (feature `redis`). Each instance is a key `PREFIX:SERVICE:ID` holding its address, with a
//! TTL; the sorted set `PREFIX:SERVICE` indexes the ids (scored by expiry), so clients read
//! the instances without `KEYS`. Every heartbeat writes the whole registration again, so an
//! instance is back at the next heartbeat after Redis restarts empty; one killed without
//! deregistering disappears when its key expires.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Context;
use redis::{aio::MultiplexedConnection, AsyncConnectionConfig};
use tokio::sync::Mutex;

use super::{lease_timing, DiscoveryConfig, Instance, Lease, Registry, Resolved, MAX_INSTANCES};

/// Longest wait for Redis to connect or answer.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// The most of a registered value read: more than any `host:port` needs.
const MAX_VALUE_BYTES: usize = 512;

/// A Redis server holding the registrations.
#[derive(Clone)]
pub struct RedisRegistry {
    client: redis::Client,
    connection: Arc<Mutex<Option<MultiplexedConnection>>>,
    ttl: Duration,
    heartbeat: Duration,
    prefix: String,
}

impl std::fmt::Debug for RedisRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRegistry")
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl RedisRegistry {
    fn index(&self, service: &str) -> String {
        format!("{}:{service}", self.prefix)
    }

    fn key(&self, service: &str, id: &str) -> String {
        format!("{}:{service}:{id}", self.prefix)
    }

    /// The shared connection, made again after a failure.
    async fn connection(&self) -> anyhow::Result<MultiplexedConnection> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref() {
            return Ok(connection.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT));
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .context("cannot connect to Redis")?;
        *slot = Some(connection.clone());
        Ok(connection)
    }

    /// Forgets the connection after a failure, so the next call connects again.
    async fn forget<T>(&self, outcome: redis::RedisResult<T>) -> anyhow::Result<T> {
        if outcome.is_err() {
            *self.connection.lock().await = None;
        }
        Ok(outcome?)
    }
}

/// Milliseconds since the Unix epoch.
fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

impl RedisRegistry {
    /// The registry `discovery` names: `redis_url` (or the file `redis_url_file`), with
    /// `registry_ca_file`, `registry_cert_file` and `registry_key_file` for `rediss://`;
    /// `redis_prefix`, `ttl_ms` and `heartbeat_ms`. Nothing connects until the first call.
    pub fn new(discovery: &DiscoveryConfig) -> anyhow::Result<Self> {
        let (ttl, heartbeat) = lease_timing(discovery.ttl_ms, discovery.heartbeat_ms)?;
        let client = client(discovery)?;
        Ok(Self {
            client,
            connection: Arc::new(Mutex::new(None)),
            ttl,
            heartbeat,
            prefix: discovery.redis_prefix.clone(),
        })
    }
}

/// A client of the Redis server `discovery` names: over TLS for `rediss://`, checking the
/// server's certificate (and presenting this instance's own when one is configured);
/// credentials (an ACL user and password) come in the URL.
fn client(discovery: &DiscoveryConfig) -> anyhow::Result<redis::Client> {
    let url = crate::config::secret(
        &discovery.redis_url,
        &discovery.redis_url_file,
        "discovery.redis_url_file",
    )?;
    // The URL may hold a password: errors never repeat it.
    let invalid = "discovery.redis_url (REDIS_URL) is not a Redis URL \
        (`redis://[user:password@]host:port[/db]` or `rediss://...`)";
    if url.contains("#insecure") {
        anyhow::bail!(
            "discovery.redis_url: `#insecure` would skip the check of Redis's certificate; \
             set discovery.registry_ca_file to the CA that signed it instead"
        );
    }
    let tls = discovery.registry_tls()?;
    if url.starts_with("rediss://") {
        let certificates = redis::TlsCertificates {
            client_tls: tls
                .identity
                .map(|(client_cert, client_key)| redis::ClientTlsConfig {
                    client_cert,
                    client_key,
                }),
            root_cert: tls.ca,
        };
        return redis::Client::build_with_tls(url.as_str(), certificates).context(invalid);
    }
    if tls.is_set() {
        anyhow::bail!(
            "discovery.registry_ca_file, registry_cert_file and registry_key_file are for TLS: \
             REDIS_URL must start with rediss://"
        );
    }
    redis::Client::open(url.as_str()).context(invalid)
}

impl Registry for RedisRegistry {
    const REGISTERS: bool = true;

    fn heartbeat(&self) -> Duration {
        self.heartbeat
    }

    async fn register(&self, instance: &Instance) -> anyhow::Result<Lease> {
        let ttl = self.ttl.as_millis() as u64;
        let now = unix_millis();
        let index = self.index(&instance.service);
        let mut connection = self.connection().await?;
        let outcome = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(self.key(&instance.service, &instance.id))
            .arg(&instance.address)
            .arg("PX")
            .arg(ttl)
            .ignore()
            .cmd("ZADD")
            .arg(&index)
            .arg(now + ttl)
            .arg(&instance.id)
            .ignore()
            // Ids whose keys expired a TTL ago or more (a margin for clocks that differ).
            .cmd("ZREMRANGEBYSCORE")
            .arg(&index)
            .arg("-inf")
            .arg(now.saturating_sub(ttl))
            .ignore()
            .query_async::<()>(&mut connection)
            .await;
        self.forget(outcome).await?;
        Ok(Lease(0))
    }

    async fn keep_alive(&self, instance: &Instance, _lease: Lease) -> anyhow::Result<bool> {
        // The whole registration again: a Redis that restarted empty has it back at once.
        self.register(instance).await?;
        Ok(true)
    }

    async fn deregister(&self, instance: &Instance, _lease: Lease) -> anyhow::Result<()> {
        let mut connection = self.connection().await?;
        let outcome = redis::pipe()
            .atomic()
            .cmd("DEL")
            .arg(self.key(&instance.service, &instance.id))
            .ignore()
            .cmd("ZREM")
            .arg(self.index(&instance.service))
            .arg(&instance.id)
            .ignore()
            .query_async::<()>(&mut connection)
            .await;
        self.forget(outcome).await
    }

    async fn resolve(&self, service: &str) -> anyhow::Result<Resolved> {
        let mut connection = self.connection().await?;
        // At most MAX_INSTANCES ids, and of each value no more than an address can be:
        // whatever else is written under these keys cannot grow the client's memory.
        let ids = redis::cmd("ZRANGE")
            .arg(self.index(service))
            .arg(0)
            .arg(MAX_INSTANCES - 1)
            .query_async::<Vec<String>>(&mut connection)
            .await;
        let ids = self.forget(ids).await?;
        if ids.is_empty() {
            return Ok(Resolved::default());
        }
        let mut reads = redis::pipe();
        for id in &ids {
            reads
                .cmd("GETRANGE")
                .arg(self.key(service, id))
                .arg(0)
                .arg(MAX_VALUE_BYTES - 1);
        }
        let found = reads.query_async::<Vec<String>>(&mut connection).await;
        // An id whose key has expired (read as empty) is an instance gone without
        // deregistering.
        let mut addresses: Vec<String> = self
            .forget(found)
            .await?
            .into_iter()
            .filter(|value| !value.is_empty())
            .collect();
        addresses.sort();
        addresses.dedup();
        Ok(Resolved {
            addresses,
            revision: 0,
        })
    }
}
