//! A circuit breaker, and retries with exponential backoff, jitter and throttling: tower
//! middleware of a client, with their configuration sections.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use http::HeaderValue;
use http_body_util::BodyExt;
use serde::Deserialize;
use tonic::{body::Body, Code, Status};
use tower::{Service, ServiceExt};

use crate::{
    methods::{Method, Methods},
    middleware::{grpc_status, Attempted},
    random_fraction, BoxError,
};

type HttpRequest = http::Request<Body>;
type HttpResponse = http::Response<Body>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// When and how often a failed call is tried again (`[client.retry]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Most attempts per call, the first included; 1 turns retries off.
    pub max_attempts: u32,
    /// Backoff before the second attempt, in milliseconds.
    pub initial_backoff_ms: u64,
    /// Longest backoff, in milliseconds.
    pub max_backoff_ms: u64,
    /// Factor applied to the backoff after each attempt.
    pub multiplier: f64,
    /// Methods (`/package.Service/Method`) safe to repeat: retried on UNAVAILABLE and
    /// DEADLINE_EXCEEDED; others only when the request was never sent. `None`: the ones the
    /// method table marks idempotent ([`Method::idempotent`]).
    pub idempotent_methods: Option<Vec<String>>,
    /// Retry throttling (gRPC A6): failed attempts take a token, successes give back
    /// `throttle_token_ratio`; retries stop while half or fewer remain; 0 turns it off.
    pub throttle_max_tokens: f64,
    /// Tokens a successful call gives back to the retry throttle.
    pub throttle_token_ratio: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff_ms: 50,
            max_backoff_ms: 2000,
            multiplier: 2.0,
            idempotent_methods: None,
            throttle_max_tokens: 10.0,
            throttle_token_ratio: 0.1,
        }
    }
}

/// When the circuit breaker opens and how long it stays open (`[client.circuit_breaker]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerPolicy {
    /// Consecutive failed calls that open the circuit; 0 turns the breaker off.
    pub failure_threshold: u32,
    /// How long an open circuit fails calls at once before one trial call, in milliseconds.
    pub cooldown_ms: u64,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            cooldown_ms: 5000,
        }
    }
}

impl RetryPolicy {
    /// Whether the method at `path`, found in `methods`, is safe to repeat.
    fn is_idempotent(&self, path: &str, method: Option<&Method>) -> bool {
        match &self.idempotent_methods {
            Some(listed) => listed.iter().any(|m| m == path),
            None => method.is_some_and(|method| method.idempotent),
        }
    }

    /// The wait after failed attempt `attempt` (1-based): a random duration up to the
    /// exponential backoff ("full jitter").
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let ceiling = (self.initial_backoff_ms as f64 * self.multiplier.powi(exponent))
            .min(self.max_backoff_ms as f64);
        Duration::from_millis((ceiling * random_fraction()) as u64)
    }
}

/// The state of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; failures are counted.
    Closed,
    /// Calls fail at once with UNAVAILABLE until the cool-down is over.
    Open,
    /// One trial call is in flight; its outcome closes or reopens the circuit.
    HalfOpen,
}

impl BreakerState {
    /// The value exported as `grpc_client_circuit_breaker_state`.
    pub fn as_metric(self) -> i64 {
        match self {
            Self::Closed => 0,
            Self::Open => 1,
            Self::HalfOpen => 2,
        }
    }
}

/// What is told each state a breaker enters, with the breaker's target (metrics export it).
pub type StateObserver = fn(&str, BreakerState);

/// A circuit breaker shared by every clone of a client.
#[derive(Debug)]
pub struct Breaker {
    policy: BreakerPolicy,
    target: String,
    observers: &'static [StateObserver],
    state: Mutex<Counters>,
}

#[derive(Debug)]
struct Counters {
    state: BreakerState,
    failures: u32,
    opened_at: Instant,
}

impl Breaker {
    /// A closed breaker for calls to `target`, telling `observers` each state it enters
    /// (`Closed` first).
    pub fn new(policy: BreakerPolicy, target: &str, observers: &'static [StateObserver]) -> Self {
        let breaker = Self {
            policy,
            target: target.to_owned(),
            observers,
            state: Mutex::new(Counters {
                state: BreakerState::Closed,
                failures: 0,
                opened_at: Instant::now(),
            }),
        };
        breaker.export(BreakerState::Closed);
        breaker
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.counters().state
    }

    /// Whether a call may go out now (`Some`), and whether it is the trial call: an open
    /// circuit past its cool-down turns half-open and admits one.
    fn admit(&self) -> Option<bool> {
        let mut counters = self.counters();
        match counters.state {
            BreakerState::Closed => Some(false),
            BreakerState::HalfOpen => None,
            BreakerState::Open => {
                let cooldown = Duration::from_millis(self.policy.cooldown_ms);
                if counters.opened_at.elapsed() < cooldown {
                    return None;
                }
                counters.state = BreakerState::HalfOpen;
                drop(counters);
                self.export(BreakerState::HalfOpen);
                Some(true)
            }
        }
    }

    fn record(&self, failed: bool) {
        let mut counters = self.counters();
        let before = counters.state;
        if failed {
            counters.failures = counters.failures.saturating_add(1);
            if before == BreakerState::HalfOpen
                || counters.failures >= self.policy.failure_threshold
            {
                counters.state = BreakerState::Open;
                counters.opened_at = Instant::now();
            }
        } else {
            counters.failures = 0;
            counters.state = BreakerState::Closed;
        }
        let after = counters.state;
        drop(counters);
        if after != before {
            tracing::warn!(target_address = %self.target, state = ?after, "circuit breaker");
            self.export(after);
        }
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells every observer the state entered.
    fn export(&self, state: BreakerState) {
        for observe in self.observers {
            observe(&self.target, state);
        }
    }
}

/// A call the breaker let through, whose outcome it waits for. A trial call dropped before
/// its outcome is known (by a timeout wrapper, `select!` or a cancelled caller) counts as a
/// failure: the circuit opens again and another trial follows the cool-down, instead of
/// staying half-open, and failing every call, for good.
struct Admission {
    breaker: Arc<Breaker>,
    trial: bool,
    recorded: bool,
}

impl Admission {
    fn record(mut self, failed: bool) {
        self.recorded = true;
        self.breaker.record(failed);
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if self.trial && !self.recorded {
            self.breaker.record(true);
        }
    }
}

/// Fails calls at once while the breaker is open.
#[derive(Debug, Clone)]
pub struct CircuitBreaker<S> {
    inner: S,
    breaker: Arc<Breaker>,
}

impl<S> CircuitBreaker<S> {
    /// Wraps `inner` behind `breaker`.
    pub fn new(inner: S, breaker: Arc<Breaker>) -> Self {
        Self { inner, breaker }
    }
}

impl<S> Service<HttpRequest> for CircuitBreaker<S>
where
    S: Service<HttpRequest, Response = HttpResponse> + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = BoxFuture<Result<HttpResponse, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: HttpRequest) -> Self::Future {
        if self.breaker.policy.failure_threshold == 0 {
            let call = self.inner.call(request);
            return Box::pin(async move { call.await.map_err(Into::into) });
        }
        let Some(trial) = self.breaker.admit() else {
            let status = Status::unavailable(format!(
                "circuit breaker open for {}: failing fast until the cool-down is over",
                self.breaker.target
            ));
            return Box::pin(async move { Ok(status.into_http()) });
        };
        let call = self.inner.call(request);
        let admission = Admission {
            breaker: Arc::clone(&self.breaker),
            trial,
            recorded: false,
        };
        Box::pin(async move {
            let outcome = call.await.map_err(Into::into);
            let failed = match &outcome {
                Ok(response) => matches!(
                    grpc_status(response.headers()),
                    Some(Code::Unavailable | Code::DeadlineExceeded)
                ),
                Err(_) => true,
            };
            admission.record(failed);
            outcome
        })
    }
}

/// Retry throttling as in gRPC's retry design (A6): every failed attempt takes a token,
/// every success gives back `token_ratio`, and retries stop while half the tokens or fewer
/// remain, so a failing server is not sent three times its load. Shared by a client's clones.
#[derive(Debug)]
struct Throttle {
    max_tokens: f64,
    token_ratio: f64,
    tokens: Mutex<f64>,
}

impl Throttle {
    fn new(policy: &RetryPolicy) -> Self {
        Self {
            max_tokens: policy.throttle_max_tokens,
            token_ratio: policy.throttle_token_ratio,
            tokens: Mutex::new(policy.throttle_max_tokens),
        }
    }

    /// Counts an attempt's outcome; says whether a retry is still allowed.
    fn record(&self, failed: bool) -> bool {
        if self.max_tokens <= 0.0 {
            return true;
        }
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        *tokens = if failed {
            (*tokens - 1.0).max(0.0)
        } else {
            (*tokens + self.token_ratio).min(self.max_tokens)
        };
        *tokens > self.max_tokens / 2.0
    }
}

/// Tries unary and server-streaming calls again, with backoff, up to `max_attempts`, within
/// the call's deadline: methods listed as idempotent on UNAVAILABLE, DEADLINE_EXCEEDED and
/// failed connections; the others only when the request provably never left (the
/// connection could not be made), since the server may have acted on it otherwise. Each
/// attempt carries the deadline that remains (`grpc-timeout`), a server's
/// `grpc-retry-pushback-ms` replaces the backoff (a negative one stops retries), and a
/// [`Throttle`] stops retries while most attempts fail.
#[derive(Debug, Clone)]
pub struct Retry<S> {
    inner: S,
    policy: Arc<RetryPolicy>,
    methods: Methods,
    throttle: Arc<Throttle>,
}

impl<S> Retry<S> {
    /// Wraps `inner` with `policy`, for calls to a server answering `methods`: only calls
    /// with one request message (unary and server-streaming) are retried.
    pub fn new(inner: S, policy: RetryPolicy, methods: Methods) -> Self {
        Self {
            inner,
            throttle: Arc::new(Throttle::new(&policy)),
            policy: Arc::new(policy),
            methods,
        }
    }
}

impl<S> Service<HttpRequest> for Retry<S>
where
    S: Service<HttpRequest, Response = HttpResponse> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = BoxFuture<Result<HttpResponse, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: HttpRequest) -> Self::Future {
        // The clone is not ready: keep it, and call the instance that was polled ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let policy = Arc::clone(&self.policy);
        let throttle = Arc::clone(&self.throttle);
        let path = request.uri().path();
        let method = self.methods.get(path);
        let replayable = method.is_some_and(|method| method.kind.has_one_request());
        if policy.max_attempts <= 1 || !replayable {
            let call = inner.call(request);
            return Box::pin(async move { call.await.map_err(Into::into) });
        }
        let idempotent = policy.is_idempotent(path, method);
        Box::pin(async move {
            let started = Instant::now();
            let (parts, body) = request.into_parts();
            let deadline = parts
                .headers
                .get(GRPC_TIMEOUT)
                .and_then(|value| crate::deadline::parse_grpc_timeout(value.to_str().ok()?));
            let body = body.collect().await.map_err(BoxError::from)?.to_bytes();
            let attempted = Attempted::default();
            let mut attempt = 1;
            loop {
                let mut request =
                    http::Request::new(Body::new(http_body_util::Full::new(body.clone())));
                // A balancer below sends a retry to an instance not tried yet.
                request.extensions_mut().insert(attempted.clone());
                *request.method_mut() = parts.method.clone();
                *request.uri_mut() = parts.uri.clone();
                *request.version_mut() = parts.version;
                *request.headers_mut() = parts.headers.clone();
                if let Some(deadline) = deadline {
                    let remaining = deadline.saturating_sub(started.elapsed());
                    request
                        .headers_mut()
                        .insert(GRPC_TIMEOUT, grpc_timeout(remaining));
                }
                if attempt > 1 {
                    inner.ready().await.map_err(Into::into)?;
                }
                let outcome = inner.call(request).await.map_err(Into::into);
                let (failed, retryable) = match &outcome {
                    Ok(response) => match grpc_status(response.headers()) {
                        Some(Code::Unavailable | Code::DeadlineExceeded) => (true, idempotent),
                        _ => (false, false),
                    },
                    Err(err) if timed_out(err.as_ref()) => (true, false),
                    Err(err) => (true, idempotent || never_sent(err.as_ref())),
                };
                let allowed = throttle.record(failed);
                if !retryable || !allowed || attempt >= policy.max_attempts {
                    return outcome;
                }
                let wait = match outcome.as_ref().ok().and_then(pushback) {
                    Some(Pushback::Wait(wait)) => wait,
                    Some(Pushback::Stop) => return outcome,
                    None => policy.backoff(attempt),
                };
                let left = deadline.map(|deadline| deadline.saturating_sub(started.elapsed()));
                if left.is_some_and(|left| left <= wait) {
                    return outcome;
                }
                tracing::debug!(path = %parts.uri.path(), attempt, ?wait, "retrying");
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
        })
    }
}

const GRPC_TIMEOUT: &str = "grpc-timeout";

/// What a server's `grpc-retry-pushback-ms` asks of the client.
enum Pushback {
    /// Retry after this long.
    Wait(Duration),
    /// Do not retry.
    Stop,
}

fn pushback(response: &HttpResponse) -> Option<Pushback> {
    let value = response.headers().get("grpc-retry-pushback-ms")?;
    let millis = value.to_str().ok().and_then(|v| v.parse::<u64>().ok());
    Some(millis.map_or(Pushback::Stop, |millis| {
        Pushback::Wait(Duration::from_millis(millis))
    }))
}

/// `remaining` as a `grpc-timeout` header value, in milliseconds (at least 1).
fn grpc_timeout(remaining: Duration) -> HeaderValue {
    let millis = remaining.as_millis().clamp(1, 99_999_999);
    HeaderValue::from_str(&format!("{millis}m")).unwrap_or(HeaderValue::from_static("1m"))
}

/// Whether `err` shows the request never reached a server: the connection could not be
/// made. Anything else (a reset, a closed stream) may have come after the server read it.
fn never_sent(err: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind;
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::AddrNotAvailable
                    | ErrorKind::HostUnreachable
                    | ErrorKind::NetworkUnreachable
            );
        }
        current = err.source();
    }
    false
}

fn timed_out(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if err.is::<tonic::TimeoutExpired>() {
            return true;
        }
        current = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_attempts_of_a_call_share_what_they_tried() {
        use crate::methods::Method;
        static METHODS: &[Method] = &[Method::unary("/a.B/C").idempotent()];
        let seen = Arc::new(Mutex::new(Vec::new()));
        let inner = {
            let seen = Arc::clone(&seen);
            tower::service_fn(move |request: HttpRequest| {
                let attempted = request.extensions().get::<Attempted>().cloned();
                let mut seen = seen.lock().unwrap();
                let first = seen.is_empty();
                seen.push(attempted.as_ref().is_some_and(|a| a.contains("instance-1")));
                if let Some(attempted) = attempted {
                    attempted.add(if first { "instance-1" } else { "instance-2" });
                }
                let code = if first { "14" } else { "0" };
                let response = http::Response::builder()
                    .header("content-type", "application/grpc")
                    .header("grpc-status", code)
                    .body(Body::empty())
                    .unwrap();
                std::future::ready(Ok::<_, BoxError>(response))
            })
        };
        let policy = RetryPolicy {
            initial_backoff_ms: 1,
            ..RetryPolicy::default()
        };
        let mut retry = Retry::new(inner, policy, Methods::new(METHODS));
        let request = http::Request::builder()
            .uri("http://x/a.B/C")
            .body(Body::empty())
            .unwrap();
        let response = retry.ready().await.unwrap().call(request).await.unwrap();
        assert_eq!(grpc_status(response.headers()), Some(Code::Ok));
        // The first attempt found nothing tried; the retry found the first one's instance.
        assert_eq!(*seen.lock().unwrap(), [false, true]);
    }

    #[test]
    fn backoff_grows_and_stays_under_the_ceiling() {
        let policy = RetryPolicy {
            initial_backoff_ms: 100,
            max_backoff_ms: 300,
            ..RetryPolicy::default()
        };
        for attempt in 1..10 {
            let ceiling = (100.0 * 2f64.powi(attempt as i32 - 1)).min(300.0);
            assert!(policy.backoff(attempt) <= Duration::from_millis(ceiling as u64));
        }
    }

    #[test]
    fn the_breaker_opens_after_the_threshold_and_half_opens_after_the_cooldown() {
        let policy = BreakerPolicy {
            failure_threshold: 2,
            cooldown_ms: 30,
        };
        let breaker = Breaker::new(policy, "unit-test", &[]);
        assert_eq!(breaker.admit(), Some(false));
        breaker.record(true);
        assert_eq!(breaker.state(), BreakerState::Closed);
        breaker.record(true);
        assert_eq!(breaker.state(), BreakerState::Open);
        assert_eq!(breaker.admit(), None);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(breaker.admit(), Some(true), "one trial after the cool-down");
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert_eq!(breaker.admit(), None, "only one trial at a time");
        breaker.record(false);
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[test]
    fn a_dropped_trial_call_reopens_the_circuit_for_another_trial() {
        let policy = BreakerPolicy {
            failure_threshold: 1,
            cooldown_ms: 20,
        };
        let breaker = Arc::new(Breaker::new(policy, "unit-test", &[]));
        breaker.record(true);
        std::thread::sleep(Duration::from_millis(30));
        let trial = breaker.admit().expect("a trial after the cool-down");
        let admission = Admission {
            breaker: Arc::clone(&breaker),
            trial,
            recorded: false,
        };
        drop(admission);
        assert_eq!(breaker.state(), BreakerState::Open, "not half-open forever");
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(breaker.admit(), Some(true), "another trial");
    }

    #[test]
    fn the_throttle_stops_retries_while_most_attempts_fail() {
        let policy = RetryPolicy {
            throttle_max_tokens: 4.0,
            throttle_token_ratio: 0.5,
            ..RetryPolicy::default()
        };
        let throttle = Throttle::new(&policy);
        assert!(throttle.record(true), "3 tokens left");
        assert!(!throttle.record(true), "2 left: half");
        assert!(throttle.record(false), "2.5 left");
        let off = Throttle::new(&RetryPolicy {
            throttle_max_tokens: 0.0,
            ..RetryPolicy::default()
        });
        assert!((0..100).all(|_| off.record(true)));
    }

    #[test]
    fn the_method_table_says_what_is_idempotent_unless_the_policy_lists_it() {
        let read = Method::unary("/a.S/Get").idempotent();
        let write = Method::unary("/a.S/Put");
        let policy = RetryPolicy::default();
        assert!(policy.is_idempotent(read.path, Some(&read)));
        assert!(!policy.is_idempotent(write.path, Some(&write)));
        assert!(!policy.is_idempotent("/unknown", None));
        let listed = RetryPolicy {
            idempotent_methods: Some(vec![write.path.to_owned()]),
            ..RetryPolicy::default()
        };
        assert!(listed.is_idempotent(write.path, Some(&write)));
        assert!(!listed.is_idempotent(read.path, Some(&read)));
    }

    #[test]
    fn observers_are_told_every_state_entered() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static ENTERED: [AtomicUsize; 3] = [const { AtomicUsize::new(0) }; 3];
        fn count(_: &str, state: BreakerState) {
            ENTERED[state.as_metric() as usize].fetch_add(1, Ordering::SeqCst);
        }
        let policy = BreakerPolicy {
            failure_threshold: 1,
            cooldown_ms: 0,
        };
        let breaker = Breaker::new(policy, "unit-test", &[count]);
        breaker.record(true);
        assert_eq!(breaker.admit(), Some(true));
        breaker.record(false);
        let entered: Vec<usize> = ENTERED.iter().map(|n| n.load(Ordering::SeqCst)).collect();
        assert_eq!(
            entered,
            [2, 1, 1],
            "closed twice, open once, half-open once"
        );
    }

    #[test]
    fn policies_deserialize_from_partial_sections_and_refuse_typos() {
        let policy: RetryPolicy = toml_like("max_attempts", 5);
        assert_eq!(policy.max_attempts, 5);
        assert_eq!(policy.initial_backoff_ms, 50);
        assert_eq!(policy.idempotent_methods, None);
        let typo = serde::de::value::MapDeserializer::<_, serde::de::value::Error>::new(
            [("max_attempt", 5u32)].into_iter(),
        );
        assert!(RetryPolicy::deserialize(typo).is_err());
    }

    fn toml_like<T: serde::de::DeserializeOwned>(key: &'static str, value: u32) -> T {
        let map = serde::de::value::MapDeserializer::<_, serde::de::value::Error>::new(
            [(key, value)].into_iter(),
        );
        T::deserialize(map).expect("valid")
    }

    #[test]
    fn grpc_timeouts_print_in_milliseconds() {
        assert_eq!(grpc_timeout(Duration::from_millis(1500)), "1500m");
        assert_eq!(grpc_timeout(Duration::ZERO), "1m");
    }

    #[test]
    fn only_a_connection_never_made_proves_a_request_unsent() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(never_sent(&refused));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(!never_sent(&reset));
        let wrapped: BoxError = Box::new(Wrapped(refused));
        assert!(never_sent(wrapped.as_ref()));
    }

    #[derive(Debug)]
    struct Wrapped(std::io::Error);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("transport error")
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
}
