//! Serving: the server's settings ([`GrpcConfig`]), health ([`Readiness`] and [`LIVENESS`]),
//! reflection, and the life of a server from SERVING through deregistering and draining to
//! its stop ([`Serving`]).
//!
//! A generated `server.rs` composes them: it builds the routes and the middleware, hands
//! [`Serving::spawn`] tonic's server future, and [`Serving::run`] does the rest.

use std::{
    collections::BTreeMap,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use anyhow::Context as _;
use serde::Deserialize;
use tokio::{
    net::TcpListener,
    sync::{oneshot, watch, Mutex},
    task::JoinHandle,
};
use tonic::{
    service::Routes,
    transport::{server::TcpIncoming, Server},
};
use tonic_health::{server::HealthReporter, ServingStatus};

use crate::{client::Transport, discovery::Registration, telemetry::TraceContinuer};

/// gRPC server settings (`[grpc]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcConfig {
    /// Address to listen on.
    pub host: String,
    /// Port to listen on; 0 picks a free port.
    pub port: u16,
    /// Most requests processed at once per connection; 0 leaves it to `max_concurrent_streams`.
    pub concurrency_limit_per_connection: usize,
    /// Most concurrent HTTP/2 streams a client may open on one connection.
    pub max_concurrent_streams: u32,
    /// Seconds between HTTP/2 keepalive PINGs.
    pub http2_keepalive_interval_secs: u64,
    /// Seconds to wait for a PING acknowledgement before closing the connection.
    pub http2_keepalive_timeout_secs: u64,
    /// Seconds of idle time before TCP keepalive probes start.
    pub tcp_keepalive_secs: u64,
    /// Longest a request may run whatever its deadline; 0: the client's `grpc-timeout` alone.
    pub request_timeout_secs: u64,
    /// After SIGTERM or Ctrl-C, how long in-flight calls may finish.
    pub shutdown_grace_secs: u64,
    /// Largest message accepted or sent, in bytes.
    pub max_message_bytes: usize,
    /// Whether responses are gzip-compressed for clients that accept it (requests always may be).
    pub gzip: bool,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".to_owned(),
            port: 50051,
            concurrency_limit_per_connection: 0,
            max_concurrent_streams: 1024,
            http2_keepalive_interval_secs: 30,
            http2_keepalive_timeout_secs: 10,
            tcp_keepalive_secs: 60,
            request_timeout_secs: 0,
            shutdown_grace_secs: 10,
            max_message_bytes: 4 * 1024 * 1024,
            gzip: true,
        }
    }
}

impl GrpcConfig {
    /// The socket address built from `host` and `port`.
    pub fn socket_addr(&self) -> anyhow::Result<SocketAddr> {
        crate::socket_addr("grpc", &self.host, self.port)
    }

    /// `request_timeout_secs` as a duration; `None` when 0.
    ///
    /// ```
    /// use microframework_runtime::server::GrpcConfig;
    ///
    /// assert_eq!(GrpcConfig::default().request_timeout(), None);
    /// let five = GrpcConfig { request_timeout_secs: 5, ..GrpcConfig::default() };
    /// assert_eq!(five.request_timeout(), Some(std::time::Duration::from_secs(5)));
    /// ```
    pub fn request_timeout(&self) -> Option<Duration> {
        (self.request_timeout_secs > 0).then(|| Duration::from_secs(self.request_timeout_secs))
    }

    /// A server with these limits and keepalives, each call in a span ([`request_span`])
    /// that continues the caller's trace through `continuers`.
    pub fn builder(&self, continuers: &'static [TraceContinuer]) -> Server {
        let builder = Server::builder()
            .max_concurrent_streams(self.max_concurrent_streams)
            .http2_keepalive_interval(Some(Duration::from_secs(
                self.http2_keepalive_interval_secs,
            )))
            .http2_keepalive_timeout(Some(Duration::from_secs(self.http2_keepalive_timeout_secs)))
            .trace_fn(move |request| request_span(request, continuers));
        // HTTP/2's stream limit already bounds the calls of a connection; this one is stricter.
        let builder = match self.concurrency_limit_per_connection {
            0 => builder,
            limit => builder.concurrency_limit_per_connection(limit),
        };
        // A timer per call costs about 4% of throughput (benches/load), so it is opt-in: tonic
        // enforces each client's own deadline (`grpc-timeout`) either way.
        match self.request_timeout() {
            Some(timeout) => builder.timeout(timeout),
            None => builder,
        }
    }

    /// The connections `listener` accepts, with Nagle off and TCP keepalive on.
    pub fn incoming(&self, listener: TcpListener) -> TcpIncoming {
        TcpIncoming::from(listener)
            .with_nodelay(Some(true))
            .with_keepalive(Some(Duration::from_secs(self.tcp_keepalive_secs)))
    }
}

/// gRPC server reflection (`[reflection]`: what grpcurl and Postman use to list and call
/// methods).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReflectionConfig {
    /// Whether reflection is served; it tells any caller every method and message, so production may turn it off.
    pub enabled: bool,
}

impl Default for ReflectionConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// The span of one call: its service and method, its status once known (`grpc.code`, which
/// [`crate::middleware::CallGuard`] records), and the trace it continues when the caller
/// sent a W3C `traceparent`.
pub fn request_span(request: &http::Request<()>, continuers: &[TraceContinuer]) -> tracing::Span {
    let path = request.uri().path();
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or(("", path));
    let trace_id = crate::telemetry::trace_id(request.headers()).unwrap_or_default();
    let span = tracing::info_span!(
        "grpc",
        rpc.service = service,
        rpc.method = method,
        trace_id,
        grpc.code = tracing::field::Empty,
    );
    for continue_with in continuers {
        continue_with(&span, request.headers());
    }
    span
}

/// The reflection services (v1 and v1alpha) added to `routes`: they describe the messages of
/// `descriptor_sets` and list `services` with reflection itself.
pub fn add_reflection(
    routes: Routes,
    descriptor_sets: &[&[u8]],
    services: &[&str],
) -> anyhow::Result<Routes> {
    let builder = || {
        let builder = descriptor_sets.iter().fold(
            tonic_reflection::server::Builder::configure(),
            |builder, set| builder.register_encoded_file_descriptor_set(set),
        );
        services
            .iter()
            .chain(&[
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
            ])
            .fold(builder, |builder, name| builder.with_service_name(*name))
    };
    let v1 = builder()
        .build_v1()
        .context("cannot build the reflection service")?;
    let v1alpha = builder()
        .build_v1alpha()
        .context("cannot build the reflection service")?;
    Ok(routes.add_service(v1).add_service(v1alpha))
}

/// The health entry that stays SERVING from start-up until the process exits, draining
/// included: what a liveness probe asks about (the overall entry `""` is for readiness).
pub const LIVENESS: &str = "liveness";

/// The overall health status (`""` and every application service): SERVING while the server
/// serves and every dependency it needs (the database, say) is up; NOT_SERVING otherwise.
#[derive(Debug, Clone)]
pub struct Readiness {
    health: HealthReporter,
    services: &'static [&'static str],
    state: Arc<Mutex<ReadyState>>,
    up: Arc<watch::Sender<bool>>,
}

#[derive(Debug, Default)]
struct ReadyState {
    serving: bool,
    dependencies: BTreeMap<&'static str, bool>,
    /// The overall status last reported, so that watchers hear of changes only.
    published: Option<bool>,
}

impl Readiness {
    /// Reports through `health`, for `services` and the overall entry; not serving until told.
    pub fn new(health: HealthReporter, services: &'static [&'static str]) -> Self {
        Self {
            health,
            services,
            state: Arc::default(),
            up: Arc::new(watch::channel(false).0),
        }
    }

    /// The overall status as it changes: true while SERVING.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.up.subscribe()
    }

    /// The reporter the statuses go to.
    pub fn reporter(&self) -> &HealthReporter {
        &self.health
    }

    /// Whether the server takes calls (false while it drains).
    pub async fn set_serving(&self, serving: bool) {
        let mut state = self.state.lock().await;
        state.serving = serving;
        self.publish(&mut state).await;
    }

    /// Whether the dependency `name` is up (the health entry of that name follows it too);
    /// whether that changed. A dependency never reported is taken as up. Watchers of the
    /// health entries hear of changes only, however often the same status is reported.
    pub async fn set_dependency(&self, name: &'static str, up: bool) -> bool {
        let mut state = self.state.lock().await;
        let previous = state.dependencies.insert(name, up);
        if previous != Some(up) {
            self.health.set_service_status(name, status(up)).await;
        }
        self.publish(&mut state).await;
        previous.unwrap_or(true) != up
    }

    // Under the lock, so that the last change is the one reported.
    async fn publish(&self, state: &mut ReadyState) {
        let up = state.serving && state.dependencies.values().all(|up| *up);
        if state.published == Some(up) {
            return;
        }
        state.published = Some(up);
        for name in std::iter::once(&"").chain(self.services) {
            self.health.set_service_status(*name, status(up)).await;
        }
        self.up.send_replace(up);
    }
}

fn status(up: bool) -> ServingStatus {
    match up {
        true => ServingStatus::Serving,
        false => ServingStatus::NotServing,
    }
}

/// How a server stops: how long deregistered instances serve on before draining (so
/// clients see them gone first), and how long in-flight calls may finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drain {
    /// Between deregistering and draining (`discovery.drain_delay_ms`).
    pub delay: Duration,
    /// For in-flight calls (`grpc.shutdown_grace_secs`); connections still open after it
    /// are closed.
    pub grace: Duration,
}

/// Completes when a [`Serving`] server is told to drain (or the [`Serving`] is dropped):
/// the shutdown signal handed to tonic's server.
#[derive(Debug)]
pub struct Stop(oneshot::Receiver<()>);

impl Future for Stop {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

/// A running server task and the means to drain it.
#[derive(Debug)]
pub struct Serving {
    task: JoinHandle<Result<(), tonic::transport::Error>>,
    drain: oneshot::Sender<()>,
}

impl Serving {
    /// Spawns the server `serve` builds around [`Stop`], its shutdown signal:
    /// `Serving::spawn(|stop| builder.serve_with_incoming_shutdown(service, incoming, stop))`.
    pub fn spawn<F>(serve: impl FnOnce(Stop) -> F) -> Self
    where
        F: Future<Output = Result<(), tonic::transport::Error>> + Send + 'static,
    {
        let (drain, stopped) = oneshot::channel();
        Self {
            task: tokio::spawn(serve(Stop(stopped))),
            drain,
        }
    }

    /// Reports SERVING (and [`LIVENESS`]), registers through `register` (an error stops the
    /// server), and serves until `shutdown` completes or the server stops by itself; while
    /// the overall health is NOT_SERVING (a dependency down), the instance stays out of the
    /// registry ([`Registration::set_serving`]). Then it
    /// deregisters, serves on for `drain.delay` while clients notice, reports NOT_SERVING and
    /// drains in-flight calls for up to `drain.grace`.
    pub async fn run(
        mut self,
        address: SocketAddr,
        readiness: &Readiness,
        register: impl FnOnce() -> anyhow::Result<Option<Registration>>,
        drain: Drain,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        readiness.set_serving(true).await;
        readiness
            .reporter()
            .set_service_status(LIVENESS, ServingStatus::Serving)
            .await;
        tracing::info!(%address, services = ?readiness.services, "serving gRPC");
        // Registered once SERVING; dropped (deregistered) if the server stops by itself.
        let registration = match register() {
            Ok(registration) => registration,
            Err(err) => {
                self.task.abort();
                return Err(err);
            }
        };
        let mut up = readiness.watch();
        if let Some(registration) = &registration {
            registration.set_serving(*up.borrow_and_update());
        }
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                finished = &mut self.task => {
                    finished.context("server task failed")?.context("server stopped")?;
                    return Ok(());
                }
                () = &mut shutdown => break,
                Ok(()) = up.changed() => {
                    if let Some(registration) = &registration {
                        registration.set_serving(*up.borrow_and_update());
                    }
                }
            }
        }
        let delay = drain.delay;
        if let Some(registration) = registration {
            // Out of the registry first, then serve on while clients see it gone.
            registration.deregister().await;
            tracing::info!(
                ?delay,
                "shutdown requested: deregistered, serving on while clients notice"
            );
        } else if !delay.is_zero() {
            // Nothing to leave (static lists, DNS, a Kubernetes Service): health turns
            // NOT_SERVING at once for readiness probes and health-checking clients, and the
            // server serves on while DNS and the endpoints catch up (Kubernetes removes a
            // terminating pod's address while its SIGTERM is on the way: no preStop needed).
            readiness.set_serving(false).await;
            tracing::info!(
                ?delay,
                "shutdown requested: NOT_SERVING, serving on while clients notice"
            );
        }
        tokio::time::sleep(delay).await;
        tracing::info!("shutdown requested: draining in-flight calls");
        readiness.set_serving(false).await;
        let _ = self.drain.send(());
        let grace = drain.grace;
        match tokio::time::timeout(grace, &mut self.task).await {
            Ok(finished) => finished
                .context("server task failed")?
                .context("server error")?,
            Err(_) => {
                tracing::warn!(?grace, "grace period over: closing remaining connections");
                self.task.abort();
            }
        }
        tracing::info!("server stopped");
        Ok(())
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Asks the server at `address`, through `channel`, whether `service` (`""`: the server as a
/// whole) is SERVING within `timeout`; the error says what it answered, or why there was no
/// answer.
pub async fn check_health(
    channel: Transport,
    address: &str,
    service: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    use tonic_health::pb::{
        health_check_response::ServingStatus as Status, health_client::HealthClient,
        HealthCheckRequest,
    };

    let mut request = tonic::Request::new(HealthCheckRequest {
        service: service.to_owned(),
    });
    request.set_timeout(timeout);
    let answer = HealthClient::new(channel)
        .check(request)
        .await
        .with_context(|| format!("{address} did not answer the health check"))?;
    let what = if service.is_empty() {
        "the server"
    } else {
        service
    };
    match Status::try_from(answer.get_ref().status) {
        Ok(Status::Serving) => Ok(()),
        Ok(status) => anyhow::bail!("{address}: {what} is {}", status.as_str_name()),
        Err(_) => anyhow::bail!("{address}: {what} answered an unknown status"),
    }
}

#[cfg(test)]
mod tests {
    use tonic_health::pb::{
        health_check_response::ServingStatus as Status, health_server::Health, HealthCheckRequest,
    };
    use tonic_health::server::HealthService;

    use super::*;

    const SERVICES: &[&str] = &["users.v1.Users"];

    /// The status of `service`; `Unknown` for an entry never reported.
    async fn status_of(health: &impl Health, service: &str) -> Status {
        let request = tonic::Request::new(HealthCheckRequest {
            service: service.to_owned(),
        });
        match health.check(request).await {
            Ok(answer) => Status::try_from(answer.get_ref().status).expect("a known status"),
            Err(_) => Status::Unknown,
        }
    }

    #[tokio::test]
    async fn readiness_is_serving_only_while_serving_with_every_dependency_up() {
        let reporter = HealthReporter::new();
        let health = HealthService::from_health_reporter(reporter.clone());
        let readiness = Readiness::new(reporter, SERVICES);
        readiness.set_serving(true).await;
        for entry in ["", SERVICES[0]] {
            assert_eq!(
                status_of(&health, entry).await,
                Status::Serving,
                "{entry:?}"
            );
        }
        assert!(readiness.set_dependency("database", false).await);
        assert!(
            !readiness.set_dependency("database", false).await,
            "no change"
        );
        assert_eq!(status_of(&health, "").await, Status::NotServing);
        assert_eq!(status_of(&health, SERVICES[0]).await, Status::NotServing);
        assert_eq!(status_of(&health, "database").await, Status::NotServing);
        assert!(readiness.set_dependency("database", true).await);
        assert_eq!(status_of(&health, "").await, Status::Serving);
        readiness.set_serving(false).await;
        assert_eq!(status_of(&health, SERVICES[0]).await, Status::NotServing);
        assert_eq!(status_of(&health, "database").await, Status::Serving);
    }

    #[tokio::test]
    async fn watchers_hear_of_changes_only() {
        use tokio_stream::StreamExt;

        let reporter = HealthReporter::new();
        let health = HealthService::from_health_reporter(reporter.clone());
        let readiness = Readiness::new(reporter, SERVICES);
        readiness.set_serving(true).await;
        let request = tonic::Request::new(HealthCheckRequest {
            service: String::new(),
        });
        let mut watch = health.watch(request).await.expect("a watch").into_inner();
        let status = |item: Option<Result<tonic_health::pb::HealthCheckResponse, _>>| {
            let answer: tonic_health::pb::HealthCheckResponse = item.expect("an item").unwrap();
            Status::try_from(answer.status).unwrap()
        };
        assert_eq!(status(watch.next().await), Status::Serving);
        // A dependency's periodic check reports the same status again and again.
        for _ in 0..3 {
            assert!(!readiness.set_dependency("database", true).await);
            readiness.set_serving(true).await;
            // Polled once: an item would be ready at once.
            let heard = tokio::time::timeout(Duration::ZERO, watch.next()).await;
            assert!(heard.is_err(), "a watcher heard of no change: {heard:?}");
        }
        readiness.set_serving(false).await;
        assert_eq!(status(watch.next().await), Status::NotServing);
    }

    #[test]
    fn a_call_span_names_its_service_and_method_and_continues_the_trace() {
        fn mark(span: &tracing::Span, headers: &http::HeaderMap) {
            assert!(headers.contains_key("traceparent"));
            let _ = span;
            CONTINUED.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        static CONTINUED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        let request = http::Request::builder()
            .uri("/users.v1.Users/GetUser")
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .body(())
            .unwrap();
        let _span = request_span(&request, &[mark]);
        assert!(CONTINUED.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[test]
    fn reflection_lists_the_given_services() {
        let routes = add_reflection(
            Routes::default(),
            &[tonic_health::pb::FILE_DESCRIPTOR_SET],
            &["grpc.health.v1.Health"],
        );
        assert!(routes.is_ok());
        let unknown = add_reflection(Routes::default(), &[b"not a descriptor set"], &[]);
        assert!(unknown.is_err(), "a broken descriptor set is refused");
    }

    #[tokio::test]
    async fn a_server_serves_until_shutdown_then_drains_within_the_grace() {
        let reporter = HealthReporter::new();
        let health = HealthService::from_health_reporter(reporter.clone());
        let readiness = Readiness::new(reporter, SERVICES);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let config = GrpcConfig::default();
        let incoming = config.incoming(listener);
        let routes = Routes::new(tonic_health::pb::health_server::HealthServer::new(
            HealthService::from_health_reporter(readiness.reporter().clone()),
        ));
        let serving = Serving::spawn(|stop| {
            config
                .builder(&[])
                .serve_with_incoming_shutdown(routes, incoming, stop)
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let drain = Drain {
            delay: Duration::ZERO,
            grace: Duration::from_secs(5),
        };
        let run = tokio::spawn({
            let readiness = readiness.clone();
            async move {
                serving
                    .run(address, &readiness, || Ok(None), drain, async {
                        let _ = stopped.await;
                    })
                    .await
            }
        });
        while status_of(&health, LIVENESS).await != Status::Serving {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(status_of(&health, "").await, Status::Serving);
        stop.send(()).unwrap();
        run.await.unwrap().expect("a clean stop");
        assert_eq!(status_of(&health, "").await, Status::NotServing);
        assert_eq!(status_of(&health, LIVENESS).await, Status::Serving);
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_registry_health_turns_not_serving_and_the_server_serves_on_for_the_delay() {
        let readiness = Readiness::new(HealthReporter::new(), SERVICES);
        let health = HealthService::from_health_reporter(readiness.reporter().clone());
        let (drained, mut told) = oneshot::channel::<()>();
        let serving = Serving::spawn(|stop| async move {
            stop.await;
            let _ = drained.send(());
            Ok(())
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let drain = Drain {
            delay: Duration::from_secs(2),
            grace: Duration::from_secs(1),
        };
        let address = "127.0.0.1:7000".parse().unwrap();
        let run = tokio::spawn({
            let readiness = readiness.clone();
            async move {
                serving
                    .run(address, &readiness, || Ok(None), drain, async {
                        let _ = stopped.await;
                    })
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(status_of(&health, "").await, Status::Serving);
        stop.send(()).unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(status_of(&health, "").await, Status::NotServing);
        assert!(told.try_recv().is_err(), "still serving within the delay");
        tokio::time::sleep(Duration::from_millis(1_900)).await;
        assert!(told.try_recv().is_err(), "still serving within the delay");
        run.await.unwrap().expect("a clean stop");
        assert!(told.try_recv().is_ok(), "drained after the delay");
    }

    #[tokio::test]
    async fn a_failed_registration_stops_the_server() {
        let readiness = Readiness::new(HealthReporter::new(), SERVICES);
        let serving = Serving::spawn(|stop| async move {
            stop.await;
            Ok(())
        });
        let address = "127.0.0.1:1".parse().unwrap();
        let drain = Drain {
            delay: Duration::ZERO,
            grace: Duration::ZERO,
        };
        let outcome = serving
            .run(
                address,
                &readiness,
                || Err(anyhow::anyhow!("no registry")),
                drain,
                std::future::pending(),
            )
            .await;
        assert!(outcome.unwrap_err().to_string().contains("no registry"));
    }

    /// A registry that lists the registered leases.
    #[derive(Default, Clone)]
    struct Listing(Arc<std::sync::Mutex<Vec<crate::discovery::Lease>>>);

    impl crate::discovery::Registry for Listing {
        const REGISTERS: bool = true;

        fn heartbeat(&self) -> Duration {
            Duration::from_millis(10)
        }

        async fn register(
            &self,
            _instance: &crate::discovery::Instance,
        ) -> anyhow::Result<crate::discovery::Lease> {
            let mut leases = self.0.lock().unwrap();
            let lease = crate::discovery::Lease(i64::try_from(leases.len())? + 100);
            leases.push(lease);
            Ok(lease)
        }

        async fn keep_alive(
            &self,
            _instance: &crate::discovery::Instance,
            lease: crate::discovery::Lease,
        ) -> anyhow::Result<bool> {
            Ok(self.0.lock().unwrap().contains(&lease))
        }

        async fn deregister(
            &self,
            _instance: &crate::discovery::Instance,
            lease: crate::discovery::Lease,
        ) -> anyhow::Result<()> {
            self.0.lock().unwrap().retain(|listed| *listed != lease);
            Ok(())
        }

        async fn resolve(&self, _service: &str) -> anyhow::Result<crate::discovery::Resolved> {
            Ok(crate::discovery::Resolved::default())
        }
    }

    #[tokio::test]
    async fn a_server_whose_dependency_is_down_stays_out_of_the_registry() {
        let readiness = Readiness::new(HealthReporter::new(), SERVICES);
        // The database is down before the server starts.
        readiness.set_dependency("database", false).await;
        let serving = Serving::spawn(|stop| async move {
            stop.await;
            Ok(())
        });
        let registry = Listing::default();
        let instance = crate::discovery::Instance {
            service: "users".into(),
            id: "1".into(),
            address: "127.0.0.1:7000".into(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let drain = Drain {
            delay: Duration::ZERO,
            grace: Duration::from_secs(1),
        };
        let run = tokio::spawn({
            let (readiness, registry) = (readiness.clone(), registry.clone());
            async move {
                serving
                    .run(
                        "127.0.0.1:7000".parse().unwrap(),
                        &readiness,
                        || Ok(Registration::start(registry, instance)),
                        drain,
                        async {
                            let _ = stopped.await;
                        },
                    )
                    .await
            }
        });
        let listed = || registry.0.lock().unwrap().len();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(listed(), 0, "registered while NOT_SERVING");
        readiness.set_dependency("database", true).await;
        while listed() != 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        readiness.set_dependency("database", false).await;
        while listed() != 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        readiness.set_dependency("database", true).await;
        while listed() != 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.send(()).unwrap();
        run.await.unwrap().expect("a clean stop");
        assert_eq!(listed(), 0, "deregistered on shutdown");
    }
}
