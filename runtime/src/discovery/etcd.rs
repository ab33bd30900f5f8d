//! Discovery in etcd (feature `etcd`). An instance holds a lease (TTL `discovery.ttl_ms`) kept alive every
//! heartbeat, and puts its address at `PREFIX/SERVICE/ID` under that lease: SIGKILL leaves
//! the key until the lease expires, SIGTERM revokes the lease at once. A lease the registry
//! no longer knows (it restarted empty, or the lease expired while it was unreachable) is
//! replaced by a new one at the next heartbeat. Clients read the prefix and watch it from the
//! revision they read, so a change reaches them at once.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use anyhow::Context;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{
    metadata::AsciiMetadataValue,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

use super::{lease_timing, DiscoveryConfig, Instance, Lease, Registry, Resolved, MAX_INSTANCES};

/// The part of etcd's API discovery uses (`proto/etcd.proto`, compiled by `build.rs`).
#[allow(clippy::all, missing_docs, unreachable_pub)]
mod pb {
    tonic::include_proto!("etcdserverpb");
}

use pb::{
    auth_client::AuthClient, kv_client::KvClient, lease_client::LeaseClient,
    watch_client::WatchClient, watch_request::RequestUnion,
};

/// Longest wait for etcd to answer one request.
const ETCD_TIMEOUT: Duration = Duration::from_secs(2);

/// A client re-reads the instances at least this many refresh intervals apart even when its
/// watch reports nothing (a watch lost without an error).
const WATCH_REREAD: u32 = 10;

/// An etcd cluster holding the registrations.
#[derive(Clone)]
pub struct EtcdRegistry {
    channel: Channel,
    ttl: Duration,
    heartbeat: Duration,
    prefix: String,
    /// The user and password to authenticate with, when etcd's auth is on.
    credentials: Option<(String, String)>,
    /// The token of the last authentication, sent with every request until etcd refuses it.
    token: Arc<Mutex<Option<AsciiMetadataValue>>>,
}

impl std::fmt::Debug for EtcdRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdRegistry")
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .finish_non_exhaustive()
    }
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

impl EtcdRegistry {
    /// `call`'s answer within [`ETCD_TIMEOUT`]; a refused token is forgotten, so the next
    /// request authenticates again (etcd's tokens expire).
    async fn within<T>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = Result<T, tonic::Status>>,
    ) -> anyhow::Result<T> {
        match tokio::time::timeout(ETCD_TIMEOUT, call).await {
            Ok(Err(status)) if status.code() == tonic::Code::Unauthenticated => {
                self.forget_token();
                Err(status).with_context(|| format!("etcd {what}"))
            }
            Ok(outcome) => outcome.with_context(|| format!("etcd {what}")),
            Err(_) => anyhow::bail!("etcd {what}: no answer within {ETCD_TIMEOUT:?}"),
        }
    }

    fn forget_token(&self) {
        *self.token.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// `message` as a request carrying the token of this registry's user (authenticating
    /// first when there is none yet).
    async fn request<T>(&self, message: T) -> anyhow::Result<tonic::Request<T>> {
        let mut request = tonic::Request::new(message);
        let Some((name, password)) = &self.credentials else {
            return Ok(request);
        };
        let known = self
            .token
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let token = match known {
            Some(token) => token,
            None => {
                let asked = pb::AuthenticateRequest {
                    name: name.clone(),
                    password: password.clone(),
                };
                let answer = self
                    .within(
                        "authenticate",
                        AuthClient::new(self.channel.clone()).authenticate(asked),
                    )
                    .await?;
                let token = AsciiMetadataValue::try_from(answer.into_inner().token)
                    .context("etcd answered a token that is not ASCII")?;
                *self.token.lock().unwrap_or_else(PoisonError::into_inner) = Some(token.clone());
                token
            }
        };
        request.metadata_mut().insert("token", token);
        Ok(request)
    }
}

impl EtcdRegistry {
    /// The registry `discovery` names: `etcd_endpoints`, `etcd_prefix`, `ttl_ms` and
    /// `heartbeat_ms`. Nothing connects until the first call.
    pub fn new(discovery: &DiscoveryConfig) -> anyhow::Result<Self> {
        let (ttl, heartbeat) = lease_timing(discovery.ttl_ms, discovery.heartbeat_ms)?;
        let urls: Vec<&str> = discovery
            .etcd_endpoints
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .collect();
        let tls = tls_config(discovery, &urls)?;
        let endpoints = urls
            .iter()
            .map(|url| {
                let endpoint = Endpoint::from_shared((*url).to_owned())
                    .map(|endpoint| endpoint.connect_timeout(ETCD_TIMEOUT))
                    .with_context(|| format!("discovery.etcd_endpoints: `{url}` is not a URL"))?;
                match &tls {
                    Some(tls) => endpoint
                        .tls_config(tls.clone())
                        .with_context(|| format!("discovery.etcd_endpoints: TLS to `{url}`")),
                    None => Ok(endpoint),
                }
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let channel = match endpoints.len() {
            0 => anyhow::bail!("discovery.etcd_endpoints (ETCD_ENDPOINTS) is empty"),
            1 => endpoints[0].connect_lazy(),
            _ => Channel::balance_list(endpoints.into_iter()),
        };
        let credentials = match discovery.etcd_username.as_str() {
            "" => None,
            user => {
                let password = crate::config::secret(
                    &discovery.etcd_password,
                    &discovery.etcd_password_file,
                    "discovery.etcd_password_file",
                )?;
                Some((user.to_owned(), password))
            }
        };
        Ok(Self {
            channel,
            ttl,
            heartbeat,
            prefix: discovery.etcd_prefix.clone(),
            credentials,
            token: Arc::default(),
        })
    }
}

/// TLS for `https://` endpoints (all of them or none): etcd's certificate is checked against
/// `registry_ca_file`, which is required, and `registry_cert_file` with `registry_key_file`
/// is presented when set (etcd's `--client-cert-auth`).
fn tls_config(
    discovery: &DiscoveryConfig,
    urls: &[&str],
) -> anyhow::Result<Option<ClientTlsConfig>> {
    let secure = urls
        .iter()
        .filter(|url| url.starts_with("https://"))
        .count();
    let tls = discovery.registry_tls()?;
    if secure == 0 {
        if tls.is_set() {
            anyhow::bail!(
                "discovery.registry_ca_file, registry_cert_file and registry_key_file are for \
                 TLS: ETCD_ENDPOINTS must be https:// URLs"
            );
        }
        return Ok(None);
    }
    if secure != urls.len() {
        anyhow::bail!("discovery.etcd_endpoints: all https:// or all http://, not a mix");
    }
    let Some(ca) = tls.ca else {
        anyhow::bail!(
            "discovery.registry_ca_file (REGISTRY_CA_FILE): https:// etcd endpoints need the \
             CA that signed etcd's certificate"
        );
    };
    let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    if let Some((cert, key)) = tls.identity {
        config = config.identity(Identity::from_pem(cert, key));
    }
    Ok(Some(config))
}

impl Registry for EtcdRegistry {
    const REGISTERS: bool = true;

    fn heartbeat(&self) -> Duration {
        self.heartbeat
    }

    async fn register(&self, instance: &Instance) -> anyhow::Result<Lease> {
        let ttl = i64::try_from(self.ttl.as_millis().div_ceil(1000)).unwrap_or(i64::MAX);
        let request = self.request(pb::LeaseGrantRequest { ttl, id: 0 }).await?;
        let granted = self
            .within(
                "lease grant",
                LeaseClient::new(self.channel.clone()).lease_grant(request),
            )
            .await?
            .into_inner();
        if !granted.error.is_empty() {
            anyhow::bail!("etcd refused a lease: {}", granted.error);
        }
        let key = format!("{}{}", self.directory(&instance.service), instance.id);
        let request = self
            .request(pb::PutRequest {
                key: key.into_bytes(),
                value: instance.address.clone().into_bytes(),
                lease: granted.id,
                prev_kv: false,
            })
            .await?;
        self.within("put", KvClient::new(self.channel.clone()).put(request))
            .await?;
        Ok(Lease(granted.id))
    }

    async fn keep_alive(&self, _instance: &Instance, lease: Lease) -> anyhow::Result<bool> {
        let stream = tokio_stream::once(pb::LeaseKeepAliveRequest { id: lease.0 });
        let request = self.request(stream).await?;
        let mut answers = self
            .within(
                "lease keep-alive",
                LeaseClient::new(self.channel.clone()).lease_keep_alive(request),
            )
            .await?
            .into_inner();
        let answer = self
            .within("lease keep-alive", answers.message())
            .await?
            .context("etcd closed the keep-alive stream")?;
        // A TTL of 0: etcd no longer knows the lease.
        Ok(answer.ttl > 0)
    }

    async fn deregister(&self, _instance: &Instance, lease: Lease) -> anyhow::Result<()> {
        let request = self.request(pb::LeaseRevokeRequest { id: lease.0 }).await?;
        self.within(
            "lease revoke",
            LeaseClient::new(self.channel.clone()).lease_revoke(request),
        )
        .await?;
        Ok(())
    }

    async fn resolve(&self, service: &str) -> anyhow::Result<Resolved> {
        let key = self.directory(service).into_bytes();
        let request = self
            .request(pb::RangeRequest {
                range_end: range_end(&key),
                key,
                // At most MAX_INSTANCES entries; the reply is also bounded by the client's
                // 4 MiB message limit, whatever the values hold.
                limit: MAX_INSTANCES as i64,
                revision: 0,
            })
            .await?;
        let found = self
            .within("range", KvClient::new(self.channel.clone()).range(request))
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
            let request = self.request(ReceiverStream::new(queue)).await?;
            let mut answers = WatchClient::new(self.channel.clone())
                .watch(request)
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
