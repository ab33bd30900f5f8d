//! Client-side load balancing over a service's live instances.
//!
//! `least_loaded` (the default) is power of two choices over a measured load, as go-zero's
//! p2c_ewma: two instances are drawn at random and the call goes to the one whose peak-EWMA
//! latency times (calls in flight + 1) is lower. tonic's own balanced channel cannot do this:
//! its connections report a load of 0, so its "p2c" is a random pick. An instance not picked
//! for a second is picked (a probe), so a recovered or new instance gets calls again.
//!
//! Each instance has its own circuit breaker, fed by the outcome of every call: the codes a
//! server in trouble answers (UNAVAILABLE, INTERNAL, UNKNOWN, DEADLINE_EXCEEDED,
//! RESOURCE_EXHAUSTED) and failed connections count against it, any other answer for it. A
//! failed connection, or `failure_threshold` failures in a row, ejects the instance (its
//! breaker opens) for a second, doubling up to 30 seconds while it keeps failing; when an
//! ejection ends, one call probes it (half-open), and no other goes to it until that one
//! answers. Between ejections, an instance whose recent success rate is under one half is
//! passed over while a healthier one is there, as go-zero's p2c gates on success, except for
//! its probe once a second. One failing instance so gets few calls and cannot open the circuit
//! to the others. The registry's list replaces the set as it changes.

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    pin::Pin,
    str::FromStr,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex, PoisonError, RwLock, Weak,
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use serde::Deserialize;
use tokio::task::JoinHandle;
use tonic::{body::Body, transport::Channel, Code, Status};
use tower::{Service, ServiceExt};

use super::{Registry, Resolved};
use crate::{
    client::{BreakerPolicy, BreakerState, StateObserver},
    middleware::{Attempted, CodeObserver, PendingCode},
    random_fraction, BoxError,
};

type HttpRequest = http::Request<Body>;
type HttpResponse = http::Response<Body>;

/// How far back latency counts: a sample's weight halves about every 7 seconds.
const DECAY: Duration = Duration::from_secs(10);
/// An instance not picked for this long is picked next time it is drawn.
const PROBE_AFTER: Duration = Duration::from_secs(1);
/// First and longest ejection of an instance whose connection failed.
const FIRST_EJECTION: Duration = Duration::from_secs(1);
const LONGEST_EJECTION: Duration = Duration::from_secs(30);
/// Latency assumed of the first instances, before any is measured.
const INITIAL_LATENCY: Duration = Duration::from_millis(1);
/// Weight of each call's outcome in an instance's success rate (a moving average).
const OUTCOME_WEIGHT: f64 = 0.1;
/// Below this success rate an instance is passed over while a healthier one is there.
const SUCCESS_GATE: f64 = 0.5;
/// Most instances a balancer keeps; a longer list is cut (and said so in the log).
pub const MAX_INSTANCES: usize = 1024;
/// How many of a registry's heartbeats an empty answer must last before a balancer believes
/// it and drops the instances it knew: every live instance registers again within one
/// heartbeat of a registry that restarted empty.
pub const EMPTY_BELIEVED_AFTER: u32 = 10;
/// Longest registry entry taken: a 253-character host name, a colon and a port.
const MAX_ENTRY: usize = 261;

/// The `host:port` of a registry entry, or `None` when it is anything else (a path, user
/// information, a query, a bad port). The registry is not trusted to say how to reach an
/// instance: an `http://` or `https://` in front (what earlier versions registered) is
/// dropped, and the client's own configuration chooses the scheme.
pub fn host_port(entry: &str) -> Option<&str> {
    let rest = entry
        .strip_prefix("http://")
        .or_else(|| entry.strip_prefix("https://"))
        .unwrap_or(entry);
    if rest.is_empty() || rest.len() > MAX_ENTRY {
        return None;
    }
    let (host, port) = rest.rsplit_once(':')?;
    let port_ok = !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|port| port > 0);
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host.len() <= 253
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
                && !host.starts_with(['.', '-'])
        }
    };
    (port_ok && host_ok).then_some(rest)
}

/// Whether `code` is what a server in trouble answers: it counts against the instance.
fn is_failure(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::Internal
            | Code::Unknown
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
    )
}

/// How the client spreads calls over the instances (`discovery.balancer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Power of two choices by latency x calls in flight.
    LeastLoaded,
    /// Each instance in turn.
    RoundRobin,
}

impl FromStr for Policy {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "least_loaded" => Ok(Self::LeastLoaded),
            "round_robin" => Ok(Self::RoundRobin),
            other => Err(format!(
                "expected `least_loaded` or `round_robin`, found `{other}`"
            )),
        }
    }
}

/// What the balancer knows of one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointStats {
    /// Its address.
    pub address: String,
    /// Calls sent to it.
    pub calls: u64,
    /// Calls in flight.
    pub in_flight: usize,
    /// Its peak-EWMA latency.
    pub latency: Duration,
    /// Its recent success rate, from 0 to 1 (a moving average of its calls' outcomes).
    pub success_rate: f64,
    /// Whether it is ejected (its breaker open, or half-open while a probe is out).
    pub ejected: bool,
}

/// Makes the channel of a new instance from its address.
type Connect = dyn Fn(&str) -> anyhow::Result<Channel> + Send + Sync;

/// A tower service spreading calls over the instances of a service; clones share the set.
#[derive(Clone)]
pub struct Balancer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Balancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balancer")
            .field("service", &self.shared.service)
            .field("policy", &self.shared.policy)
            .field("endpoints", &self.endpoints())
            .finish()
    }
}

struct Shared {
    service: String,
    policy: Policy,
    scheme: &'static str,
    members: RwLock<Arc<Vec<Arc<Member>>>>,
    next: AtomicUsize,
    connect: Box<Connect>,
    resolver: Mutex<Option<JoinHandle<()>>>,
    breakers: Arc<Breakers>,
}

/// What every instance's breaker follows: when it opens, and who hears of its states.
#[derive(Debug)]
struct Breakers {
    policy: RwLock<BreakerPolicy>,
    observers: RwLock<&'static [StateObserver]>,
}

impl Breakers {
    fn threshold(&self) -> u32 {
        self.policy
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .failure_threshold
    }

    /// Tells the observers the state `address`'s breaker entered.
    fn export(&self, address: &str, state: BreakerState) {
        if state != BreakerState::Closed {
            tracing::warn!(%address, ?state, "instance circuit breaker");
        } else {
            tracing::info!(%address, ?state, "instance circuit breaker");
        }
        let observers = *self
            .observers
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        for observe in observers {
            observe(address, state);
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let resolver = self
            .resolver
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = resolver.take() {
            task.abort();
        }
    }
}

struct Member {
    address: String,
    channel: Channel,
    in_flight: AtomicUsize,
    calls: AtomicU64,
    state: Mutex<MemberState>,
}

struct MemberState {
    /// Peak-EWMA latency in nanoseconds, as of `measured`.
    latency_ns: f64,
    measured: Instant,
    picked: Instant,
    /// Moving average of the outcomes: 1 a success, 0 a failure.
    success: f64,
    /// Failures in a row.
    failures: u32,
    /// No call goes to the instance before this (its breaker is open).
    ejected_until: Option<Instant>,
    /// Ejections in a row: each lasts twice the one before.
    ejections: u32,
    /// A probe is out (half-open): no other call goes to the instance until it answers.
    probing: bool,
}

impl Member {
    fn new(address: &str, channel: Channel, latency: Duration) -> Self {
        let now = Instant::now();
        Self {
            address: address.to_owned(),
            channel,
            in_flight: AtomicUsize::new(0),
            calls: AtomicU64::new(0),
            state: Mutex::new(MemberState {
                latency_ns: latency.as_nanos() as f64,
                measured: now,
                // Never picked: probed as soon as it is drawn.
                picked: now.checked_sub(PROBE_AFTER).unwrap_or(now),
                success: 1.0,
                failures: 0,
                ejected_until: None,
                ejections: 0,
                probing: false,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, MemberState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn ejected(&self, now: Instant) -> bool {
        Self::is_ejected(&self.state(), now)
    }

    fn is_ejected(state: &MemberState, now: Instant) -> bool {
        state.probing || state.ejected_until.is_some_and(|until| until > now)
    }

    /// Whether its recent calls mostly succeeded.
    fn healthy(&self) -> bool {
        self.state().success >= SUCCESS_GATE
    }

    /// The latency, decayed towards 0 for the time since it was measured.
    fn latency_ns(state: &MemberState, now: Instant) -> f64 {
        let idle = now.saturating_duration_since(state.measured).as_secs_f64();
        state.latency_ns * (-idle / DECAY.as_secs_f64()).exp()
    }

    fn latency(&self) -> Duration {
        let state = self.state();
        Duration::from_nanos(Self::latency_ns(&state, Instant::now()) as u64)
    }

    fn cost(&self, now: Instant) -> f64 {
        let latency = Self::latency_ns(&self.state(), now);
        latency * (self.in_flight.load(Ordering::Relaxed) + 1) as f64
    }

    fn starved(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.state().picked) >= PROBE_AFTER
    }

    /// A response came after `elapsed`: peak-EWMA (a slower sample counts in full at once).
    fn observe(&self, elapsed: Duration) {
        let now = Instant::now();
        let mut state = self.state();
        let sample = elapsed.as_nanos() as f64;
        let current = Self::latency_ns(&state, now);
        state.latency_ns = if sample > current {
            sample
        } else {
            let gap = now.saturating_duration_since(state.measured).as_secs_f64();
            let weight = (-gap / DECAY.as_secs_f64()).exp();
            current * weight + sample * (1.0 - weight)
        };
        state.measured = now;
    }

    /// A call ended with `code` (`Cancelled`: the caller gave up, which says nothing of the
    /// instance). A failure ejects the instance when it was the probe, or when it is the
    /// `threshold`th in a row (0: only failed connections eject); a success closes its
    /// breaker. Returns the state its breaker entered, if it changed.
    fn record(&self, code: Code, threshold: u32) -> Option<BreakerState> {
        let mut state = self.state();
        if code == Code::Cancelled {
            // A probe abandoned: the next pick probes again.
            state.probing = false;
            return None;
        }
        let failed = is_failure(code);
        let outcome = if failed { 0.0 } else { 1.0 };
        state.success = state.success * (1.0 - OUTCOME_WEIGHT) + outcome * OUTCOME_WEIGHT;
        if !failed {
            state.failures = 0;
            let was_open = state.ejections > 0;
            state.probing = false;
            state.ejected_until = None;
            state.ejections = 0;
            return was_open.then_some(BreakerState::Closed);
        }
        state.failures = state.failures.saturating_add(1);
        let now = Instant::now();
        let probe_failed = state.probing;
        let tripped =
            threshold > 0 && state.failures >= threshold && !Self::is_ejected(&state, now);
        if probe_failed || tripped {
            Self::eject_locked(&mut state, now);
            return Some(BreakerState::Open);
        }
        None
    }

    /// Ejects the instance: no calls for a while, longer each time in a row.
    #[cfg(test)]
    fn eject(&self) {
        Self::eject_locked(&mut self.state(), Instant::now());
    }

    fn eject_locked(state: &mut MemberState, now: Instant) {
        let ejection = Self::next_ejection(state);
        state.ejections = state.ejections.saturating_add(1);
        state.ejected_until = Some(now + ejection);
        state.probing = false;
    }

    /// How long the next ejection in a row lasts.
    fn next_ejection(state: &MemberState) -> Duration {
        let exponent = state.ejections.min(5);
        (FIRST_EJECTION * 2_u32.pow(exponent)).min(LONGEST_EJECTION)
    }
}

impl Balancer {
    /// A balancer over no instances yet, reaching them with `scheme` (`http`, or `https`
    /// for a client that speaks TLS: the client's choice, never the registry's); `connect`
    /// makes the channel of each new one from its URI (`scheme://host:port`).
    pub fn new(
        service: &str,
        policy: Policy,
        scheme: &'static str,
        connect: impl Fn(&str) -> anyhow::Result<Channel> + Send + Sync + 'static,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                service: service.to_owned(),
                policy,
                scheme,
                members: RwLock::new(Arc::new(Vec::new())),
                next: AtomicUsize::new(0),
                connect: Box::new(connect),
                resolver: Mutex::new(None),
                breakers: Arc::new(Breakers {
                    policy: RwLock::new(BreakerPolicy::default()),
                    observers: RwLock::new(&[]),
                }),
            }),
        }
    }

    /// Gives every instance a circuit breaker following `policy` (`failure_threshold`
    /// failures in a row open it; 0 leaves only failed connections to), whose states
    /// `observers` hear of with the instance's address. Until called, the default policy
    /// applies and nobody is told. A [`Connection`](crate::client::Connection) over this
    /// balancer calls it with the client's `[client.circuit_breaker]`.
    pub fn guard_instances(&self, policy: BreakerPolicy, observers: &'static [StateObserver]) {
        let breakers = &self.shared.breakers;
        *breakers
            .policy
            .write()
            .unwrap_or_else(PoisonError::into_inner) = policy;
        *breakers
            .observers
            .write()
            .unwrap_or_else(PoisonError::into_inner) = observers;
    }

    /// The service whose instances these are.
    pub fn service(&self) -> &str {
        &self.shared.service
    }

    /// What the balancer knows of each instance.
    pub fn endpoints(&self) -> Vec<EndpointStats> {
        let now = Instant::now();
        self.shared
            .snapshot()
            .iter()
            .map(|member| {
                // One lock at a time: a guard in the literal would live to its end.
                let success_rate = member.state().success;
                EndpointStats {
                    address: member.address.clone(),
                    calls: member.calls.load(Ordering::Relaxed),
                    in_flight: member.in_flight.load(Ordering::Relaxed),
                    latency: member.latency(),
                    success_rate,
                    ejected: member.ejected(now),
                }
            })
            .collect()
    }

    /// Makes `addresses` (registry entries: `host:port`) the instances: new ones are added,
    /// missing ones stop receiving calls at once (calls in flight finish), the others keep
    /// their connection and load. Entries that are not `host:port` are skipped, and at most
    /// [`MAX_INSTANCES`] are kept, each said in the log.
    pub fn update(&self, addresses: &[String]) {
        self.shared.update(addresses);
    }

    /// Keeps the set equal to what `registry` lists for the service, starting from `first`,
    /// until every clone of this balancer is dropped. An empty answer keeps the last known
    /// set for [`EMPTY_BELIEVED_AFTER`] of the registry's heartbeats (a registry that
    /// restarted empty is refilled within one), then is believed: the set empties.
    pub fn follow<R: Registry>(&self, registry: R, first: Resolved, refresh: Duration) {
        let shared: Weak<Shared> = Arc::downgrade(&self.shared);
        let service = self.shared.service.clone();
        let grace = registry.heartbeat().saturating_mul(EMPTY_BELIEVED_AFTER);
        let task = tokio::spawn(async move {
            let mut last = first;
            let mut empty_since: Option<tokio::time::Instant> = None;
            loop {
                registry.changed(&service, &last, refresh).await;
                loop {
                    match registry.resolve(&service).await {
                        Ok(resolved) => {
                            let Some(shared) = shared.upgrade() else {
                                return;
                            };
                            if resolved.addresses.is_empty() && !shared.snapshot().is_empty() {
                                let since =
                                    *empty_since.get_or_insert_with(tokio::time::Instant::now);
                                if since.elapsed() >= grace {
                                    tracing::warn!(%service, ?grace, "no instance listed for a while: dropping the last known");
                                    shared.update(&[]);
                                    empty_since = None;
                                } else {
                                    tracing::debug!(%service, "no instance listed: keeping the last known");
                                }
                            } else if resolved.addresses != last.addresses {
                                empty_since = None;
                                shared.update(&resolved.addresses);
                            } else {
                                empty_since = None;
                            }
                            last = resolved;
                            break;
                        }
                        Err(err) => {
                            tracing::warn!(%service, error = %format!("{err:#}"), "cannot resolve: keeping the last known instances");
                            if shared.strong_count() == 0 {
                                return;
                            }
                            tokio::time::sleep(refresh).await;
                        }
                    }
                }
            }
        });
        let mut resolver = self
            .shared
            .resolver
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(previous) = resolver.replace(task) {
            previous.abort();
        }
    }
}

impl Shared {
    fn snapshot(&self) -> Arc<Vec<Arc<Member>>> {
        Arc::clone(&self.members.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn update(&self, entries: &[String]) {
        let mut addresses: Vec<String> = Vec::with_capacity(entries.len().min(MAX_INSTANCES));
        let mut seen: HashSet<&str> = HashSet::new();
        for entry in entries {
            let Some(host_port) = host_port(entry) else {
                let shown: String = entry.chars().take(80).collect();
                tracing::warn!(service = %self.service, entry = %shown.escape_debug(), "skipping a registry entry that is not host:port");
                continue;
            };
            let uri = format!("{}://{host_port}", self.scheme);
            if !seen.insert(host_port) {
                continue;
            }
            if addresses.len() == MAX_INSTANCES {
                tracing::warn!(service = %self.service, listed = entries.len(), kept = MAX_INSTANCES, "too many instances listed: keeping the first");
                break;
            }
            addresses.push(uri);
        }
        let addresses = &addresses[..];
        let current = self.snapshot();
        let seed = current
            .iter()
            .map(|member| member.latency())
            .min()
            .unwrap_or(INITIAL_LATENCY);
        // Keyed by address: an update is linear in the instances listed.
        let known: HashMap<&str, &Arc<Member>> = current
            .iter()
            .map(|member| (member.address.as_str(), member))
            .collect();
        let mut next = Vec::with_capacity(addresses.len());
        for address in addresses {
            if let Some(member) = known.get(address.as_str()) {
                next.push(Arc::clone(member));
                continue;
            }
            match (self.connect)(address) {
                Ok(channel) => next.push(Arc::new(Member::new(address, channel, seed))),
                Err(err) => {
                    tracing::warn!(%address, error = %format!("{err:#}"), "ignoring an instance")
                }
            }
        }
        let kept: HashSet<&str> = next.iter().map(|m| m.address.as_str()).collect();
        let added: Vec<&str> = next
            .iter()
            .map(|m| m.address.as_str())
            .filter(|address| !known.contains_key(address))
            .collect();
        let removed: Vec<&str> = current
            .iter()
            .map(|m| m.address.as_str())
            .filter(|address| !kept.contains(address))
            .collect();
        if !added.is_empty() || !removed.is_empty() {
            tracing::info!(service = %self.service, ?added, ?removed, "instances changed");
        }
        *self.members.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
    }

    /// The instance for the next call: among those not ejected (all of them if every one
    /// is), the healthy ones and those due a probe if there are any; among those, one the
    /// call's earlier attempts did not go to, when there is one (noted in `attempted`).
    fn pick(&self, attempted: Option<&Attempted>) -> Option<Arc<Member>> {
        let members = self.snapshot();
        let now = Instant::now();
        let live: Vec<&Arc<Member>> = members.iter().filter(|m| !m.ejected(now)).collect();
        let healthy: Vec<&Arc<Member>> = live
            .iter()
            .copied()
            .filter(|m| m.healthy() || m.starved(now))
            .collect();
        let mut candidates: Vec<&Arc<Member>> = if !healthy.is_empty() {
            healthy
        } else if !live.is_empty() {
            live
        } else {
            members.iter().collect()
        };
        if let Some(attempted) = attempted {
            let untried: Vec<&Arc<Member>> = candidates
                .iter()
                .copied()
                .filter(|m| !attempted.contains(&m.address))
                .collect();
            if !untried.is_empty() {
                candidates = untried;
            }
        }
        let count = candidates.len();
        let chosen = match (count, self.policy) {
            (0, _) => return None,
            (1, _) => candidates[0],
            (_, Policy::RoundRobin) => {
                candidates[self.next.fetch_add(1, Ordering::Relaxed) % count]
            }
            (_, Policy::LeastLoaded) => {
                let first = random_below(count);
                let mut second = random_below(count - 1);
                if second >= first {
                    second += 1;
                }
                let (a, b) = (candidates[first], candidates[second]);
                if b.starved(now) {
                    b
                } else if a.starved(now) || a.cost(now) <= b.cost(now) {
                    a
                } else {
                    b
                }
            }
        };
        let mut state = chosen.state();
        state.picked = now;
        let probe = state.ejections > 0 && !state.probing;
        if probe {
            // A probe of an ejected instance: no other call goes to it until the probe
            // answers (which ends the ejection) or fails (which doubles it).
            state.probing = true;
        }
        drop(state);
        if probe {
            self.breakers
                .export(&chosen.address, BreakerState::HalfOpen);
        }
        if let Some(attempted) = attempted {
            attempted.add(&chosen.address);
        }
        Some(Arc::clone(chosen))
    }
}

fn random_below(bound: usize) -> usize {
    ((random_fraction() * bound as f64) as usize).min(bound.saturating_sub(1))
}

/// Counts a call in flight until dropped.
struct InFlight(Arc<Member>);

/// Feeds a call's status code to its instance's breaker.
struct Outcome {
    member: Arc<Member>,
    breakers: Arc<Breakers>,
}

impl CodeObserver for Outcome {
    fn observe(&mut self, code: Code) {
        if let Some(state) = self.member.record(code, self.breakers.threshold()) {
            self.breakers.export(&self.member.address, state);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Service<HttpRequest> for Balancer {
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: HttpRequest) -> Self::Future {
        let attempted = request.extensions().get::<Attempted>();
        let Some(member) = self.shared.pick(attempted) else {
            let status = Status::unavailable(format!(
                "no instance of {} is known yet",
                self.shared.service
            ));
            return Box::pin(std::future::ready(Err(status.into())));
        };
        member.in_flight.fetch_add(1, Ordering::Relaxed);
        member.calls.fetch_add(1, Ordering::Relaxed);
        let guard = InFlight(member);
        let mut channel = guard.0.channel.clone();
        let breakers = Arc::clone(&self.shared.breakers);
        Box::pin(async move {
            let started = Instant::now();
            let outcome = match channel.ready().await {
                Ok(ready) => ready.call(request).await,
                Err(err) => Err(err),
            };
            match outcome {
                Ok(response) => {
                    guard.0.observe(started.elapsed());
                    // The status is in the headers of a trailers-only answer, else in the
                    // trailers: the breaker hears of it when they pass by.
                    let outcome = Outcome {
                        member: Arc::clone(&guard.0),
                        breakers,
                    };
                    Ok(PendingCode::new(outcome, false).finish(response))
                }
                Err(err) => {
                    tracing::debug!(address = %guard.0.address, %err, "ejecting an instance");
                    // A failed connection is a failure that ejects at once.
                    if let Some(state) = guard.0.record(Code::Unavailable, 1) {
                        breakers.export(&guard.0.address, state);
                    }
                    Err(err.into())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn balancer(policy: Policy) -> Balancer {
        Balancer::new("test", policy, "http", |address| {
            Ok(tonic::transport::Endpoint::from_shared(address.to_owned())?.connect_lazy())
        })
    }

    fn addresses(ports: &[u16]) -> Vec<String> {
        ports
            .iter()
            .map(|port| format!("http://127.0.0.1:{port}"))
            .collect()
    }

    /// A registry whose answer the test sets.
    #[derive(Clone, Default)]
    struct Listed(Arc<Mutex<Vec<String>>>);

    impl Registry for Listed {
        const REGISTERS: bool = true;

        fn heartbeat(&self) -> Duration {
            Duration::from_secs(1)
        }

        async fn resolve(&self, _service: &str) -> anyhow::Result<Resolved> {
            let addresses = self.0.lock().unwrap().clone();
            Ok(Resolved {
                addresses,
                revision: 0,
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_answer_keeps_the_last_instances_for_a_while_then_is_believed() {
        let balancer = balancer(Policy::RoundRobin);
        let registry = Listed::default();
        *registry.0.lock().unwrap() = addresses(&[1, 2]);
        let first = registry.resolve("test").await.unwrap();
        balancer.update(&first.addresses);
        balancer.follow(registry.clone(), first, Duration::from_millis(100));
        registry.0.lock().unwrap().clear();
        // A registry that restarted empty: within the grace, the instances stay.
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(balancer.shared.snapshot().len(), 2);
        // Back within the grace: nothing changed, and the clock starts over.
        *registry.0.lock().unwrap() = addresses(&[1, 2]);
        tokio::time::sleep(Duration::from_secs(1)).await;
        registry.0.lock().unwrap().clear();
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert_eq!(
            balancer.shared.snapshot().len(),
            2,
            "the grace started over"
        );
        // Empty for longer than 10 heartbeats: believed.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            balancer.shared.snapshot().len(),
            0,
            "the instances are gone"
        );
        // Instances registering again are followed.
        *registry.0.lock().unwrap() = addresses(&[3]);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(balancer.shared.snapshot().len(), 1);
    }

    #[tokio::test]
    async fn a_retry_goes_to_an_instance_the_call_has_not_tried() {
        let balancer = balancer(Policy::LeastLoaded);
        balancer.update(&addresses(&[1, 2, 3]));
        for _ in 0..100 {
            let attempted = Attempted::default();
            let first = balancer.shared.pick(Some(&attempted)).unwrap();
            let second = balancer.shared.pick(Some(&attempted)).unwrap();
            let third = balancer.shared.pick(Some(&attempted)).unwrap();
            let mut seen = [&first.address, &second.address, &third.address];
            seen.sort();
            assert_eq!(
                seen,
                [
                    &addresses(&[1])[0],
                    &addresses(&[2])[0],
                    &addresses(&[3])[0]
                ]
            );
            // Every instance tried: any will do.
            assert!(balancer.shared.pick(Some(&attempted)).is_some());
        }
    }

    #[tokio::test]
    async fn the_slower_of_two_instances_gets_few_calls() {
        let balancer = balancer(Policy::LeastLoaded);
        balancer.update(&addresses(&[1, 2]));
        let members = balancer.shared.snapshot();
        members[0].observe(Duration::from_millis(20));
        members[1].observe(Duration::from_micros(300));
        let mut slow = 0;
        for _ in 0..1_000 {
            let picked = balancer.shared.pick(None).unwrap();
            if picked.address == members[0].address {
                slow += 1;
            }
        }
        // The first draw probes each once; after that the fast one wins every comparison.
        assert!(slow <= 2, "the slow instance got {slow} of 1000");
    }

    #[tokio::test]
    async fn calls_in_flight_count_against_an_instance() {
        let balancer = balancer(Policy::LeastLoaded);
        balancer.update(&addresses(&[1, 2]));
        let members = balancer.shared.snapshot();
        for member in members.iter() {
            member.observe(Duration::from_millis(1));
            member.state().picked = Instant::now();
        }
        members[0].in_flight.store(10, Ordering::Relaxed);
        for _ in 0..100 {
            assert_eq!(
                balancer.shared.pick(None).unwrap().address,
                members[1].address
            );
        }
    }

    #[tokio::test]
    async fn an_ejected_instance_gets_no_calls_until_its_ejection_ends() {
        let balancer = balancer(Policy::RoundRobin);
        balancer.update(&addresses(&[1, 2]));
        let members = balancer.shared.snapshot();
        members[0].eject();
        for _ in 0..10 {
            assert_eq!(
                balancer.shared.pick(None).unwrap().address,
                members[1].address
            );
        }
        members[0].state().ejected_until = Some(Instant::now());
        let picked: Vec<String> = (0..8)
            .map(|_| balancer.shared.pick(None).unwrap().address.clone())
            .collect();
        let probes = picked.iter().filter(|a| **a == members[0].address).count();
        assert_eq!(
            probes, 1,
            "one probe, then nothing until it answers: {picked:?}"
        );
        // The probe answered: the instance takes calls again.
        members[0].record(Code::Ok, 5);
        let picked: Vec<String> = (0..4)
            .map(|_| balancer.shared.pick(None).unwrap().address.clone())
            .collect();
        let calls = picked.iter().filter(|a| **a == members[0].address).count();
        assert_eq!(calls, 2, "{picked:?}");
    }

    #[tokio::test]
    async fn updates_keep_known_instances_and_drop_missing_ones() {
        let balancer = balancer(Policy::RoundRobin);
        balancer.update(&addresses(&[1, 2]));
        let kept = Arc::clone(&balancer.shared.snapshot()[1]);
        kept.calls.store(7, Ordering::Relaxed);
        balancer.update(&addresses(&[2, 3]));
        let stats = balancer.endpoints();
        let listed: Vec<&str> = stats.iter().map(|s| s.address.as_str()).collect();
        assert_eq!(listed, ["http://127.0.0.1:2", "http://127.0.0.1:3"]);
        assert_eq!(stats[0].calls, 7);
        for _ in 0..10 {
            assert_ne!(
                balancer.shared.pick(None).unwrap().address,
                "http://127.0.0.1:1"
            );
        }
    }

    #[tokio::test]
    async fn with_no_instance_a_call_is_unavailable() {
        let mut balancer = balancer(Policy::LeastLoaded);
        let err = balancer
            .call(http::Request::new(Body::empty()))
            .await
            .unwrap_err();
        let status = err.downcast_ref::<Status>().expect("a status");
        assert_eq!(status.code(), tonic::Code::Unavailable);
    }

    #[test]
    fn only_host_port_entries_are_taken_whatever_scheme_they_carry() {
        for (entry, taken) in [
            ("10.0.0.1:50051", Some("10.0.0.1:50051")),
            ("users.internal:443", Some("users.internal:443")),
            ("http://10.0.0.1:50051", Some("10.0.0.1:50051")),
            (
                "https://users-1.internal:8443",
                Some("users-1.internal:8443"),
            ),
            ("[::1]:50051", Some("[::1]:50051")),
            ("evil.example:80/path", None),
            ("user:password@evil.example:80", None),
            ("evil.example:80?x", None),
            ("ftp://evil.example:21", None),
            ("evil.example", None),
            ("evil.example:0", None),
            ("evil.example:65536", None),
            ("evil.example:+80", None),
            ("::1:50051", None),
            ("-evil:80", None),
            ("", None),
        ] {
            assert_eq!(host_port(entry), taken, "{entry}");
        }
        let long = format!("{}.example:80", "a".repeat(300));
        assert_eq!(host_port(&long), None);
    }

    #[tokio::test]
    async fn the_scheme_is_the_clients_and_bad_entries_are_skipped() {
        let balancer = Balancer::new("test", Policy::RoundRobin, "https", |address| {
            Ok(tonic::transport::Endpoint::from_shared(address.to_owned())?.connect_lazy())
        });
        let entries: Vec<String> = [
            "http://127.0.0.1:1",
            "127.0.0.1:2",
            "127.0.0.1:3/x",
            "127.0.0.1:2",
        ]
        .map(str::to_owned)
        .to_vec();
        balancer.update(&entries);
        let listed: Vec<String> = balancer
            .endpoints()
            .into_iter()
            .map(|e| e.address)
            .collect();
        assert_eq!(listed, ["https://127.0.0.1:1", "https://127.0.0.1:2"]);
        let many: Vec<String> = (1..=MAX_INSTANCES + 10)
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        balancer.update(&many);
        assert_eq!(balancer.endpoints().len(), MAX_INSTANCES);
    }

    #[test]
    fn policies_parse() {
        assert_eq!("least_loaded".parse(), Ok(Policy::LeastLoaded));
        assert_eq!("round_robin".parse(), Ok(Policy::RoundRobin));
        assert!("random".parse::<Policy>().is_err());
    }
}
