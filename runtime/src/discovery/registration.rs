//! Keeping a server registered: the background task, the address it advertises and the timing
//! of its lease.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket},
    time::Duration,
};

use tokio::{
    sync::{oneshot, watch},
    task::JoinHandle,
};

use super::{Instance, Lease, Registry};

/// Longest wait for the registry when deregistering.
const DEREGISTER_TIMEOUT: Duration = Duration::from_secs(2);

/// A registration kept alive by a background task until [`Registration::deregister`] (or
/// until it is dropped, when the heartbeat stops and the lease runs out).
///
/// While the registry cannot be reached the server serves on and the task retries forever
/// with jittered backoff; when the registry has lost the registration (a restarted Redis, an
/// expired etcd lease) it registers again under a new lease. While the server is not
/// serving ([`Registration::set_serving`]: its database down, say) the instance is taken out
/// of the registry, so that no client sends it calls it can only fail, and put back when it
/// serves again.
#[derive(Debug)]
pub struct Registration {
    instance: Instance,
    stop: oneshot::Sender<()>,
    serving: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Registration {
    /// Registers `instance` with `registry` and keeps it registered: a heartbeat every
    /// [`Registry::heartbeat`]. `None` for registries where nothing registers
    /// ([`Registry::REGISTERS`] is false: static lists, DNS).
    pub fn start<R: Registry>(registry: R, instance: Instance) -> Option<Self> {
        if !R::REGISTERS {
            return None;
        }
        let (stop, stopped) = oneshot::channel();
        let (serving, serves) = watch::channel(true);
        let task = tokio::spawn(keep_registered(registry, instance.clone(), serves, stopped));
        Some(Self {
            instance,
            stop,
            serving,
            task,
        })
    }

    /// Whether the server is serving: when not, the instance leaves the registry until it
    /// is again ([`Serving::run`](crate::server::Serving::run) follows the server's health).
    pub fn set_serving(&self, serving: bool) {
        self.serving.send_if_modified(|current| {
            let changed = *current != serving;
            *current = serving;
            changed
        });
    }

    /// What is registered.
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// Stops the heartbeat and removes the registration (waiting up to 2 seconds for the
    /// registry).
    pub async fn deregister(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

async fn keep_registered<R: Registry>(
    registry: R,
    instance: Instance,
    mut serves: watch::Receiver<bool>,
    mut stop: oneshot::Receiver<()>,
) {
    let heartbeat = registry.heartbeat();
    let mut lease: Option<Lease> = None;
    let mut failures = 0_u32;
    loop {
        if !*serves.borrow_and_update() {
            if let Some(current) = lease.take() {
                tracing::warn!(
                    service = %instance.service,
                    "not serving: leaving the registry until serving again"
                );
                deregister(&registry, &instance, current).await;
            }
            tokio::select! {
                _ = &mut stop => break,
                changed = serves.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    continue;
                }
            }
        }
        let step = async {
            if let Some(current) = lease {
                if registry.keep_alive(&instance, current).await? {
                    return Ok(current);
                }
                tracing::warn!(
                    service = %instance.service,
                    "the registry lost this instance's registration: registering again"
                );
            }
            registry.register(&instance).await
        };
        let outcome = tokio::select! {
            _ = &mut stop => break,
            outcome = tokio::time::timeout(heartbeat, step) => outcome
                .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {heartbeat:?}"))),
        };
        let wait = match outcome {
            Ok(current) => {
                if lease != Some(current) {
                    tracing::info!(
                        service = %instance.service,
                        address = %instance.address,
                        lease = current.0,
                        "registered"
                    );
                    lease = Some(current);
                }
                failures = 0;
                heartbeat
            }
            Err(err) => {
                failures = failures.saturating_add(1);
                tracing::warn!(
                    error = %format!("{err:#}"),
                    failures,
                    "cannot reach the registry: serving on, retrying"
                );
                backoff(failures, heartbeat)
            }
        };
        tokio::select! {
            _ = &mut stop => break,
            () = tokio::time::sleep(wait) => {}
            // Not serving any more: the top of the loop leaves the registry.
            Ok(()) = serves.changed() => {}
        }
    }
    if let Some(current) = lease {
        deregister(&registry, &instance, current).await;
    }
}

/// Removes the registration, waiting up to [`DEREGISTER_TIMEOUT`] for the registry.
async fn deregister<R: Registry>(registry: &R, instance: &Instance, current: Lease) {
    match tokio::time::timeout(DEREGISTER_TIMEOUT, registry.deregister(instance, current)).await {
        Ok(Ok(())) => tracing::info!(service = %instance.service, "deregistered"),
        Ok(Err(err)) => tracing::warn!(error = %format!("{err:#}"), "cannot deregister"),
        Err(_) => tracing::warn!("cannot deregister: the registry did not answer"),
    }
}

/// The wait after `failures` failed attempts in a row: 100 ms doubling, at most `ceiling`,
/// each between half and all of it so that instances do not retry in step.
fn backoff(failures: u32, ceiling: Duration) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    let full = Duration::from_millis(100u64 << exponent).min(ceiling);
    full.mul_f64(0.5 + crate::random_fraction() / 2.0)
}

/// The `host:port` other machines reach a server listening at `listening` at: `configured`
/// (a host, or `host:port`; the setting `discovery.advertise_address`) when not empty, else
/// the address the server listens on when it is one address, else the address of the
/// interface the default route leaves by.
///
/// ```
/// use microframework_runtime::discovery::advertise_address;
///
/// let listening = "127.0.0.1:7000".parse().unwrap();
/// assert_eq!(advertise_address("", listening).unwrap(), "127.0.0.1:7000");
/// assert_eq!(advertise_address("10.1.2.3", listening).unwrap(), "10.1.2.3:7000");
/// assert_eq!(advertise_address("users.internal:443", listening).unwrap(), "users.internal:443");
/// ```
pub fn advertise_address(configured: &str, listening: SocketAddr) -> anyhow::Result<String> {
    let configured = configured.trim();
    let port = listening.port();
    if configured.is_empty() {
        let ip = match listening.ip() {
            ip if ip.is_unspecified() => outward_ip().unwrap_or_else(|| {
                tracing::warn!("no default route: advertising 127.0.0.1; set ADVERTISE_ADDRESS");
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            }),
            ip => ip,
        };
        return Ok(SocketAddr::new(ip, port).to_string());
    }
    if configured.parse::<SocketAddr>().is_ok() {
        return Ok(configured.to_owned());
    }
    if let Ok(ip) = configured.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port).to_string());
    }
    match configured.rsplit_once(':') {
        Some((host, given)) if given.parse::<u16>().is_ok() && !host.is_empty() => {
            Ok(configured.to_owned())
        }
        Some(_) => anyhow::bail!(
            "discovery.advertise_address `{configured}` is neither `host` nor `host:port`"
        ),
        None => Ok(format!("{configured}:{port}")),
    }
}

/// The local address of the interface the default route leaves by (a UDP "connection" sends
/// nothing).
fn outward_ip() -> Option<IpAddr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// The TTL of a registration and the time between heartbeats, from `ttl_ms` and
/// `heartbeat_ms` (0: a third of the TTL); refused when the TTL is under a second or a
/// heartbeat could miss it.
///
/// ```
/// use std::time::Duration;
/// use microframework_runtime::discovery::lease_timing;
///
/// let (ttl, heartbeat) = lease_timing(9_000, 0).unwrap();
/// assert_eq!((ttl, heartbeat), (Duration::from_secs(9), Duration::from_secs(3)));
/// assert!(lease_timing(9_000, 5_000).is_err());
/// ```
pub fn lease_timing(ttl_ms: u64, heartbeat_ms: u64) -> anyhow::Result<(Duration, Duration)> {
    let ttl = Duration::from_millis(ttl_ms);
    let heartbeat = match heartbeat_ms {
        0 => ttl / 3,
        given => Duration::from_millis(given),
    };
    if ttl < Duration::from_secs(1) {
        anyhow::bail!("discovery.ttl_ms must be at least 1000, not {ttl_ms}");
    }
    if heartbeat.is_zero() || heartbeat * 2 > ttl {
        anyhow::bail!(
            "discovery.heartbeat_ms ({}) must be above 0 and at most half of ttl_ms ({ttl_ms})",
            heartbeat.as_millis()
        );
    }
    Ok((ttl, heartbeat))
}

#[cfg(test)]
mod tests {
    use std::sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    };

    use super::*;
    use crate::discovery::Resolved;

    #[test]
    fn the_advertised_address_is_the_configured_one_or_where_the_server_listens() {
        let listening: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let address = |advertise: &str| advertise_address(advertise, listening);
        assert_eq!(address("").unwrap(), "127.0.0.1:7000");
        assert_eq!(address(" 10.1.2.3 ").unwrap(), "10.1.2.3:7000");
        assert_eq!(address("users.internal").unwrap(), "users.internal:7000");
        assert_eq!(address("users.internal:443").unwrap(), "users.internal:443");
        assert_eq!(address("::1").unwrap(), "[::1]:7000");
        assert!(address("a:b:c:x").is_err());
        let anywhere: SocketAddr = "0.0.0.0:7000".parse().unwrap();
        let outward = advertise_address("", anywhere).unwrap();
        assert!(!outward.contains("0.0.0.0"), "{outward}");
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_ceiling() {
        let ceiling = Duration::from_secs(1);
        for failures in 1..20 {
            let wait = backoff(failures, ceiling);
            let full = Duration::from_millis(100 << (failures - 1).min(16)).min(ceiling);
            assert!(wait >= full / 2 && wait <= full, "{failures}: {wait:?}");
        }
    }

    #[test]
    fn a_lease_needs_a_second_and_two_heartbeats_within_it() {
        assert_eq!(
            lease_timing(3_000, 1_000).unwrap(),
            (Duration::from_secs(3), Duration::from_secs(1))
        );
        let short = lease_timing(999, 0).unwrap_err().to_string();
        assert!(short.contains("ttl_ms must be at least 1000"), "{short}");
        assert!(lease_timing(3_000, 1_501).is_err());
    }

    /// A registry that counts what it is asked and loses the registration once.
    #[derive(Default, Clone)]
    struct Counting {
        registered: Arc<AtomicUsize>,
        kept: Arc<AtomicUsize>,
        deregistered: Arc<AtomicUsize>,
    }

    impl Registry for Counting {
        const REGISTERS: bool = true;

        fn heartbeat(&self) -> Duration {
            Duration::from_millis(10)
        }

        async fn register(&self, _instance: &Instance) -> anyhow::Result<Lease> {
            let count = self.registered.fetch_add(1, Ordering::SeqCst);
            Ok(Lease(i64::try_from(count).unwrap() + 1))
        }

        async fn keep_alive(&self, _instance: &Instance, _lease: Lease) -> anyhow::Result<bool> {
            // The registry "restarts" after the second heartbeat.
            Ok(self.kept.fetch_add(1, Ordering::SeqCst) != 1)
        }

        async fn deregister(&self, _instance: &Instance, lease: Lease) -> anyhow::Result<()> {
            assert_eq!(lease, Lease(2), "the lease of the second registration");
            self.deregistered.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }

        async fn resolve(&self, _service: &str) -> anyhow::Result<Resolved> {
            Ok(Resolved::default())
        }
    }

    /// A registry that lists what is registered, as a set of leases.
    #[derive(Default, Clone)]
    struct Listing {
        leases: Arc<std::sync::Mutex<Vec<Lease>>>,
        registered: Arc<AtomicUsize>,
    }

    impl Listing {
        fn listed(&self) -> usize {
            self.leases.lock().unwrap().len()
        }
    }

    impl Registry for Listing {
        const REGISTERS: bool = true;

        fn heartbeat(&self) -> Duration {
            Duration::from_millis(10)
        }

        async fn register(&self, _instance: &Instance) -> anyhow::Result<Lease> {
            let lease = Lease(i64::try_from(
                self.registered.fetch_add(1, Ordering::SeqCst),
            )?);
            self.leases.lock().unwrap().push(lease);
            Ok(lease)
        }

        async fn keep_alive(&self, _instance: &Instance, lease: Lease) -> anyhow::Result<bool> {
            Ok(self.leases.lock().unwrap().contains(&lease))
        }

        async fn deregister(&self, _instance: &Instance, lease: Lease) -> anyhow::Result<()> {
            self.leases
                .lock()
                .unwrap()
                .retain(|listed| *listed != lease);
            Ok(())
        }

        async fn resolve(&self, _service: &str) -> anyhow::Result<Resolved> {
            Ok(Resolved::default())
        }
    }

    async fn until(mut done: impl FnMut() -> bool) {
        tokio::time::timeout(Duration::from_secs(5), async {
            while !done() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("within 5 seconds");
    }

    #[tokio::test]
    async fn an_instance_not_serving_leaves_the_registry_until_it_serves_again() {
        let registry = Listing::default();
        let instance = Instance {
            service: "users".into(),
            id: "1".into(),
            address: "127.0.0.1:7000".into(),
        };
        let registration = Registration::start(registry.clone(), instance).unwrap();
        until(|| registry.listed() == 1).await;
        registration.set_serving(false);
        until(|| registry.listed() == 0).await;
        // No heartbeat puts it back while it does not serve.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(registry.listed(), 0);
        assert_eq!(registry.registered.load(Ordering::SeqCst), 1);
        registration.set_serving(true);
        until(|| registry.listed() == 1).await;
        assert_eq!(registry.registered.load(Ordering::SeqCst), 2);
        registration.deregister().await;
        assert_eq!(registry.listed(), 0);
    }

    #[tokio::test]
    async fn a_lost_registration_is_renewed_and_removed_on_deregister() {
        let registry = Counting::default();
        let instance = Instance {
            service: "users".into(),
            id: "1".into(),
            address: "http://127.0.0.1:7000".into(),
        };
        let registration = Registration::start(registry.clone(), instance.clone())
            .expect("this registry registers");
        assert_eq!(registration.instance(), &instance);
        while registry.kept.load(Ordering::SeqCst) < 4 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        registration.deregister().await;
        assert_eq!(registry.registered.load(Ordering::SeqCst), 2);
        assert_eq!(registry.deregistered.load(Ordering::SeqCst), 1);
    }
}
