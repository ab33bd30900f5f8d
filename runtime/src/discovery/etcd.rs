//! Discovery in etcd (feature `etcd`). An instance holds a lease (TTL `discovery.ttl_ms`) kept alive every
//! heartbeat, and puts its address at `PREFIX/SERVICE/ID` under that lease: SIGKILL leaves
//! the key until the lease expires, SIGTERM revokes the lease at once. A lease the registry
//! no longer knows (it restarted empty, or the lease expired while it was unreachable) is
//! replaced by a new one at the next heartbeat. Clients read the prefix and watch it from the
//! revision they read, so a change reaches them at once.

use std::time::Duration;

use anyhow::Context;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

use super::{lease_timing, DiscoveryConfig, Instance, Lease, Registry, Resolved, MAX_INSTANCES};

/// The part of etcd's API discovery uses (`proto/etcd.proto`, compiled by `build.rs`).
#[allow(clippy::all, missing_docs, unreachable_pub)]
mod pb {
    tonic::include_proto!("etcdserverpb");
}

use pb::{
    kv_client::KvClient, lease_client::LeaseClient, watch_client::WatchClient,
    watch_request::RequestUnion,
};

/// Longest wait for etcd to answer one request.
const ETCD_TIMEOUT: Duration = Duration::from_secs(2);

/// A client re-reads the instances at least this many refresh intervals apart even when its
/// watch reports nothing (a watch lost without an error).
const WATCH_REREAD: u32 = 10;

/// An etcd cluster holding the registrations.
#[derive(Debug, Clone)]
pub struct EtcdRegistry {
    channel: Channel,
    ttl: Duration,
    heartbeat: Duration,
    prefix: String,
}

impl EtcdRegistry {
    /// `PREFIX/SERVICE/`: the keys of a service's instances start with it.
    fn directory(&self, service: &str) -> String {
        format!("{}/{service}/", self.prefix.trim_end_matches('/'))
    }
}

/// The end of the range of keys starting with `prefix` (etcd's `--prefix`).
fn range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

async fn within<T>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, tonic::Status>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(ETCD_TIMEOUT, call).await {
        Ok(outcome) => outcome.with_context(|| format!("etcd {what}")),
        Err(_) => anyhow::bail!("etcd {what}: no answer within {ETCD_TIMEOUT:?}"),
    }
}

impl EtcdRegistry {
    /// The registry `discovery` names: `etcd_endpoints`, `etcd_prefix`, `ttl_ms` and
    /// `heartbeat_ms`. Nothing connects until the first call.
    pub fn new(discovery: &DiscoveryConfig) -> anyhow::Result<Self> {
        let (ttl, heartbeat) = lease_timing(discovery.ttl_ms, discovery.heartbeat_ms)?;
        let endpoints = discovery
            .etcd_endpoints
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(|url| {
                Endpoint::from_shared(url.to_owned())
                    .map(|endpoint| endpoint.connect_timeout(ETCD_TIMEOUT))
                    .with_context(|| format!("discovery.etcd_endpoints: `{url}` is not a URL"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let channel = match endpoints.len() {
            0 => anyhow::bail!("discovery.etcd_endpoints (ETCD_ENDPOINTS) is empty"),
            1 => endpoints[0].connect_lazy(),
            _ => Channel::balance_list(endpoints.into_iter()),
        };
        Ok(Self {
            channel,
            ttl,
            heartbeat,
            prefix: discovery.etcd_prefix.clone(),
        })
    }
}

impl Registry for EtcdRegistry {
    const REGISTERS: bool = true;

    fn heartbeat(&self) -> Duration {
        self.heartbeat
    }

    async fn register(&self, instance: &Instance) -> anyhow::Result<Lease> {
        let ttl = i64::try_from(self.ttl.as_millis().div_ceil(1000)).unwrap_or(i64::MAX);
        let granted = within(
            "lease grant",
            LeaseClient::new(self.channel.clone())
                .lease_grant(pb::LeaseGrantRequest { ttl, id: 0 }),
        )
        .await?
        .into_inner();
        if !granted.error.is_empty() {
            anyhow::bail!("etcd refused a lease: {}", granted.error);
        }
        let key = format!("{}{}", self.directory(&instance.service), instance.id);
        within(
            "put",
            KvClient::new(self.channel.clone()).put(pb::PutRequest {
                key: key.into_bytes(),
                value: instance.address.clone().into_bytes(),
                lease: granted.id,
                prev_kv: false,
            }),
        )
        .await?;
        Ok(Lease(granted.id))
    }

    async fn keep_alive(&self, _instance: &Instance, lease: Lease) -> anyhow::Result<bool> {
        let request = tokio_stream::once(pb::LeaseKeepAliveRequest { id: lease.0 });
        let mut answers = within(
            "lease keep-alive",
            LeaseClient::new(self.channel.clone()).lease_keep_alive(request),
        )
        .await?
        .into_inner();
        let answer = within("lease keep-alive", answers.message())
            .await?
            .context("etcd closed the keep-alive stream")?;
        // A TTL of 0: etcd no longer knows the lease.
        Ok(answer.ttl > 0)
    }

    async fn deregister(&self, _instance: &Instance, lease: Lease) -> anyhow::Result<()> {
        within(
            "lease revoke",
            LeaseClient::new(self.channel.clone())
                .lease_revoke(pb::LeaseRevokeRequest { id: lease.0 }),
        )
        .await?;
        Ok(())
    }

    async fn resolve(&self, service: &str) -> anyhow::Result<Resolved> {
        let key = self.directory(service).into_bytes();
        let found = within(
            "range",
            KvClient::new(self.channel.clone()).range(pb::RangeRequest {
                range_end: range_end(&key),
                key,
                // At most MAX_INSTANCES entries; the reply is also bounded by the client's
                // 4 MiB message limit, whatever the values hold.
                limit: MAX_INSTANCES as i64,
                revision: 0,
            }),
        )
        .await?
        .into_inner();
        let mut addresses: Vec<String> = found
            .kvs
            .into_iter()
            .filter_map(|kv| String::from_utf8(kv.value).ok())
            .collect();
        addresses.sort();
        addresses.dedup();
        Ok(Resolved {
            addresses,
            revision: found.header.map_or(0, |header| header.revision),
        })
    }

    async fn changed(&self, service: &str, since: &Resolved, refresh: Duration) {
        if since.revision == 0 {
            tokio::time::sleep(refresh).await;
            return;
        }
        let key = self.directory(service).into_bytes();
        let watch = async {
            let (requests, queue) = tokio::sync::mpsc::channel(1);
            requests
                .send(pb::WatchRequest {
                    request_union: Some(RequestUnion::CreateRequest(pb::WatchCreateRequest {
                        range_end: range_end(&key),
                        key,
                        start_revision: since.revision + 1,
                        progress_notify: false,
                    })),
                })
                .await
                .context("watch request")?;
            let mut answers = WatchClient::new(self.channel.clone())
                .watch(ReceiverStream::new(queue))
                .await
                .context("etcd watch")?
                .into_inner();
            // `requests` stays open while the watch runs: closing it would end the watch.
            while let Some(answer) = answers.message().await.context("etcd watch")? {
                if !answer.events.is_empty() || answer.canceled || answer.compact_revision != 0 {
                    return anyhow::Ok(());
                }
            }
            drop(requests);
            anyhow::Ok(())
        };
        match tokio::time::timeout(refresh * WATCH_REREAD, watch).await {
            Ok(Ok(())) | Err(_) => {}
            Ok(Err(err)) => {
                tracing::debug!(error = %format!("{err:#}"), "etcd watch failed");
                tokio::time::sleep(refresh).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_of_a_prefix_ends_after_its_last_key() {
        assert_eq!(range_end(b"/services/a/"), b"/services/a0".to_vec());
        assert_eq!(range_end(&[b'a', 0xff]), b"b".to_vec());
    }
}
